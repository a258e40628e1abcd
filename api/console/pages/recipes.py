"""Recipes: the list (with each recipe's last run and its failures in the last 24 hours), a new
recipe from YAML, and a recipe's page: its document as YAML to edit (saved as a new version,
refused if someone saved meanwhile; problems shown at their line and field, the text kept),
enable and disable, its versions with a diff and rollback, its recent runs, its decisions about
the latest events of its trigger ("why didn't it fire"), and a dry run on the trigger's sample
or on a past event.

Reads use the API's functions (:mod:`api.recipes_query`, :mod:`api.runs_query`,
:mod:`api.events_query`, the dry run's :func:`~api.routes.dryrun.preview`); changes go through
the engine's recipe store, and the dispatcher's index is refreshed after each, as the API does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ValidationError
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from api.console.auth import Visitor, VisitorDep
from api.console.forms import FormDep
from api.console.pages.listing import PAGE_SIZE, WriteVisitor, as_json, done, link
from api.console.pages.recipe_yaml import Problem, read_recipe, recipe_yaml, where
from api.console.render import PageError, page
from api.deps import ContainerDep, DatabaseDep
from api.errors import not_found
from api.events_query import recipe_decisions
from api.models import MAX_VERSION, DryRunPublic, RecipeDisable, RecipePublic
from api.pagination import Cursor
from api.recipes_query import activity, latest_versions, public_row, search, store_warnings
from api.routes.dryrun import dry_run_event, preview
from api.runs_query import RunLine, runs_page
from api.yaml_body import RECIPE_YAML_EXAMPLE
from engine import (
    ConflictError,
    Event,
    EventRow,
    MatchRow,
    NotFoundError,
    Recipe,
    RecipeError,
    RecipeRow,
    StoredRecipe,
    Tx,
    event_from_row,
)
from sous.container import Container

router = APIRouter()

Slug = Annotated[str, Path(max_length=80)]
WINDOW = timedelta(hours=24)
VERSIONS_SHOWN = 50
RUNS_SHOWN = 10
DECISIONS_SHOWN = 20
DONE = {
    "created": "The recipe is created.",
    "saved": "Saved as a new version.",
    "enabled": "The recipe is enabled: it runs on its next event.",
    "disabled": "The recipe is disabled: events are still recorded with a 'disabled' decision.",
    "rolled-back": "The old version is current again, saved as a new version.",
    "copied": "The copy is made in the other workspace: open it on the Workspaces page.",
}


# -- the list ------------------------------------------------------------------------------
@router.get("/recipes")
async def recipes_list(
    request: Request,
    visitor: VisitorDep,
    db: DatabaseDep,
    container: ContainerDep,
    q: Annotated[str, Query(max_length=200)] = "",
    trigger: Annotated[str, Query(max_length=120)] = "",
    enabled: Annotated[str, Query(max_length=3)] = "",
    cursor: Cursor = None,
) -> Response:
    on = {"yes": True, "no": False}.get(enabled)
    since = container.clock.now() - WINDOW

    def read(s: Session) -> tuple[list[RecipeRow], dict[str, Any]]:
        rows = search(
            s,
            visitor.workspace,
            enabled=on,
            trigger=trigger.strip() or None,
            text=q.strip() or None,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
        shown = rows[:PAGE_SIZE]
        return rows, activity(s, visitor.workspace, [r.uid for r in shown], since)

    rows, lately = await db.query(read)
    params = {"q": q, "trigger": trigger, "enabled": enabled if on is not None else ""}
    more = len(rows) > PAGE_SIZE
    return page(
        request,
        "recipes.html",
        title="Recipes",
        rows=[(row, public_row(row), lately.get(row.uid)) for row in rows[:PAGE_SIZE]],
        filters=params,
        triggers=sorted(container.registry.triggers),
        can_write=visitor.can("write"),
        older=link("/console/recipes", **params, cursor=rows[PAGE_SIZE - 1].slug) if more else "",
        newest=link("/console/recipes", **params) if cursor else "",
    )


# -- a new recipe --------------------------------------------------------------------------
@router.get("/recipes/_new")
async def new_recipe(request: Request, visitor: WriteVisitor) -> Response:
    return _new_page(request, RECIPE_YAML_EXAMPLE)


def _new_page(
    request: Request,
    text: str,
    problems: list[Problem] | None = None,
    problem: str = "",
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "recipes_new.html",
        status_code=status_code,
        title="New recipe",
        text=text,
        problems=problems or [],
        problem=problem,
    )


@router.post("/recipes")
async def create_recipe(
    request: Request, visitor: WriteVisitor, form: FormDep, container: ContainerDep
) -> Response:
    text = form.get("document")
    document, problems = read_recipe(text)
    if document is None:
        return _new_page(request, text, problems, status_code=422)
    recipes = container.engine.recipes
    try:
        stored = await _change(container, lambda: recipes.create(visitor.workspace, document))
    except RecipeError as exc:
        return _new_page(request, text, where(exc.details, text), status_code=422)
    except ConflictError as exc:
        message = f"{str(exc)[:1].upper()}{str(exc)[1:]}: choose another id."
        return _new_page(request, text, problem=message, status_code=409)
    return done(f"/console/recipes/{stored.recipe.id}", "created")


async def _change(container: Container, change: Callable[[], StoredRecipe]) -> StoredRecipe:
    """Apply a change in a thread, then bring the dispatcher's index up to date."""
    stored = await run_in_threadpool(change)
    container.engine.refresh(stored)
    return stored


