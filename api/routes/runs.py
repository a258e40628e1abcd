"""Runs: list, show with the step trace, replay, release or discard a held run, cancel a
waiting one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentKey, DatabaseDep, EngineDep, RequireWrite, store_aware
from api.errors import ApiError, not_found, responses
from api.keys import Caller
from api.models import ReplayAccepted, ReplayRequest, RunDetail, RunsPublic, UtcDateTime
from api.pagination import Cursor, Limit
from api.runs_bulk import Action, BulkReport, BulkRequest, run_bulk, statuses
from api.runs_query import public_run, run_detail, runs_page
from engine import Database, Engine, RunChanges, Text

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=responses(401, 403, 422))


@router.get("", summary="List runs, newest first")
@store_aware
async def list_runs(
    caller: CurrentKey,
    db: DatabaseDep,
    recipe: Annotated[Text | None, Query(max_length=80, description="A recipe id")] = None,
    status: Annotated[Text | None, Query(max_length=30)] = None,
    event_id: Annotated[Text | None, Query(max_length=40)] = None,
    since: Annotated[UtcDateTime | None, Query(description="Created at or after")] = None,
    until: Annotated[UtcDateTime | None, Query(description="Created before")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> RunsPublic:
    data, next_cursor = await db.query(
        lambda s: runs_page(
            s,
            caller.workspace,
            recipe=recipe,
            status=status,
            event_id=event_id,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            stores=caller.stores,
        )
    )
    return RunsPublic(data=[public_run(run, slug) for run, slug in data], next_cursor=next_cursor)


@router.get("/{run_id}", summary="Show a run with its step trace", responses=responses(404))
@store_aware
async def show_run(run_id: str, caller: CurrentKey, db: DatabaseDep) -> RunDetail:
    return await db.query(lambda s: run_detail(s, caller.workspace, run_id, caller.stores))


_BULK = (
    "Counts the runs the filter names; with `preview: false`, also acts on up to `limit` of "
    "them (oldest id first) and answers `next` while more remain: call again with `after` set "
    "to it and `upto` to the first answer's `upto`."
)


async def _bulk(action: Action, body: BulkRequest, caller: Caller, engine: Engine) -> BulkReport:
    try:
        wanted = statuses(action, body.status)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return await run_bulk(engine, caller.workspace, action, body, wanted)


@router.post(
    "/bulk/replay",
    summary="Replay the finished runs a filter names (failed by default), preview first",
    description=_BULK + " Each replay is a new run; `made` lists them.",
)
async def bulk_replay(body: BulkRequest, caller: RequireWrite, engine: EngineDep) -> BulkReport:
    return await _bulk("replay", body, caller, engine)


@router.post(
    "/bulk/release",
    summary="Let the held runs a filter names go ahead, preview first",
    description=_BULK,
)
async def bulk_release(body: BulkRequest, caller: RequireWrite, engine: EngineDep) -> BulkReport:
    return await _bulk("release", body, caller, engine)


@router.post(
    "/bulk/discard",
    summary="Drop the held runs a filter names, preview first",
    description=_BULK,
)
async def bulk_discard(body: BulkRequest, caller: RequireWrite, engine: EngineDep) -> BulkReport:
    return await _bulk("discard", body, caller, engine)


@router.post(
    "/{run_id}/replay",
    status_code=202,
    summary="Run the same event through the recipe again, as a new run",
    responses=responses(404, 409),
)
async def replay_run(
    run_id: str, caller: RequireWrite, engine: EngineDep, body: ReplayRequest | None = None
) -> ReplayAccepted:
    asked = body or ReplayRequest()
    made = await engine.replay(
        run_id, asked.from_, asked.recipe_version, workspace=caller.workspace
    )
    return ReplayAccepted(
        run_id=made.run_id,
        event_id=made.event_id,
        recipe_version=made.recipe_version,
        from_step=made.from_step,
    )


Change = Callable[[Sequence[str], str], Awaitable[RunChanges]]


async def _change(db: Database, workspace: str, run_id: str, op: Change) -> RunDetail:
    changes = await op([run_id], workspace)
    if run_id in changes.missing:
        raise not_found("run", run_id)
    if run_id in changes.refused:
        raise ApiError(409, changes.refused[run_id])

    def read() -> RunDetail:
        with db.read_session() as session:
            return run_detail(session, workspace, run_id)

    return await run_in_threadpool(read)


@router.post("/{run_id}/release", summary="Let a held run go ahead", responses=responses(404, 409))
async def release_run(
    run_id: str, caller: RequireWrite, engine: EngineDep, db: DatabaseDep
) -> RunDetail:
    return await _change(
        db, caller.workspace, run_id, lambda ids, ws: engine.release(ids, workspace=ws)
    )


@router.post("/{run_id}/discard", summary="Drop a held run", responses=responses(404, 409))
async def discard_run(
    run_id: str, caller: RequireWrite, engine: EngineDep, db: DatabaseDep
) -> RunDetail:
    return await _change(
        db, caller.workspace, run_id, lambda ids, ws: engine.discard(ids, workspace=ws)
    )


@router.post(
    "/{run_id}/cancel",
    summary="Cancel a run that has not finished",
    description="A run that is executing a step right now stops at the end of that step.",
    responses=responses(404, 409),
)
async def cancel_run(
    run_id: str, caller: RequireWrite, engine: EngineDep, db: DatabaseDep
) -> RunDetail:
    return await _change(
        db, caller.workspace, run_id, lambda ids, ws: engine.cancel(ids, workspace=ws)
    )
