"""Packs: the installed pack versions (their templates and the recipes made from them), the
library's packs not installed yet, installing one (an uploaded archive, an https URL with an
optional SHA-256, or from the library), and upgrading the recipes made from a pack: the plan
first (what changes in each recipe), then, on a second step, applying it.

Every change goes through the API's own functions (:mod:`api.routes.packs`): the same checks,
the same outbound guard for downloads, the same errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.console.auth import AdminVisitor, Visitor, VisitorDep
from api.console.forms import Form, read_form
from api.console.pages.workspaces import agency_caller
from api.console.render import PageError, page
from api.deps import ContainerDep
from api.errors import ApiError
from api.keys import Caller, clients
from api.routes.packs import (
    PackExport,
    PackInstall,
    PackInstalled,
    PackUpgrade,
    export,
    install_source,
    install_upload,
    pack_service,
    upgrade_clients,
    upgrade_pack,
)
from engine import PackService, SousError
from sous.container import Container

router = APIRouter()

NOTICES = {
    "installed": "Pack {pack} is installed: its templates are in the gallery.",
    "unchanged": "Pack {pack} was installed already, with the same contents.",
    "upgraded": "Upgraded {count} recipe(s) to {pack}.",
    "nothing": "Nothing to upgrade: every recipe made from {pack} is on that version.",
    "shared": "Pack {pack} is shared with {client}: its templates are in the client's gallery.",
}


@dataclass
class PackLine:
    """One installed pack version, as the page lists it."""

    name: str
    version: str
    description: str
    recipes: int
    source: str
    sha256: str
    installed_at: str
    templates: list[str] = field(default_factory=list)
    newest: str = ""


def _lines(service: PackService, workspace: str) -> tuple[list[PackLine], list[dict[str, Any]]]:
    """Installed pack versions (with the newest version offered of each), then library packs
    not installed. Blocking."""
    listing = service.listing(workspace)
    offered = service.packs(workspace)
    templates = {(p.name, p.version): [t.name for t in p.templates.values()] for p, _ in offered}
    newest: dict[str, Any] = {}
    for pack, _ in offered:
        if pack.name not in newest or newest[pack.name].manifest.semver < pack.manifest.semver:
            newest[pack.name] = pack
    installed = [
        PackLine(
            name=row["name"],
            version=row["version"],
            description=row.get("description") or "",
            recipes=row["recipes"],
            source=row["source"],
            sha256=row["sha256"],
            installed_at=row["installed_at"],
            templates=templates.get((row["name"], row["version"]), []),
            newest=newest[row["name"]].version if row["name"] in newest else row["version"],
        )
        for row in listing
        if row["installed"]
    ]
    have = {line.name for line in installed}
    library = [row for row in listing if not row["installed"] and row["name"] not in have]
    return installed, library


def _notice(request: Request) -> str | None:
    params = request.query_params
    text = NOTICES.get(params.get("notice", ""))
    if text is None:
        return None
    return text.format(
        pack=params.get("pack", "")[:120],
        count=params.get("count", "0")[:6],
        client=params.get("client", "")[:64],
    )


def _caller(container: Container, visitor: Visitor) -> Caller:
    """The API's caller of this session (an agency session: its agency key). Blocking."""
    with container.db.read_session() as session:
        return agency_caller(session, visitor)


def _clients(container: Container, caller: Caller) -> list[str]:
    """The client workspaces an agency session shares packs with (none for other sessions)."""
    if not caller.agency or caller.in_client:
        return []
    with container.db.read_session() as session:
        return [w.id for w in clients(session, caller.home)]


def _packs_page(
    request: Request,
    container: Container,
    visitor: Visitor,
    *,
    status: int = 200,
    problem: str | None = None,
    details: list[str] | None = None,
    given: Form | None = None,
    what: str = "The pack was not installed",
) -> HTMLResponse:
    service = pack_service(request, container)
    installed, library = _lines(service, visitor.workspace)
    recipes = [s.recipe.id for s in service.recipes.list(visitor.workspace)]
    return page(
        request,
        "packs.html",
        status_code=status,
        title="Packs",
        installed=installed,
        library=library,
        notice=_notice(request) if problem is None else None,
        problem=problem,
        details=details or [],
        url=given.get("url") if given else "",
        given=given or Form([]),
        what=what,
        is_admin=visitor.can("admin"),
        recipes=recipes,
        clients=_clients(container, _caller(container, visitor)),
    )


@router.get("/packs")
def packs(request: Request, visitor: VisitorDep, container: ContainerDep) -> Response:
    return _packs_page(request, container, visitor)


