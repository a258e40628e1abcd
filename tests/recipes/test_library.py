"""Every template of every shipped pack, every ready-made recipe and every example, run through
the engine on its trigger's sample event against the store simulator.

Each template is made with its defaults (or, for an input without one, its ``example``), plus
the sample inputs documented in ``SAMPLE_INPUTS``. The sample payloads (``TriggerSpec.sample``)
name products, variants and customers the simulator's seeded store has; their order ids are
moved onto a seeded order (``ORDER``). Where a template's conditions are meant to say no to the
plain sample, ``NO_MATCH`` says why, the test checks that decision, and then runs the template
on the sample with the documented change that makes it apply.

One shop (simulator, connectors, SMTP sink, HTTP endpoint) serves the whole module; each test
makes one recipe, sends the event to that recipe only, and deletes it afterwards.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from sqlmodel import col, select

from engine.authoring.loader import load_file
from engine.context import ActionContext
from engine.model.events import Event, NewEvent
from engine.packs.archive import read_folder
from engine.packs.pack import Pack, load_pack
from engine.store.models import ApprovalRow, MatchRow, RunRow, StepRow
from engine.templates.instantiate import instantiate
from tests.conftest import ROOT
from tests.fakes import Recorder
from tests.recipes.conftest import Shop, open_shop

pytestmark = pytest.mark.asyncio(loop_scope="module")

PACKS = ROOT / "recipes" / "packs"
EXAMPLES = ROOT / "recipes" / "examples"
ORDER = 106  # a seeded order: Jane Doe (customer 1), one Cat Eye Sunglasses (product 111)
ON_BACKORDER = 111  # templates that update a backorder find this product on backorder

SAMPLE_INPUTS: dict[str, dict[str, Any]] = {
    # endpoints: the module's local HTTP endpoint stands in for the merchant's services
    "backorders/eta-moved-tell-customers": {"platform_url": "{endpoint}/esp"},
    "integrations/stock-out-webhook": {"url": "{endpoint}/erp/stock-outs"},
    "integrations/order-to-erp": {"url": "{endpoint}/erp/orders"},
    # thresholds low enough for the sample (2 backordered units, a 178.00 order of 2 units)
    "backorders/demand-spike-purchasing": {"units": 2},
    "backorders/backorder-limit-reached": {"raise_by": 10},
    "orders/high-value-order-alert": {"amount": 100},
    "orders/high-value-order-approval": {"amount": 100},
    "orders/high-value-order-fanout": {"amount": 100},
    "orders/first-order-review": {"amount": 100},
    "orders/large-quantity-review": {"quantity": 2},
    "customers/vip-after-n-orders": {"orders": 2},
    "catalog/untracked-product-alert": {"track": True},
    # a schedule has no store of its own: the report is about the simulator's store
    "reports/daily-backlog-digest": {"store": "{store}"},
    "reports/weekly-backlog-digest": {"store": "{store}"},
    "reports/unfulfilled-for-days": {"store": "{store}", "days": 1},
    "insights/daily-stock-and-orders": {"store": "{store}"},
    "insights/customer-lifetime-value": {"amount": 100},
    # a webhook has no store of its own either; the sample arrived at the hook "warehouse"
    "integrations/signed-supplier-delay": {"hook": "warehouse", "store": "{store}"},
}

SAMPLE_CHANGES: dict[str, dict[str, Any]] = {
    # customer 5 has placed one order, so this one is their first: the hold path runs
    "orders/first-order-review": {"order.customer_id": 5},
}

NO_MATCH: dict[str, tuple[str, dict[str, Any]]] = {
    # template: (why the plain sample does not apply, the change to the sample that makes it)
    "backorders/eta-moved-tell-customers": (
        "the sample changes only the limit, and nobody is waiting",
        {"changes": ["back_in_stock_date"], "backorder.units_backordered": 3},
    ),
    "backorders/units-returned-reopen": (
        "the sample is an edit, not units given back",
        {"reason": "reopened"},
    ),
    "orders/customer-message-alert": (
        "the sample order has no customer comment",
        {"order.customer_message": "Please leave it with the neighbour."},
    ),
    "orders/order-cancelled-note": (
        "the sample status change is to Awaiting Fulfillment, not Cancelled",
        {"status_id": 5, "status": "Cancelled"},
    ),
    "customers/new-customer-company-alert": (
        "the sample customer gives no company",
        {"customer.company": "Acme Corp"},
    ),
    "catalog/untracked-product-alert": (
        "the sample product tracks its inventory",
        {"product.inventory_tracking": "none"},
    ),
    "catalog/back-in-stock-show": ("the sample product is visible", {"product.is_visible": False}),
    "catalog/variant-back-in-stock-enable": (
        "the sample variant can be bought",
        {"variant.purchasing_disabled": True},
    ),
    "integrations/supplier-eta-to-backorder": (
        "the custom event's sample carries no date",
        {"eta": "2026-12-24"},
    ),
    "integrations/signed-supplier-delay": (
        "the sample webhook names no product id",
        {"body.product_id": ON_BACKORDER, "body.arrives": "2026-12-24"},
    ),
}


async def sold_out_backorder(shop: Shop, steps: list[StepRow]) -> None:
    assert shop.sink.messages[-1].subject == "Cat Eye Sunglasses sold out: on backorder (limit 50)"
    assert steps[0].output is not None
    assert steps[0].output["message"] == "Back soon: ships by %%DATE%%"


async def order_note(shop: Shop, steps: list[StepRow]) -> None:
    rig = shop.rig
    url = f"{rig.sim_url}/stores/{rig.hash}/v2/orders/{ORDER}"
    order = (await rig.http.get(url, headers={"X-Auth-Token": rig.store.access_token})).json()
    assert (
        "BACKORDER: 2 unit(s) on backorder, expected to ship by 2026-12-11:" in order["staff_notes"]
    )


async def tell_customer(shop: Shop, steps: list[StepRow]) -> None:
    mail = shop.sink.messages[-1]
    assert mail.subject == f"Your order #{ORDER}: some items ship later"
    assert "jane.doe@example.com" in mail.to


async def erp_order(shop: Shop, steps: list[StepRow]) -> None:
    sent = shop.received[-1]
    assert sent["path"] == "/erp/orders"
    assert sent["headers"]["authorization"] == "Bearer erp-secret-token"
    assert sent["body"]["order"]["id"] == ORDER


async def held(shop: Shop, steps: list[StepRow]) -> None:
    assert [st.status for st in steps] == ["succeeded"] * 4
    assert steps[1].output is not None
    assert steps[1].output["status_id"] == 12


async def slack(shop: Shop, steps: list[StepRow]) -> None:
    assert shop.received[-1]["path"] == "/slack"
    assert shop.received[-1]["body"]["text"].startswith(
        ":warning: *Cat Eye Sunglasses* (SUN-CATEYE) just sold out"
    )


async def waited_too_long(shop: Shop, steps: list[StepRow]) -> None:
    assert [st.status for st in steps] == ["succeeded", "succeeded"]
    mail = shop.sink.messages[-1]
    assert mail.subject.startswith("Order #")
    assert "days" in mail.subject


async def failure_mail(shop: Shop, steps: list[StepRow]) -> None:
    mail = shop.sink.messages[-1]
    assert mail.subject == "Recipe “Tell staff” failed at step mail"
    assert mail.text is not None
    assert "Run:   https://sous.example/console/runs/run_0" in mail.text


async def failure_slack(shop: Shop, steps: list[StepRow]) -> None:
    assert shop.received[-1]["path"] == "/slack"
    text = shop.received[-1]["body"]["text"]
    assert text.startswith(":rotating_light: *Tell staff* failed at step `mail`: cannot reach")


async def disabled_mail(shop: Shop, steps: list[StepRow]) -> None:
    assert shop.sink.messages[-1].subject == "Sous switched off “Tell staff”"


async def approved(shop: Shop, steps: list[StepRow]) -> None:
    """The library test approves (see run_once): the order is released, not noted."""
    assert [st.status for st in steps] == ["succeeded", "succeeded", "succeeded", "skipped"]
    assert steps[1].output is not None and steps[1].output["decided_by"] == "library test"
    assert steps[2].output is not None and steps[2].output["status_id"] == 11
    mail = shop.sink.messages[-1]
    assert mail.subject.startswith("Approval needed: Release order #")
    assert mail.text is not None and "/console/approve/" in mail.text


async def big_spender(shop: Shop, steps: list[StepRow]) -> None:
    assert [st.status for st in steps] == ["succeeded"] * 4
    assert steps[1].output is not None and steps[1].output["count"] >= 1
    mail = shop.sink.messages[-1]
    assert mail.subject.startswith("Jane Doe has spent ")
    assert mail.text is not None and "jane.doe@example.com" in mail.text


async def packing_list(shop: Shop, steps: list[StepRow]) -> None:
    mail = shop.sink.messages[-1]
    assert mail.subject == f"Packing list for order #{ORDER} (1 line(s))"
    assert mail.text is not None and "1 \u00d7 Cat Eye Sunglasses (SKU SUN-CATEYE)" in mail.text


async def variant_details(shop: Shop, steps: list[StepRow]) -> None:
    assert steps[0].output is not None and steps[0].output["found"] is True
    mail = shop.sink.messages[-1]
    assert "sold out" in mail.subject
    assert mail.text is not None and steps[0].output["variant"]["sku"] in mail.text


async def stock_and_orders(shop: Shop, steps: list[StepRow]) -> None:
    assert steps[1].output is not None
    mail = shop.sink.messages[-1]
    assert mail.subject.startswith(f"{steps[1].output['count']} order(s) to fulfil, ")


async def lines_traced(shop: Shop, steps: list[StepRow]) -> None:
    loop = steps[0]
    assert loop.step_id == "each_line"
    assert loop.output is not None
    assert loop.output["count"] == len(loop.output["results"]) >= 1
    lines = [st for st in steps if st.step_id.startswith("each_line[")]
    assert [st.step_id for st in lines] == [f"each_line[{i}].line" for i in range(len(lines))]
    assert lines[0].output is not None and "on backorder" in lines[0].output["message"]


async def fulfilment_called(shop: Shop, steps: list[StepRow]) -> None:
    called = steps[0].output
    assert called is not None and called["status"] == "succeeded"
    assert called["result"]["pick"]["message"] == (
        f"pick 1 line(s) of order #{ORDER} (called by order-fulfilment-flow)"
    )
    assert (
        steps[1].output is not None
        and "order-fulfilment-steps ended succeeded" in (steps[1].output["message"])
    )


async def fanned_out(shop: Shop, steps: list[StepRow]) -> None:
    """The parallel step's three branches each did their part; the join is read after it."""
    assert [st.step_id for st in steps] == [
        "notify",
        "done",
        "notify.email_staff.mail",
        "notify.note_order.note",
        "notify.tag_customer.group",
    ]
    joined = steps[0].output
    assert joined is not None and joined["tag_customer"]["group"]["customer_id"] == 1
    assert steps[1].output is not None and steps[1].output["message"].endswith(
        f", customer in group {joined['tag_customer']['group']['group_id']}"
    )
    rig = shop.rig
    url = f"{rig.sim_url}/stores/{rig.hash}/v2/orders/{ORDER}"
    order = (await rig.http.get(url, headers={"X-Auth-Token": rig.store.access_token})).json()
    assert "High-value order (" in order["staff_notes"]
    assert shop.sink.messages[-1].subject.startswith(f"High-value order #{ORDER}: ")


