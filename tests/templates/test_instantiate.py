"""Instantiating: inputs checked, placeholders filled by where they stand, problems blamed on the
input that caused them, and the recipe runs through the engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from engine import Engine
from engine.authoring.rendering import Renderer
from engine.errors import RecipeError
from engine.model.events import NewEvent
from engine.registry import Registry
from engine.store.models import RunRow
from engine.templates.instantiate import instantiate, recipe_id_for
from tests.fakes import Recorder
from tests.templates.conftest import STOCK_TEMPLATE, load


def details(exc: pytest.ExceptionInfo[RecipeError]) -> list[str]:
    return [str(d) for d in exc.value.details]


def test_whole_value_placeholders_keep_their_type_and_runtime_templates_stay(
    registry: Registry,
) -> None:
    template = load(STOCK_TEMPLATE, registry)
    made = instantiate(
        template, {"threshold": "3", "staff": "a@example.com,b@example.com"}, registry
    )
    doc = made.document()
    assert doc["id"] == "stock-alert"
    assert doc["store"] == "*"
    assert doc["conditions"] == [{"<=": [{"var": "product.inventory_level"}, 3]}]
    step = doc["actions"][0]["with"]
    assert step["count"] == 3
    assert step["data"]["to"] == ["a@example.com", "b@example.com"]
    assert step["data"]["joined"] == "{{ ['a@example.com', 'b@example.com'] | join(';') }}"
    assert step["message"] == "Heads up: {{ product.name }} back by {{ (now() + days(14)) | date }}"
    assert made.values == {
        "threshold": 3,
        "eta": "14d",
        "staff": ["a@example.com", "b@example.com"],
        "prefix": "Heads up",
    }


def test_text_inside_an_expression_is_a_literal_that_cannot_break_out(registry: Registry) -> None:
    text = STOCK_TEMPLATE.replace(
        "{{ product.name }} back by", "{{ [[ inputs.prefix ]] ~ product.name }} back by"
    )
    template = load(text, registry)
    sneaky = 'it\'s ") ~ 7*7 ~ ("'
    made = instantiate(template, {"prefix": sneaky}, registry)
    message = made.document()["actions"][0]["with"]["message"]
    assert message.startswith(sneaky + ": {{ " + repr(sneaky) + " ~ product.name }} back by")
    rendered = Renderer(lambda: datetime(2025, 1, 1, tzinfo=UTC)).render(
        message, {"product": {"name": "Tent"}}
    )
    assert rendered == f"{sneaky}: {sneaky}Tent back by 2025-01-15"


def test_store_and_id_and_name(registry: Registry) -> None:
    template = load(STOCK_TEMPLATE, registry)
    made = instantiate(template, {}, registry, store="abc123", name="Low stock at the outlet")
    assert made.recipe.id == "stock-alert-abc123"
    assert made.recipe.store == "abc123"
    assert made.recipe.name == "Low stock at the outlet"
    assert instantiate(template, {}, registry, recipe_id="mine").recipe.id == "mine"
    assert recipe_id_for("x" * 79, "Store_9") == ("x" * 79 + "-store_9")[:80]


def test_input_problems_point_at_the_input(registry: Registry) -> None:
    template = load(STOCK_TEMPLATE, registry)
    with pytest.raises(RecipeError) as exc:
        instantiate(template, {"threshold": -1, "staff": "nobody", "colour": "red"}, registry)
    assert details(exc) == [
        "inputs.colour: no such input (this template's inputs: threshold, eta, staff, prefix)",
        "inputs.threshold: must be ≥ 0",
        "inputs.staff: 'nobody' is not an e-mail address",
    ]
    assert [d.pointer for d in exc.value.details] == [
        "/inputs/colour",
        "/inputs/threshold",
        "/inputs/staff",
    ]


def test_recipe_problems_from_a_value_are_blamed_on_its_input(registry: Registry) -> None:
    text = STOCK_TEMPLATE.replace("    min: 0\n", "    min: -10\n")
    template = load(text, registry)
    with pytest.raises(RecipeError) as exc:
        instantiate(template, {"threshold": -2}, registry)
    assert details(exc) == [
        "inputs.threshold: input should be greater than or equal to 0 (at actions[0].with.count)"
    ]
    assert exc.value.details[0].loc == ("inputs", "threshold")


def test_a_value_that_would_open_a_runtime_template_is_refused(registry: Registry) -> None:
    text = STOCK_TEMPLATE.replace('"[[ inputs.prefix ]]: ', '"{[[ inputs.prefix ]]: ')
    template = load(text, registry)
    with pytest.raises(RecipeError) as exc:
        instantiate(template, {"prefix": "{ secrets.token }"}, registry)
    assert details(exc) == ["inputs.prefix: the value would change the template around it"]


async def test_an_instantiated_recipe_runs_through_the_engine(
    engine: Engine, recorder: Recorder
) -> None:
    template = load(STOCK_TEMPLATE, engine.registry)
    made = instantiate(template, {"threshold": 2, "eta": "3d"}, engine.registry)
    stored = engine.recipes.create("default", made.document(), source="template")
    engine.refresh(stored)
    low = await engine.ingest(
        NewEvent(
            type="test.stock", payload={"product": {"id": 5, "name": "Tent", "inventory_level": 1}}
        )
    )
    high = await engine.ingest(
        NewEvent(
            type="test.stock", payload={"product": {"id": 5, "name": "Tent", "inventory_level": 3}}
        )
    )
    await engine.drain()
    assert len(low.runs) == 1
    assert high.runs == []
    with engine.db.session() as s:
        assert s.exec(select(RunRow.status)).all() == ["succeeded"]
    call = recorder.named("test.record")[0]
    assert call["count"] == 2
    assert call["message"].startswith("Heads up: Tent back by ")
    assert call["data"] == {"to": ["staff@example.com"], "joined": "staff@example.com"}