# -- a recipe's page -----------------------------------------------------------------------
@dataclass
class RecipeView:
    """What a recipe's page shows, read in one go."""

    row: RecipeRow
    recipe: RecipePublic
    versions: list[tuple[int, datetime]]
    runs: list[RunLine]
    decisions: list[tuple[EventRow, MatchRow | None]]
    warnings: list[str]


def _view(session: Session, workspace: str, slug: str) -> RecipeView:
    row = session.exec(
        select(RecipeRow).where(RecipeRow.workspace_id == workspace, RecipeRow.slug == slug)
    ).first()
    if row is None:
        raise not_found("recipe", slug)
    recipe = public_row(row)
    runs, _ = runs_page(session, workspace, recipe=slug, limit=RUNS_SHOWN)
    decisions = recipe_decisions(session, workspace, row.uid, recipe.trigger_type, DECISIONS_SHOWN)
    tx = Tx(session.connection())
    warnings = store_warnings(tx, workspace, Recipe.model_validate(row.document))
    versions = latest_versions(session, row.uid, VERSIONS_SHOWN)
    return RecipeView(row, recipe, versions, runs, decisions, warnings)


@dataclass
class Editing:
    """The editor's state after a refused save: the visitor's text, kept, and why."""

    text: str
    problems: list[Problem] = field(default_factory=list)
    problem: str = ""
    version: int | None = None


@dataclass
class Trial:
    """A dry run asked for: on the trigger's sample, or on a past event (``event_id``)."""

    event_id: str = ""
    result: DryRunPublic | None = None
    problem: str = ""
    rule: str = ""


def _recipe_page(
    request: Request,
    visitor: Visitor,
    view: RecipeView,
    *,
    editing: Editing | None = None,
    trial: Trial | None = None,
    problem: str = "",
    status_code: int = 200,
) -> Response:
    document = dict(view.recipe.document)
    return page(
        request,
        "recipes_detail.html",
        status_code=status_code,
        title=f"Recipe {view.recipe.id}",
        recipe=view.recipe,
        text=editing.text if editing else recipe_yaml(document),
        problems=editing.problems if editing else [],
        save_problem=editing.problem if editing else "",
        based_on=editing.version if editing and editing.version else view.recipe.version,
        versions=view.versions,
        runs=view.runs,
        decisions=view.decisions,
        warnings=view.warnings,
        trial=trial or Trial(),
        problem=problem,
        can_write=visitor.can("write"),
        done=DONE.get(request.query_params.get("done", ""), ""),
        as_json=as_json,
    )


async def _page_again(
    request: Request, visitor: Visitor, container: Container, slug: str, **kw: Any
) -> Response:
    view = await container.db.query(lambda s: _view(s, visitor.workspace, slug))
    return _recipe_page(request, visitor, view, **kw)


@router.get("/recipes/{slug}")
async def recipe_page(
    request: Request, slug: Slug, visitor: VisitorDep, container: ContainerDep
) -> Response:
    return await _page_again(request, visitor, container, slug)


@router.post("/recipes/{slug}")
async def save_recipe(
    request: Request, slug: Slug, visitor: WriteVisitor, form: FormDep, container: ContainerDep
) -> Response:
    text, based_on = form.get("document"), form.get("version")
    if not based_on.isdigit() or not 0 < int(based_on) <= MAX_VERSION:
        raise PageError(400, "The form lacks its version", "Reload the recipe and edit again.")
    document, problems = read_recipe(text)
    recipes = container.engine.recipes
    try:
        if document is not None:
            await _change(
                container, lambda: recipes.update(visitor.workspace, slug, document, int(based_on))
            )
    except RecipeError as exc:
        problems = where(exc.details, text)
    except ConflictError:
        current = await run_in_threadpool(recipes.get, visitor.workspace, slug)
        message = (
            f"Someone saved version {current.version} since you opened version {based_on}. "
            "Your text is kept below: compare it with the current version, then save again "
            f"to replace version {current.version} with it."
        )
        editing = Editing(text, problem=message, version=current.version)
        return await _page_again(
            request, visitor, container, slug, editing=editing, status_code=409
        )
    if problems:
        editing = Editing(text, problems, version=int(based_on))
        return await _page_again(
            request, visitor, container, slug, editing=editing, status_code=422
        )
    return done(f"/console/recipes/{slug}", "saved")


# -- enable, disable, rollback -------------------------------------------------------------
@router.post("/recipes/{slug}/enable")
async def enable_recipe(slug: Slug, visitor: WriteVisitor, container: ContainerDep) -> Response:
    recipes = container.engine.recipes
    await _change(container, lambda: recipes.set_enabled(visitor.workspace, slug, True))
    return done(f"/console/recipes/{slug}", "enabled")


