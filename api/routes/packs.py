"""Packs: install (from an https URL, an uploaded archive, or the library), list, show,
uninstall, upgrade the recipes made from them (a plan first; ``apply`` to do it), make their
templates into recipes for many stores at once, and export a workspace's recipes as a pack.

Mounted with :func:`routers` (this router and the templates router)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ContainerDep, RequireAdmin, RequireWrite, WorkspaceDep
from api.errors import ApiError, ErrorItem, responses
from api.models import RecipePublic
from api.recipes_query import public_stored
from connectors.http.guard import GuardedSyncTransport, OutboundPolicy, OutboundRefused
from engine import (
    NotFoundError,
    PackError,
    PackService,
    StoredRecipe,
    Text,
    build_archive,
    default_library,
    sha256,
)
from sous.container import Container

T = TypeVar("T")
ARCHIVE_TYPES = (
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "application/octet-stream",
)


def pack_service(request: Request, container: ContainerDep) -> PackService:
    """One service per app (it keeps the parsed library), configured by the container's
    ``pack_library`` and ``pack_verify``. Downloads go through the outbound guard, like
    ``http.request``: loopback and private addresses only when the settings allow them."""
    service = getattr(request.app.state, "pack_service", None)
    if not isinstance(service, PackService):
        library = container.pack_library or default_library()
        policy = container.services.find(OutboundPolicy) or OutboundPolicy.from_settings(
            container.settings
        )
        transport = GuardedSyncTransport(policy, verify=container.pack_verify)
        service = PackService(
            container.db, container.registry, container.clock, library=library, transport=transport
        )
        request.app.state.pack_service = service
    return service


PacksDep = Annotated[PackService, Depends(pack_service)]


async def run(
    container: Container, work: Callable[[], T], changed: Callable[[T], list[StoredRecipe]]
) -> T:
    """Do ``work`` in the threadpool, refresh the dispatcher for every recipe it changed, and
    answer a refused pack with 422 and every problem."""
    try:
        result = await run_in_threadpool(work)
    except PackError as exc:
        details = [ErrorItem(path=d.pointer, message=str(d)) for d in exc.details]
        raise ApiError(422, exc.message, code="invalid_pack", details=details) from None
    for stored in changed(result):
        container.engine.refresh(stored)
    return result


def nothing(_: object) -> list[StoredRecipe]:
    return []


class PackInstall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Text | None = Field(default=None, description="An https URL of a .tar.gz or .zip pack")
    library: Text | None = Field(default=None, description="A shipped pack: NAME or NAME@VERSION")
    sha256: Text | None = Field(
        default=None, description="Refuse the pack unless its archive has this SHA-256"
    )
    shared: Text | None = Field(
        default=None,
        description="NAME@VERSION of a pack installed in the agency's own workspace: an agency "
        "key acting in a client workspace shares it there",
    )
    recipes: bool = Field(default=False, description="Also create the pack's ready-made recipes")


class PackInstalled(BaseModel):
    pack: dict[str, Any] = Field(
        description="The pack: manifest, templates, recipes, files, sha256"
    )
    new: bool = Field(description="False when this version was installed already (same contents)")
    recipes: list[RecipePublic] = Field(
        default_factory=list, description="Ready-made recipes created"
    )
    skipped: list[str] = Field(
        default_factory=list, description="Ready-made recipes whose id was taken"
    )


class PacksPublic(BaseModel):
    data: list[dict[str, Any]]


class PackUpgrade(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    to: Text | None = Field(
        default=None, description="The version to move to (default: the newest)"
    )
    map: dict[str, str | None] = Field(
        default_factory=dict, description="old input → new input (null drops it)"
    )
    set: dict[str, Any] = Field(
        default_factory=dict, description="input values; TEMPLATE.NAME for one template"
    )
    recipes: list[str] | None = Field(default=None, description="Only these recipes")
    force: bool = Field(default=False, description="Replace recipes edited by hand")
    apply: bool = Field(default=False, description="Do it; without, only the plan is returned")
    clients: bool = Field(
        default=False,
        description="An agency key in its own workspace: upgrade the recipes made from the pack "
        "in its workspace and every client workspace that has some, from the agency's version "
        "(installed where missing); the answer has one plan per workspace",
    )


class PackForStores(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stores: list[str] = Field(min_length=1, max_length=200, description="Store hashes")
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="NAME or TEMPLATE.NAME → value"
    )
    templates: list[str] | None = Field(default=None, description="Only these templates")


class PackExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    version: Text = Field(description="Semantic version, e.g. 1.0.0")
    description: Text = ""
    author: Text = ""
    license: str = ""
    recipes: list[str] | None = Field(default=None, description="Only these recipes")
    keep_stores: bool = Field(default=False, description="Keep store hashes (default: every store)")
    templates: bool = Field(
        default=False,
        description="Export templates, not recipes: e-mail addresses, URLs and the store "
        "become typed inputs (defaults: the recipe's own values), and `inputs` names more",
    )
    inputs: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="With `templates`: recipe id → {input name: JSON Pointer into the recipe}",
        examples=[{"low-stock": {"threshold": "/conditions/0/<=/1"}}],
    )


router = APIRouter(prefix="/v1/packs", tags=["packs"], responses=responses(401, 403, 404, 422))


def _installed(service: PackService, workspace: str, result: Any) -> PackInstalled:
    made = [public_stored(service.recipes.get(workspace, slug)) for slug in result.recipes]
    return PackInstalled(
        pack=result.pack.summary(result.sha256),
        new=result.new,
        recipes=made,
        skipped=result.skipped,
    )


@router.get("", summary="Installed packs, and library packs not installed")
def list_packs(workspace: WorkspaceDep, service: PacksDep) -> PacksPublic:
    return PacksPublic(data=service.listing(workspace))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Install a pack from an https URL or the library",
)
async def install(
    body: PackInstall, key: RequireAdmin, service: PacksDep, container: ContainerDep
) -> PackInstalled:
    agency = key.home if key.in_client else None
    return await install_source(service, container, key.workspace, body, agency=agency)


async def install_source(
    service: PackService,
    container: Container,
    workspace: str,
    body: PackInstall,
    *,
    agency: str | None = None,
) -> PackInstalled:
    """Install a pack from an https URL (through the outbound guard), the library, or (an
    agency key in a client workspace) the ``agency``'s own workspace; refusals are
    :class:`~api.errors.ApiError` (422 with the field at fault)."""
    if [body.url, body.library, body.shared].count(None) != 2:
        raise ApiError(
            422,
            "give one of url, library or shared",
            details=[ErrorItem(path="/url", message="url, library or shared")],
        )
    if body.shared is not None:
        return await _install_shared(service, container, workspace, body, agency)
    source = body.url or body.library or ""
    if body.url is not None and not body.url.startswith("https://"):
        raise ApiError(
            422,
            "packs are downloaded over https only",
            details=[ErrorItem(path="/url", message="https only")],
        )
    try:
        result = await run(
            container,
            lambda: service.install(workspace, source, pin=body.sha256, recipes=body.recipes),
            nothing,
        )
    except OutboundRefused as exc:
        raise ApiError(
            422,
            str(exc),
            code="outbound_refused",
            details=[ErrorItem(path="/url", message=exc.reason)],
        ) from None
    return await _respond(service, container, workspace, result)


@router.post(
    "/archive",
    status_code=status.HTTP_201_CREATED,
    summary="Install an uploaded pack archive (.tar.gz or .zip as the request body)",
    openapi_extra={
        "requestBody": {
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in ARCHIVE_TYPES[::2]
            }
        }
    },
)
async def upload(
    request: Request,
    key: RequireAdmin,
    service: PacksDep,
    container: ContainerDep,
    sha256_: Annotated[Text | None, Query(alias="sha256")] = None,
    recipes: bool = False,
) -> PackInstalled:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in ARCHIVE_TYPES:
        raise ApiError(415, f"send the archive as {', '.join(ARCHIVE_TYPES[::2])}")
    data = await request.body()
    return await install_upload(service, container, key.workspace, data, sha256_, recipes)


async def _install_shared(
    service: PackService,
    container: Container,
    workspace: str,
    body: PackInstall,
    agency: str | None,
) -> PackInstalled:
    if agency is None:
        message = "only an agency key acting in a client workspace installs a shared pack"
        raise ApiError(422, message, details=[ErrorItem(path="/shared", message=message)])
    name, _, version = (body.shared or "").partition("@")
    result = await run(
        container,
        lambda: share_pack(service, agency, workspace, name, version or None, body.recipes),
        nothing,
    )
    return await _respond(service, container, workspace, result)


def share_pack(
    service: PackService,
    agency: str,
    workspace: str,
    name: str,
    version: str | None,
    recipes: bool = False,
) -> Any:
    """Install in ``workspace`` the pack version installed in the ``agency``'s workspace (the
    newest when ``version`` is ``None``), the same files and SHA-256."""
    pack = service.get(agency, name, version)
    digest = next(
        r.sha256 for r in service.installed(agency) if (r.name, r.version) == (name, pack.version)
    )
    return service.install_pack(workspace, pack, digest, f"agency:{agency}", recipes=recipes)


async def install_upload(
    service: PackService,
    container: Container,
    workspace: str,
    data: bytes,
    pin: str | None = None,
    recipes: bool = False,
) -> PackInstalled:
    """Install a pack from the bytes of an uploaded ``.tar.gz`` or ``.zip``."""
    result = await run(
        container,
        lambda: service.install_archive(workspace, data, pin=pin, recipes=recipes),
        nothing,
    )
    return await _respond(service, container, workspace, result)


async def _respond(
    service: PackService, container: Container, workspace: str, result: Any
) -> PackInstalled:
    answer = await run_in_threadpool(lambda: _installed(service, workspace, result))
    for slug in result.recipes:
        container.engine.refresh(service.recipes.get(workspace, slug))
    return answer


@router.post(
    "/export",
    summary="The workspace's recipes as a pack (.tar.gz): ready-made recipes, or templates",
    response_class=Response,
)
async def export(
    body: PackExport, workspace: WorkspaceDep, service: PacksDep, container: ContainerDep
) -> Response:
    from engine import export_templates, export_workspace

    about = body.model_dump(include={"name", "version", "description", "author", "license"})

    def work() -> tuple[str, bytes]:
        if body.templates:
            pack = export_templates(
                service.recipes,
                service.registry,
                workspace,
                **about,
                recipes=body.recipes,
                inputs=body.inputs,
            )
        else:
            pack = export_workspace(
                service.recipes,
                service.registry,
                workspace,
                **about,
                recipes=body.recipes,
                keep_stores=body.keep_stores,
            )
        folder = f"{pack.name}-{pack.version}"
        return folder, build_archive(pack.files, folder)

    folder, data = await run(container, work, nothing)
    headers = {
        "Content-Disposition": f'attachment; filename="{folder}.tar.gz"',
        "X-Pack-SHA256": sha256(data),
    }
    return Response(data, media_type="application/gzip", headers=headers)


@router.get(
    "/{name}/{version}", summary="An installed pack: contents, README and the recipes made from it"
)
def show(name: str, version: str, workspace: WorkspaceDep, service: PacksDep) -> dict[str, Any]:
    pack = service.get(workspace, name, version)
    row = next(r for r in service.installed(workspace) if r.name == name and r.version == version)
    made = [i.recipe_slug for i in service.instances(workspace, name) if i.pack_version == version]
    return pack.summary(row.sha256) | {
        "readme": pack.readme,
        "made_recipes": made,
        "source": row.source,
    }


@router.delete("/{name}/{version}", summary="Uninstall a pack version")
async def uninstall(
    name: str,
    version: str,
    key: RequireAdmin,
    service: PacksDep,
    container: ContainerDep,
    delete_recipes: bool = False,
    force: bool = False,
) -> dict[str, list[str]]:
    def work() -> tuple[list[str], dict[str, str]]:
        uids = {i.recipe_slug: i.recipe_uid for i in service.instances(key.workspace, name)}
        return service.uninstall(
            key.workspace, name, version, delete_recipes=delete_recipes, force=force
        ), uids

    deleted, uids = await run(container, work, nothing)
    for slug in deleted:
        container.engine.index.remove(uids[slug])
    return {"deleted_recipes": deleted}


@router.post(
    "/{name}/upgrade",
    summary="Plan (and with apply, do) an upgrade of the recipes made from a pack",
)
async def upgrade(
    name: str, body: PackUpgrade, key: RequireWrite, service: PacksDep, container: ContainerDep
) -> dict[str, Any]:
    if body.clients:
        if not key.agency or key.in_client:
            message = "only an agency key, in its own workspace, upgrades its clients' recipes"
            raise ApiError(403, message, code="not_an_agency_key")
        return await upgrade_clients(service, container, key.home, name, body)
    return await upgrade_pack(service, container, key.workspace, name, body)


def _plans_everywhere(
    service: PackService, agency: str, name: str, body: PackUpgrade
) -> tuple[list[tuple[str, Any]], list[StoredRecipe]]:
    from api.keys import clients
    from engine import apply_upgrade, plan_upgrade

    with service.db.read_session() as session:
        workspaces = [agency] + [w.id for w in clients(session, agency)]
    target = service.get(agency, name, body.to)
    plans = []
    for workspace in workspaces:
        if not service.instances(workspace, name):
            continue
        plan = plan_upgrade(
            service,
            workspace,
            name,
            to=target.version,
            maps=body.map,
            sets=body.set,
            recipes=body.recipes,
            force=body.force,
            target=target,
        )
        plans.append((workspace, plan))
    applied: list[StoredRecipe] = []
    if body.apply and all(plan.ok for _, plan in plans):
        for workspace, plan in plans:  # the agency's version is shared only now, when applied
            missing = not _has(service, workspace, name, target.version)
            if workspace != agency and plan.recipes and missing:
                share_pack(service, agency, workspace, name, target.version)
            applied += apply_upgrade(service, workspace, plan)
    return plans, applied


def _has(service: PackService, workspace: str, name: str, version: str) -> bool:
    return any((r.name, r.version) == (name, version) for r in service.installed(workspace))


async def upgrade_clients(
    service: PackService, container: Container, agency: str, name: str, body: PackUpgrade
) -> dict[str, Any]:
    """Plan (and with ``apply``, carry out) the upgrade of pack ``name`` in the agency's
    workspace and every client workspace of it that has recipes made from the pack: nothing is
    changed unless every plan is free of problems."""
    plans, applied = await run(
        container,
        lambda: _plans_everywhere(service, agency, name, body),
        lambda done: done[1],
    )
    ok = all(plan.ok for _, plan in plans)
    if body.apply and not ok:
        details = [
            ErrorItem(path=p.pointer, message=f"{workspace}: {p}")
            for workspace, plan in plans
            for p in plan.problems
        ]
        raise ApiError(
            422,
            "the upgrade has problems; nothing was changed",
            code="upgrade_refused",
            details=details,
        )
    return {
        "pack": name,
        "to_version": plans[0][1].to_version if plans else body.to,
        "ok": ok,
        "applied": bool(applied),
        "workspaces": [{"workspace": w} | plan.to_dict() for w, plan in plans],
    }


async def upgrade_pack(
    service: PackService, container: Container, workspace: str, name: str, body: PackUpgrade
) -> dict[str, Any]:
    """The plan of upgrading the recipes made from pack ``name`` (``plan.to_dict()``), carried
    out when ``body.apply`` (``applied`` says whether anything was); a plan with problems is
    refused then (:class:`~api.errors.ApiError`, 422, every problem)."""
    from engine import apply_upgrade, plan_upgrade

    def work() -> tuple[Any, list[StoredRecipe]]:
        plan = plan_upgrade(
            service,
            workspace,
            name,
            to=body.to,
            maps=body.map,
            sets=body.set,
            recipes=body.recipes,
            force=body.force,
        )
        return plan, (apply_upgrade(service, workspace, plan) if body.apply and plan.ok else [])

    try:
        plan, applied = await run(container, work, lambda done: done[1])
    except NotFoundError:
        offered = await run_in_threadpool(service.packs, workspace)
        if body.to is None or not any(pack.name == name for pack, _ in offered):
            raise
        # The pack is there; the body names a version of it that is not.
        message = f"pack {name!r} has no version {body.to!r}"
        raise ApiError(422, message, details=[ErrorItem(path="/to", message=message)]) from None
    if body.apply and not plan.ok:
        details = [ErrorItem(path=p.pointer, message=str(p)) for p in plan.problems]
        raise ApiError(
            422,
            "the upgrade has problems; nothing was changed",
            code="upgrade_refused",
            details=details,
        )
    result: dict[str, Any] = plan.to_dict() | {"applied": bool(applied)}
    return result


@router.post(
    "/{name}/stores",
    status_code=status.HTTP_201_CREATED,
    summary="Make a pack's templates into recipes for many stores",
)
async def for_stores(
    name: str,
    key: RequireWrite,
    service: PacksDep,
    container: ContainerDep,
    body: Annotated[PackForStores, Body()],
) -> dict[str, list[RecipePublic]]:
    from engine import make_for_stores

    made = await run(
        container,
        lambda: make_for_stores(
            service, key.workspace, name, body.stores, body.inputs, body.templates
        ),
        lambda items: [m.stored for m in items if m.stored is not None],
    )
    return {"recipes": [public_stored(m.stored) for m in made if m.stored is not None]}


def routers() -> list[APIRouter]:
    """The templates and packs routers, for ``Container.routers``."""
    from api.routes import templates

    return [templates.router, router]
