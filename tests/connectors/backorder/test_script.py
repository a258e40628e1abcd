"""The storefront backorder script (button text, message with the ETA, cart message) through the
Scripts API of the simulator: created with the first assignment, rewritten only when what it
shows changes; every request Sous sends checked against scripts.v3.yml; and the script itself
run (in Node, on a stand-in for a Stencil product page and cart page)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from typing import Any

import httpx
import pytest

from connectors.backorder.actions import AssignParams, Target, assign, unassign
from connectors.backorder.config import BackorderSettings
from connectors.backorder.script import SCRIPT_NAME, render, storefront_data
from tests.connectors.backorder.conftest import Shop
from tests.connectors.bigcommerce.openapi_requests import check_request

CARD = "Leather Card Holder"  # tracked by product, out of stock in the seed
DATA = re.compile(r"var d = (\{.*?\});\n", re.S)


def data_of(html: str) -> dict[str, Any]:
    found = DATA.search(html)
    assert found, html[:300]
    parsed: dict[str, Any] = json.loads(found.group(1))
    return parsed


def scripts(shop: Shop) -> list[dict[str, Any]]:
    return list(shop.store.scripts.values())


async def test_the_first_assignment_creates_the_script_with_the_message_and_eta(
    shop: Shop,
) -> None:
    assert scripts(shop) == []
    when = shop.clock.now().date() + timedelta(days=10)
    pid = shop.product_id(CARD)
    await assign(
        shop.ctx(),
        AssignParams.model_validate(
            {"product_id": pid, "limit": 5, "message": "Ships by %%DATE%%",
             "back_in_stock_date": when.isoformat()}
        ),
    )  # fmt: skip
    [script] = scripts(shop)
    assert script["name"] == SCRIPT_NAME
    assert script["api_client_id"] == shop.store.client_id
    assert (script["kind"], script["load_method"]) == ("script_tag", "default")
    assert (script["location"], script["visibility"]) == ("footer", "storefront")
    assert script["consent_category"] == "essential" and script["auto_uninstall"] is True
    assert script["html"].count("<script") == 1
    settings = BackorderSettings()
    assert data_of(script["html"]) == {
        "button": settings.button_text,
        "cart": settings.cart_message,
        "products": {
            str(pid): {"message": f"Ships by {when:%B %d, %Y}", "skus": None, "variants": None}
        },
    }
    assert [r.method for r in shop.script_requests()] == ["GET", "POST"]  # looked, then made

    shop.forget_requests()
    await assign(
        shop.ctx(run="run_2"),
        AssignParams.model_validate(
            {"product_id": pid, "limit": 5, "message": "Ships by %%DATE%%",
             "back_in_stock_date": when.isoformat()}
        ),
    )  # fmt: skip
    assert shop.script_requests() == []  # nothing changed: nothing written

    await unassign(shop.ctx(run="run_3"), Target(product_id=pid))
    [script] = scripts(shop)  # rewritten, not deleted: the store keeps its script
    assert data_of(script["html"])["products"] == {}
    assert [r.method for r in shop.script_requests()] == ["PUT"]


async def test_a_variant_assignment_shows_for_that_variant_only(shop: Shop) -> None:
    pid = shop.product_id("Aviator Sunglasses")
    silver = shop.variant_id("SUN-AVI-SLV")
    await assign(shop.ctx(), AssignParams(product_id=pid, variant_id=silver, limit=5))
    [script] = scripts(shop)
    entry = data_of(script["html"])["products"][str(pid)]
    assert entry["skus"] == ["SUN-AVI-SLV"] and entry["variants"] == [silver]
    assert entry["message"] == BackorderSettings().undated_message


async def test_every_script_request_matches_the_scripts_spec(shop: Shop) -> None:
    pid = shop.product_id(CARD)
    await assign(shop.ctx(), AssignParams(product_id=pid, limit=5))
    await unassign(shop.ctx(run="run_2"), Target(product_id=pid))
    client = await shop.clients.client("default", shop.hash)
    sent: list[httpx.Request] = []

    async def keep(request: httpx.Request) -> None:
        await request.aread()
        sent.append(request)

    client._http.event_hooks["request"].append(keep)
    service = shop.service
    service.scripts._written.clear()  # make it write again, and remove it
    await service.scripts.refresh(client, "default", shop.hash, repair=True)
    assert await service.scripts.remove(client, "default", shop.hash) == 1
    assert scripts(shop) == []
    methods = [(r.method, r.url.path.rsplit("/v3", 1)[1][:16]) for r in sent]
    assert methods == [
        ("PUT", "/content/scripts"),
        ("GET", "/content/scripts"),
        ("DELETE", "/content/scripts"),
    ]
    for request in sent:
        check_request(request)  # scripts.v3.yml (skips without the specs)


@pytest.mark.parametrize("bad", ["</script><script>alert(1)</script>", "a & b <b>", "\u2028"])
def test_messages_cannot_break_out_of_the_script(bad: str) -> None:
    settings = BackorderSettings(button_text=bad, cart_message=bad)
    html = render(storefront_data([], settings))
    assert html.count("<script") == 1 and html.count("</script>") == 1
    assert data_of(html)["button"] == bad


# -- the script in a page ---------------------------------------------------------------------
PAGE = r"""
const inserted = [];
function el(props) {
  return Object.assign({
    parentNode: { insertBefore(node) { inserted.push(node.className + ': ' + node.textContent); } },
    insertBefore(node) { inserted.push(node.className + ': ' + node.textContent); },
  }, props);
}
const button = el({ tagName: 'INPUT', value: 'Add to Cart' });
const input = el({ tagName: 'INPUT', value: PRODUCT, form: null });
const sku = el({ textContent: SKU });
const cartBox = el({});
const page = { '[data-cart]': CART ? cartBox : null,
               'input[name="product_id"]': PRODUCT ? input : null,
               'addToCart': button, '[data-product-sku]': sku };