CALLEES: dict[str, str] = {
    # template: the template of the recipe it calls (made with its defaults beside it)
    "orders/order-fulfilment-flow": "order-fulfilment-steps",
}

EFFECTS: dict[str, Any] = {
    "orders/high-value-order-fanout": fanned_out,
    "orders/order-fulfilment-flow": fulfilment_called,
    "insights/customer-lifetime-value": big_spender,
    "insights/order-packing-list": packing_list,
    "insights/variant-sold-out-details": variant_details,
    "insights/daily-stock-and-orders": stock_and_orders,
    "operations/run-failed-email": failure_mail,
    "operations/run-failed-slack": failure_slack,
    "operations/recipe-disabled-email": disabled_mail,
    # a few effects checked beyond the run's own record
    "backorders/sold-out-backorder": sold_out_backorder,
    "backorders/backordered-order-note": order_note,
    "backorders/backordered-lines-trace": lines_traced,
    "backorders/backordered-order-tell-customer": tell_customer,
    "integrations/order-to-erp": erp_order,
    "integrations/slack-stock-out": slack,
    "orders/first-order-review": held,
    "orders/high-value-order-approval": approved,
    "reports/unfulfilled-for-days": waited_too_long,
}


@dataclass(frozen=True)
class Case:
    pack: str
    template: str

    @property
    def key(self) -> str:
        return f"{self.pack}/{self.template}"


