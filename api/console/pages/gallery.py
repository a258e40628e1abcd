"""The template gallery: the templates offered to the workspace (its installed packs and the
library), grouped by pack and category; each opens a form generated from its typed inputs, with
a preview (a dry run of the recipe it makes, on the trigger's sample event) before saving.

Inputs that name a product, variant, category, customer group or order status get a picker:
the field takes ids, and a list of the store's matching items is loaded after the page (an htmx
fragment, ``/console/lookup/{kind}``: one bounded request to the store).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from api.console.auth import Visitor, VisitorDep
from api.console.forms import Form, read_form
from api.console.render import PageError, page, render
from api.deps import ContainerDep
from api.routes.dryrun import dry_run_event, preview
from api.routes.packs import pack_service
from api.routes.templates import TemplateInstantiate, make_from_template
from connectors.bigcommerce.client import BigCommerceClient
from connectors.bigcommerce.lookup import KINDS, Choice, Names, lookup
from connectors.bigcommerce.stores import BigCommerceStores
from engine import (
    ConflictError,
    NotFoundError,
    PackError,
    RecipeError,
    RegistryError,
    SousError,
    StoreRow,
    TemplateEntry,
    validate_document,
)
from sous.container import Container

router = APIRouter()

PICKERS = frozenset(KINDS)
PLURALS = {
    "product": "products",
    "variant": "variants (by SKU or product id)",
    "category": "categories",
    "customer_group": "customer groups",
    "order_status": "order statuses",
}
MAX_STORES = 100
LOOKUP_WAIT = 5.0
"""Seconds a picker's lookup may wait for the store (its quota) before saying it is busy."""


# -- connected stores --------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreChoice:
    store_hash: str
    name: str


def connected_stores(container: Container, workspace: str) -> list[StoreChoice]:
    """The workspace's connected stores, by name (at most :data:`MAX_STORES`). Blocking."""
    with container.db.read_session() as s:
        rows = s.exec(
            select(StoreRow.store_hash, StoreRow.name)
            .where(StoreRow.workspace_id == workspace)
            .order_by(col(StoreRow.name), col(StoreRow.store_hash))
            .limit(MAX_STORES)
        ).all()
    return [StoreChoice(h, n or h) for h, n in rows]


async def store_client(
    container: Container, workspace: str, store: str
) -> tuple[BigCommerceClient, BigCommerceStores | None]:
    """The client of a connected store (``NotFoundError`` if it is not the workspace's), from
    the BigCommerce connector's stores, else from the registered client provider."""
    stores = container.services.find(BigCommerceStores)
    if stores is not None:
        return (await stores.get(workspace, store)).client, stores
    from connectors.backorder.config import provider_of

    try:
        provider = provider_of(container.services)
    except LookupError:
        raise NotFoundError("store", store) from None
    return await provider.client(workspace, store), None


# -- the form's fields -------------------------------------------------------------------------
@dataclass
class Field:
    """One input of a template as a form field."""

    name: str
    type: str
    label: str
    help: str
    required: bool
    widget: str
    value: str = ""
    chosen: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    options: list[tuple[str, str]] = field(default_factory=list)
    picker: str | None = None
    picking: str = ""
    multiple: bool = False
    hint: str = ""
    error: str | None = None

    @property
    def id(self) -> str:
        return f"in-{self.name}"


HINTS = {
    "emails": "Separate addresses with commas.",
    "duration": "For example 90m, 12h or 14d.",
    "time_of_day": "24-hour time, HH:MM.",
    "url": "An http(s) address.",
}
WIDGETS = {
    "number": "number",
    "integer": "number",
    "boolean": "checkbox",
    "email": "email",
    "url": "url",
    "time_of_day": "time",
}


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return str(value)


def _field(name: str, spec: Any, given: Form | None) -> Field:
    kind = str(spec.type.value)
    item = Field(
        name=name,
        type=kind,
        label=spec.label,
        help=spec.description,
        required=spec.required,
        widget=WIDGETS.get(kind, "text"),
        multiple=bool(spec.multiple),
        hint=HINTS.get(kind, ""),
    )
    key = f"input.{name}"
    default = spec.default if spec.default is not None else None
    item.value = given.get(key) if given is not None else _shown(default)
    if kind == "boolean":
        item.value = "true" if (key in given if given is not None else default is True) else ""
    if kind in ("number", "integer"):
        item.attrs = {"step": "1" if kind == "integer" else "any"}
        for bound in ("min", "max"):
            if getattr(spec, bound) is not None:
                item.attrs[bound] = _number(getattr(spec, bound))
        if spec.min is not None or spec.max is not None:
            item.hint = _bounds(spec.min, spec.max)
    if kind == "string":
        item.attrs = {
            k: str(getattr(spec, k)) for k in ("max_length", "min_length") if getattr(spec, k)
        }
        item.widget = "textarea" if (spec.max_length or 0) > 255 else "text"
    if kind == "choice":
        item.options = [(_shown(o.value), o.label or _shown(o.value)) for o in spec.options]
        item.widget = "checkboxes" if spec.multiple else "select"
        picked = given.all(key) if given is not None else _as_list(default)
        item.chosen = [str(v) for v in picked]
    if kind in PICKERS:
        item.picker, item.picking = kind, PLURALS[kind]
        item.hint = "Ids, separated by commas." if spec.multiple else "An id."
    return item


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [_shown(v) for v in value] if isinstance(value, list) else [_shown(value)]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"Between {_number(low)} and {_number(high)}."
    if low is not None:
        return f"At least {_number(low)}."
    return f"At most {_number(high)}." if high is not None else ""


