"""Load recipes from YAML files and folders; one bad file never stops the others.

Every error names the file, the line and the field path:
``recipes/x.yaml:14 actions[1].with.limit: input should be greater than or equal to 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.authoring.validation import Loc, validate_document
from engine.errors import ErrorDetail
from engine.model.recipe import Recipe
from engine.registry import Registry

MAX_FILE_BYTES = 1_000_000
# libyaml's parser when PyYAML has it (several times faster; same safe constructors, same marks).
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _line_index(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                out[(*loc, key.value)] = key.start_mark.line + 1
                _line_index(value, (*loc, key.value), out)
                out[(*loc, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_index(item, (*loc, index), out)


def line_for(lines: dict[Loc, int], loc: Loc) -> int | None:
    # ``with`` is the YAML key for the model's ``with_``; ``if`` likewise.
    loc = tuple("with" if p == "with_" else "if" if p == "if_" else p for p in loc)
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


@dataclass
class LoadResult:
    recipes: list[tuple[Path, Recipe]] = field(default_factory=list)
    errors: list[ErrorDetail] = field(default_factory=list)


def parse_yaml(text: str, file: str) -> tuple[list[tuple[Any, dict[Loc, int]]], list[ErrorDetail]]:
    """Every document in a YAML stream with its line index (safe loader only)."""
    docs: list[tuple[Any, dict[Loc, int]]] = []
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            lines: dict[Loc, int] = {}
            _line_index(node, (), lines)
            docs.append((_Loader(text).construct_document(node), lines))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        return [], [ErrorDetail(path="", message=f"invalid YAML: {problem}", file=file, line=line)]
    return docs, []


def load_file(path: Path, registry: Registry, display: str | None = None) -> LoadResult:
    """Load every recipe in one YAML file (a file may hold several ``---`` documents)."""
    name = display or str(path)
    result = LoadResult()
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            result.errors.append(ErrorDetail("", "file is larger than 1 MB", file=name))
            return result
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        result.errors.append(ErrorDetail(path="", message=f"cannot read: {exc}", file=name))
        return result
    docs, errors = parse_yaml(text, name)
    result.errors += errors
    for document, lines in docs:
        recipe, details = validate_document(document, registry)
        for d in details:
            result.errors.append(
                ErrorDetail(d.path, d.message, file=name, line=line_for(lines, d.loc), loc=d.loc)
            )
        if recipe is not None:
            result.recipes.append((path, recipe))
    return result


def recipe_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


def load_paths(paths: list[Path], registry: Registry) -> LoadResult:
    """Load every ``*.yaml``/``*.yml`` below the given files and folders.

    Returns the valid recipes and every error; a recipe id used twice is an error in the
    second file. Folders named ``templates`` hold recipe templates and are skipped here.
    """
    result = LoadResult()
    seen: dict[str, Path] = {}
    for file in recipe_files(paths):
        if "templates" in file.parts or file.name == "pack.yaml":
            continue
        loaded = load_file(file, registry)
        result.errors += loaded.errors
        for source, recipe in loaded.recipes:
            if recipe.id in seen:
                result.errors.append(
                    ErrorDetail(
                        "id",
                        f"recipe id {recipe.id!r} is also used in {seen[recipe.id]}",
                        file=str(file),
                    )
                )
                continue
            seen[recipe.id] = source
            result.recipes.append((source, recipe))
    return result
