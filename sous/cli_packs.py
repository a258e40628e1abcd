"""``sous templates …`` and ``sous packs …``: recipe templates and shareable packs.

Commands that change a workspace open the database from ``SOUS_DATABASE_URL`` (or
``--database-url``), migrated to the newest schema. Commands that only read (``templates list``,
``templates show``, ``packs list``) never create or migrate one: without a database they show the
library alone. ``packs build`` and ``packs inspect`` need no database. Exit status: 0 done,
1 refused or invalid (every problem is printed), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import SousError
from sous import cli_options
from sous.output import emit_json, paint, progress, table

if TYPE_CHECKING:
    from engine.packs.install import PackService
    from engine.registry import Registry

Handler = Callable[[argparse.Namespace], int]
READ_ONLY = "read_only"


def _database_url(args: argparse.Namespace) -> tuple[str, bool]:
    """The configured database, and whether to migrate it. A command that only reads never
    creates a SQLite file (an empty one in memory stands in) and never changes a schema."""
    from sous.settings import load_settings

    url = load_settings(database_url=args.database_url).database_url
    if not getattr(args, READ_ONLY, False):
        return url, True
    file = url.split("///", 1)[-1] if url.startswith("sqlite") and "///" in url else None
    if file is not None and file != ":memory:" and not Path(file).exists():
        return "sqlite://", True
    return url, False


def open_service(args: argparse.Namespace) -> AbstractContextManager[PackService]:
    """The pack service on the configured database (see :func:`_database_url`)."""

    @contextmanager
    def opened() -> Iterator[PackService]:
        from engine.clock import SystemClock
        from engine.packs.install import PackService, default_library
        from engine.store.db import Database
        from sous.migrate import upgrade
        from sous.registry import build_registry

        url, migrate = _database_url(args)
        progress("opening the database" if migrate else "reading the database")
        db = Database(url)
        try:
            if migrate:
                upgrade(db.engine)
            library = Path(args.library) if args.library else default_library()
            yield PackService(db, build_registry(), SystemClock(), library=library)
        finally:
            db.dispose()

    return opened()


def default_registry() -> Registry:
    from sous.registry import build_registry

    return build_registry()


@dataclass(frozen=True)
class Seams:
    """Where the commands get their service and registry (tests give their own)."""

    service: Callable[[argparse.Namespace], AbstractContextManager[PackService]] = open_service
    registry: Callable[[], Registry] = default_registry


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} takes NAME=VALUE, not {item!r}")
        out[key.strip()] = value
    return out


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    values: dict[str, Any] = {}
    if getattr(args, "inputs", None):
        loaded = yaml.safe_load(Path(args.inputs).read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.inputs} must hold a mapping of input names to values")
        values.update(loaded)
    values.update(_pairs(args.set, "--set"))
    return values


def _fail(error: SousError) -> int:
    from engine.packs.archive import PackError

    details = getattr(error, "details", None) or []
    head = error.message if isinstance(error, PackError) else "" if details else str(error)
    for line in [head] * bool(head) + [f"  {d}" for d in details]:
        print(paint(line, "red", sys.stderr), file=sys.stderr)
    return 1


def _library_problems(service: PackService) -> None:
    """Library packs this Sous cannot use (a connector missing, say) are named, not hidden."""
    for problem in service.library_errors:
        print(paint(f"library: {problem}", "yellow", sys.stderr), file=sys.stderr)


def _say(text: str, colour: str = "green") -> None:
    print(paint(text, colour))


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except SousError as exc:
            return _fail(exc)
        except BrokenPipeError:
            raise  # the reader went away: sous.cli.main stops quietly
        except (ValueError, OSError) as exc:
            print(f"sous {args.command}: {exc}", file=sys.stderr)
            return 2

    return run


# -- templates ---------------------------------------------------------------------------------
def _templates_list(seams: Seams, args: argparse.Namespace) -> int:
    with seams.service(args) as service:
        entries = service.templates(args.workspace, every_version=args.all_versions)
    rows = [e.summary() for e in entries]
    if args.json:
        emit_json(rows)
        return 0
    keys = ("ref", "version", "trigger", "installed", "name")
    shown = [[{True: "yes", False: "library"}.get(r[k], r[k]) for k in keys] for r in rows]
    table(("TEMPLATE", "VERSION", "TRIGGER", "INSTALLED", "NAME"), shown)
    _library_problems(service)
    return 0


def _templates_show(seams: Seams, args: argparse.Namespace) -> int:
    with seams.service(args) as service:
        entry = service.find(args.workspace, args.template)
    template = entry.template
    if args.schema:
        emit_json(template.schema())
        return 0
    if args.json:
        emit_json(entry.summary() | {"template": template.document(), "schema": template.schema()})
        return 0
    _say(f"{entry.ref} ({entry.pack.ref})", "bold")
    print(f"{template.name}\n{template.description}".rstrip())
    print(f"trigger: {template.trigger}\nactions: {', '.join(template.actions)}\n")
    rows = [
        (name, spec.type.value, "required" if spec.required else repr(spec.sample()), spec.label)
        for name, spec in template.inputs.items()
    ]
    table(("INPUT", "TYPE", "DEFAULT", "LABEL"), rows)
    return 0


def _templates_instantiate(seams: Seams, args: argparse.Namespace) -> int:
    from engine.packs.instances import make_recipe

    values = _inputs(args)
    with seams.service(args) as service:
        made = make_recipe(
            service,
            args.workspace,
            args.template,
            values,
            recipe_id=args.id,
            name=args.name,
            store=args.store,
            save=not args.dry_run,
        )
    import yaml

    document = made.instance.document()
    if args.json:
        emit_json({"recipe": document, "inputs": made.instance.values, "saved": bool(made.stored)})
    elif made.stored is None:
        print(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), end="")
    else:
        _say(f"created recipe {document['id']} from {made.pack.ref}/{made.instance.template.id}")
    return 0


# -- packs -------------------------------------------------------------------------------------
def _wrote(args: argparse.Namespace, path: Path, digest: str | None) -> int:
    """Report a written archive (path, then its SHA-256) or folder."""
    if args.json:
        emit_json({"path": str(path), "sha256": digest})
    else:
        print(f"{path}\nsha256 {digest}" if digest else path)
    return 0


def _packs_build(seams: Seams, args: argparse.Namespace) -> int:
    from engine.packs.archive import build_archive, read_folder, sha256
    from engine.packs.pack import load_pack

    folder = Path(args.folder)
    pack = load_pack(read_folder(folder), seams.registry())
    data = build_archive(pack.files, f"{pack.name}-{pack.version}")
    out = Path(args.output or ".") / f"{pack.name}-{pack.version}.tar.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return _wrote(args, out, sha256(data))


def _packs_inspect(seams: Seams, args: argparse.Namespace) -> int:
    from engine.packs.archive import read_source
    from engine.packs.pack import load_pack

    found = read_source(args.source, pin=args.sha256)
    pack = load_pack(found.files, seams.registry())
    summary = pack.summary(found.sha256)
    if args.json:
        emit_json(summary)
        return 0
    _say(f"{pack.ref}: {pack.manifest.description}", "bold")
    print(f"sha256 {found.sha256}\nsous {pack.manifest.sous}")
    print(f"connectors: {', '.join(pack.manifest.connectors)}")
    templates = summary["templates"]
    table(
        ("TEMPLATE", "TRIGGER", "INPUTS"),
        [(t["id"], t["trigger"], ", ".join(t["inputs"])) for t in templates],
    )
    if pack.recipes:
        table(
            ("RECIPE", "TRIGGER", "NAME"),
            [(r["id"], r["trigger"], r["name"]) for r in summary["recipes"]],
        )
    return 0


def _packs_install(seams: Seams, args: argparse.Namespace) -> int:
    from engine.packs.instances import make_for_stores

    values = _inputs(args)
    with seams.service(args) as service:
        result = service.install(args.workspace, args.source, pin=args.sha256, recipes=args.recipes)
        made = (
            make_for_stores(
                service, args.workspace, result.pack.ref, args.store, values, args.template
            )
            if args.store
            else []
        )
    created = list(result.recipes)
    for item in made:
        assert item.stored is not None
        created.append(item.stored.recipe.id)
    if args.json:
        report = {"pack": result.pack.ref, "installed": result.new, "created": created}
        emit_json(report | {"kept": list(result.skipped)})
        return 0
    _say(f"{result.pack.ref} {'installed' if result.new else 'is already installed'}")
    for slug in result.skipped:
        print(f"  kept existing recipe {slug}")
    for slug in created:
        print(f"  created recipe {slug}")
    return 0


def _packs_list(seams: Seams, args: argparse.Namespace) -> int:
    with seams.service(args) as service:
        listing = service.listing(args.workspace)
    if args.json:
        emit_json(listing)
        return 0
    _library_problems(service)
    status = {True: "installed", False: "library"}
    rows = [
        (p["name"], p["version"], status[p["installed"]], p["recipes"], p["description"])
        for p in listing
    ]
    table(("PACK", "VERSION", "STATUS", "RECIPES", "DESCRIPTION"), rows)
    return 0


def _packs_uninstall(seams: Seams, args: argparse.Namespace) -> int:
    name, _, version = args.pack.partition("@")
    if not version:
        raise ValueError("say which version: NAME@VERSION (sous packs list shows them)")
    with seams.service(args) as service:
        deleted = service.uninstall(
            args.workspace, name, version, delete_recipes=args.delete_recipes, force=args.force
        )
    if args.json:
        emit_json({"uninstalled": f"{name}@{version}", "deleted": list(deleted)})
        return 0
    _say(f"uninstalled {name}@{version}")
    for slug in deleted:
        print(f"  deleted recipe {slug}")
    return 0


def _packs_upgrade(seams: Seams, args: argparse.Namespace) -> int:
    from engine.packs.upgrade import apply_upgrade, plan_upgrade

    maps: dict[str, str | None] = {k: (v or None) for k, v in _pairs(args.map, "--map").items()}
    with seams.service(args) as service:
        plan = plan_upgrade(
            service,
            args.workspace,
            args.pack,
            to=args.to,
            maps=maps,
            sets=_inputs(args),
            recipes=args.recipe,
            force=args.force,
        )
        applied = apply_upgrade(service, args.workspace, plan) if args.apply and plan.ok else []
    if args.json:
        emit_json(plan.to_dict() | {"applied": bool(applied)})
        return 0 if plan.ok else 1
    print(plan.report())
    if not plan.recipes:
        return 0
    if not plan.ok:
        _say(f"{len(plan.problems)} problem(s): nothing was changed", "red")
        return 1
    if applied:
        _say(f"upgraded {len(applied)} recipe(s) to {plan.pack}@{plan.to_version}", "green")
    else:
        _say("dry run: nothing was changed; run again with --apply to upgrade", "yellow")
    return 0


def _packs_export(seams: Seams, args: argparse.Namespace) -> int:
    from engine.packs.archive import build_archive, sha256
    from engine.packs.export import export_workspace, write_folder

    with seams.service(args) as service:
        about = {
            k: getattr(args, k) for k in ("name", "version", "description", "author", "license")
        }
        pack = export_workspace(
            service.recipes,
            service.registry,
            args.workspace,
            **about,
            recipes=args.recipe,
            keep_stores=args.keep_stores,
        )
    out = Path(args.output or f"{pack.name}-{pack.version}.tar.gz")
    if out.name.endswith((".tar.gz", ".tgz")):
        data = build_archive(pack.files, f"{pack.name}-{pack.version}")
        out.write_bytes(data)
        return _wrote(args, out, sha256(data))
    write_folder(pack.files, out)
    return _wrote(args, out, None)


def _flag(p: argparse.ArgumentParser, name: str, help: str) -> None:
    p.add_argument(name, action="store_true", help=help)


def _many(p: argparse.ArgumentParser, name: str, metavar: str, help: str) -> None:
    p.add_argument(name, action="append", metavar=metavar, help=help + " (repeatable)")


def _common(p: argparse.ArgumentParser, database: bool = True) -> None:
    if database:
        p.add_argument("--workspace", default="default", help="workspace id (default: default)")
        cli_options.database(p)
        p.add_argument(
            "--library", default=None, help="folder of shipped packs (default: recipes/packs)"
        )
    _flag(p, "--json", "machine-readable output")


def _values(p: argparse.ArgumentParser) -> None:
    _many(
        p,
        "--set",
        "NAME=VALUE",
        "an input value (repeatable; TEMPLATE.NAME=VALUE for one template)",
    )
    p.add_argument("--inputs", metavar="FILE", help="input values from a YAML or JSON mapping")


def _read_only(p: argparse.ArgumentParser) -> None:
    p.set_defaults(**{READ_ONLY: True})


Bind = Callable[[argparse.ArgumentParser, Callable[[Seams, argparse.Namespace], int]], None]


def register(subparsers: Any, seams: Seams | None = None) -> None:
    """Add ``sous templates …`` and ``sous packs …`` (``subparsers`` from ``add_subparsers``)."""
    chosen = seams or Seams()

    def bind(p: argparse.ArgumentParser, run: Callable[[Seams, argparse.Namespace], int]) -> None:
        p.set_defaults(handler=_guarded(lambda args: run(chosen, args)))

    _register_templates(subparsers, bind)
    _register_packs(subparsers, bind)


def _register_templates(subparsers: Any, bind: Bind) -> None:
    templates = subparsers.add_parser(
        "templates", help="recipe templates: list, show, make a recipe"
    )
    actions = templates.add_subparsers(dest="templates_command", required=True, metavar="ACTION")
    p = actions.add_parser("list", help="templates from installed packs and the library")
    _flag(p, "--all-versions", "every installed version, not only the newest")
    _common(p)
    _read_only(p)
    bind(p, _templates_list)
    p = actions.add_parser("show", help="a template's inputs (--schema: as JSON Schema)")
    p.add_argument(
        "template",
        metavar="PACK/TEMPLATE",
        help="which template, e.g. backorders/sold-out-backorder",
    )
    _flag(p, "--schema", "print the inputs' JSON Schema")
    _common(p)
    _read_only(p)
    bind(p, _templates_show)
    p = actions.add_parser("instantiate", help="make a recipe from a template")
    p.add_argument("template", metavar="PACK/TEMPLATE", help="which template")
    _values(p)
    p.add_argument("--id", help="the recipe's id (default: the template's, with the store hash)")
    p.add_argument("--name", help="the recipe's name (default: the template's)")
    p.add_argument("--store", help="limit the recipe to this store hash")
    _flag(p, "--dry-run", "print the recipe instead of saving it")
    _common(p)
    bind(p, _templates_instantiate)


def _register_packs(subparsers: Any, bind: Bind) -> None:
    packs = subparsers.add_parser("packs", help="shareable packs of templates and recipes")
    actions = packs.add_subparsers(dest="packs_command", required=True, metavar="ACTION")
    p = actions.add_parser("build", help="check a pack folder and write NAME-VERSION.tar.gz")
    p.add_argument("folder", metavar="FOLDER", help="the pack folder (with pack.yaml)")
    p.add_argument(
        "--output", "-o", metavar="DIR", help="where to write the archive (default: here)"
    )
    _common(p, database=False)
    bind(p, _packs_build)
    p = actions.add_parser("inspect", help="show and check a pack (folder, archive or https URL)")
    p.add_argument("source", metavar="SOURCE", help="folder, .tar.gz/.zip or https URL")
    p.add_argument("--sha256", help="refuse the pack unless its archive has this SHA-256")
    _common(p, database=False)
    bind(p, _packs_inspect)
    p = actions.add_parser(
        "install", help="install a pack; with --store, make its templates into recipes per store"
    )
    p.add_argument(
        "source", metavar="SOURCE", help="folder, .tar.gz/.zip, https URL, or a library pack name"
    )
    p.add_argument("--sha256", help="refuse the pack unless its archive has this SHA-256")
    _flag(p, "--recipes", "also create the pack's ready-made recipes")
    _many(p, "--store", "HASH", "make recipes for this store")
    _many(p, "--template", "ID", "only these templates (with --store)")
    _values(p)
    _common(p)
    bind(p, _packs_install)
    p = actions.add_parser("list", help="installed packs, and library packs not installed")
    _common(p)
    _read_only(p)
    bind(p, _packs_list)
    p = actions.add_parser("uninstall", help="remove a pack version")
    p.add_argument("pack", metavar="NAME@VERSION", help="the pack version to remove")
    _flag(p, "--delete-recipes", "also delete the recipes made from it")
    _flag(p, "--force", "keep the recipes made from it")
    _common(p)
    bind(p, _packs_uninstall)
    p = actions.add_parser(
        "upgrade", help="remake recipes from another version of a pack (dry run unless --apply)"
    )
    p.add_argument("pack", metavar="NAME", help="the installed pack")
    p.add_argument("--to", metavar="VERSION", help="the version to move to (default: the newest)")
    _many(p, "--recipe", "ID", "only these recipes")
    _many(p, "--map", "OLD=NEW", "move a removed input's value (OLD= drops it)")
    _values(p)
    _flag(p, "--force", "replace recipes edited by hand")
    _flag(p, "--apply", "do it (without: show what would change)")
    _common(p)
    bind(p, _packs_upgrade)
    p = actions.add_parser("export", help="a workspace's recipes as a pack")
    p.add_argument("--name", required=True, help="the pack's name")
    p.add_argument("--version", required=True, help="semantic version, e.g. 1.0.0")
    p.add_argument("--description", default="", help="one line on what the pack does")
    p.add_argument("--author", default="", help="who made it")
    p.add_argument("--license", default="", help="an SPDX licence id, e.g. Apache-2.0")
    _many(p, "--recipe", "ID", "only these recipes")
    _flag(p, "--keep-stores", "keep store hashes (default: every store)")
    p.add_argument("--output", "-o", metavar="PATH", help="NAME.tar.gz, or a new folder")
    _common(p)
    bind(p, _packs_export)
