"""What a log line or a trace span knows about the work in hand: the request, event and run ids
(context variables, set by the API middleware and the runner), and OpenTelemetry spans.

OpenTelemetry is optional (``pip install sous[otel]``): without the package, or while the process
has configured no tracer provider, :func:`span` makes no span and costs next to nothing (it is
on the path of every run and step). With a provider, spans go to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("sous_request_id", default=None)
EVENT_ID: ContextVar[str | None] = ContextVar("sous_event_id", default=None)
RUN_ID: ContextVar[str | None] = ContextVar("sous_run_id", default=None)
IDS = {"request_id": REQUEST_ID, "event_id": EVENT_ID, "run_id": RUN_ID}

try:
    from opentelemetry import trace as _trace
except ImportError:  # the optional extra is not installed
    _trace = None  # type: ignore[assignment]


def current_ids() -> dict[str, str]:
    """The ids set in this context (only those set)."""
    return {name: value for name, var in IDS.items() if (value := var.get()) is not None}


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """An OpenTelemetry span named ``sous.<name>`` carrying ``attributes`` and the current ids;
    a no-op without OpenTelemetry."""
    if _trace is None or isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
        yield  # no tracer provider configured: spans would go nowhere, so none are made
        return
    values = current_ids() | {k: v for k, v in attributes.items() if v is not None}
    tracer = _trace.get_tracer("sous")
    with tracer.start_as_current_span(f"sous.{name}", attributes=values):
        yield


@contextlib.contextmanager
def work(name: str, *, event_id: str | None = None, run_id: str | None = None) -> Iterator[None]:
    """Set the event and run ids for everything inside (log lines included), in a span."""
    tokens = [
        (var, var.set(value))
        for var, value in ((EVENT_ID, event_id), (RUN_ID, run_id))
        if value is not None
    ]
    try:
        with span(name):
            yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