@router.post("/recipes/{slug}/disable")
async def disable_recipe(
    request: Request, slug: Slug, visitor: WriteVisitor, form: FormDep, container: ContainerDep
) -> Response:
    try:
        reason = RecipeDisable.model_validate({"reason": form.get("reason").strip() or None})
    except ValidationError:
        problem = "The reason is up to 1,000 characters of plain text."
        return await _page_again(
            request, visitor, container, slug, problem=problem, status_code=422
        )
    recipes = container.engine.recipes
    await _change(
        container, lambda: recipes.set_enabled(visitor.workspace, slug, False, reason.reason)
    )
    return done(f"/console/recipes/{slug}", "disabled")


@router.post("/recipes/{slug}/rollback")
async def rollback_recipe(
    request: Request, slug: Slug, visitor: WriteVisitor, form: FormDep, container: ContainerDep
) -> Response:
    version = form.get("version")
    if not version.isdigit() or not 0 < int(version) <= MAX_VERSION:
        raise PageError(400, "Choose a version to go back to", "Use the versions list's buttons.")
    recipes = container.engine.recipes
    try:
        await _change(container, lambda: recipes.rollback(visitor.workspace, slug, int(version)))
    except RecipeError as exc:  # an old version the registry no longer accepts
        problem = f"Version {version} cannot be made current: " + "; ".join(
            str(d) for d in exc.details
        )
        return await _page_again(
            request, visitor, container, slug, problem=problem, status_code=422
        )
    except NotFoundError as exc:
        if exc.kind == "recipe":
            raise
        problem = f"This recipe has no version {version}."
        return await _page_again(
            request, visitor, container, slug, problem=problem, status_code=422
        )
    return done(f"/console/recipes/{slug}", "rolled-back")


# -- diff and dry run ----------------------------------------------------------------------
@router.get("/recipes/{slug}/diff")
async def diff_versions(
    request: Request,
    slug: Slug,
    visitor: VisitorDep,
    container: ContainerDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to: Annotated[int, Query(ge=1, le=MAX_VERSION)],
) -> Response:
    recipes = container.engine.recipes
    text = await run_in_threadpool(recipes.diff, visitor.workspace, slug, from_, to)
    return page(
        request,
        "recipes_diff.html",
        title=f"Recipe {slug}: version {from_} to {to}",
        slug=slug,
        from_=from_,
        to=to,
        lines=text.splitlines()[2:],
    )


@router.get("/recipes/{slug}/test")
async def dry_run_page(
    request: Request,
    slug: Slug,
    visitor: VisitorDep,
    container: ContainerDep,
    event_id: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """A dry run of the saved recipe: nothing is executed, nothing is written."""
    view = await container.db.query(lambda s: _view(s, visitor.workspace, slug))
    recipe = Recipe.model_validate(view.row.document)
    trial = Trial(event_id=event_id.strip())
    event = await container.db.query(lambda s: _trial_event(s, container, view, trial))
    if event is None:
        return _recipe_page(request, visitor, view, trial=trial, status_code=422)
    trial.result = preview(recipe, event, container)
    condition = (trial.result.reason or {}).get("condition")
    if isinstance(condition, int) and 0 <= condition < len(recipe.conditions):
        trial.rule = as_json(recipe.conditions[condition])
    return _recipe_page(request, visitor, view, trial=trial)


@router.post("/recipes/{slug}/test-run")
async def test_run(
    request: Request, slug: Slug, visitor: WriteVisitor, form: FormDep, container: ContainerDep
) -> Response:
    """A test run of the saved recipe (:mod:`engine.ops.testrun`): executed for real, its reads
    made and its writes recorded as "would do"; the run's page shows what would have happened."""
    view = await container.db.query(lambda s: _view(s, visitor.workspace, slug))
    trial = Trial(event_id=form.get("event_id").strip()[:40])
    event = await container.db.query(lambda s: _trial_event(s, container, view, trial))
    if event is None:
        return _recipe_page(request, visitor, view, trial=trial, status_code=422)
    started = await container.engine.test_run(visitor.workspace, slug, event)
    if started.run_id is None:
        trial.result = preview(Recipe.model_validate(view.row.document), event, container)
        return _recipe_page(request, visitor, view, trial=trial, status_code=422)
    return done(f"/console/runs/{started.run_id}", "test")


def _trial_event(
    session: Session, container: Container, view: RecipeView, trial: Trial
) -> Event | None:
    """The event to try: the past event ``trial.event_id`` of the workspace, or the trigger's
    sample; ``None`` (and ``trial.problem`` says why) when the workspace has no such event."""
    workspace = view.row.workspace_id
    if not trial.event_id:
        recipe = Recipe.model_validate(view.row.document)
        return dry_run_event(container, workspace, recipe)
    row = session.get(EventRow, trial.event_id)
    if row is None or row.workspace_id != workspace:
        trial.problem = f"No event of this workspace has the id “{trial.event_id}”."
        return None
    return event_from_row(row)
