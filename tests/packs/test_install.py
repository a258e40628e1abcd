"""Installing packs into a workspace, side by side; making recipes from their templates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ConflictError, NotFoundError, RecipeError
from engine.packs.archive import PackError, build_archive, read_folder
from engine.packs.install import PackService
from engine.packs.instances import make_for_stores, make_recipe
from engine.packs.pack import connectors_used
from engine.registry import Registry
from tests.packs.conftest import PackWriter, write_pack
from tests.templates.conftest import STOCK_TEMPLATE


def test_install_list_and_side_by_side_versions(
    service: PackService, make_pack: PackWriter, tmp_path: Path
) -> None:
    first = service.install("acme", make_pack())
    assert first.new
    assert first.pack.ref == "demo@1.0.0"
    assert first.recipes == []
    again = service.install("acme", twin(tmp_path))
    assert again.new is False
    assert again.sha256 == first.sha256
    service.install("acme", make_pack(version="1.1.0"))
    assert [(r.name, r.version) for r in service.installed("acme")] == [
        ("demo", "1.0.0"),
        ("demo", "1.1.0"),
    ]
    assert service.installed("other") == []
    assert service.get("acme", "demo").version == "1.1.0"
    assert service.get("acme", "demo", "1.0.0").templates["stock-alert"].id == "stock-alert"
    with pytest.raises(NotFoundError):
        service.get("other", "demo")


def twin(tmp_path: Path) -> Path:
    """The default pack, written again in another folder: same files, same SHA-256."""
    return write_pack(tmp_path / f"twin{len(list(tmp_path.glob('twin*')))}")


def test_same_version_with_other_contents_is_a_conflict(
    service: PackService, make_pack: PackWriter, tmp_path: Path
) -> None:
    service.install("acme", make_pack())
    changed = write_pack(tmp_path / "changed", readme="# changed\n")
    with pytest.raises(ConflictError, match="already installed with different contents"):
        service.install("acme", changed)


def test_ready_made_recipes_are_created_on_request(
    service: PackService, make_pack: PackWriter, tmp_path: Path
) -> None:
    result = service.install("acme", make_pack(), recipes=True)
    assert result.recipes == ["log-every-stock-change"]
    assert service.recipes.get("acme", "log-every-stock-change").source == "pack:demo@1.0.0"
    again = service.install("acme", twin(tmp_path), recipes=True)
    assert again.recipes == []
    assert again.skipped == ["log-every-stock-change"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sous": ">=9"}, "incompatible pack: demo@1.0.0 needs Sous >=9; this is Sous"),
        (
            {"connectors": ["test", "shopify"]},
            "needs connector\\(s\\) shopify, which this Sous does not have",
        ),
        ({"connectors": []}, "used but not listed in pack.yaml: test"),
        ({"readme": None}, "a pack needs a README.md"),
        (
            {"templates": {"t.yaml": STOCK_TEMPLATE.replace("test.record", "test.nope")}},
            "unknown action 'test.nope'",
        ),
        (
            {"recipes": {"r.yaml": "id: x\nname: x\ntrigger: {type: test.stock}\nactions: []\n"}},
            "actions",
        ),
        (
            {"templates": {"a.yaml": STOCK_TEMPLATE, "b.yaml": STOCK_TEMPLATE}},
            "template id 'stock-alert' is used twice",
        ),
    ],
)
def test_unfit_packs_are_refused_with_every_problem(
    service: PackService, make_pack: PackWriter, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(PackError) as exc:
        service.install("acme", make_pack(**settings))
    assert re.search(message, str(exc.value)), str(exc.value)
    assert service.installed("acme") == []


def test_instantiate_records_the_template_pack_and_inputs(
    service: PackService, make_pack: PackWriter
) -> None:
    service.install("acme", make_pack())
    made = make_recipe(service, "acme", "demo/stock-alert", {"threshold": "7"}, store="store1")
    assert made.stored is not None
    assert made.stored.recipe.id == "stock-alert-store1"
    assert made.stored.source == "template:demo@1.0.0/stock-alert"
    [instance] = service.instances("acme")
    assert (
        instance.recipe_slug,
        instance.pack_name,
        instance.pack_version,
        instance.template_id,
    ) == ("stock-alert-store1", "demo", "1.0.0", "stock-alert")
    assert instance.inputs == {
        "threshold": 7,
        "eta": "14d",
        "staff": ["staff@example.com"],
        "prefix": "Heads up",
    }
    assert instance.store == "store1"
    assert instance.recipe_uid == made.stored.uid
    with pytest.raises(ConflictError):
        make_recipe(service, "acme", "stock-alert", {}, store="store1")
    dry = make_recipe(
        service, "acme", "demo@1.0.0/stock-alert", {}, recipe_id="preview", save=False
    )
    assert dry.stored is None
    assert service.recipes.find("acme", "preview") is None


def test_template_references(service: PackService, make_pack: PackWriter, tmp_path: Path) -> None:
    service.install("acme", make_pack())
    service.install("acme", make_pack(version="2.0.0"))
    service.install("acme", write_pack(tmp_path / "o", name="other"))
    assert service.find("acme", "demo/stock-alert").pack.version == "2.0.0"
    assert service.find("acme", "demo@1.0.0/stock-alert").pack.version == "1.0.0"
    with pytest.raises(ConflictError, match="several packs have a template 'stock-alert'"):
        service.find("acme", "stock-alert")
    for ref in ("demo/nope", "nope/stock-alert", "demo@3.0.0/stock-alert", "Not A Ref"):
        with pytest.raises(NotFoundError):
            service.find("acme", ref)


def test_library_templates_install_their_pack_on_first_use(
    service: PackService, tmp_path: Path
) -> None:
    write_pack(tmp_path / "library", name="lib")
    assert service.library_path is not None
    (tmp_path / "library" / "lib-1.0.0").rename(service.library_path / "lib")
    write_pack(tmp_path / "library", name="broken", connectors=["nope"])
    entries = service.templates("acme")
    assert [(e.ref, e.installed) for e in entries] == [("lib/stock-alert", False)]
    [error] = service.library_errors
    assert error.message.startswith(
        "broken@1.0.0 needs connector(s) nope, which this Sous does not have"
    )
    with pytest.raises(PackError, match=r"needs connector\(s\) nope"):
        service.install("acme", "broken")
    with pytest.raises(NotFoundError):
        service.install("acme", "absent")
    make_recipe(service, "acme", "lib/stock-alert", {})
    assert [(r.name, r.version, r.source) for r in service.installed("acme")] == [
        ("lib", "1.0.0", "library:lib@1.0.0")
    ]
    assert [(e.ref, e.installed) for e in service.templates("acme")] == [("lib/stock-alert", True)]


def test_install_into_many_stores_is_all_or_nothing(
    service: PackService, make_pack: PackWriter
) -> None:
    service.install("acme", make_pack())
    with pytest.raises(RecipeError) as exc:
        make_for_stores(service, "acme", "demo", ["s1", "s2"], {"threshold": 5000})
    assert [str(d) for d in exc.value.details] == [
        "stock-alert@s1.inputs.threshold: must be ≤ 1000",
        "stock-alert@s2.inputs.threshold: must be ≤ 1000",
    ]
    assert service.recipes.list("acme") == []
    made = make_for_stores(
        service, "acme", "demo", ["s1", "s2"], {"stock-alert.threshold": 9, "colour": "ignored"}
    )
    assert [m.stored.recipe.id for m in made if m.stored] == ["stock-alert-s1", "stock-alert-s2"]
    assert [(i.store, i.inputs["threshold"]) for i in service.instances("acme")] == [
        ("s1", 9),
        ("s2", 9),
    ]
    with pytest.raises(RecipeError, match="already exists"):
        make_for_stores(service, "acme", "demo", ["s2", "s3"], {})
    assert len(service.recipes.list("acme")) == 2
    with pytest.raises(PackError, match=r"not in pack demo: nope \(it has stock-alert\)"):
        make_for_stores(service, "acme", "demo", ["s1"], {}, templates=["nope"])


def test_uninstall_guards_recipes_made_from_the_pack(
    service: PackService, make_pack: PackWriter, tmp_path: Path
) -> None:
    service.install("acme", make_pack())
    make_recipe(service, "acme", "demo/stock-alert", {})
    with pytest.raises(ConflictError, match=r"recipes were made from demo@1\.0\.0: stock-alert"):
        service.uninstall("acme", "demo", "1.0.0")
    assert service.uninstall("acme", "demo", "1.0.0", force=True) == []
    assert service.installed("acme") == []
    assert service.recipes.find("acme", "stock-alert") is not None
    service.install("acme", twin(tmp_path))
    assert service.uninstall("acme", "demo", "1.0.0", delete_recipes=True) == ["stock-alert"]
    assert service.recipes.find("acme", "stock-alert") is None
    assert service.instances("acme") == []
    with pytest.raises(NotFoundError):
        service.uninstall("acme", "demo", "1.0.0")


def test_installed_pack_reads_back_identically(service: PackService, make_pack: PackWriter) -> None:
    root = make_pack()
    service.install("acme", root)
    stored = service.get("acme", "demo")
    assert build_archive(stored.files, "x") == build_archive(read_folder(root), "x")


def test_connectors_used_inside_for_each_and_parallel_steps_count(registry: Registry) -> None:
    inner = [{"id": "note", "use": "test.record", "with": {"message": "x"}}]
    document: dict[str, object] = {
        "trigger": {"type": "sous.recipe.called"},
        "actions": [
            {"id": "each", "for_each": [1], "use": "core.for_each", "steps": inner},
            {"id": "both", "use": "core.parallel", "parallel": {"a": inner, "b": inner}},
        ],
    }
    assert connectors_used([document], registry) == {"core", "test"}
    branches_only = {**document, "actions": [document["actions"][1]]}  # type: ignore[index]
    assert connectors_used([branches_only], registry) == {"core", "test"}
