"""Every name taken from ``engine`` (the public surface) exists, with its type for mypy: the
package loads names lazily, so a missing one would only fail when first used."""

from __future__ import annotations

import ast
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parent.parent


def imported_from_engine() -> set[str]:
    names: set[str] = set()
    for folder in ("api", "connectors", "sous", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module == "engine" and not node.level:
                    names.update(alias.name for alias in node.names)
    return names


def test_every_name_imported_from_the_engine_is_on_its_surface() -> None:
    subpackages = {p.name for p in (ROOT / "engine").iterdir() if p.is_dir()}
    wanted = imported_from_engine() - subpackages
    assert wanted, "nothing imports the public surface: the scan is broken"
    assert sorted(wanted - set(engine.__all__)) == []


def test_each_public_name_resolves_and_is_declared_for_type_checkers() -> None:
    source = (ROOT / "engine" / "__init__.py").read_text()
    declared = {
        alias.asname
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert set(engine.__all__) <= declared
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
