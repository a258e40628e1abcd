"""The backorders page through the front door: the real app and database with a backorder
ledger in it, and the store simulator over loopback HTTP for the backlog."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import httpx
from sqlmodel import SQLModel

from connectors.backorder.models import BackorderAssignmentRow, BackorderLineRow
from engine.clock import ManualClock
from engine.store.db import Database
from sous.settings import Settings
from tests.console.conftest import sign_in
from tests.console.test_gallery_page import SimStore, connect, sim_store  # noqa: F401

EVIL = '=HYPERLINK("http://evil.example","Click")'


def assignment(
    id: str, product_id: int, name: str, *, status: str = "active", units: int = 0, **more
) -> BackorderAssignmentRow:
    return BackorderAssignmentRow(
        id=id, workspace_id=more.pop("workspace", "default"), store=more.pop("store", "shop1"),
        product_id=product_id, product_name=name, sku=f"SKU-{product_id}", status=status,
        backorder_limit=more.pop("limit", 10), units=units, **more,
    )  # fmt: skip


def line(
    assignment_id: str, order_id: int, product_id: int, units: int, days_ago: float, **more
) -> BackorderLineRow:
    now = more.pop("now")
    return BackorderLineRow(
        assignment_id=assignment_id, order_id=order_id, product_id=product_id,
        workspace_id=more.pop("workspace", "default"), store=more.pop("store", "shop1"),
        quantity=units, backordered=units, status=more.pop("status", "waiting"),
        ordered_at=now - timedelta(days=days_ago), updated_at=now, **more,
    )  # fmt: skip


def seed(db: Database, clock: ManualClock) -> None:
    SQLModel.metadata.create_all(db.engine)
    now = clock.now()
    rows = [
        assignment("a1", 101, EVIL, units=5, eta=date(2026, 12, 20), created_at=now),
        assignment("a2", 102, "Trail Tent", units=4, limit=4, status="closed", created_at=now),
        assignment("a3", 103, "Old Lamp", status="ended", created_at=now),
        assignment("a9", 109, "Their Kayak", workspace="other", store="shop9", created_at=now),
        line("a1", 5001, 101, 2, 3, now=now, customer_name="Ada"),
        line("a2", 5002, 102, 3, 5, now=now, customer_name="Grace"),
        line("a1", 5003, 101, 3, 1, now=now),
        line("a2", 5004, 102, 9, 4, now=now, status="released"),
        line("a2", 5005, 102, 1, 2, now=now, status="allocated"),
        line("a3", 5006, 103, 1, 6, now=now, status="shipped"),
        line("a9", 5009, 109, 7, 9, now=now, workspace="other", store="shop9"),
        # the same store hash in another workspace: none of this workspace's business
        assignment("a8", 108, "Their Canoe", workspace="other", created_at=now),
        line("a8", 5008, 108, 7, 9, now=now, workspace="other"),
    ]
    with db.session() as s:
        for row in rows:
            row.updated_at = now
            s.add(row)
        s.commit()


def section(page: str, title_id: str) -> str:
    start = page.index(f'id="{title_id}"')
    return page[start : page.index("</section>", start)]


async def test_backorders_waiting_orders_and_the_demand_chart(
    signed_in: httpx.AsyncClient, api_db: Database, settings: Settings, clock: ManualClock
) -> None:
    connect(api_db, settings, clock, "default", "shop1", "http://127.0.0.1:9")
    seed(api_db, clock)
    page = await signed_in.get("/console/backorders")
    assert page.status_code == 200, page.text
    active = section(page.text, "active-title")
    assert "Trail Tent" in active and "4 of 4" in active and "closed" in active
    assert "=HYPERLINK(&#34;http://evil.example&#34;,&#34;Click&#34;)" in active  # escaped
    assert "5 of 10" in active and "2026-12-20" in active
    assert "Old Lamp" not in active  # ended
    waiting = section(page.text, "waiting-title")
    assert re.findall(r"<th scope=\"row\">#(\d+)</th>", waiting) == ["5002", "5001", "5005", "5003"]
    assert "Grace" in waiting and "allocated" in waiting
    demand = section(page.text, "demand-title")
    assert (
        '<svg class="chart" role="img" aria-labelledby="chart-title" aria-describedby="chart-desc"'
        in demand
    )
    assert '<title id="chart-title">Units waiting per backordered product</title>' in demand
    assert "<title>Trail Tent: 4 units waiting</title>" in demand
    ranked = re.findall(r'<th scope="row">([^<]+)</th>\s*<td class="num">(\d+)</td>', demand)
    assert [(n, int(u)) for n, u in ranked] == [(EVIL.replace('"', "&#34;"), 5), ("Trail Tent", 3)]
    widths = [int(w) for w in re.findall(r'<rect x="220" y="\d+" width="(\d+)"', demand)]
    assert widths[0] > widths[1] > 0  # 5 units against 4
    assert "Their Canoe" not in page.text and "#5008" not in page.text  # another workspace's


async def test_the_waiting_orders_csv_is_safe_against_formulas(
    signed_in: httpx.AsyncClient, api_db: Database, settings: Settings, clock: ManualClock
) -> None:
    connect(api_db, settings, clock, "default", "shop1", "http://127.0.0.1:9")
    seed(api_db, clock)
    answer = await signed_in.get("/console/backorders/waiting.csv", params={"store": "shop1"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    day = clock.now().strftime("%Y-%m-%d")
    disposition = f'attachment; filename="backorders-shop1-{day}.csv"'
    assert answer.headers["content-disposition"] == disposition
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["order_id"] for r in rows] == ["5002", "5001", "5005", "5003"]
    evil = [r["product"] for r in rows if r["product_id"] == "101"]
    assert evil == ["'" + EVIL, "'" + EVIL]
    assert {r["customer"] for r in rows} == {"Grace", "Ada", ""}


async def test_the_store_selector_and_workspaces(
    browser: httpx.AsyncClient,
    new_key,
    api_db: Database,
    settings: Settings,
    clock: ManualClock,
) -> None:
    for workspace, store in (("default", "shop1"), ("default", "shop2"), ("other", "shop9")):
        connect(api_db, settings, clock, workspace, store, "http://127.0.0.1:9")
    seed(api_db, clock)
    assert (await sign_in(browser, new_key("default", "read"))).status_code == 303
    page = (await browser.get("/console/backorders")).text
    assert '<select id="store" name="store">' in page
    assert '<option value="shop2">' in page and "shop9" not in page
    second = (await browser.get("/console/backorders", params={"store": "shop2"})).text
    assert "Trail Tent" not in second and "No order is waiting for stock." in second
    foreign = await browser.get("/console/backorders", params={"store": "shop9"})
    assert foreign.status_code == 404
    csv_foreign = await browser.get("/console/backorders/waiting.csv", params={"store": "shop9"})
    assert csv_foreign.status_code == 404
    assert (await sign_in(browser, new_key("other", "read"))).status_code == 303
    theirs = (await browser.get("/console/backorders")).text
    assert "Their Kayak" in theirs and "Trail Tent" not in theirs and "#5002" not in theirs
    assert (await browser.post("/console/backorders")).status_code == 405  # nothing to change


async def test_the_backlog_is_read_from_the_store_after_the_page(
    signed_in: httpx.AsyncClient,
    sim_store: SimStore,  # noqa: F811
) -> None:
    page = (await signed_in.get("/console/backorders")).text
    assert f'hx-get="/console/backorders/backlog?store={sim_store.hash}"' in page
    requests = len(sim_store.store.requests)
    assert requests == 0  # the page itself asks the store nothing
    fragment = await signed_in.get("/console/backorders/backlog")
    assert fragment.status_code == 200
    assert "2 unfulfilled orders" in fragment.text
    assert re.findall(r"<td>(Awaiting [A-Za-z]+)</td>", fragment.text) == [
        "Awaiting Payment",
        "Awaiting Fulfillment",
    ]  # oldest first
    answer = await signed_in.get("/console/backorders/backlog.csv")
    assert answer.headers["content-type"].startswith("text/csv")
    assert re.fullmatch(
        rf'attachment; filename="backlog-{sim_store.hash}-\d{{4}}-\d{{2}}-\d{{2}}\.csv"',
        answer.headers["content-disposition"],
    )
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["status"] for r in rows] == ["Awaiting Payment", "Awaiting Fulfillment"]


async def test_the_ranking_says_when_it_covers_only_the_oldest_lines(
    signed_in: httpx.AsyncClient,
    api_db: Database,
    settings: Settings,
    clock: ManualClock,
    monkeypatch,
) -> None:
    from api.console.pages import backorders

    monkeypatch.setattr(backorders, "MAX_SCAN", 2)
    connect(api_db, settings, clock, "default", "shop1", "http://127.0.0.1:9")
    seed(api_db, clock)
    page = (await signed_in.get("/console/backorders")).text
    assert "From the oldest 2 of 4 order lines waiting" in page
    waiting = section(page, "waiting-title")
    assert "The oldest 2 of 4." in waiting
    assert re.findall(r"<th scope=\"row\">#(\d+)</th>", waiting) == ["5002", "5001"]
