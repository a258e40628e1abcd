"""Upgrading recipes made from a pack's templates: dry-run by default, diff first, inputs
carried over, breaking changes refused until mapped or set."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConflictError, RecipeError
from engine.packs.install import PackService
from engine.packs.instances import make_recipe
from engine.packs.upgrade import apply_upgrade, plan_upgrade
from tests.packs.conftest import write_pack
from tests.templates.conftest import STOCK_TEMPLATE

V2_NEW_INPUT = STOCK_TEMPLATE.replace(
    "  prefix:\n",
    "  level:\n    type: choice\n    options: [info, warning]\n    default: warning\n  prefix:\n",
).replace('message: "[[ inputs.prefix ]]:', 'message: "[[ inputs.level ]] [[ inputs.prefix ]]:')


@pytest.fixture
def made(service: PackService, tmp_path: Path) -> PackService:
    """demo@1.0.0 installed, with one recipe made from it (threshold 7, store s1)."""
    service.install("acme", write_pack(tmp_path / "v1"))
    make_recipe(service, "acme", "demo/stock-alert", {"threshold": 7}, store="s1")
    return service


def install_v2(service: PackService, tmp_path: Path, template: str) -> None:
    service.install(
        "acme",
        write_pack(tmp_path / "v2", version="2.0.0", templates={"stock-alert.yaml": template}),
    )


def test_plan_shows_the_diff_and_changes_nothing(made: PackService, tmp_path: Path) -> None:
    install_v2(made, tmp_path, V2_NEW_INPUT)
    made.recipes.set_enabled("acme", "stock-alert-s1", False)
    before = made.recipes.get("acme", "stock-alert-s1")
    plan = plan_upgrade(made, "acme", "demo")
    assert plan.ok
    assert plan.to_version == "2.0.0"
    [item] = plan.recipes
    assert (item.recipe, item.from_version, item.to_version) == ("stock-alert-s1", "1.0.0", "2.0.0")
    assert item.changes == ["input 'level' = 'warning' (new, default)"]
    assert "-    message: 'Heads up: {{ product.name }}" in item.diff
    assert "+    message: 'warning Heads up: {{ product.name }}" in item.diff
    assert item.diff.startswith("--- stock-alert-s1 (1.0.0)\n+++ stock-alert-s1 (2.0.0)")
    assert made.recipes.get("acme", "stock-alert-s1") == before  # a plan changes nothing
    [stored] = apply_upgrade(made, "acme", plan)
    assert stored.version == before.version + 1
    assert stored.enabled is False
    assert stored.source == "template:demo@2.0.0/stock-alert"
    assert stored.recipe.actions[0].with_["count"] == 7
    assert stored.recipe.store == "s1"
    [instance] = made.instances("acme")
    assert instance.pack_version == "2.0.0"
    assert instance.inputs["level"] == "warning"
    assert instance.inputs["threshold"] == 7
    assert plan_upgrade(made, "acme", "demo").recipes == []  # nothing left to do


def test_removed_input_is_refused_until_mapped(made: PackService, tmp_path: Path) -> None:
    renamed = STOCK_TEMPLATE.replace("  prefix:\n", "  intro:\n").replace(
        "inputs.prefix", "inputs.intro"
    )
    install_v2(made, tmp_path, renamed)
    plan = plan_upgrade(made, "acme", "demo")
    assert [str(p) for p in plan.problems] == [
        "stock-alert-s1: inputs.prefix: removed in 2.0.0: move its value with --map "
        "prefix=NEW_INPUT, or drop it with --map prefix="
    ]
    with pytest.raises(RecipeError):
        apply_upgrade(made, "acme", plan)
    made.instances("acme")[0]  # untouched
    assert made.instances("acme")[0].pack_version == "1.0.0"
    mapped = plan_upgrade(made, "acme", "demo", maps={"prefix": "intro"})
    assert mapped.ok
    assert mapped.recipes[0].changes == ["input 'prefix' → 'intro'"]
    dropped = plan_upgrade(made, "acme", "demo", maps={"prefix": None})
    assert dropped.ok
    assert dropped.recipes[0].inputs["intro"] == "Heads up"
    apply_upgrade(made, "acme", mapped)
    assert made.instances("acme")[0].inputs["intro"] == "Heads up"


def test_new_required_input_needs_a_value(made: PackService, tmp_path: Path) -> None:
    required = STOCK_TEMPLATE.replace(
        "  prefix:\n", "  owner:\n    type: email\n  prefix:\n"
    ).replace(
        '        to: "[[ inputs.staff ]]"',
        '        to: "[[ inputs.staff ]]"\n        owner: "[[ inputs.owner ]]"',
    )
    install_v2(made, tmp_path, required)
    plan = plan_upgrade(made, "acme", "demo")
    assert [str(p) for p in plan.problems] == [
        "stock-alert-s1: inputs.owner: new in 2.0.0, with no default: give it with --set "
        "owner=VALUE"
    ]
    bad = plan_upgrade(made, "acme", "demo", sets={"owner": "nobody"})
    assert [str(p) for p in bad.problems] == [
        "stock-alert-s1: inputs.owner: 'nobody' is not an e-mail address (the set value 'nobody')"
    ]
    good = plan_upgrade(made, "acme", "demo", sets={"stock-alert.owner": "boss@example.com"})
    assert good.ok
    assert good.recipes[0].inputs["owner"] == "boss@example.com"


def test_type_change_needs_a_value(made: PackService, tmp_path: Path) -> None:
    retyped = STOCK_TEMPLATE.replace(
        "  prefix:\n    type: string\n",
        "  prefix:\n    type: choice\n    options: [Heads up, Note]\n",
    )
    install_v2(made, tmp_path, retyped)
    plan = plan_upgrade(made, "acme", "demo")
    assert [str(p) for p in plan.problems] == [
        "stock-alert-s1: inputs.prefix: type changed from string to choice: give a value with "
        "--set prefix=VALUE"
    ]
    assert plan_upgrade(made, "acme", "demo", sets={"prefix": "Note"}).ok


def test_carried_value_that_no_longer_fits_is_reported(made: PackService, tmp_path: Path) -> None:
    install_v2(made, tmp_path, STOCK_TEMPLATE.replace("    max: 1000\n", "    max: 5\n"))
    plan = plan_upgrade(made, "acme", "demo")
    assert [str(p) for p in plan.problems] == [
        "stock-alert-s1: inputs.threshold: must be ≤ 5 (the kept value 7)"
    ]


def test_hand_edits_are_not_overwritten_without_force(made: PackService, tmp_path: Path) -> None:
    install_v2(made, tmp_path, V2_NEW_INPUT)
    current = made.recipes.get("acme", "stock-alert-s1")
    edited = current.recipe.model_copy(update={"name": "My own name"}).document()
    made.recipes.update("acme", "stock-alert-s1", edited, expected_version=current.version)
    plan = plan_upgrade(made, "acme", "demo")
    assert [str(p) for p in plan.problems] == [
        "stock-alert-s1: edited by hand since it was made from the template: --force replaces "
        "those edits"
    ]
    forced = plan_upgrade(made, "acme", "demo", force=True)
    assert forced.ok
    assert "-name: My own name" in forced.recipes[0].diff


def test_a_recipe_changed_after_planning_is_a_conflict(made: PackService, tmp_path: Path) -> None:
    install_v2(made, tmp_path, V2_NEW_INPUT)
    plan = plan_upgrade(made, "acme", "demo")
    made.recipes.set_enabled("acme", "stock-alert-s1", False)
    with pytest.raises(ConflictError, match="plan again"):
        apply_upgrade(made, "acme", plan)


def test_deleted_recipes_and_other_packs_are_left_alone(made: PackService, tmp_path: Path) -> None:
    install_v2(made, tmp_path, V2_NEW_INPUT)
    made.recipes.delete("acme", "stock-alert-s1")
    assert plan_upgrade(made, "acme", "demo").recipes == []
    made.install("acme", write_pack(tmp_path / "gone", version="3.0.0", templates={}))
    make_recipe(made, "acme", "demo@2.0.0/stock-alert", {}, store="s2")
    plan = plan_upgrade(made, "acme", "demo")
    assert [str(p) for p in plan.problems] == [
        "stock-alert-s2: demo@3.0.0 no longer has template 'stock-alert'"
    ]
    assert plan_upgrade(made, "acme", "demo", to="2.0.0").recipes == []