def fields_of(entry: TemplateEntry, given: Form | None = None) -> list[Field]:
    return [_field(name, spec, given) for name, spec in entry.template.inputs.items()]


def inputs_from(entry: TemplateEntry, form: Form) -> dict[str, Any]:
    """The instantiate API's ``inputs`` from a submitted form: an empty field is left out (its
    default applies, or it is reported as required); a box not ticked is false."""
    inputs: dict[str, Any] = {}
    for name, spec in entry.template.inputs.items():
        key, kind = f"input.{name}", str(spec.type.value)
        if kind == "boolean":
            inputs[name] = "true" if key in form else "false"
        elif kind == "choice" and spec.multiple:
            inputs[name] = form.all(key)
        else:
            raw = form.get(key).strip()
            if raw:
                inputs[name] = raw
    return inputs


# -- pages ---------------------------------------------------------------------------------------
def _grouped(entries: list[TemplateEntry]) -> list[dict[str, Any]]:
    packs: dict[str, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: (e.pack.name, e.template.name.lower())):
        group = packs.setdefault(
            entry.pack.name,
            {"pack": entry.pack, "installed": entry.installed, "categories": defaultdict(list)},
        )
        category = entry.template.tags[0] if entry.template.tags else "other"
        group["categories"][category].append(entry)
    return [group | {"categories": sorted(group["categories"].items())} for group in packs.values()]


@router.get("/templates")
def gallery(request: Request, visitor: VisitorDep, container: ContainerDep) -> Response:
    service = pack_service(request, container)
    entries = service.templates(visitor.workspace)
    return page(request, "gallery.html", title="Templates", groups=_grouped(entries))


def _entry(request: Request, container: Container, workspace: str, pack: str, template: str) -> Any:
    service = pack_service(request, container)
    try:
        return service.find(workspace, f"{pack}/{template}")
    except (NotFoundError, ConflictError):
        raise PageError(
            404,
            "No such template",
            "It is not in an installed pack nor in the library. Pick one from the gallery.",
        ) from None


def _form_page(
    request: Request,
    container: Container,
    entry: TemplateEntry,
    given: Form | None,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    problems: list[str] | None = None,
    result: Any = None,
) -> HTMLResponse:
    visitor = request.state.visitor
    fields = fields_of(entry, given)
    for item in fields:
        item.error = (errors or {}).get(item.name)
    stores = connected_stores(container, visitor.workspace)
    extra = {k: given.get(k) if given else "" for k in ("recipe_id", "recipe_name", "store")}
    return page(
        request,
        "gallery_form.html",
        status_code=status,
        title=entry.template.name,
        entry=entry,
        fields=fields,
        stores=stores,
        extra=extra,
        errors={"store": "", "recipe_id": "", "recipe_name": ""} | (errors or {}),
        has_errors=bool(errors),
        problems=problems or [],
        result=result,
        can_save=visitor.can("write"),
    )


@router.get("/templates/{pack}/{template}")
async def template_form(
    pack: str, template: str, request: Request, visitor: VisitorDep, container: ContainerDep
) -> Response:
    entry = await run_in_threadpool(_entry, request, container, visitor.workspace, pack, template)
    return await run_in_threadpool(_form_page, request, container, entry, None)


def _errors_of(exc: Exception) -> tuple[dict[str, str], list[str]]:
    """Field errors (by input name, or ``recipe_id``/``recipe_name``/``store``) and the rest."""
    fields: dict[str, str] = {}
    rest: list[str] = []
    if isinstance(exc, RecipeError):
        for detail in exc.details:
            if detail.loc[:1] == ("inputs",) and len(detail.loc) > 1:
                fields.setdefault(str(detail.loc[1]), detail.message)
            elif detail.loc[:1] == ("id",):
                fields.setdefault("recipe_id", detail.message)
            else:
                rest.append(str(detail))
    elif isinstance(exc, ValidationError):
        names = {"id": "recipe_id", "name": "recipe_name", "store": "store"}
        for error in exc.errors():
            where = str(error["loc"][0]) if error["loc"] else ""
            fields.setdefault(names.get(where, where), str(error["msg"]))
    elif isinstance(exc, ConflictError):
        fields["recipe_id"] = str(exc)
    else:
        rest.append(str(getattr(exc, "message", exc)))
    return fields, rest


