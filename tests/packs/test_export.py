"""A workspace's recipes, exported as a pack, install into another workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.packs.archive import PackError, build_archive, read_archive
from engine.packs.export import export_workspace, write_folder
from engine.packs.install import PackService
from engine.packs.instances import make_recipe
from tests.packs.conftest import write_pack


def test_export_then_install_elsewhere(service: PackService, tmp_path: Path) -> None:
    service.install("acme", write_pack(tmp_path / "v1"), recipes=True)
    make_recipe(service, "acme", "demo/stock-alert", {"threshold": 3}, store="s1")
    pack = export_workspace(
        service.recipes,
        service.registry,
        "acme",
        name="acme-recipes",
        version="0.1.0",
        author="Acme",
    )
    manifest = yaml.safe_load(pack.files.text("pack.yaml"))
    assert manifest["connectors"] == ["test"]
    assert manifest["sous"] == ">=0.1,<1"
    assert manifest["author"] == "Acme"
    assert sorted(pack.files.under("recipes")) == [
        "recipes/log-every-stock-change.yaml",
        "recipes/stock-alert-s1.yaml",
    ]
    exported = yaml.safe_load(pack.files.text("recipes/stock-alert-s1.yaml"))
    assert exported["store"] == "*"
    assert "version" not in exported
    assert "| `stock-alert-s1` | `test.stock` | Stock alert |" in pack.readme
    archive = build_archive(pack.files, "acme-recipes-0.1.0")
    (tmp_path / "out.tar.gz").write_bytes(archive)
    result = service.install("other", tmp_path / "out.tar.gz", recipes=True)
    assert sorted(result.recipes) == ["log-every-stock-change", "stock-alert-s1"]
    moved = service.recipes.get("other", "stock-alert-s1").recipe
    assert moved.conditions == service.recipes.get("acme", "stock-alert-s1").recipe.conditions
    assert read_archive(archive) == pack.files


def test_export_some_recipes_keeping_stores_and_write_a_folder(
    service: PackService, tmp_path: Path
) -> None:
    service.install("acme", write_pack(tmp_path / "v1"), recipes=True)
    make_recipe(service, "acme", "demo/stock-alert", {}, store="s1")
    pack = export_workspace(
        service.recipes,
        service.registry,
        "acme",
        name="x",
        version="1.0.0",
        recipes=["stock-alert-s1"],
        keep_stores=True,
    )
    assert pack.files.under("recipes") == ["recipes/stock-alert-s1.yaml"]
    assert yaml.safe_load(pack.files.text("recipes/stock-alert-s1.yaml"))["store"] == "s1"
    write_folder(pack.files, tmp_path / "out")
    assert (tmp_path / "out" / "recipes" / "stock-alert-s1.yaml").is_file()
    with pytest.raises(PackError, match="is not empty"):
        write_folder(pack.files, tmp_path / "out")
    with pytest.raises(PackError, match="no such recipe"):
        export_workspace(
            service.recipes, service.registry, "acme", name="x", version="1.0.0", recipes=["nope"]
        )
    with pytest.raises(PackError, match="has no recipes"):
        export_workspace(service.recipes, service.registry, "empty", name="x", version="1.0.0")
