"""Runs: the list newest first (by recipe, status and time; held runs released or discarded in
bulk), updated live, and a run's page with its step trace and what can be done with it (replay
from the start or from the failed step, cancel, release or discard a held run).

The list and the trace are read by the API's own functions (:mod:`api.runs_query`); the changes
go through the engine as the API's do, scoped to the visitor's workspace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.console.auth import Visitor, VisitorDep
from api.console.forms import FormDep
from api.console.pages.listing import (
    LIVE_HINT,
    PAGE_SIZE,
    WriteVisitor,
    as_json,
    count_of,
    done,
    link,
    when_given,
)
from api.console.render import PageError, page, render
from api.deps import DatabaseDep, EngineDep
from api.models import RunDetail
from api.pagination import Cursor
from api.routes.approvals import ApprovalPublic, pending_approvals
from api.runs_query import RunLine, run_detail, runs_page
from engine import FINAL, ConflictError, Database, RunChanges, RunStatus

router = APIRouter()

RunId = Annotated[str, Path(max_length=40)]
STATUSES = [status.value for status in RunStatus]
BULK_MOST = 200
"""Runs one bulk release or discard takes at most (four pages of the list)."""
DONE = {
    "replayed": "This is the replay: a new run of the same event.",
    "test": "This is a test run: its reads are made, its writes are recorded as “would do”, "
    "not sent. Reload to follow it.",
    "cancelled": "The run is cancelled (one executing a step stops when that step ends).",
    "released": "The run is released: it goes ahead when its recipe has a free slot.",
    "discarded": "The run is discarded.",
}


@dataclass(frozen=True)
class RunFilters:
    """The list's filters, as typed (times are read in :func:`_read`)."""

    recipe: str = ""
    status: str = ""
    since: str = ""
    until: str = ""


