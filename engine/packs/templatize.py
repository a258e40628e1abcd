"""Export recipes as a pack of templates: what differs from one client to the next becomes a
typed input, so each client's recipe is made from the template with its own values — and an
upgrade of the pack later remakes every one of them.

Found on its own: e-mail addresses (``email``; a list of them, ``emails``) and URLs (``url``)
in the recipe's conditions and steps, and the store (templates are made for a store, so the
recipe's ``store`` is left out). Any other value becomes an input when named with a JSON
Pointer (``{"threshold": "/conditions/0/<=/1"}``): its type follows its value (``integer``,
``number``, ``boolean``, ``string``, or an address as above). Each input's default is the
recipe's own value, so the template made with its defaults is the recipe exported.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from engine.errors import ErrorDetail
from engine.packs.archive import PackError, PackFiles
from engine.packs.export import manifest_for
from engine.packs.pack import Pack, load_pack
from engine.registry import Registry
from engine.store.recipes import SqlRecipeStore

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_URL = re.compile(r"^https?://\S+$")
_SCANNED = ("conditions", "actions", "steps")
_UNSAFE = re.compile(r"[^a-z0-9_]+")


def _kind(value: Any) -> str | None:
    """The input type a value would have, if it is one an input can hold."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        if _EMAIL.fullmatch(value):
            return "email"
        return "url" if _URL.match(value) else "string"
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, str) and _EMAIL.fullmatch(v) for v in value)
    ):
        return "emails"
    return None


class _Inputs:
    """The inputs found so far: the same value found twice is one input."""

    def __init__(self) -> None:
        self.specs: dict[str, dict[str, Any]] = {}
        self._by_value: dict[str, str] = {}

    def name_for(self, hint: str, kind: str, value: Any) -> str:
        seen = self._by_value.get(repr((kind, value)))
        if seen is not None:
            return seen
        base = _UNSAFE.sub("_", hint.lower()).strip("_")[:32] or kind
        base = base if base[0].isalpha() else f"{kind}_{base}"
        name, n = base, 2
        while name in self.specs:
            name, n = f"{base}_{n}", n + 1
        self.specs[name] = {"type": kind, "default": value}
        self._by_value[repr((kind, value))] = name
        return name


_SKIPPED = ("actions", "steps", "with", "conditions")


def _hint(path: tuple[str, ...]) -> str:
    """An input's name from where its value was: the step's id and the parameter, or the
    variable a condition compares it with."""
    words = [p for p in path if re.match(r"^[A-Za-z][\w.-]*$", p) and p not in _SKIPPED]
    return "_".join([words[0], words[-1]] if len(words) > 1 else words) or "value"