def _body(form: Form, inputs: dict[str, Any], *, dry_run: bool) -> TemplateInstantiate:
    return TemplateInstantiate(
        inputs=inputs,
        id=form.get("recipe_id").strip() or None,
        name=form.get("recipe_name").strip() or None,
        store=form.get("store").strip() or None,
        dry_run=dry_run,
    )


def _would(container: Container, workspace: str, document: dict[str, Any]) -> dict[str, Any]:
    """The dry run of a made recipe on its trigger's sample event, for the page."""
    recipe, details = validate_document(document, container.registry)
    if recipe is None:
        return {"problem": "; ".join(str(d) for d in details)}
    stores = recipe.stores()
    try:
        event = dry_run_event(container, workspace, recipe, store=stores[0] if stores else None)
    except RegistryError:
        return {"problem": f"the trigger {recipe.trigger.type} has no sample event to try"}
    outcome = preview(recipe, event, container)
    steps = [
        step.model_dump() | {"shown": json.dumps(step.params, indent=2, default=str)}
        for step in outcome.steps
    ]
    return outcome.model_dump() | {"steps": steps, "trigger": event.type, "problem": None}


@router.post("/templates/{pack}/{template}")
async def make(
    pack: str, template: str, request: Request, visitor: VisitorDep, container: ContainerDep
) -> Response:
    entry = await run_in_threadpool(_entry, request, container, visitor.workspace, pack, template)
    form = await read_form(request)
    saving = form.get("do") == "save"
    if saving and not visitor.can("write"):
        raise PageError(403, "Your session may only read", "Sign in with a write key to save.")
    service = pack_service(request, container)
    try:
        body = _body(form, inputs_from(entry, form), dry_run=not saving)
        made = await make_from_template(
            service, container, visitor.workspace, entry.pack.name, entry.template.id, body
        )
    except (RecipeError, ConflictError, ValidationError, PackError) as exc:
        errors, problems = _errors_of(exc)
        return await run_in_threadpool(
            _form_page, request, container, entry, form, status=422, errors=errors,
            problems=problems,
        )  # fmt: skip
    if saving and made.recipe is not None:
        return RedirectResponse(f"/console/recipes/{quote(made.recipe.id)}", status_code=303)
    result = await run_in_threadpool(_would, container, visitor.workspace, made.document)
    return await run_in_threadpool(_form_page, request, container, entry, form, result=result)


# -- pickers -------------------------------------------------------------------------------------
async def _choices(
    container: Container, visitor: Visitor, kind: str, store: str, query: str
) -> tuple[list[Choice], str | None]:
    try:
        client, stores = await store_client(container, visitor.workspace, store)
    except NotFoundError:
        return [], "That store is not connected to this workspace."
    groups: Names | None = None
    statuses: Names | None = None
    if stores is not None:
        handle = await stores.get(visitor.workspace, store)
        groups, statuses = handle.customer_groups, handle.order_statuses
    try:
        found = await asyncio.wait_for(
            lookup(client, kind, query, groups=groups, statuses=statuses), LOOKUP_WAIT
        )
    except TimeoutError:
        return [], "The store is busy (its API quota is spent for now). Try again in a moment."
    except SousError as exc:
        return [], f"The store could not be read: {exc}"
    return found, None


@router.get("/lookup/{kind}")
async def picker(
    kind: str,
    request: Request,
    visitor: VisitorDep,
    container: ContainerDep,
    field: str = "",
    store: str = "",
    q: str = "",
    multiple: bool = False,
) -> Response:
    """An htmx fragment: the store's items of ``kind`` matching ``q`` (from ``store``, else the
    first connected store), each a button that puts its id in the field ``field``."""
    if kind not in PICKERS:
        raise PageError(404, "No such picker")
    if not store:
        stores = await run_in_threadpool(connected_stores, container, visitor.workspace)
        store = stores[0].store_hash if stores else ""
    found: list[Choice] = []
    problem = None
    if not store:
        problem = "Connect a store to choose from its items; meanwhile, type ids."
    else:
        found, problem = await _choices(container, visitor, kind, store, q[:100])
    body = render(
        request,
        "gallery_picks.html",
        kind=kind,
        field=field[:40],
        multiple=multiple,
        choices=found,
        problem=problem,
        store=store,
    )
    return HTMLResponse(body)
