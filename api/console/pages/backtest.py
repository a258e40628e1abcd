"""Backtest: pick a saved recipe and a time range; the page shows what the recipe would have
done over the events stored in it (how often it would have fired, per day, on what, and which
condition said no how many times). It reads only, so it is a plain GET form: the answer can be
bookmarked and shared. The work runs in the thread pool (a plain ``def`` handler)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import col, select

from api.console.auth import VisitorDep
from api.console.pages.listing import when_given
from api.console.render import page
from api.deps import ContainerDep, SessionDep
from engine import RecipeRow, backtest

router = APIRouter()

CONSOLE_LIMIT = 200_000
"""The most events a backtest from the console reads (the API and CLI go to a million)."""


@router.get("/backtest")
def backtest_page(
    request: Request,
    visitor: VisitorDep,
    container: ContainerDep,
    session: SessionDep,
    recipe: Annotated[str, Query(max_length=80)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    # The picker needs ids and names only: parsing a thousand documents would take 100 ms.
    recipes = session.exec(
        select(col(RecipeRow.slug), col(RecipeRow.document)["name"].as_string())
        .where(RecipeRow.workspace_id == visitor.workspace)
        .order_by(col(RecipeRow.slug))
        .limit(1000)
    ).all()
    problems: list[str] = []
    now = container.clock.now()
    start = when_given(since, "Since", problems)
    end = when_given(until, "Until", problems)
    report: dict[str, Any] | None = None
    chosen = container.engine.recipes.find(visitor.workspace, recipe) if recipe else None
    if recipe and chosen is None:
        problems.append(f"No recipe “{recipe[:80]}” in this workspace.")
    if start is not None and end is not None and end <= start:
        problems.append("Until must be later than Since.")
    if chosen is not None and not problems:
        result = backtest(
            container.db,
            container.registry,
            chosen.recipe,
            visitor.workspace,
            start or now - timedelta(days=7),
            end,
            uid=chosen.uid,
            limit=CONSOLE_LIMIT,
        )
        report = result.to_dict()
    return page(
        request,
        "backtest.html",
        status_code=422 if problems else 200,
        title="Backtest",
        recipes=[{"id": slug, "name": name} for slug, name in recipes],
        chosen=recipe,
        since=since or (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"),
        until=until,
        problems=problems,
        report=report,
        limit=CONSOLE_LIMIT,
    )