def _walk(value: Any, path: tuple[str, ...], found: _Inputs, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        hint_path = (*path[:-1], ids.get("/".join(path), path[-1])) if path else path
        return {k: _walk(v, (*hint_path, str(k)), found, ids) for k, v in value.items()}
    if isinstance(value, list):
        if _kind(value) == "emails":
            return f"[[ inputs.{found.name_for(_hint(path), 'emails', value)} ]]"
        var = next(
            (v["var"] for v in value if isinstance(v, dict) and isinstance(v.get("var"), str)),
            None,
        )  # a comparison: its value is named after the variable it is compared with
        return [_walk(v, (*path, var or str(i)), found, ids) for i, v in enumerate(value)]
    if isinstance(value, str):
        kind = _kind(value)
        if kind in ("email", "url"):
            return f"[[ inputs.{found.name_for(_hint(path), kind, value)} ]]"
        return _EMAIL.sub(
            lambda m: f"[[ inputs.{found.name_for(_hint(path), 'email', m[0])} ]]", value
        )
    return value


def _pointer(document: dict[str, Any], pointer: str) -> tuple[Any, str]:
    """The container and key a JSON Pointer names in ``document``."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    target: Any = document
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        return target, str(int(last))
    if not isinstance(target, dict) or last not in target:
        raise KeyError(pointer)
    return target, last


def template_of(
    document: dict[str, Any], named: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[ErrorDetail]]:
    """A template document made from a recipe document: its per-client values as inputs."""
    doc = {k: v for k, v in document.items() if k not in ("version", "store", "enabled")}
    found = _Inputs()
    problems: list[ErrorDetail] = []
    for name, pointer in (named or {}).items():
        try:
            holder, key = _pointer(doc, pointer)
            value = holder[int(key)] if isinstance(holder, list) else holder[key]
        except (KeyError, IndexError, ValueError, TypeError):
            problems.append(ErrorDetail(f"inputs.{name}", f"{pointer} is not in the recipe"))
            continue
        kind = _kind(value)
        if kind is None:
            problems.append(ErrorDetail(f"inputs.{name}", f"{pointer} holds no single value"))
            continue
        found.specs[name] = {"type": kind, "default": value}
        placeholder = f"[[ inputs.{name} ]]"
        if isinstance(holder, list):
            holder[int(key)] = placeholder
        else:
            holder[key] = placeholder
    ids = {
        f"{part}/{i}": str(step.get("id") or i)
        for part in ("actions", "steps")
        for i, step in enumerate(doc.get(part) or [])
        if isinstance(step, dict)
    }
    for part in _SCANNED:
        if part in doc:
            doc[part] = _walk(doc[part], (part,), found, ids)
    return {"id": doc.pop("id"), **doc, "tags": ["exported"], "inputs": found.specs}, problems


def export_templates(
    store: SqlRecipeStore,
    registry: Registry,
    workspace: str,
    *,
    name: str,
    version: str,
    description: str = "",
    author: str = "",
    license: str = "",
    recipes: list[str] | None = None,
    inputs: dict[str, dict[str, str]] | None = None,
) -> Pack:
    """A pack of templates made from the workspace's recipes (all, or the ids in ``recipes``);
    ``inputs`` names more inputs per recipe (input name → JSON Pointer)."""
    chosen = [s for s in store.list(workspace) if recipes is None or s.recipe.id in recipes]
    missing = sorted(set(recipes or ()) - {s.recipe.id for s in chosen})
    if missing:
        raise PackError(f"no such recipe(s) in workspace {workspace!r}: {', '.join(missing)}")
    if not chosen:
        raise PackError(f"workspace {workspace!r} has no recipes to export")
    templates, problems = [], []
    for stored in chosen:
        made, found = template_of(stored.recipe.document(), (inputs or {}).get(stored.recipe.id))
        templates.append(made)
        problems += [ErrorDetail(f"{made['id']}.{p.path}", p.message) for p in found]
    if problems:
        raise PackError("some inputs cannot be made", problems)
    manifest = manifest_for(registry, templates, name, version, description, author, license)
    rows = [(t["id"], t["trigger"]["type"], t["name"]) for t in templates]
    texts = {
        "pack.yaml": yaml.safe_dump(manifest.model_dump(exclude_none=True), sort_keys=False),
        "README.md": _readme(manifest.name, manifest.description, rows, templates),
    }
    for template in templates:
        texts[f"templates/{template['id']}.yaml"] = yaml.safe_dump(
            template, sort_keys=False, allow_unicode=True
        )
    return load_pack(PackFiles.from_texts(texts), registry)


def _readme(
    name: str, description: str, rows: list[tuple[str, str, str]], templates: list[dict[str, Any]]
) -> str:
    lines = [f"# {name}", "", description or "Templates exported from a Sous workspace.", ""]
    lines += ["| template | trigger | what it does | inputs |", "|---|---|---|---|"]
    for (ident, trigger, title), template in zip(rows, templates, strict=True):
        names = ", ".join(f"`{n}`" for n in template["inputs"]) or "—"
        lines.append(f"| `{ident}` | `{trigger}` | {title} | {names} |")
    lines += ["", "Make each client's recipes from these templates with their own inputs.", ""]
    return "\n".join(lines)
