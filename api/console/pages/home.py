"""The home page: what needs attention first.

Held runs, recipes switched off by auto-disable, recipes that failed in the last 24 hours,
connected stores and their health. Every query is scoped to the visitor's workspace, bounded,
and served by an index: held runs by ``ix_run_ws_status``, failures by it too (then the last
24 hours of those), a recipe's last run by ``ix_run_recipe_created``, a store's last event by
``ix_event_ws_received``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import DateTime, and_, func, select as sa_select, type_coerce
from sqlmodel import Session, col, select

from api.console.auth import VisitorDep
from api.console.render import page
from api.deps import ClockDep, SessionDep, StoresDep
from api.models import StoreHealth
from engine import EventRow, RecipeRow, RunRow, RunStatus, StoreConnector, StoreRow

router = APIRouter()

SHOWN = 20
"""Rows per table on the home page; the section's own page has the rest."""
WINDOW = timedelta(hours=24)
AUTO_DISABLED = "auto-disabled"
"""How auto-disable's reasons begin (``engine.ops.autodisable``)."""


@dataclass(frozen=True)
class StoreLine:
    row: StoreRow
    health: StoreHealth

    @property
    def quota_left(self) -> Any:
        return (self.health.quota or {}).get("left")

    @property
    def quota_limit(self) -> Any:
        return (self.health.quota or {}).get("limit")

    @property
    def trouble(self) -> str | None:
        """What is wrong with the store, in a few words, or ``None``."""
        if self.row.status != "active":
            return self.row.status.replace("_", " ")
        if self.health.hooks_ok is False:
            return "webhooks inactive"
        if self.quota_left == 0:
            return "API quota used up"
        return None


@dataclass(frozen=True)
class RecipeLine:
    uid: str
    slug: str
    name: str
    enabled: bool
    disabled_reason: str | None
    last_run_at: datetime | None
    failures: int


@dataclass(frozen=True)
class HeldLine:
    id: str
    recipe: str | None
    reason: str | None
    created_at: datetime | None
    store: str | None


def store_health(row: StoreRow, last_event: datetime | None, stores: StoreConnector | None) -> Any:
    """A store's health as ``GET /v1/stores/{store}`` shows it."""
    found = stores.health(row.workspace_id, row.store_hash) if stores else None
    details: dict[str, Any] = dict(found) if isinstance(found, dict) else {}
    active, expected = details.pop("hooks_active", None), details.pop("hooks_expected", None)
    return StoreHealth(
        last_event_at=row.last_event_at or last_event,
        hooks_active=active,
        hooks_expected=expected,
        hooks_ok=None if active is None or expected is None else active >= expected,
        quota=details.pop("quota", None),
        details=details,
    )


def _stores(session: Session, workspace: str, stores: StoreConnector | None) -> list[StoreLine]:
    rows = session.exec(
        select(StoreRow)
        .where(StoreRow.workspace_id == workspace)
        .order_by(col(StoreRow.id).desc())
        .limit(SHOWN)
    ).all()
    lines = []
    for row in rows:  # a few stores at most; each is one step down an index
        last = session.exec(
            select(EventRow.received_at)
            .where(EventRow.workspace_id == workspace, EventRow.store == row.store_hash)
            .order_by(col(EventRow.received_at).desc())
            .limit(1)
        ).first()
        lines.append(StoreLine(row, store_health(row, last, stores)))
    return sorted(lines, key=lambda line: line.trouble is None)


def _held(session: Session, workspace: str) -> tuple[int, list[HeldLine]]:
    where = and_(col(RunRow.workspace_id) == workspace, col(RunRow.status) == RunStatus.HELD)
    count = session.exec(select(func.count()).select_from(RunRow).where(where)).one()
    rows = session.exec(
        select(RunRow, RecipeRow.slug)
        .join(RecipeRow, col(RecipeRow.uid) == col(RunRow.recipe_uid), isouter=True)
        .where(where)
        .order_by(col(RunRow.id).desc())  # newest first, down ix_run_ws_status (no sort)
        .limit(SHOWN)
    ).all()
    return count, [HeldLine(r.id, slug, r.status_reason, r.created_at, r.store) for r, slug in rows]