global.window = { fetch: true };
global.document = {
  readyState: 'complete',
  createElement() { return { className: '', textContent: '' }; },
  querySelector(selector) {
    for (const key of Object.keys(page)) { if (selector.includes(key)) return page[key]; }
    return null;
  },
};
global.fetch = async () => ({ json: async () => CARTS });
eval(SCRIPT);
setTimeout(() => console.log(JSON.stringify({ button: button.value, inserted })), 10);
"""


def run_in_page(
    html: str, *, product: str = "", sku: str = "", cart: bool = False, carts: Any = None
) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the storefront script is not run")
    code = html.removeprefix("<script>\n").removesuffix("\n</script>")
    page = (
        PAGE.replace("PRODUCT", json.dumps(product))
        .replace("SKU", json.dumps(sku))
        .replace("CARTS", json.dumps(carts or []))
        .replace("CART ?", "true ?" if cart else "false ?")
        .replace("eval(SCRIPT)", f"eval({json.dumps(code)})")
    )
    done = subprocess.run([node, "-e", page], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_the_product_page_shows_the_button_and_message_and_the_cart_its_message() -> None:
    settings = BackorderSettings(button_text="Backorder now", cart_message="Some ship later")
    data = {
        "button": settings.button_text,
        "cart": settings.cart_message,
        "products": {
            "111": {"message": "Ships by March 3", "skus": None, "variants": None},
            "112": {"message": "Silver ships later", "skus": ["SUN-AVI-SLV"], "variants": [302]},
        },
    }
    html = render(data)
    page = run_in_page(html, product="111")
    assert page == {
        "button": "Backorder now",
        "inserted": ["sous-backorder sous-backorder-message: Ships by March 3"],
    }
    assert run_in_page(html, product="113") == {"button": "Add to Cart", "inserted": []}
    assert run_in_page(html, product="112", sku="SUN-AVI-GLD")["inserted"] == []
    silver = run_in_page(html, product="112", sku="SUN-AVI-SLV")
    assert silver["inserted"] == ["sous-backorder sous-backorder-message: Silver ships later"]
    lines = [{"lineItems": {"physicalItems": [{"productId": 112, "variantId": 302}]}}]
    cart = run_in_page(html, cart=True, carts=lines)
    assert cart["inserted"] == ["sous-backorder sous-backorder-cart: Some ship later"]
    other = [{"lineItems": {"physicalItems": [{"productId": 112, "variantId": 301}]}}]
    assert run_in_page(html, cart=True, carts=other)["inserted"] == []
