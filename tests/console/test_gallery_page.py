"""The template gallery through the front door: the real app, a real SQLite database, the shipped
template library, and the store simulator over loopback HTTP for the pickers."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlmodel import select

from connectors.bigcommerce.simulator import SimulatorConfig, create_simulator, simulator_of
from connectors.bigcommerce.simulator.state import Store
from connectors.bigcommerce.stores import BigCommerceStores
from engine import Cipher, RecipeRow, StoreRow
from engine.clock import ManualClock
from engine.store.db import Database
from sous.container import Container
from sous.settings import Settings
from tests.console.conftest import csrf_of, sign_in
from tests.servers import serve

FORM = "/console/templates/catalog/low-stock-warning"


@dataclass
class SimStore:
    """A simulated BigCommerce store connected to workspace ``default`` over loopback HTTP."""

    url: str
    store: Store

    @property
    def hash(self) -> str:
        return self.store.store_hash

    def product_id(self, name: str) -> int:
        return next(p.id for p in self.store.products.values() if p.name == name)


def connect(
    db: Database, settings: Settings, clock: ManualClock, workspace: str, store_hash: str, url: str
) -> None:
    cipher = Cipher(settings.secret_key.get_secret_value())
    row = StoreRow(
        id=f"sto_{workspace}_{store_hash}",
        workspace_id=workspace,
        store_hash=store_hash,
        name="Acme Outdoor",
        api_base_url=f"{url}/stores/{{store_hash}}",
        access_token_enc=cipher.encrypt("no-token"),
        webhook_secret_enc=cipher.encrypt("secret"),
        created_at=clock.now(),
    )
    with db.session() as s:
        s.add(row)
        s.commit()


@pytest.fixture
async def sim_store(
    api_db: Database, container: Container, clock: ManualClock, settings: Settings
) -> AsyncIterator[SimStore]:
    app = create_simulator(SimulatorConfig(clock=clock, seed=False, quota=10_000))
    sim = simulator_of(app)
    store = sim.add_store(seed=True, name="Acme Outdoor")
    cipher = Cipher(settings.secret_key.get_secret_value())
    async with serve(app) as url:
        connect(api_db, settings, clock, "default", store.store_hash, url)
        with api_db.session() as s:
            row = s.exec(select(StoreRow).where(StoreRow.store_hash == store.store_hash)).one()
            row.access_token_enc = cipher.encrypt(store.access_token)
            s.add(row)
            s.commit()
        stores = BigCommerceStores(api_db, cipher, clock)
        container.services.add(stores)
        try:
            yield SimStore(url, store)
        finally:
            await stores.aclose()
            await sim.aclose()


def field_block(page: str, name: str) -> str:
    """The markup of one input's field on the form."""
    found = re.search(rf'<div class="field[^"]*" id="field-{name}">(.*?)\n  </div>', page, re.S)
    assert found, f"no field {name!r} on the page"
    return found.group(1)


def recipes_of(db: Database, workspace: str = "default") -> list[str]:
    with db.read_session() as s:
        return sorted(s.exec(select(RecipeRow.slug).where(RecipeRow.workspace_id == workspace)))


async def post_form(http: httpx.AsyncClient, url: str, fields: dict[str, Any]) -> httpx.Response:
    form = await http.get(url)
    assert form.status_code == 200, form.text
    return await http.post(url, data={"csrf": csrf_of(form.text), **fields})


