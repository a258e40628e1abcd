"""Export a workspace's recipes as a pack: its recipes become the pack's ready-made recipes.

Store hashes are left out by default (``store: "*"``) so the pack works in any store;
``keep_stores`` keeps them. The manifest lists the connectors the recipes use and accepts this
Sous's major version; the README lists the recipes. The result is checked like any pack before
it is handed back, so what is exported can be installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine.errors import ErrorDetail
from engine.packs.archive import PackError, PackFiles
from engine.packs.manifest import PackManifest, sous_version
from engine.packs.pack import Pack, connectors_used, load_pack
from engine.registry import Registry
from engine.store.recipes import SqlRecipeStore


def _readme(manifest: PackManifest, rows: list[tuple[str, str, str]]) -> str:
    lines = [
        f"# {manifest.name}",
        "",
        manifest.description or "Recipes exported from a Sous workspace.",
        "",
    ]
    lines += ["| recipe | trigger | what it does |", "|---|---|---|"]
    lines += [f"| `{slug}` | `{trigger}` | {name} |" for slug, trigger, name in rows]
    lines += [
        "",
        f"Install with `sous packs install {manifest.name}-{manifest.version}.tar.gz --recipes`.",
        "",
    ]
    return "\n".join(lines)


def export_workspace(
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
    keep_stores: bool = False,
) -> Pack:
    """A pack holding the workspace's recipes (all of them, or the ids in ``recipes``)."""
    chosen = [s for s in store.list(workspace) if recipes is None or s.recipe.id in recipes]
    missing = sorted(set(recipes or ()) - {s.recipe.id for s in chosen})
    if missing:
        raise PackError(f"no such recipe(s) in workspace {workspace!r}: {', '.join(missing)}")
    if not chosen:
        raise PackError(f"workspace {workspace!r} has no recipes to export")
    documents = []
    for stored in chosen:
        update: dict[str, object] = {"version": None}
        if not keep_stores:
            update["store"] = "*"
        documents.append(stored.recipe.model_copy(update=update).document())
    manifest = manifest_for(registry, documents, name, version, description, author, license)
    texts = {
        "pack.yaml": yaml.safe_dump(manifest.model_dump(exclude_none=True), sort_keys=False),
        "README.md": _readme(
            manifest, [(d["id"], d["trigger"]["type"], d["name"]) for d in documents]
        ),
    }
    for document in documents:
        texts[f"recipes/{document['id']}.yaml"] = yaml.safe_dump(
            document, sort_keys=False, allow_unicode=True
        )
    return load_pack(PackFiles.from_texts(texts), registry)


def manifest_for(
    registry: Registry,
    documents: list[dict[str, Any]],
    name: str,
    version: str,
    description: str,
    author: str,
    license: str,
) -> PackManifest:
    """The manifest of an exported pack: the connectors its documents use, and this Sous's
    major version; bad details are a :class:`PackError` naming each."""
    running = sous_version()
    try:
        return PackManifest(
            name=name,
            version=version,
            description=description,
            author=author,
            license=license,
            sous=f">={running.major}.{running.minor},<{running.major + 1}",
            connectors=sorted(connectors_used(documents, registry) - {"core"}),
        )
    except ValidationError as exc:
        details = [
            ErrorDetail(str(e["loc"][0]), str(e["msg"]).removeprefix("Value error, "), loc=e["loc"])
            for e in exc.errors()
        ]
        raise PackError("cannot make a pack with these details", details) from None


def write_folder(files: PackFiles, destination: Path) -> None:
    """Write a pack's files into a new (or empty) folder."""
    if destination.exists() and any(destination.iterdir()):
        raise PackError(f"{destination} exists and is not empty")
    for path, data in files.files.items():
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