def _done(installed: PackInstalled) -> Response:
    pack = f"{installed.pack['name']}@{installed.pack['version']}"
    query = urlencode({"notice": "installed" if installed.new else "unchanged", "pack": pack})
    return RedirectResponse(f"/console/packs?{query}", status_code=303)


async def _refused(
    request: Request,
    container: Container,
    visitor: Visitor,
    exc: Exception,
    form: Form,
    what: str = "The pack was not installed",
) -> Response:
    if isinstance(exc, ApiError):
        message, details = exc.message, [f"{d.path}: {d.message}" for d in exc.details]
    elif isinstance(exc, ValidationError):
        message = "the form has a field that is not valid"
        details = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    else:
        message, details = str(getattr(exc, "message", exc)), []
    return await run_in_threadpool(
        lambda: _packs_page(
            request,
            container,
            visitor,
            status=422,
            problem=message,
            details=details,
            given=form,
            what=what,
        )
    )


@router.post("/packs/install")
async def install(request: Request, visitor: AdminVisitor, container: ContainerDep) -> Response:
    """From an https URL (with an optional SHA-256) or the library (``library=NAME``)."""
    form = await read_form(request)
    service = pack_service(request, container)
    try:
        body = PackInstall(
            url=form.get("url").strip() or None,
            library=form.get("library").strip() or None,
            sha256=form.get("sha256").strip() or None,
            recipes="recipes" in form,
        )
        installed = await install_source(service, container, visitor.workspace, body)
    except (ApiError, SousError, ValidationError) as exc:
        return await _refused(request, container, visitor, exc, form)
    return _done(installed)


@router.post("/packs/upload")
async def upload(request: Request, visitor: AdminVisitor, container: ContainerDep) -> Response:
    """An uploaded ``.tar.gz`` or ``.zip`` (the form's ``archive`` file)."""
    form = await read_form(request)
    archive = form.file("archive")
    if archive is None or not archive.data:
        problem = "choose a pack archive (.tar.gz or .zip) to upload"
        return await _refused(request, container, visitor, ApiError(422, problem), form)
    service = pack_service(request, container)
    pin = form.get("sha256").strip() or None
    try:
        installed = await install_upload(
            service, container, visitor.workspace, archive.data, pin, "recipes" in form
        )
    except (ApiError, SousError) as exc:
        return await _refused(request, container, visitor, exc, form)
    return _done(installed)


# -- exporting and sharing ----------------------------------------------------------------------
def _inputs(text: str) -> dict[str, dict[str, str]]:
    """``RECIPE NAME=/json/pointer`` per line: the values that become a template's inputs."""
    found: dict[str, dict[str, str]] = {}
    for name, pointer in _pairs(text).items():
        recipe, _, input_name = name.partition(" ")
        if not input_name.strip():
            raise ValueError(f"{name!r}: write RECIPE NAME=/json/pointer")
        found.setdefault(recipe, {})[input_name.strip()] = pointer
    return found


@router.post("/packs/export")
async def export_pack(request: Request, visitor: VisitorDep, container: ContainerDep) -> Response:
    """The chosen recipes (default: all) as a pack archive to download: ready-made recipes,
    or templates whose per-client values (and those named in ``inputs``) are typed inputs."""
    form = await read_form(request)
    service = pack_service(request, container)
    try:
        body = PackExport(
            name=form.get("name").strip(),
            version=form.get("version").strip(),
            description=form.get("description").strip(),
            recipes=form.all("recipe") or None,
            templates="templates" in form,
            inputs=_inputs(form.get("inputs")),
        )
        return await export(body, visitor.workspace, service, container)
    except (ApiError, SousError, ValueError, ValidationError) as exc:
        what = "The pack was not exported"
        if isinstance(exc, ValueError) and not isinstance(exc, ValidationError):
            exc = ApiError(422, str(exc))
        return await _refused(request, container, visitor, exc, form, what)


@router.post("/packs/{name}/{version}/share")
async def share(
    name: str, version: str, request: Request, visitor: AdminVisitor, container: ContainerDep
) -> Response:
    """Install this pack version (the same files) in one of the agency's client workspaces."""
    form = await read_form(request)
    caller = await run_in_threadpool(_caller, container, visitor)
    client = form.get("workspace").strip()
    if client not in await run_in_threadpool(_clients, container, caller):
        raise PageError(404, "No such client", f"“{client[:64]}” is not a client of yours.")
    service = pack_service(request, container)
    body = PackInstall(shared=f"{name}@{version}", recipes="recipes" in form)
    try:
        await install_source(service, container, client, body, agency=caller.home)
    except (ApiError, SousError) as exc:
        return await _refused(request, container, visitor, exc, form, "The pack was not shared")
    query = urlencode({"notice": "shared", "pack": f"{name}@{version}", "client": client})
    return RedirectResponse(f"/console/packs?{query}", status_code=303)


