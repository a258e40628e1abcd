"""Reading runs, for the API and the console: the filtered list newest first, and one run with
its step trace. Every query is scoped to a workspace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from api.errors import not_found
from api.models import RunDetail, RunPublic, StepPublic
from api.pagination import newest_first, unindexed
from engine import RecipeRow, RunRow, StepRow

RunLine = tuple[RunRow, str | None]
"""A run and its recipe's id (slug; ``None`` once the recipe is deleted)."""


def public_run(run: RunRow, slug: str | None) -> RunPublic:
    mode = "test" if (run.context or {}).get("mode") == "test" else "live"
    return RunPublic(
        **run.model_dump(exclude={"workspace_id", "concurrency_key", "context"}),
        recipe_id=slug,
        mode=mode,
    )


def with_slug(workspace: str, *, by_workspace: bool = True) -> Any:
    """Runs of ``workspace`` with their recipe's id. ``by_workspace=False``: the workspace is
    only checked, not searched by (a narrower filter, such as a recipe, names the index)."""
    owned = col(RunRow.workspace_id) if by_workspace else unindexed(RunRow.workspace_id)
    return (
        select(RunRow, RecipeRow.slug)
        .join(RecipeRow, col(RecipeRow.uid) == col(RunRow.recipe_uid), isouter=True)
        .where(owned == workspace)
    )


def runs_page(
    session: Session,
    workspace: str,
    *,
    recipe: str | None = None,
    status: str | None = None,
    event_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    cursor: str | None = None,
    stores: frozenset[str] | None = None,
) -> tuple[list[RunLine], str | None]:
    """One page of the workspace's runs, newest first: of the recipe whose id is ``recipe``,
    in ``status``, of the event ``event_id``, created in ``[since, until)``; only for
    ``stores`` when given (a key limited to them)."""
    # Runs of a recipe or of an event come down their own index (by id, or the event's few);
    # SQLite would as soon walk the workspace's, reading every run until enough match.
    query = with_slug(workspace, by_workspace=recipe is None and event_id is None)
    if stores is not None:
        query = query.where(col(RunRow.store).in_(sorted(stores)))
    if recipe is not None:
        # The recipe's uid first (one row, by its unique id): the runs then come down the
        # index of the recipe's runs by id, in the list's own order.
        uid = select(RecipeRow.uid).where(
            RecipeRow.workspace_id == workspace, RecipeRow.slug == recipe
        )
        query = query.where(col(RunRow.recipe_uid) == uid.scalar_subquery())
    if status is not None:
        query = query.where(RunRow.status == status)
    if event_id is not None:
        query = query.where(RunRow.event_id == event_id)
    if since is not None:
        query = query.where(unindexed(RunRow.created_at) >= since)
    if until is not None:
        query = query.where(unindexed(RunRow.created_at) < until)
    rows, next_cursor = newest_first(
        session, query, RunRow.id, limit, cursor, key=lambda r: str(r[0].id)
    )
    return [(run, slug) for run, slug in rows], next_cursor


def run_detail(
    session: Session, workspace: str, run_id: str, stores: frozenset[str] | None = None
) -> RunDetail:
    """The run with its step trace; 404 when ``workspace`` has no such run (or it is for none
    of ``stores``, when given)."""
    found = session.exec(with_slug(workspace).where(RunRow.id == run_id)).first()
    if found is None or (stores is not None and found[0].store not in stores):
        raise not_found("run", run_id)
    run, slug = found
    steps = session.exec(
        select(StepRow).where(StepRow.run_id == run_id).order_by(col(StepRow.index))
    ).all()
    traced = [
        StepPublic(**s.model_dump(exclude={"run_id", "step_id", "output_sealed"}), id=s.step_id)
        for s in steps
    ]
    return RunDetail(**public_run(run, slug).model_dump(), steps=traced)
