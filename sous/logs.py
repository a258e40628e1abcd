"""One logging set-up for ``sous serve``, ``sous worker`` and every other command.

``SOUS_LOG_LEVEL`` (debug, info, warning, error; default info) sets the level and
``SOUS_LOG_FORMAT`` the shape: ``text`` (default) for people, ``json`` for a log collector, one
object a line. Either way each line carries the request, event and run ids in hand
(:mod:`engine.observe`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

from engine.observe import current_ids

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        } | current_ids()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(_TEXT)

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in current_ids().items())
        text = super().format(record)
        return f"{text} [{ids}]" if ids else text


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so that configuring again replaces it instead of adding a second one."""


QUIET = ("apscheduler", "httpx", "httpcore", "aiosmtpd", "mail.log")
"""Libraries whose info lines are shown only at ``debug``."""


def configure_logging(
    level: str | None = None,
    fmt: str | None = None,
    stream: TextIO | None = None,
    default: str = "info",
) -> None:
    """Send log records to standard error at ``level`` in ``fmt`` (each defaulting to
    ``SOUS_LOG_LEVEL`` / ``SOUS_LOG_FORMAT``, then ``default`` / text); an unknown value is
    refused with the choices."""
    level = (level or os.environ.get("SOUS_LOG_LEVEL") or default).lower()
    fmt = (fmt or os.environ.get("SOUS_LOG_FORMAT") or "text").lower()
    if level not in LEVELS:
        raise SystemExit(f"sous: SOUS_LOG_LEVEL is {level!r}; use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise SystemExit(f"sous: SOUS_LOG_FORMAT is {fmt!r}; use one of {', '.join(FORMATS)}")
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries say at info what only matters when debugging Sous (APScheduler announces every
    # job it runs): at the default level a person sees Sous's own lines only.
    for name in QUIET:
        logging.getLogger(name).setLevel(level.upper() if level == "debug" else "WARNING")
