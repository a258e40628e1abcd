"""Usage of the caller's workspace: runs, steps, store requests, e-mails and HTTP calls per
day, store and recipe, with the workspace's daily limits and what it used today."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import and_, false, func, literal_column, or_
from sqlmodel import Session, col, select

from api.deps import ClockDep, DatabaseDep, RequireAdmin
from api.errors import invalid, responses
from api.models import WorkspaceLimits
from api.pagination import Cursor, Limit
from engine import METRICS, RecipeRow, Text, UsageRow, Workspace

router = APIRouter(prefix="/v1/usage", tags=["usage"], responses=responses(401, 403, 422))
By = Literal["day", "store", "recipe"]


class UsageCounts(BaseModel):
    runs: int = 0
    steps: int = Field(default=0, description="Steps attempted (each retry counts)")
    store_requests: int = Field(default=0, description="Requests to the stores' APIs")
    emails: int = Field(default=0, description="E-mails sent (email.send attempts)")
    http_calls: int = Field(default=0, description="Outbound HTTP calls (http.request attempts)")


class UsageLine(UsageCounts):
    day: str = Field(description="The day (UTC), YYYY-MM-DD")
    store: str | None = Field(default=None, description="With `by=store`: the store hash")
    recipe: str | None = Field(default=None, description="With `by=recipe`: the recipe's id")


class UsagePage(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "data": [{"day": "2026-12-07", "runs": 120, "steps": 240, "emails": 12}],
                    "next_cursor": None,
                    "totals": {"runs": 120, "steps": 240, "emails": 12},
                    "today": {"runs": 120, "steps": 240, "emails": 12},
                    "limits": {"runs": 10000},
                }
            ]
        }
    }
    data: list[UsageLine]
    next_cursor: str | None = None
    totals: UsageCounts = Field(description="The whole range (with the filters)")
    today: UsageCounts = Field(description="What the workspace used today (UTC), every store")
    limits: WorkspaceLimits = Field(description="The workspace's daily limits")


def _sums() -> list[Any]:
    return [func.coalesce(func.sum(col(getattr(UsageRow, m))), 0).label(m) for m in METRICS]


def _counts(row: Any) -> dict[str, int]:
    return {m: int(getattr(row, m)) for m in METRICS}


def _where(
    workspace: str, since: date, until: date, store: str | None, recipe: str | None
) -> list[Any]:
    where = [
        col(UsageRow.workspace_id) == workspace,
        col(UsageRow.day) >= since.isoformat(),
        col(UsageRow.day) <= until.isoformat(),
    ]
    if store is not None:
        where.append(col(UsageRow.store) == store)
    if recipe is not None:
        uids = select(RecipeRow.uid).where(
            RecipeRow.workspace_id == workspace, RecipeRow.slug == recipe
        )
        where.append(or_(col(UsageRow.recipe).in_(uids), col(UsageRow.recipe) == recipe))
    return where


def _lines(
    session: Session, where: list[Any], by: By, limit: int, cursor: str | None
) -> tuple[list[Any], bool]:
    """The rows of one page (``day``, ``part``: the store or recipe, and the sums)."""
    day = col(UsageRow.day)
    part: Any = {"store": col(UsageRow.store), "recipe": col(UsageRow.recipe)}.get(by)
    shown = part if part is not None else literal_column("''")
    query = select(day.label("day"), shown.label("part"), *_sums()).where(*where)
    query = query.group_by(day, part) if part is not None else query.group_by(day)
    if cursor:
        last, _, after = cursor.partition("|")
        later = and_(day == last, part > after) if part is not None else false()
        query = query.having(or_(day < last, later))
    order = [day.desc(), part] if part is not None else [day.desc()]
    rows = list(session.execute(query.order_by(*order).limit(limit + 1)).all())
    return rows[:limit], len(rows) > limit


def usage_page(
    session: Session,
    workspace: str,
    since: date,
    until: date,
    *,
    by: By = "day",
    store: str | None = None,
    recipe: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    today: date,
) -> UsagePage:
    """A page of ``workspace``'s usage in ``[since, until]``, newest day first (for the API and
    the console); ``by`` splits each day by store or by recipe."""
    where = _where(workspace, since, until, store, recipe)
    rows, more = _lines(session, where, by, limit, cursor)
    slugs = _slugs(session, workspace, [r.part for r in rows]) if by == "recipe" else {}
    data = [
        UsageLine(
            day=r.day,
            store=(r.part or None) if by == "store" else None,
            recipe=(slugs.get(r.part, r.part) or None) if by == "recipe" else None,
            **_counts(r),
        )
        for r in rows
    ]
    totals = session.execute(select(*_sums()).where(*where)).one()
    on_day = [col(UsageRow.workspace_id) == workspace, col(UsageRow.day) == today.isoformat()]
    now = session.execute(select(*_sums()).where(*on_day)).one()
    found = session.get(Workspace, workspace)
    return UsagePage(
        data=data,
        next_cursor=f"{rows[-1].day}|{rows[-1].part or ''}" if more and rows else None,
        totals=UsageCounts(**_counts(totals)),
        today=UsageCounts(**_counts(now)),
        limits=WorkspaceLimits.model_validate((found.limits if found else None) or {}),
    )


def _slugs(session: Session, workspace: str, uids: list[str]) -> dict[str, str]:
    rows = session.exec(
        select(RecipeRow.uid, RecipeRow.slug).where(
            RecipeRow.workspace_id == workspace, col(RecipeRow.uid).in_(uids)
        )
    ).all()
    return dict(rows)


@router.get(
    "",
    summary="Usage per day, store or recipe, with the daily limits",
    description="Runs, steps, store requests, e-mails and HTTP calls the workspace used, per "
    "day (UTC; newest first), each day split by store or by recipe with `by`. `since` and "
    "`until` are days (default: the last 30 days; at most 366). `today` is what was used "
    "today against `limits`; a workspace at a limit has its runs cancelled (with the limit "
    "named) and `POST /v1/events` answers 429 `usage_limit_reached`.",
)
async def show_usage(
    caller: RequireAdmin,
    db: DatabaseDep,
    clock: ClockDep,
    since: Annotated[date | None, Query(description="First day, YYYY-MM-DD")] = None,
    until: Annotated[date | None, Query(description="Last day, YYYY-MM-DD")] = None,
    by: By = "day",
    store: Annotated[Text | None, Query(max_length=64, description="A store hash")] = None,
    recipe: Annotated[Text | None, Query(max_length=80, description="A recipe id")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> UsagePage:
    today = clock.now().date()
    last = until or today
    first = since or last - timedelta(days=29)
    if first > last or (last - first).days > 365:
        raise invalid("/since", "since must be on or before until, at most 366 days apart")
    return await db.query(
        lambda s: usage_page(
            s,
            caller.workspace,
            first,
            last,
            by=by,
            store=store,
            recipe=recipe,
            limit=limit,
            cursor=cursor,
            today=today,
        )
    )
