"""Dry-runs: would a recipe fire on an event, which condition said no, and what each step
would receive. Nothing is executed and nothing is written."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from sqlmodel import Session

from api.deps import ContainerDep, SessionDep, WorkspaceDep
from api.errors import ApiError, ErrorItem, invalid, responses
from api.models import DryRunPublic, DryRunRequest, DryRunUnsaved, StepPreviewPublic
from engine import Event, EventRow, Recipe, dry_run, event_from_row, validate_document
from sous.container import Container

router = APIRouter(prefix="/v1/recipes", tags=["recipes"], responses=responses(401, 403, 404, 422))


def _event(
    session: Session,
    container: Container,
    workspace: str,
    recipe: Recipe,
    body: DryRunRequest | None,
) -> Event:
    if body is not None and body.event is not None and body.event_id is not None:
        raise invalid("/event_id", "give either event or event_id, not both")
    if body is not None and body.event_id is not None:
        row = session.get(EventRow, body.event_id)
        if row is None or row.workspace_id != workspace:  # the path's recipe exists: 422, not 404
            raise invalid("/event_id", "no event of your workspace has this id (GET /v1/events)")
        return event_from_row(row)
    given = body.event if body is not None else None
    return dry_run_event(
        container,
        workspace,
        recipe,
        type_=given.type if given else None,
        payload=given.payload if given else None,
        store=given.store if given else None,
    )


def dry_run_event(
    container: Container,
    workspace: str,
    recipe: Recipe,
    *,
    type_: str | None = None,
    payload: dict[str, Any] | None = None,
    store: str | None = None,
) -> Event:
    """An event to dry-run ``recipe`` on: of the recipe's trigger type and with the trigger's
    sample payload, unless a type or payload is given."""
    if payload is None:
        payload = container.registry.trigger(recipe.trigger.type).sample
    now = container.clock.now()
    return Event(
        id="evt_dry_run",
        type=type_ or recipe.trigger.type,
        payload=payload,
        workspace=workspace,
        store=store,
        source="dry-run",
        dedup_key="dry-run",
        occurred_at=now,
        received_at=now,
    )


def preview(recipe: Recipe, event: Event, container: Container) -> DryRunPublic:
    """Would ``recipe`` fire on ``event``, and what each step would receive (nothing runs)."""
    result = dry_run(recipe, event, container.registry, container.clock.now).to_dict()
    stores = recipe.stores()
    if event.type != recipe.trigger.type:
        result.update(
            matched=False,
            stage="trigger",
            reason={"message": f"the recipe listens to {recipe.trigger.type}, not {event.type}"},
        )
    elif stores is not None and event.store not in stores:
        result.update(
            matched=False,
            stage="store",
            reason={"message": f"the recipe is limited to stores {', '.join(stores)}"},
        )
    steps = [StepPreviewPublic(**step) for step in result.pop("steps")]
    return DryRunPublic(**result, steps=steps)


@router.post("/test", summary="Dry-run an unsaved recipe document on an event")
def dry_run_document(
    body: DryRunUnsaved, workspace: WorkspaceDep, session: SessionDep, container: ContainerDep
) -> DryRunPublic:
    recipe, details = validate_document(body.recipe, container.registry)
    if recipe is None:
        items = [ErrorItem(path="/recipe" + d.pointer, message=d.message) for d in details]
        raise ApiError(422, "the recipe is invalid", code="invalid_recipe", details=items)
    return preview(recipe, _event(session, container, workspace, recipe, body), container)


@router.post("/{recipe_id}/test", summary="Dry-run a saved recipe on an event")
def dry_run_recipe(
    recipe_id: str,
    workspace: WorkspaceDep,
    session: SessionDep,
    container: ContainerDep,
    body: Annotated[DryRunRequest | None, Body()] = None,
) -> DryRunPublic:
    recipe = container.engine.recipes.get(workspace, recipe_id).recipe
    return preview(recipe, _event(session, container, workspace, recipe, body), container)