def _failures(session: Session, workspace: str, since: datetime) -> dict[str, int]:
    """Failed runs per recipe created since ``since`` (the workspace's failed runs, by index)."""
    rows = session.exec(
        select(RunRow.recipe_uid, func.count())
        .where(
            RunRow.workspace_id == workspace,
            RunRow.status == RunStatus.FAILED,
            col(RunRow.created_at) >= since,
        )
        .group_by(col(RunRow.recipe_uid))
    ).all()
    return {str(uid): int(n) for uid, n in rows}


def _last_run() -> Any:
    """A recipe's newest run's creation time (one step down ``ix_run_recipe_created``)."""
    newest = (
        select(func.max(RunRow.created_at))
        .where(col(RunRow.recipe_uid) == col(RecipeRow.uid))
        .correlate(RecipeRow)
        .scalar_subquery()
    )
    return type_coerce(newest, DateTime(timezone=True))


def _recipe_lines(
    session: Session,
    workspace: str,
    *criteria: Any,
    order_by: Any = None,
    limit: int = SHOWN,
    failures: dict[str, int],
) -> list[RecipeLine]:
    """Recipes of ``workspace`` matching ``criteria``, each with its last run (only the
    columns shown: no recipe document is loaded whole)."""
    query = (
        sa_select(
            col(RecipeRow.uid),
            col(RecipeRow.slug),
            RecipeRow.document["name"].as_string(),
            col(RecipeRow.enabled),
            col(RecipeRow.disabled_reason),
            _last_run(),
        )
        .where(col(RecipeRow.workspace_id) == workspace, *criteria)
        .limit(limit)
    )
    if order_by is not None:
        query = query.order_by(order_by)
    return [
        RecipeLine(
            uid=uid,
            slug=slug,
            name=name,
            enabled=enabled,
            disabled_reason=reason,
            last_run_at=last,
            failures=failures.get(uid, 0),
        )
        for uid, slug, name, enabled, reason, last in session.connection().execute(query).all()
    ]


def _recipes(
    session: Session, workspace: str, failures: dict[str, int]
) -> tuple[list[RecipeLine], list[RecipeLine]]:
    """Recipes switched off by auto-disable, and recipes to look at: those that failed lately
    (most failures first), then those that ran last."""
    disabled = _recipe_lines(
        session,
        workspace,
        col(RecipeRow.enabled).is_(False),
        col(RecipeRow.disabled_reason).startswith(AUTO_DISABLED),
        order_by=col(RecipeRow.updated_at).desc(),
        failures=failures,
    )
    worst = sorted(failures, key=lambda uid: -failures[uid])[:SHOWN]
    failing = _recipe_lines(session, workspace, col(RecipeRow.uid).in_(worst), failures=failures)
    failing.sort(key=lambda line: -line.failures)
    recent: list[RecipeLine] = []
    if len(failing) < SHOWN:
        recent = _recipe_lines(
            session,
            workspace,
            col(RecipeRow.uid).not_in(worst),
            order_by=_last_run().desc(),
            limit=SHOWN - len(failing),
            failures=failures,
        )
    return disabled, failing + [line for line in recent if line.last_run_at]


@router.get("/")
def home(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    clock: ClockDep,
    stores: StoresDep,
) -> Response:
    workspace = visitor.workspace
    since = clock.now() - WINDOW
    held_count, held = _held(session, workspace)
    failures = _failures(session, workspace, since)
    disabled, recipes = _recipes(session, workspace, failures)
    store_lines = _stores(session, workspace, stores)
    return page(
        request,
        "home.html",
        title="Home",
        held_count=held_count,
        held=held,
        disabled=disabled,
        recipes=recipes,
        failing=sum(1 for n in failures.values() if n),
        failed_runs=sum(failures.values()),
        stores=store_lines,
        troubled_stores=[s for s in store_lines if s.trouble],
    )