def template_cases() -> list[Case]:
    """Every template file of every pack, read without the registry (so a missing connector
    shows as a failing test, not as a missing one)."""
    cases = []
    for file in sorted(PACKS.glob("*/templates/*.y*ml")):
        for doc in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            cases.append(Case(file.parts[-3], doc["id"]))
    return cases


def recipe_files() -> list[Path]:
    return sorted([*PACKS.glob("*/recipes/*.y*ml"), *EXAMPLES.glob("*.y*ml")])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("library"), Recorder()) as opened:
        yield opened


def packs(shop: Shop) -> dict[str, Pack]:
    return {
        folder.name: load_pack(read_folder(folder), shop.rig.engine.registry)
        for folder in sorted(PACKS.iterdir())
    }


def change(payload: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[last] = value
    return out


def sample(shop: Shop, trigger: str) -> dict[str, Any]:
    """The trigger's sample, with its order ids moved onto a seeded order of the simulator."""
    payload = copy.deepcopy(shop.rig.engine.registry.trigger(trigger).sample)
    if isinstance(payload.get("order"), dict):
        payload["order"].update(id=ORDER, customer_id=1)
    if "order_id" in payload:
        payload["order_id"] = ORDER
    for waiting in payload.get("orders", []):
        waiting["order_id"] = ORDER
    if trigger.startswith("custom."):
        payload["product"]["id"] = ON_BACKORDER
    return payload


async def put_on_backorder(shop: Shop, product_id: int) -> None:
    """Assign the product directly (as ``backorder.assign`` would) so updates find it."""
    rig = shop.rig
    spec = rig.engine.registry.action("backorder.assign")
    now = rig.clock.now()
    event = Event("evt_prep", "test.prep", {}, "default", rig.hash, "test", "prep", now, now)
    ctx = ActionContext(
        run_id="run_prep", step_id="prep", recipe_uid="rcp_prep", workspace="default",
        store=rig.hash, event=event, clock=rig.clock, services=rig.engine.services,
        emit=rig.backorders.emit_for("default"),
    )  # fmt: skip
    params = spec.params.model_validate(
        {"product_id": product_id, "limit": 50, "back_in_stock_date": date(2026, 12, 11)}
    )
    await spec.handler(ctx, params)
    await rig.settle()


async def run_once(
    shop: Shop, document: dict[str, Any], trigger: str, payload: dict[str, Any]
) -> tuple[MatchRow, RunRow | None, list[StepRow]]:
    """Save the recipe, send it the event, wait for everything to settle, delete the recipe."""
    engine = shop.rig.engine
    stored = engine.recipes.create("default", document, source="library test")
    engine.refresh(stored)
    try:
        result = await engine.ingest(
            NewEvent(type=trigger, payload=payload, store=shop.rig.hash, target_recipe=stored.uid)
        )
        await approve_all(shop, result.runs)
        await shop.rig.settle()
    finally:
        engine.recipes.delete("default", stored.recipe.id)
        engine.index.remove(stored.uid)
    with engine.db.session() as s:
        match = s.exec(select(MatchRow).where(MatchRow.event_id == result.event_id)).one()
        run = s.get(RunRow, match.run_id) if match.run_id else None
        steps = (
            list(
                s.exec(
                    select(StepRow)
                    .where(StepRow.run_id == match.run_id)
                    .order_by(col(StepRow.index))
                ).all()
            )
            if run
            else []
        )
    return match, run, steps


async def approve_all(shop: Shop, run_ids: list[str]) -> None:
    """Approve what the runs wait for (a core.approval step), as a manager would (a waiting
    run keeps its job in the queue: the rig would not settle before)."""
    engine = shop.rig.engine
    await engine.drain()
    with engine.db.session() as s:
        pending = s.exec(
            select(ApprovalRow).where(
                col(ApprovalRow.run_id).in_(run_ids), ApprovalRow.status == "pending"
            )
        ).all()
    for approval in pending:
        await engine.decide_approval(approval.id, "approve", by="library test")


def assert_succeeded(
    shop: Shop, run: RunRow | None, steps: list[StepRow], before: tuple[int, int]
) -> None:
    """The run succeeded, and every e-mail and HTTP request it says it made arrived."""
    assert run is not None
    failures = [(st.step_id, st.use, st.error) for st in steps if st.status != "succeeded"]
    assert run.status == "succeeded", (run.status, run.status_reason, failures)
    assert any(st.status == "succeeded" for st in steps)
    assert all(st.status in ("succeeded", "skipped") for st in steps), failures
    done = [st.use for st in steps if st.status == "succeeded"]
    asked = [st for st in steps if st.use == "core.approval" and (st.input or {}).get("to")]
    assert len(shop.sink.messages) - before[0] == done.count("email.send") + len(asked)
    assert len(shop.received) - before[1] == done.count("http.request")


def counts(shop: Shop) -> tuple[int, int]:
    return len(shop.sink.messages), len(shop.received)


@pytest.mark.parametrize("case", template_cases(), ids=lambda c: c.key)
async def test_template_runs_on_its_sample(shop: Shop, case: Case) -> None:
    pack = packs(shop)[case.pack]
    template = pack.templates[case.template]
    given = {
        k: v.format(endpoint=shop.endpoint, store=shop.rig.hash) if isinstance(v, str) else v
        for k, v in SAMPLE_INPUTS.get(case.key, {}).items()
    }
    made = instantiate(template, {**template.samples(), **given}, shop.rig.engine.registry)
    trigger = made.recipe.trigger.type
    if "backorder.update" in template.actions:
        await put_on_backorder(shop, ON_BACKORDER)
    if case.key in CALLEES:
        called = pack.templates[CALLEES[case.key]]
        callee = instantiate(called, called.samples(), shop.rig.engine.registry).document()
        shop.rig.engine.refresh(shop.rig.engine.recipes.create("default", callee))
    payload = change(sample(shop, trigger), SAMPLE_CHANGES.get(case.key, {}))
    if case.key in NO_MATCH:
        why, changes = NO_MATCH[case.key]
        match, run, _ = await run_once(shop, made.document(), trigger, payload)
        assert (match.matched, match.stage, run) == (False, match.stage, None), why
        assert match.stage in ("trigger", "conditions"), why
        payload = change(payload, changes)
    before = counts(shop)
    match, run, steps = await run_once(shop, made.document(), trigger, payload)
    assert match.matched, match.reason
    assert_succeeded(shop, run, steps, before)
    check = EFFECTS.get(case.key)
    if check is not None:
        await check(shop, steps)
    if case.key in CALLEES:
        uid = shop.rig.engine.recipes.delete("default", CALLEES[case.key])
        shop.rig.engine.refresh(None, uid)


@pytest.mark.parametrize(
    "path",
    recipe_files(),
    ids=lambda p: (
        f"{p.parent.parent.name}/{p.name}" if p.parent.name == "recipes" else f"examples/{p.name}"
    ),
)
async def test_ready_made_recipe_runs_on_its_sample(shop: Shop, path: Path) -> None:
    loaded = load_file(path, shop.rig.engine.registry)
    assert loaded.errors == []
    for _, recipe in loaded.recipes:
        trigger = recipe.trigger.type
        before = counts(shop)
        match, run, steps = await run_once(shop, recipe.document(), trigger, sample(shop, trigger))
        assert match.matched, match.reason
        assert_succeeded(shop, run, steps, before)
