"""Prometheus metrics in the text exposition format.

Metrics count every workspace together, so they are not for API keys: with
``SOUS_METRICS_TOKEN`` set, a scraper sends ``Authorization: Bearer <token>``; without it, only
clients on this machine (loopback) may read them.

Counters come from the engine's own counts; step latency is a summary over the most recent
steps; connector figures come from the store connector (``container.stores``) when present: a
callable returning ``{"requests": n, "rate_limited": n}`` (or that per store hash).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, EngineDep, SettingsDep, StoresDep
from api.errors import ApiError, responses
from engine import FINAL, METRICS, RunRow, StepRow, UsageRow

router = APIRouter(tags=["health"])
_WINDOW = 1000
_QUANTILES = (0.5, 0.9, 0.99)
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    return [
        f"# HELP {name} {help_}",
        f"# TYPE {name} {kind}",
        *(f"{name}{labels} {value:g}" for labels, value in samples),
    ]


def _steps(session: Session) -> list[tuple[str, float]]:
    recent = session.exec(
        select(StepRow.duration_ms)
        .where(col(StepRow.duration_ms).is_not(None))
        .order_by(col(StepRow.finished_at).desc())
        .limit(_WINDOW)
    ).all()
    count, total = session.exec(
        select(func.count(), func.coalesce(func.sum(StepRow.duration_ms), 0.0)).where(
            col(StepRow.duration_ms).is_not(None)
        )
    ).one()
    ordered = sorted(v / 1000 for v in recent if v is not None)
    out = [
        (f'{{quantile="{q}"}}', ordered[min(len(ordered) - 1, int(q * len(ordered)))])
        for q in _QUANTILES
        if ordered
    ]
    return [*out, ("_sum", float(total or 0) / 1000), ("_count", float(count))]


USAGE_WORKSPACES = 50
"""Workspaces labelled by name in ``sous_usage_today`` (the busiest by runs); the others are
summed as ``workspace="other"``, so the series stay bounded however many workspaces there are."""


def _usage_today(session: Session, today: str) -> list[tuple[str, float]]:
    sums = [func.coalesce(func.sum(col(getattr(UsageRow, m))), 0) for m in METRICS]
    rows: list[tuple[str, list[float]]] = [
        (str(r[0]), [float(v) for v in r[1:]])
        for r in session.exec(
            select(col(UsageRow.workspace_id), *sums)
            .where(col(UsageRow.day) == today)
            .group_by(col(UsageRow.workspace_id))
        ).all()
    ]
    ranked = sorted(rows, key=lambda r: (-r[1][0], r[0]))
    named = ranked[:USAGE_WORKSPACES]
    rest = ranked[USAGE_WORKSPACES:]
    if rest:
        named.append(("other", [sum(r[1][i] for r in rest) for i in range(len(METRICS))]))
    return [
        (f'{{workspace="{_label(ws)}",metric="{m}"}}', values[i])
        for ws, values in named
        for i, m in enumerate(METRICS)
    ]


def _active_runs(session: Session) -> list[tuple[str, float]]:
    rows = session.exec(
        select(RunRow.status, func.count())
        .where(col(RunRow.status).not_in(FINAL))
        .group_by(col(RunRow.status))
    ).all()
    return [(f'{{status="{_label(s)}"}}', float(n)) for s, n in rows]


def _connector_labels(store: str) -> str:
    where = f',store="{_label(store)}"' if store else ""
    return '{connector="bigcommerce"' + where + "}"


def _connector(found: Any) -> list[str]:
    if not isinstance(found, Mapping):
        return []
    per_store = all(isinstance(v, Mapping) for v in found.values()) and bool(found)
    stores: Mapping[str, Any] = found if per_store else {"": found}
    lines: list[str] = []
    for metric, key, help_ in (
        ("requests", "requests", "HTTP requests to BigCommerce"),
        ("rate_limited", "rate_limited", "429 answers from BigCommerce"),
    ):
        samples = [
            (_connector_labels(store), float(values.get(key, 0)))
            for store, values in stores.items()
        ]
        lines += _family(f"sous_connector_{metric}_total", "counter", help_, samples)
    return lines


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _allowed(request: Request, settings: SettingsDep) -> None:
    token = settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(
                401, "send the metrics token: Authorization: Bearer <SOUS_METRICS_TOKEN>"
            )
    elif request.client is None or request.client.host not in _LOOPBACK:
        raise ApiError(
            403, "metrics are served to this machine only; set SOUS_METRICS_TOKEN to scrape them"
        )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="With `SOUS_METRICS_TOKEN` set, send it as a bearer token; without it, only "
    "clients on the same machine are served.",
    response_class=PlainTextResponse,
    # the error bodies are JSON whatever the route's own media type (FastAPI would give them
    # text/plain, as the metrics themselves)
    responses={
        status: {
            "description": entry["description"],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for status, entry in responses(401, 403).items()
    },
    dependencies=[Depends(_allowed)],
)
async def metrics(db: DatabaseDep, engine: EngineDep, stores: StoresDep) -> PlainTextResponse:

    today = engine.clock.now().date().isoformat()

    def read() -> tuple[list[tuple[str, float]], ...]:
        with db.read_session() as session:
            return _steps(session), _active_runs(session), _usage_today(session, today)

    steps, active, usage = await run_in_threadpool(read)
    lines = [
        *_family(
            "sous_usage_today",
            "gauge",
            f"Usage today (UTC) by workspace (the {USAGE_WORKSPACES} busiest; others summed as "
            '"other") and metric',
            usage,
        ),
        *_family(
            "sous_events_total",
            "counter",
            "Events stored",
            [("", engine.counters.get("events", 0))],
        ),
        *_family(
            "sous_events_duplicate_total",
            "counter",
            "Duplicate events dropped",
            [("", engine.counters.get("duplicates", 0))],
        ),
        *_family(
            "sous_runs_started_total",
            "counter",
            "Runs queued by dispatch",
            [("", engine.counters.get("runs_started", 0))],
        ),
        *_family(
            "sous_backpressure_waits_total",
            "counter",
            "Answers to incoming events held while the workers caught up",
            [("", engine.counters.get("backpressure_waits", 0))],
        ),
        *_family(
            "sous_run_status_changes_total",
            "counter",
            "Run status changes, by new status",
            [(f'{{status="{_label(s)}"}}', n) for s, n in sorted(engine.run_status_counts.items())],
        ),
        *_family("sous_runs_active", "gauge", "Runs not yet finished, by status", active),
        *_family(
            "sous_step_duration_seconds",
            "summary",
            f"Step duration (quantiles over the last {_WINDOW} steps)",
            steps,
        ),
        *_family(
            "sous_queue_depth", "gauge", "Jobs waiting in the queue", [("", engine.queue.depth())]
        ),
        *_connector(stores.metrics() if stores else None),
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type=_CONTENT_TYPE)
