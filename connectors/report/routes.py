"""``GET /v1/stores/{store}/backlog``: the backlog report as JSON, or CSV with ``?format=csv``
or ``Accept: text/csv``.

The router is built by :func:`backlog_router` from what it needs, so this package does not
depend on the API package; the API mounts it (``Container.routers``) and passes
its own authentication dependency as ``workspace``.
"""

# No ``from __future__ import annotations``: FastAPI must see the dependencies declared inside
# backlog_router as objects, not as names it cannot resolve from this module's globals.
import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from connectors.backorder.config import ClientProvider
from engine import Clock, Database, NotFoundError, PermanentError, Retry, RetryableError

from . import render
from .backlog import BacklogReport, build_report

CSV = "text/csv"


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return CSV in accept and "application/json" not in accept


class Reports:
    """Backlog reports, read from the stores. A report is answered again for ``fresh_for``
    seconds before the store is read anew (its ``generated_at`` says when it was made); callers
    asking for the same report meanwhile share one build. For ``stale_for`` seconds more, an ask
    is answered the report it already has at once while a new one is built behind it, so a
    dashboard polling the report never waits on the store. A build that takes longer than
    ``wait_for`` seconds (the store's quota is spent) goes on, and the caller is answered 503
    with ``Retry-After``."""

    def __init__(
        self,
        db: Database,
        clients: ClientProvider,
        clock: Clock,
        fresh_for: float,
        wait_for: float,
        stale_for: float = 45.0,
    ) -> None:
        self._db, self._clients, self._clock = db, clients, clock
        self._fresh_for, self._wait_for, self._stale_for = fresh_for, wait_for, stale_for
        self._cache: dict[tuple[Any, ...], tuple[float, BacklogReport]] = {}
        self._building: dict[tuple[Any, ...], asyncio.Task[BacklogReport]] = {}

    async def get(
        self, ws: str, store: str, status_id: list[int] | None, window_days: int, top: int
    ) -> BacklogReport:
        client = await self._client(ws, store)  # a store disconnected since has no report
        key = (ws, store, tuple(status_id or ()), window_days, top)
        hit = self._cache.get(key)
        now = self._clock.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]  # a dashboard polling the report spends no more of the store's quota
        task = self._building.get(key)
        if task is None:
            build = self._build(client, ws, store, status_id, window_days, top)
            task = self._building[key] = asyncio.ensure_future(build)
            task.add_done_callback(lambda done: self._settle(key, done))
        if hit is not None and hit[0] + self._stale_for > now:
            return hit[1]  # the new report is built behind this answer
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._wait_for)
        except TimeoutError:
            raise HTTPException(
                503,
                "the report is still being read from the store (its API quota is spent for "
                "now); ask again in a few seconds",
                headers={"Retry-After": "5"},
            ) from None

    def _settle(self, key: tuple[Any, ...], task: asyncio.Task[BacklogReport]) -> None:
        self._building.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            if len(self._cache) > 1_000:
                self._cache.clear()
            self._cache[key] = (self._clock.monotonic() + self._fresh_for, task.result())

    async def _client(self, ws: str, store: str) -> Any:
        try:
            return await self._clients.client(ws, store)
        except NotFoundError:
            raise HTTPException(404, f"store {store!r} not found") from None

    async def _build(
        self,
        client: Any,
        ws: str,
        store: str,
        status_id: list[int] | None,
        window_days: int,
        top: int,
    ) -> BacklogReport:
        """The report, read from the store now (its errors as HTTP answers)."""
        try:
            return await build_report(
                client,
                self._db,
                ws,
                store,
                self._clock.now(),
                statuses=tuple(status_id) if status_id else None,
                window_days=window_days,
                top=top,
            )
        except Retry as exc:
            headers = {"Retry-After": str(max(1, round(exc.defer)))}
            raise HTTPException(503, f"the store is busy: {exc}", headers=headers) from None
        except RetryableError as exc:
            raise HTTPException(503, f"the store did not answer: {exc}") from None
        except PermanentError as exc:
            raise HTTPException(502, f"the store refused: {exc}") from None


def backlog_router(
    *,
    db: Database,
    clients: ClientProvider,
    clock: Clock,
    workspace: Callable[..., Any],
    prefix: str = "/v1/stores",
    fresh_for: float = 15.0,
    wait_for: float = 8.0,
) -> APIRouter:
    """The backlog route (see :class:`Reports`). ``workspace`` is a FastAPI dependency that
    authenticates the caller and returns its workspace id (or an object with a ``workspace``
    attribute)."""
    router = APIRouter(prefix=prefix, tags=["reports"])
    reports = Reports(db, clients, clock, fresh_for, wait_for)

    async def caller_workspace(found: Annotated[Any, Depends(workspace)]) -> str:
        # async: a plain def would hop through the thread pool on every ask
        return found if isinstance(found, str) else str(found.workspace)

    @router.get(
        "/{store}/backlog",
        summary="The backlog and backorder report of a store",
        response_model=BacklogReport,
        responses={
            200: {"content": {CSV: {}}, "description": "JSON, or CSV of the orders"},
            502: {"description": "The store refused the requests the report needs"},
            503: {
                "description": "The store is busy or its API quota is spent for now: ask again "
                "after `Retry-After` seconds (the report goes on being built meanwhile)",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            },
        },
    )
    async def backlog(
        store: str,
        request: Request,
        ws: Annotated[str, Depends(caller_workspace)],
        format: Annotated[Literal["json", "csv"] | None, Query()] = None,
        status_id: Annotated[list[int] | None, Query(description="backlog statuses")] = None,
        window_days: Annotated[int, Query(ge=1, le=365)] = 30,
        top: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Any:
        report = await reports.get(ws, store, status_id, window_days, top)
        if _wants_csv(request, format):
            disposition = f'attachment; filename="{render.filename(report)}"'
            return Response(
                render.orders_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": disposition},
            )
        return report

    return router
