"""The shipped library as ``sous validate`` sees it: every pack loads against the real
registry, every recipe and template is valid, and every input can be filled in for a test."""

from __future__ import annotations

from engine.authoring.loader import load_paths
from engine.packs.archive import read_folder
from engine.packs.pack import load_pack
from engine.templates.template import validate_templates
from sous.container import build_registry
from tests.conftest import ROOT

RECIPES = ROOT / "recipes"


def test_recipes_and_templates_validate_against_the_real_registry() -> None:
    registry = build_registry()
    recipes = load_paths([RECIPES], registry)
    templates = validate_templates([RECIPES], registry)
    assert [str(e) for e in recipes.errors + templates.errors] == []
    assert len(templates.templates) >= 25
    assert {r.id for _, r in recipes.recipes} >= {"sold-out-to-backorder"}


def test_every_pack_loads_and_every_input_has_a_value_to_test_with() -> None:
    registry = build_registry()
    for folder in sorted((RECIPES / "packs").iterdir()):
        pack = load_pack(read_folder(folder), registry)
        assert pack.readme.startswith(f"# {pack.name}\n")
        for template in pack.templates.values():
            assert template.description, f"{pack.name}/{template.id} has no description"
            for name, spec in template.inputs.items():
                assert spec.default is not None or spec.example is not None, (
                    f"{pack.name}/{template.id}: {name}"
                )
                assert template.id in pack.readme, (
                    f"{pack.name}/README.md does not list {template.id}"
                )
