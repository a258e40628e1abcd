"""The storefront side of backorders, as GritGlobal's BackOrder shows it: the add-to-cart button
reads :attr:`BackorderSettings.button_text`, the product page shows the backorder message with
its ETA, and the cart page shows :attr:`BackorderSettings.cart_message` when the cart holds a
backordered product.

One script per store, through the Scripts API (scripts.mdx, scripts.v3.yml): ``kind:
script_tag`` (a single ``<script>`` carrying its data, so nothing is fetched from Sous by
shoppers), ``location: footer`` (what scripts.mdx advises for theme compatibility),
``visibility: storefront`` (product and cart pages; checkout would need the Checkout Content
scope), ``consent_category: essential`` (it shows what a shopper is buying; it sets no cookie and
tracks nothing), ``auto_uninstall: true`` (as scripts.mdx recommends).

The script is created on install (:func:`StorefrontScripts.refresh` from the auth callback) or
with the first assignment, rewritten when the active assignments change (only if its content
differs), and removed on uninstall (:func:`StorefrontScripts.remove`). Its uuid is kept in the
store's ``info["storefront_script"]``. A merchant may delete it in Script Manager; scripts.mdx
advises asking before repairing that, so Sous then stops writing it and notes the deletion; an
explicit repair (``repair=True``: installing the app again) creates it anew.

The data the script carries: per product with an ``active`` assignment, the message as shoppers
read it (``%%DATE%%`` replaced by the ETA) and, for assignments of single variants, their SKUs
and ids (the product page shows the message when the selected variant's SKU is one of them; the
cart when a line is one of those variants). Messages are set as text, never as HTML.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, select

from connectors.bigcommerce.client import BigCommerceClient
from connectors.bigcommerce.errors import NotFound
from engine import Clock, Database, StoreRow

from . import eta, ledger
from .config import BackorderSettings
from .models import ACTIVE, BackorderAssignmentRow

log = logging.getLogger("sous.backorder")
SCRIPT_NAME = "Sous backorders"
INFO_KEY = "storefront_script"
JS = """(function () {
  var d = %(data)s;
  function setText(el, text) {
    if (el.tagName === 'INPUT') { el.value = text; } else { el.textContent = text; }
  }
  function product() {
    var input = document.querySelector(
      'form[data-cart-item-add] input[name="product_id"], input[name="product_id"]');
    var entry = input && d.products[String(input.value)];
    if (!entry) { return; }
    var button = document.querySelector(
      '#form-action-addToCart, form[data-cart-item-add] [type="submit"]');
    var sku = document.querySelector('[data-product-sku]');
    var label = button ? (button.value || button.textContent) : '';
    var shown = null;
    function apply() {
      var on = !entry.skus || (sku && entry.skus.indexOf(sku.textContent.trim()) >= 0);
      if (on && !shown) {
        shown = document.createElement('p');
        shown.className = 'sous-backorder sous-backorder-message';
        shown.textContent = entry.message;
        var anchor = button || input.form;
        if (anchor && anchor.parentNode) { anchor.parentNode.insertBefore(shown, anchor); }
        if (button) { setText(button, d.button); }
      } else if (!on && shown) {
        if (shown.parentNode) { shown.parentNode.removeChild(shown); }
        shown = null;
        if (button) { setText(button, label); }
      }
    }
    apply();
    if (sku && window.MutationObserver) {
      var watch = {childList: true, characterData: true, subtree: true};
      new MutationObserver(apply).observe(sku, watch);
    }
  }
  function held(carts) {
    var found = false;
    (carts || []).forEach(function (c) {
      var items = (c.lineItems && c.lineItems.physicalItems) || [];
      items.forEach(function (i) {
        var entry = d.products[String(i.productId)];
        if (entry && (!entry.variants || entry.variants.indexOf(i.variantId) >= 0)) {
          found = true;
        }
      });
    });
    return found;
  }
  function cart() {
    var box = document.querySelector('[data-cart]');
    if (!box || !window.fetch) { return; }
    fetch('/api/storefront/carts', {credentials: 'same-origin'})
      .then(function (r) { return r.json(); })
      .then(function (carts) {
        if (!held(carts)) { return; }
        var p = document.createElement('p');
        p.className = 'sous-backorder sous-backorder-cart';
        p.textContent = d.cart;
        box.insertBefore(p, box.firstChild);
      })['catch'](function () {});
  }
  function run() { product(); cart(); }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', run);
  } else {
    run();
  }
})();"""


def _json_in_script(value: Any) -> str:
    """JSON that cannot end the ``<script>`` element or break out of it."""
    text = json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def storefront_data(
    rows: Iterable[BackorderAssignmentRow], settings: BackorderSettings
) -> dict[str, Any]:
    """What the script shows, from the store's assignments (only ``active`` ones count)."""
    products: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r.product_id, r.variant_id or 0)):
        if row.status != ACTIVE:
            continue
        text = eta.message_for(
            row.message, row.eta, settings.default_message, settings.undated_message
        )
        message = eta.render(text, row.eta, settings.date_format)
        entry = products.setdefault(
            str(row.product_id), {"message": message, "skus": [], "variants": []}
        )
        if row.variant_id is None:
            entry.update(message=message, skus=None, variants=None)
        elif entry["variants"] is not None:
            entry["variants"].append(row.variant_id)
            if row.sku:
                entry["skus"].append(row.sku)
    return {"button": settings.button_text, "cart": settings.cart_message, "products": products}


