"""The recipe JSON Schema published for editors: the committed file is what ``sous schema``
prints, and recipe YAML in the repository is associated with it."""

from __future__ import annotations

import json
from pathlib import Path

from sous.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schema" / "recipe.schema.json"


def test_committed_schema_is_what_sous_schema_prints(tmp_path: Path) -> None:
    assert main(["schema", "-o", str(tmp_path / "fresh.json")]) == 0
    fresh = (tmp_path / "fresh.json").read_text(encoding="utf-8")
    assert SCHEMA.read_text(encoding="utf-8") == fresh, (
        "schema/recipe.schema.json is stale: run `sous schema -o schema/recipe.schema.json`"
    )


def test_example_recipes_name_the_schema_for_the_yaml_language_server() -> None:
    examples = sorted((ROOT / "recipes" / "examples").glob("*.yaml"))
    assert examples
    for example in examples:
        first = example.read_text(encoding="utf-8").splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), example.name
        assert (example.parent / first.removeprefix(prefix)).resolve() == SCHEMA


def test_vscode_maps_recipe_files_to_the_schema() -> None:
    settings = json.loads((ROOT / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    globs = settings["yaml.schemas"]["./schema/recipe.schema.json"]
    matched = {p for glob in globs for p in ROOT.glob(glob)}
    assert set((ROOT / "recipes" / "examples").glob("*.yaml")) <= matched
    assert any("packs" in p.parts for p in matched)