# -- upgrades ------------------------------------------------------------------------------------
def _pairs(text: str) -> dict[str, str]:
    """``NAME=VALUE`` per line (blank lines skipped); ``ValueError`` for a line without ``=``."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"{line.strip()!r} is not NAME=VALUE")
        found[name.strip()] = value.strip()
    return found


def _upgrade_body(fields: Any, *, apply: bool) -> PackUpgrade:
    """The API's upgrade request from the page's fields (query or form)."""
    maps: dict[str, str | None] = {k: v or None for k, v in _pairs(fields.get("map", "")).items()}
    return PackUpgrade(
        to=(fields.get("to") or "").strip() or None,
        map=maps,
        set=_pairs(fields.get("set", "")),
        force=fields.get("force") in ("true", "on", "1"),
        apply=apply,
    )


async def _plan_page(
    request: Request,
    container: Container,
    visitor: Visitor,
    name: str,
    fields: Any,
    *,
    problem: str | None = None,
    details: list[str] | None = None,
) -> HTMLResponse:
    plan: dict[str, Any] | None = None
    try:
        plan = await _upgrade(request, container, visitor, name, fields, apply=False)
    except (ApiError, ValueError, ValidationError) as exc:
        problem = problem or str(getattr(exc, "message", exc))
        details = details or [f"{d.path}: {d.message}" for d in getattr(exc, "details", [])]
    form = {k: fields.get(k) or "" for k in ("to", "map", "set", "force", "clients")}
    plans = [("", plan)] if plan and "workspaces" not in plan else []
    plans += [(w["workspace"], w) for w in (plan or {}).get("workspaces", [])]
    return page(
        request,
        "packs_upgrade.html",
        status_code=422 if problem else 200,
        title=f"Upgrade {name}",
        name=name,
        plan=plan,
        plans=plans,
        agency=bool(
            await run_in_threadpool(lambda: _clients(container, _caller(container, visitor)))
        ),
        form=form,
        problem=problem,
        details=details or [],
        can_apply=visitor.can("write"),
    )


async def _upgrade(
    request: Request, container: Container, visitor: Visitor, name: str, fields: Any, *, apply: bool
) -> dict[str, Any]:
    """The API's upgrade of the session's workspace, or (``clients``, an agency session in its
    own workspace) of the agency's and every client's recipes made from the pack."""
    service = pack_service(request, container)
    body = _upgrade_body(fields, apply=apply)
    if fields.get("clients") in ("true", "on", "1"):
        caller = await run_in_threadpool(_caller, container, visitor)
        if not caller.agency or caller.in_client:
            raise ApiError(403, "only an agency session, in its own workspace, upgrades clients")
        return await upgrade_clients(service, container, caller.home, name, body)
    return await upgrade_pack(service, container, visitor.workspace, name, body)


@router.get("/packs/{name}/upgrade")
async def upgrade_preview(
    name: str, request: Request, visitor: VisitorDep, container: ContainerDep
) -> Response:
    """What upgrading the recipes made from pack ``name`` would change (nothing is changed)."""
    return await _plan_page(request, container, visitor, name, request.query_params)


@router.post("/packs/{name}/upgrade")
async def upgrade_apply(
    name: str, request: Request, visitor: VisitorDep, container: ContainerDep
) -> Response:
    if not visitor.can("write"):
        raise PageError(403, "Your session may only read", "Sign in with a write key to upgrade.")
    form = await read_form(request)
    try:
        done = await _upgrade(request, container, visitor, name, form, apply=True)
    except (ApiError, SousError, ValueError, ValidationError) as exc:
        message = str(getattr(exc, "message", exc))
        details = [f"{d.path}: {d.message}" for d in getattr(exc, "details", [])]
        return await _plan_page(
            request, container, visitor, name, form, problem=message, details=details
        )
    made = done.get("workspaces", [done])
    count = sum(len(plan["recipes"]) for plan in made) if done["applied"] else 0
    pack = f"{done['pack']}@{done['to_version']}"
    query = urlencode({"notice": "upgraded" if count else "nothing", "pack": pack, "count": count})
    return RedirectResponse(f"/console/packs?{query}", status_code=303)
