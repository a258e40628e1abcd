"""Bulk operations on runs: replay, release or discard every run a filter names, with a
preview count first.

``POST /v1/runs/bulk/{replay|release|discard}`` takes a filter (recipe, status, created since /
until, store) and answers how many runs match; with ``"preview": false`` it also acts on up to
``limit`` of them, oldest id first, and says where to go on (``next``). A long operation is a
loop of calls: the first answer's ``upto`` (the newest run id matching then) pins the set, so
runs made meanwhile — the replays themselves, if they fail again — are not taken up by later
calls. ``sous runs replay|release|discard`` does that loop with a progress line.

Release and discard apply to held runs only (``status`` defaults to ``held`` and may be nothing
else); replay to runs in any finished status (``failed`` by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from api.models import UtcDateTime
from engine import (
    FINAL,
    ConflictError,
    Engine,
    NotFoundError,
    RecipeRow,
    RunChanges,
    RunRow,
    RunStatus,
    Text,
)

Action = Literal["replay", "release", "discard"]
CHUNK = 50
"""Replays written at once (they share group commits)."""


class BulkRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"recipe": "sold-out-alert", "status": ["failed"], "since": "2026-11-27T00:00:00Z"},
                {"recipe": "sold-out-alert", "preview": False, "limit": 500},
            ]
        },
    )
    recipe: Text | None = Field(default=None, max_length=80, description="A recipe id or uid")
    status: list[str] | None = Field(
        default=None,
        max_length=10,
        description="Run statuses (replay: default failed; release and discard: held only)",
    )
    since: UtcDateTime | None = Field(default=None, description="Created at or after")
    until: UtcDateTime | None = Field(default=None, description="Created before")
    store: Text | None = Field(default=None, max_length=64, description="A store hash")
    preview: bool = Field(default=True, description="Only count: change nothing")
    limit: int = Field(default=500, ge=1, le=1000, description="Runs acted on by this call")
    after: Text | None = Field(
        default=None, max_length=40, description="Go on after this run id (the last answer's next)"
    )
    upto: Text | None = Field(
        default=None, max_length=40, description="Only runs up to this id (the first answer's upto)"
    )
    from_: Literal["start", "failed_step"] = Field(default="start", alias="from")
    recipe_version: Literal["original", "current"] = "original"

    @model_validator(mode="after")
    def _window(self) -> BulkRequest:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class BulkReport(BaseModel):
    action: Action
    preview: bool
    matched: int = Field(description="Runs the filter names (after `after`, up to `upto`)")
    upto: str | None = Field(description="The newest matching run id: pass it to later calls")
    done: int = Field(default=0, description="Runs this call replayed, released or discarded")
    made: list[str] = Field(default_factory=list, description="Replay: the new runs' ids")
    refused: dict[str, str] = Field(default_factory=dict, description="Run id → why not")
    next: str | None = Field(default=None, description="More to do: call again with after=next")


def statuses(action: Action, asked: Sequence[str] | None) -> list[str]:
    """The statuses an action takes runs in; :class:`ValueError` for others."""
    if action == "replay":
        wanted = list(asked or ["failed"])
        wrong = sorted(set(wanted) - {str(s) for s in FINAL})
        if wrong:
            raise ValueError(f"replay takes finished runs only, not {', '.join(wrong)}")
        return wanted
    if asked and set(asked) != {RunStatus.HELD}:
        raise ValueError(f"{action} takes held runs only (status: [held])")
    return [RunStatus.HELD]


def _where(query: Any, workspace: str, body: BulkRequest, wanted: list[str]) -> Any:
    query = query.where(RunRow.workspace_id == workspace, col(RunRow.status).in_(wanted))
    if body.recipe is not None:
        slug = select(RecipeRow.uid).where(
            RecipeRow.workspace_id == workspace, RecipeRow.slug == body.recipe
        )
        query = query.where(
            or_(col(RunRow.recipe_uid) == body.recipe, col(RunRow.recipe_uid).in_(slug))
        )
    if body.since is not None:
        query = query.where(RunRow.created_at >= body.since)
    if body.until is not None:
        query = query.where(RunRow.created_at < body.until)
    if body.store is not None:
        query = query.where(RunRow.store == body.store)
    if body.after is not None:
        query = query.where(RunRow.id > body.after)
    if body.upto is not None:
        query = query.where(RunRow.id <= body.upto)
    return query


def matching(
    session: Session, workspace: str, body: BulkRequest, wanted: list[str], page: int
) -> tuple[int, str | None, list[str]]:
    """How many runs match, the newest id among them, and the first ``page`` ids."""
    counted = select(func.count(), func.max(RunRow.id)).select_from(RunRow)
    count, newest = session.exec(_where(counted, workspace, body, wanted)).one()
    ids: list[str] = []
    if page:
        listed = _where(select(RunRow.id), workspace, body, wanted)
        ids = list(session.exec(listed.order_by(col(RunRow.id)).limit(page)).all())
    return int(count), newest, ids


async def replay_all(engine: Engine, workspace: str, ids: list[str], body: BulkRequest) -> Any:
    """Replay ``ids``; the new runs' ids and the refused ones with their reasons."""
    made: list[str] = []
    refused: dict[str, str] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        results = await asyncio.gather(
            *(
                engine.replay(run_id, body.from_, body.recipe_version, workspace=workspace)
                for run_id in chunk
            ),
            return_exceptions=True,
        )
        for run_id, result in zip(chunk, results, strict=True):
            if isinstance(result, NotFoundError | ConflictError):
                refused[run_id] = str(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                made.append(result.run_id)
    return made, refused


async def run_bulk(
    engine: Engine, workspace: str, action: Action, body: BulkRequest, wanted: list[str]
) -> BulkReport:
    page = 0 if body.preview else body.limit
    count, newest, ids = await engine.db.query(lambda s: matching(s, workspace, body, wanted, page))
    upto = body.upto or newest
    report = BulkReport(action=action, preview=body.preview, matched=count, upto=upto)
    if not ids:
        return report
    if action == "replay":
        report.made, report.refused = await replay_all(engine, workspace, ids, body)
        report.done = len(report.made)
    else:
        operation = engine.release if action == "release" else engine.discard
        changes: RunChanges = await operation(ids, workspace=workspace)
        report.done = len(changes.changed)
        report.refused = {**changes.refused, **dict.fromkeys(changes.missing, "not found")}
    report.next = ids[-1] if count > len(ids) else None
    return report
