"""Backtests: what a recipe (saved, or an unsaved draft) would have done over the stored events
of a time range — how often it would have fired, on what, and which conditions said no how many
times. Nothing is executed and nothing is written.

The work reads the database for as long as the range takes (about 30,000 events a second on
SQLite); these handlers are plain functions, so it runs in the thread pool, beside the event
loop rather than on it."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContainerDep, WorkspaceDep
from api.errors import ApiError, ErrorItem, invalid, responses
from api.models import BacktestPublic, BacktestRequest, BacktestUnsaved
from engine import Recipe, backtest, validate_document
from sous.container import Container

router = APIRouter(prefix="/v1/recipes", tags=["recipes"], responses=responses(401, 403, 404, 422))


def _run(
    container: Container,
    workspace: str,
    recipe: Recipe,
    body: BacktestRequest,
    uid: str | None = None,
) -> BacktestPublic:
    until = body.until
    if until is not None and until <= body.since:
        raise invalid("/until", "until must be later than since")
    report = backtest(
        container.db,
        container.registry,
        recipe,
        workspace,
        body.since,
        until,
        uid=uid,
        limit=body.limit,
    )
    return BacktestPublic.model_validate(report.to_dict())


@router.post("/backtest", summary="Backtest an unsaved recipe document on stored events")
def backtest_document(
    body: BacktestUnsaved, workspace: WorkspaceDep, container: ContainerDep
) -> BacktestPublic:
    recipe, details = validate_document(body.recipe, container.registry)
    if recipe is None:
        items = [ErrorItem(path="/recipe" + d.pointer, message=d.message) for d in details]
        raise ApiError(422, "the recipe is invalid", code="invalid_recipe", details=items)
    return _run(container, workspace, recipe, body)


@router.post("/{recipe_id}/backtest", summary="Backtest a saved recipe on stored events")
def backtest_recipe(
    recipe_id: str, body: BacktestRequest, workspace: WorkspaceDep, container: ContainerDep
) -> BacktestPublic:
    stored = container.engine.recipes.get(workspace, recipe_id)
    return _run(container, workspace, stored.recipe, body, uid=stored.uid)