async def test_gallery_groups_templates_by_pack_and_category(signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/console/templates")
    assert page.status_code == 200
    text = page.text
    for pack in ("backorders", "catalog", "customers", "orders", "reports"):
        assert f'<h2 id="pack-{pack}">' in text
    catalog = text[text.index('id="pack-catalog"') : text.index('id="pack-customers"')]
    assert "<h3>Inventory</h3>" in catalog
    assert 'href="/console/templates/catalog/low-stock-warning"' in catalog
    assert 'href="/console/templates/orders/refund-alert"' not in catalog


async def test_the_form_is_generated_from_the_typed_inputs(signed_in: httpx.AsyncClient) -> None:
    page = (await signed_in.get("/console/templates/backorders/sold-out-backorder")).text
    limit = field_block(page, "limit")
    assert 'type="number"' in limit and 'min="1"' in limit and 'max="100000"' in limit
    assert 'step="1"' in limit and 'value="50"' in limit
    assert "Between 1 and 100000." in limit
    assert "Backorder limit" in limit and "backorder switches itself off" in limit
    message = field_block(page, "message")
    assert 'maxlength="255"' in message and "Back soon: ships by %%DATE%%" in message
    staff = field_block(page, "staff")
    assert "(required)" in staff and "Separate addresses with commas." in staff
    products = field_block(page, "only_products")
    assert 'hx-get="/console/lookup/product?field=only_products' in products
    assert "Find products in the store" in products
    weekly = (await signed_in.get("/console/templates/reports/weekly-backlog-digest")).text
    day = field_block(weekly, "day")
    assert '<select id="in-day" name="input.day"' in day
    assert '<option value="MON" selected>Monday</option>' in day
    assert '<option value="SUN">Sunday</option>' in day
    assert 'type="time"' in field_block(weekly, "at") and 'value="07:00"' in weekly
    boolean = (await signed_in.get("/console/templates/orders/first-order-review")).text
    assert 'type="checkbox" id="in-include_guests"' in field_block(boolean, "include_guests")


async def test_invalid_input_is_shown_by_its_field_and_nothing_is_saved(
    signed_in: httpx.AsyncClient, api_db: Database
) -> None:
    url = "/console/templates/backorders/sold-out-backorder"
    answer = await post_form(
        signed_in, url, {"input.limit": "500000", "input.staff": "not-an-address", "do": "save"}
    )
    assert answer.status_code == 422
    limit = field_block(answer.text, "limit")
    assert 'aria-invalid="true"' in limit
    assert '<p class="field-error" id="err-limit">must be ≤ 100000</p>' in limit
    assert 'value="500000"' in limit  # what was typed stays
    staff = field_block(answer.text, "staff")
    assert "is not an e-mail address" in html.unescape(staff)
    assert "err-eta" not in answer.text
    assert recipes_of(api_db) == []


async def test_preview_shows_whether_it_would_fire_and_the_rendered_inputs(
    signed_in: httpx.AsyncClient, api_db: Database
) -> None:
    fields = {"input.staff": "buyer@example.com", "do": "preview"}
    answer = await post_form(signed_in, FORM, fields)
    assert answer.status_code == 200, answer.text
    preview = answer.text[answer.text.index('id="preview"') :]
    assert "it would fire" in preview
    assert "<code>email.send</code>" in preview
    assert "buyer@example.com" in preview
    assert "Low stock: " in html.unescape(preview)  # the subject, rendered on the sample
    assert "{{" not in html.unescape(preview.split("Low stock: ")[1][:40])
    assert recipes_of(api_db) == []  # a preview saves nothing
    # the sample product is in category 23 or 18 (the trigger's sample): skipping them, no fire
    skipped = await post_form(signed_in, FORM, {**fields, "input.skip_categories": "18, 23, 19"})
    assert "it would not fire" in skipped.text
    assert "conditions" in skipped.text


async def test_save_creates_the_recipe_and_goes_to_its_page(
    signed_in: httpx.AsyncClient, api_db: Database, new_key
) -> None:
    fields = {"input.staff": "buyer@example.com", "recipe_name": "Warn the buyer", "do": "save"}
    answer = await post_form(signed_in, FORM, fields)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/recipes/low-stock-warning"
    assert recipes_of(api_db) == ["low-stock-warning"]
    key = new_key("default", "read")
    shown = await signed_in.get(
        "/v1/recipes/low-stock-warning", headers={"Authorization": f"Bearer {key}"}
    )
    assert shown.json()["name"] == "Warn the buyer"
    again = await post_form(signed_in, FORM, fields)
    assert again.status_code == 422
    assert "already exists" in field_block_named(again.text, "recipe_id")
    gallery = (await signed_in.get("/console/templates")).text
    assert 'id="pack-catalog">catalog' in gallery and "installed</span>" in gallery


def field_block_named(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="err-{field}">([^<]*)</p>', page)
    assert found, f"no error for {field!r}"
    return html.unescape(found.group(1))


async def test_a_read_only_session_previews_but_does_not_save(
    browser: httpx.AsyncClient, new_key, api_db: Database
) -> None:
    assert (await sign_in(browser, new_key("default", "read"))).status_code == 303
    page = (await browser.get(FORM)).text
    assert 'value="save"' not in page
    fields = {"input.staff": "buyer@example.com"}
    refused = await post_form(browser, FORM, {**fields, "do": "save"})
    assert refused.status_code == 403
    assert (await post_form(browser, FORM, {**fields, "do": "preview"})).status_code == 200
    assert recipes_of(api_db) == []


async def test_csrf_is_refused(signed_in: httpx.AsyncClient, api_db: Database) -> None:
    await signed_in.get(FORM)
    fields = {"input.staff": "buyer@example.com", "do": "save"}
    refused = await signed_in.post(FORM, data={**fields, "csrf": "forged"})
    assert refused.status_code == 403
    assert (await signed_in.post(FORM, data=fields)).status_code == 403
    assert recipes_of(api_db) == []


async def test_an_unknown_template_is_a_404_page(signed_in: httpx.AsyncClient) -> None:
    answer = await signed_in.get("/console/templates/catalog/no-such-template")
    assert answer.status_code == 404
    assert "No such template" in answer.text


async def test_pickers_list_the_stores_products_categories_and_groups(
    signed_in: httpx.AsyncClient, sim_store: SimStore
) -> None:
    found = await signed_in.get(
        "/console/lookup/product",
        params={"field": "only_products", "multiple": "true", "q": "sunglasses"},
    )
    assert found.status_code == 200
    cat_eye = sim_store.product_id("Cat Eye Sunglasses")
    assert "Cat Eye Sunglasses" in found.text
    assert f'data-value="{cat_eye}"' in found.text
    assert 'data-field="only_products"' in found.text and 'data-multiple="true"' in found.text
    assert "Tote" not in found.text  # only the matching products
    everything = await signed_in.get("/console/lookup/product", params={"store": sim_store.hash})
    names = {p.name for p in sim_store.store.products.values()}
    assert sum(name in html.unescape(everything.text) for name in names) == len(names)
    categories = await signed_in.get("/console/lookup/category", params={"q": "sun"})
    assert "Sunglasses" in categories.text and "Apparel" not in categories.text
    groups = await signed_in.get("/console/lookup/customer_group")
    group_names = [g.name for g in sim_store.store.customer_groups.values()]
    assert group_names and all(html.escape(n) in groups.text for n in group_names)
    statuses = await signed_in.get("/console/lookup/order_status", params={"q": "ship"})
    assert "Awaiting Shipment" in statuses.text and "Cancelled" not in statuses.text
    form = (await signed_in.get("/console/templates/backorders/sold-out-backorder")).text
    assert f'<option value="{sim_store.hash}">Acme Outdoor ({sim_store.hash})</option>' in form
    unknown = await signed_in.get("/console/lookup/brand")
    assert unknown.status_code == 404


async def test_workspaces_are_isolated(
    browser: httpx.AsyncClient,
    new_key,
    sim_store: SimStore,
    api_db: Database,
    settings: Settings,
    clock: ManualClock,
) -> None:
    connect(api_db, settings, clock, "other", "otherstore", sim_store.url)
    assert (await sign_in(browser, new_key("other", "admin"))).status_code == 303
    # the default workspace's store is not one this workspace can read
    found = await browser.get(
        "/console/lookup/product", params={"store": sim_store.hash, "q": "Cat"}
    )
    assert "not connected to this workspace" in found.text
    assert "Cat Eye" not in found.text
    form = (await browser.get(FORM)).text
    assert sim_store.hash not in form and "otherstore" in form
    fields = {"input.staff": "buyer@example.com", "do": "save"}
    assert (await post_form(browser, FORM, fields)).status_code == 303
    assert recipes_of(api_db, "other") == ["low-stock-warning"]
    assert recipes_of(api_db, "default") == []