def render(data: dict[str, Any]) -> str:
    """The script's ``html``: exactly one ``<script>`` element."""
    return "<script>\n" + JS % {"data": _json_in_script(data)} + "\n</script>"


def script_body(html: str) -> dict[str, Any]:
    return {
        "name": SCRIPT_NAME,
        "description": "Backorder button, message with its ETA, and cart message (Sous)",
        "html": html,
        "kind": "script_tag",
        "load_method": "default",
        "location": "footer",
        "visibility": "storefront",
        "consent_category": "essential",
        "auto_uninstall": True,
        "enabled": True,
    }


class StorefrontScripts:
    """Keeps each store's backorder script in step with its assignments."""

    def __init__(self, db: Database, clock: Clock, settings: BackorderSettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self._written: dict[tuple[str, str], str] = {}
        """The html last written per (workspace, store), to skip writes that change nothing."""
        self._uuids: dict[tuple[str, str], str] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _state(
        self, workspace: str, store: str, leaving: frozenset[str]
    ) -> tuple[dict[str, Any], str]:
        def read(s: Session) -> tuple[dict[str, Any], str]:
            row = _store_row(s, workspace, store)
            info = dict(((row.info or {}) if row else {}).get(INFO_KEY) or {})
            rows = [r for r in ledger.live(s, workspace, store) if r.id not in leaving]
            data = storefront_data(rows, self.settings)
            return info, render(data)

        return ledger.read(self.db, read)

    async def _note(self, workspace: str, store: str, values: dict[str, Any] | None) -> None:
        def write(s: Session) -> None:
            row = _store_row(s, workspace, store)
            if row is not None:
                info = dict(row.info or {})
                if values is None:
                    info.pop(INFO_KEY, None)
                else:
                    info[INFO_KEY] = values
                row.info = info
                s.add(row)

        await ledger.write(self.db, write)

    async def refresh(
        self,
        client: BigCommerceClient,
        workspace: str,
        store: str,
        *,
        repair: bool = False,
        leaving: frozenset[str] = frozenset(),
    ) -> str | None:
        """Create or rewrite the store's script; its uuid, or ``None`` when Sous does not write
        it (switched off, or deleted by the merchant and not repaired). ``leaving``: ids of
        assignments being ended, left out."""
        if not self.settings.storefront_script:
            return None
        key = (workspace, store)
        async with self._locks.setdefault(key, asyncio.Lock()):
            info, html = self._state(workspace, store, leaving)
            if info.get("deleted_at") and not repair:
                return None
            uuid = None if info.get("deleted_at") else info.get("uuid") or self._uuids.get(key)
            if uuid and self._written.get(key) == html:
                return str(uuid)
            uuid = uuid or await self._find(client)
            body = script_body(html)
            if uuid:
                try:
                    await client.update_script(str(uuid), body)
                except NotFound:
                    await self._deleted(workspace, store, str(uuid))
                    return None
            else:
                uuid = str((await client.create_script(body))["uuid"])
            if info.get("uuid") != uuid or info.get("deleted_at"):
                await self._note(workspace, store, {"uuid": uuid})
            self._uuids[key], self._written[key] = str(uuid), html
            return str(uuid)

    async def _find(self, client: BigCommerceClient) -> str | None:
        """Sous's script already on the store (its API account sees only its own)."""
        for script in await client.list_scripts():
            if script.get("name") == SCRIPT_NAME and script.get("uuid"):
                return str(script["uuid"])
        return None

    async def _deleted(self, workspace: str, store: str, uuid: str) -> None:
        log.warning("store %s: the merchant deleted Sous's storefront script", store)
        self._written.pop((workspace, store), None)
        self._uuids.pop((workspace, store), None)
        await self._note(
            workspace, store, {"uuid": uuid, "deleted_at": self.clock.now().isoformat()}
        )

    async def remove(self, client: BigCommerceClient, workspace: str, store: str) -> int:
        """Delete Sous's scripts on the store (uninstall); how many were deleted."""
        async with self._locks.setdefault((workspace, store), asyncio.Lock()):
            removed = 0
            for script in await client.list_scripts():
                if script.get("name") == SCRIPT_NAME and script.get("uuid"):
                    try:
                        await client.delete_script(str(script["uuid"]))
                        removed += 1
                    except NotFound:
                        pass
            self._written.pop((workspace, store), None)
            self._uuids.pop((workspace, store), None)
            await self._note(workspace, store, None)
            return removed


def _store_row(session: Session, workspace: str, store: str) -> StoreRow | None:
    query = select(StoreRow).where(StoreRow.workspace_id == workspace, StoreRow.store_hash == store)
    return session.exec(query).first()
