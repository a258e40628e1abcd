"""schemathesis hooks for ``make fuzz`` (tests/fuzz.py): pack archives are sent as bytes.

In the stateful run (``SOUS_FUZZ_PHASES=stateful``) a list is read without filters, so the
walk starts from what the sandbox holds: random filters (``q``, ``status``, ``since``, a
cursor, ...) answer empty pages, from which no link can go on. The unit phases before it
fuzz those filters.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

schemathesis.serializer.alias(["application/gzip", "application/zip"], "application/octet-stream")

if os.environ.get("SOUS_FUZZ_PHASES") == "stateful":

    @schemathesis.hook
    def map_query(context: schemathesis.HookContext, query: dict[str, Any]) -> dict[str, Any]:
        operation = context.operation
        if operation is None or operation.method != "get" or "{" in operation.path:
            return query
        return {name: value for name, value in (query or {}).items() if name == "limit"}
