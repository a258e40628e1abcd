"""Test runs: a saved recipe run for real on an event, its reads made and its writes (store,
e-mail, HTTP, events) recorded as ``would_do``, not made. The run is a run like any other:
``GET /v1/runs/{run_id}`` shows its trace, each write with the input it would have sent."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import Session

from api.deps import ContainerDep, RequireWrite, SessionDep
from api.errors import invalid, responses
from api.models import TestRunAccepted, TestRunRequest
from api.routes.dryrun import dry_run_event
from engine import Event, EventRow, event_from_row
from sous.container import Container

router = APIRouter(prefix="/v1/recipes", tags=["recipes"], responses=responses(401, 403, 404, 422))


def _event(
    session: Session, container: Container, workspace: str, slug: str, body: TestRunRequest
) -> Event:
    if body.event is not None and body.event_id is not None:
        raise invalid("/event_id", "give either event or event_id, not both")
    if body.event_id is not None:
        row = session.get(EventRow, body.event_id)
        if row is None or row.workspace_id != workspace:
            raise invalid("/event_id", "no event of your workspace has this id (GET /v1/events)")
        return event_from_row(row)
    recipe = container.engine.recipes.get(workspace, slug).recipe
    given = body.event
    return dry_run_event(
        container,
        workspace,
        recipe,
        type_=given.type if given else None,
        payload=given.payload if given else None,
        store=given.store if given else None,
    )


@router.post(
    "/{recipe_id}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run a saved recipe in test mode: reads made, writes recorded as would_do",
)
async def start_test_run(
    recipe_id: str,
    body: TestRunRequest,
    caller: RequireWrite,
    session: SessionDep,
    container: ContainerDep,
) -> TestRunAccepted:
    event = _event(session, container, caller.workspace, recipe_id, body)
    started = await container.engine.test_run(caller.workspace, recipe_id, event)
    return TestRunAccepted(
        mode=body.mode,
        matched=started.matched,
        stage=started.stage,
        reason=started.reason,
        run_id=started.run_id,
        event_id=started.event_id,
    )