async def _filters(
    recipe: Annotated[str, Query(max_length=80)] = "",
    status: Annotated[str, Query(max_length=30)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
) -> RunFilters:
    return RunFilters(recipe.strip(), status.strip(), since.strip(), until.strip())


FiltersDep = Annotated[RunFilters, Depends(_filters)]


@dataclass(frozen=True)
class Listing:
    lines: list[RunLine]
    next_cursor: str | None
    problems: list[str]


async def _read(db: Database, workspace: str, filters: RunFilters, cursor: str | None) -> Listing:
    problems: list[str] = []
    since = when_given(filters.since, "Since", problems)
    until = when_given(filters.until, "Until", problems)
    status = filters.status or None
    if status is not None and status not in STATUSES:
        problems.append(f"Status: “{status}” is not one a run takes.")
        status = None
    lines, next_cursor = await db.query(
        lambda s: runs_page(
            s,
            workspace,
            recipe=filters.recipe or None,
            status=status,
            since=since,
            until=until,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
    )
    return Listing(lines, next_cursor, problems)


@router.get("/runs")
async def runs_list(
    request: Request,
    visitor: VisitorDep,
    db: DatabaseDep,
    filters: FiltersDep,
    cursor: Cursor = None,
) -> Response:
    listing = await _read(db, visitor.workspace, filters, cursor)
    params = asdict(filters)
    done_what = request.query_params.get("done", "")
    return page(
        request,
        "runs.html",
        status_code=422 if listing.problems else 200,
        title="Runs",
        filters=filters,
        statuses=STATUSES,
        lines=listing.lines,
        problems=listing.problems,
        can_write=visitor.can("write"),
        live=link("/console/runs/rows", **params) if cursor is None else "",
        live_hint=LIVE_HINT,
        older=link("/console/runs", **params, cursor=listing.next_cursor)
        if listing.next_cursor
        else "",
        newest=link("/console/runs", **params) if cursor else "",
        back=link("/console/runs", **params, cursor=cursor),
        bulk_done=_bulk_message(done_what, request.query_params),
    )


@router.get("/runs/rows")
async def runs_rows(
    request: Request, visitor: VisitorDep, db: DatabaseDep, filters: FiltersDep
) -> Response:
    """The list's first page of rows alone, for live updates."""
    listing = await _read(db, visitor.workspace, filters, None)
    body = render(request, "runs_rows.html", lines=listing.lines, can_write=visitor.can("write"))
    return HTMLResponse(body)


def _bulk_message(what: str, query: Any) -> str:
    if what not in ("released", "discarded", "none-chosen"):
        return ""
    if what == "none-chosen":
        return "Choose the held runs to release or discard first."
    changed, skipped = count_of(query.get("n", "")), count_of(query.get("skipped", ""))
    text = f"{what.capitalize()} {changed} held run{'s' if changed != 1 else ''}."
    if skipped:
        text += f" {skipped} could not be (no longer held, or not found)."
    return text


def _back(value: str) -> tuple[str, dict[str, str]]:
    """The list the bulk form came from (this site's runs list only), and its filters."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path != "/console/runs":
        return "/console/runs", {}
    keep = ("recipe", "status", "since", "until", "cursor")
    return "/console/runs", {k: v for k, v in parse_qsl(parts.query) if k in keep}


@router.post("/runs/bulk")
async def bulk(visitor: WriteVisitor, form: FormDep, engine: EngineDep) -> Response:
    """Release or discard the chosen held runs, all in one change."""
    action = form.get("action")
    if action not in ("release", "discard"):
        raise PageError(400, "Choose release or discard", "Go back and use the list's buttons.")
    path, params = _back(form.get("back"))
    ids = list(dict.fromkeys(i for i in form.all("run") if 0 < len(i) <= 40))
    if not ids:
        return done(path, "none-chosen", **params)
    if len(ids) > BULK_MOST:
        raise PageError(413, "Too many runs at once", f"Choose at most {BULK_MOST} at a time.")
    op = engine.release if action == "release" else engine.discard
    changes = await op(ids, workspace=visitor.workspace)
    skipped = len(changes.refused) + len(changes.missing)
    what = "released" if action == "release" else "discarded"
    return done(path, what, **params, n=len(changes.changed), skipped=skipped)


def _run_page(
    request: Request,
    visitor: Visitor,
    run: RunDetail,
    *,
    problem: str = "",
    status_code: int = 200,
    approvals: Sequence[ApprovalPublic] = (),
) -> Response:
    failed_step = next((s for s in run.steps if s.status == "failed"), None)
    return page(
        request,
        "runs_detail.html",
        status_code=status_code,
        title=f"Run {run.id}",
        run=run,
        failed_step=failed_step,
        final=run.status in FINAL,
        held=run.status == RunStatus.HELD,
        can_write=visitor.can("write"),
        done=DONE.get(request.query_params.get("done", ""), ""),
        problem=problem,
        as_json=as_json,
        approvals=approvals,
    )


@router.get("/runs/{run_id}")
async def run_page(
    request: Request, run_id: RunId, visitor: VisitorDep, db: DatabaseDep
) -> Response:
    run = await db.query(lambda s: run_detail(s, visitor.workspace, run_id))
    waiting = await db.query(lambda s: pending_approvals(s, visitor.workspace, run_id=run_id))
    return _run_page(request, visitor, run, approvals=waiting.data)


async def _refused(
    request: Request, visitor: Visitor, db: Database, run_id: str, problem: str
) -> Response:
    """The run's page again, saying why the change was refused (409)."""
    run = await db.query(lambda s: run_detail(s, visitor.workspace, run_id))
    return _run_page(request, visitor, run, problem=problem, status_code=409)


@router.post("/runs/{run_id}/replay")
async def replay(
    request: Request,
    run_id: RunId,
    visitor: WriteVisitor,
    form: FormDep,
    engine: EngineDep,
    db: DatabaseDep,
) -> Response:
    start, version = form.get("from", "start"), form.get("version", "original")
    if start not in ("start", "failed_step") or version not in ("original", "current"):
        raise PageError(400, "Choose where the replay starts", "Use the run page's buttons.")
    try:
        made = await engine.replay(run_id, start, version, workspace=visitor.workspace)
    except ConflictError as exc:
        return await _refused(request, visitor, db, run_id, str(exc))
    return done(f"/console/runs/{made.run_id}", "replayed")


Change = Callable[[Sequence[str], str], Awaitable[RunChanges]]


async def _change(
    request: Request, visitor: Visitor, db: Database, run_id: str, op: Change, what: str
) -> Response:
    changes = await op([run_id], visitor.workspace)
    if run_id in changes.missing:
        raise PageError(404, "Run not found", "It may belong to another workspace.")
    if run_id in changes.refused:
        return await _refused(request, visitor, db, run_id, changes.refused[run_id])
    return done(f"/console/runs/{run_id}", what)


@router.post("/runs/{run_id}/cancel")
async def cancel(
    request: Request, run_id: RunId, visitor: WriteVisitor, engine: EngineDep, db: DatabaseDep
) -> Response:
    async def op(ids: Sequence[str], ws: str) -> RunChanges:
        return await engine.cancel(ids, workspace=ws, reason="cancelled in the console")

    return await _change(request, visitor, db, run_id, op, "cancelled")


@router.post("/runs/{run_id}/release")
async def release(
    request: Request, run_id: RunId, visitor: WriteVisitor, engine: EngineDep, db: DatabaseDep
) -> Response:
    async def op(ids: Sequence[str], ws: str) -> RunChanges:
        return await engine.release(ids, workspace=ws)

    return await _change(request, visitor, db, run_id, op, "released")


@router.post("/runs/{run_id}/discard")
async def discard(
    request: Request, run_id: RunId, visitor: WriteVisitor, engine: EngineDep, db: DatabaseDep
) -> Response:
    async def op(ids: Sequence[str], ws: str) -> RunChanges:
        return await engine.discard(ids, workspace=ws)

    return await _change(request, visitor, db, run_id, op, "discarded")
