"""Copying a recipe to another store or (an agency's session) another of the agency's
workspaces, and downloading a recipe as its YAML file — through the API's own functions
(:func:`api.routes.recipes.copy_recipe`, :func:`~api.routes.recipes.download_recipe`): the same
checks, the same ``source`` (``copy:WORKSPACE/ID``), the same audit entry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.console.auth import Visitor, VisitorDep
from api.console.forms import Form, read_form
from api.console.pages.listing import WriteVisitor, done
from api.console.pages.workspaces import agency_caller
from api.console.render import page
from api.deps import ContainerDep, SessionDep
from api.errors import ApiError
from api.keys import Caller, clients
from api.models import RecipeCopy
from api.routes.recipes import copy_recipe, download_recipe
from engine import Database, SousError
from sous.container import Container

router = APIRouter()
Slug = Annotated[str, Path(max_length=80)]
FIELDS = ("workspace", "store", "id", "name")


def _targets(session: Session, caller: Caller) -> list[str]:
    """Where this session may copy to: its workspace, and an agency's all of its own."""
    if not caller.agency:
        return [caller.workspace]
    return [caller.home] + [w.id for w in clients(session, caller.home)]


def _form_page(
    request: Request,
    session: Session,
    visitor: Visitor,
    slug: str,
    *,
    errors: dict[str, str] | None = None,
    kept: Form | None = None,
    status_code: int = 200,
) -> Response:
    caller = agency_caller(session, visitor)
    return page(
        request,
        "recipes_copy.html",
        status_code=status_code,
        title=f"Copy {slug}",
        slug=slug,
        targets=_targets(session, caller),
        current=visitor.workspace,
        errors=errors or {},
        kept=kept or Form([]),
    )


@router.get("/recipes/{slug}/copy")
def copy_form(
    slug: Slug,
    request: Request,
    visitor: WriteVisitor,
    session: SessionDep,
    container: ContainerDep,
) -> Response:
    container.engine.recipes.get(visitor.workspace, slug)  # 404 for a recipe not here
    return _form_page(request, session, visitor, slug)


def _body(form: Form) -> RecipeCopy:
    """The API's copy request from the form: blank fields are left out, stores are
    comma-separated."""
    given: dict[str, object] = {k: form.get(k).strip() or None for k in FIELDS}
    stores = [s.strip() for s in form.get("store").split(",") if s.strip()]
    given["store"] = stores[0] if len(stores) == 1 else (stores or None)
    return RecipeCopy.model_validate(given)


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return {str(e["loc"][0]): e["msg"] for e in reversed(exc.errors())}
    if isinstance(exc, ApiError) and exc.status == 404:
        return {"workspace": exc.message}
    message = exc.message if isinstance(exc, ApiError) else str(exc)
    return {"id": message} if "exists" in message or "taken" in message else {"form": message}


def _caller(db: Database, visitor: Visitor) -> Caller:
    with db.read_session() as session:
        return agency_caller(session, visitor)


@router.post("/recipes/{slug}/copy")
async def copy(
    slug: Slug, request: Request, visitor: WriteVisitor, container: ContainerDep
) -> Response:
    form = await read_form(request)
    caller = await run_in_threadpool(_caller, container.db, visitor)
    try:
        body = _body(form)
        made = await copy_recipe(slug, body, caller, container, Response())
    except (ValidationError, ApiError, SousError) as exc:
        return await run_in_threadpool(_again, container, request, visitor, slug, exc, form)
    if body.workspace not in (None, visitor.workspace):
        return done(f"/console/recipes/{slug}", "copied", to=f"{body.workspace}/{made.id}")
    return done(f"/console/recipes/{made.id}", "created")


def _again(
    container: Container, request: Request, visitor: Visitor, slug: str, exc: Exception, form: Form
) -> Response:
    with container.db.read_session() as session:
        return _form_page(
            request, session, visitor, slug, errors=_errors(exc), kept=form, status_code=422
        )


@router.get("/recipes/{slug}/yaml")
def recipe_file(slug: Slug, visitor: VisitorDep, container: ContainerDep) -> Response:
    """The recipe's file (``GET /v1/recipes/{id}/yaml``), to keep or create again."""
    return download_recipe(slug, visitor.workspace, container.engine)
