"""schemathesis hooks for ``make fuzz`` (tests/fuzz.py): pack archives are sent as bytes.

In the stateful run (``SOUS_FUZZ_PHASES=stateful``) the walk starts from what the sandbox
holds and from what it creates, so:

- a list is read without filters: random filters (``q``, ``status``, ``since``, a cursor, ...)
  answer empty pages, from which no link can go on;
- the operations that create what the links walk from get a valid body (the stateful run
  draws only cases meant to be accepted) (a recipe, an event
  a recipe runs on, a hook, a key, the demo store, a library pack): a random one is all but
  always refused, and a refused create has no id to pass on. Each body is made from the one
  schemathesis drew (a checksum of it names the new recipe, hook or product), so the walk
  still varies.

The unit phases before it fuzz those filters and bodies.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import sys
import threading
import zlib
from collections.abc import Callable
from typing import Any

import schemathesis
import yaml

if sys.version_info < (3, 11, 8):
    # Before 3.11.8 the AST constructor kept its recursion depth in state every thread shares
    # (CPython gh-106905): two schemathesis workers describing Hypothesis strategies at once
    # (Hypothesis parses their source with ``ast``) could fail with "SystemError: AST
    # constructor recursion depth mismatch". One parse at a time keeps them apart.
    _parsing = threading.Lock()
    _parse = ast.parse

    @functools.wraps(_parse)
    def _one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with _parsing:
            return _parse(*args, **kwargs)

    ast.parse = _one_at_a_time

schemathesis.serializer.alias(["application/gzip", "application/zip"], "application/octet-stream")


def _tag(body: Any) -> int:
    return zlib.crc32(json.dumps(body, sort_keys=True, default=str).encode()) % 10**8


def _recipe(tag: int) -> dict[str, Any]:
    return {
        "id": f"fuzz-{tag}",
        "name": f"Fuzz recipe {tag}",
        "trigger": {"type": "custom.fuzz_seed"},
        "actions": [{"id": "log", "use": "core.log", "with": {"message": "{{ product.id }}"}}],
    }


def _store(tag: int) -> dict[str, Any]:
    from sous.sandbox import DEMO_STORE, DEMO_TOKEN

    return {"store_hash": DEMO_STORE, "access_token": DEMO_TOKEN, "name": "Sandbox store"}


VALID_BODIES: dict[tuple[str, str], Callable[[int], Any]] = {
    ("POST", "/v1/recipes"): _recipe,
    ("POST", "/v1/events"): lambda tag: {
        "type": "custom.fuzz_seed",
        "payload": {"product": {"id": tag}},
    },
    ("POST", "/v1/hooks"): lambda tag: {"name": f"fuzz_{tag}"},
    ("POST", "/v1/keys"): lambda tag: {"name": f"fuzz {tag}", "scopes": ["read"]},
    ("POST", "/v1/stores"): _store,
    ("POST", "/v1/packs"): lambda tag: {"library": "catalog"},
}

if os.environ.get("SOUS_FUZZ_PHASES") == "stateful":

    @schemathesis.hook
    def map_query(context: schemathesis.HookContext, query: dict[str, Any]) -> dict[str, Any]:
        operation = context.operation
        if operation is None or operation.method != "get" or "{" in operation.path:
            return query
        return {name: value for name, value in (query or {}).items() if name == "limit"}

    @schemathesis.hook
    def map_case(
        context: schemathesis.HookContext, case: schemathesis.Case[Any]
    ) -> schemathesis.Case[Any]:
        make = VALID_BODIES.get((case.operation.method.upper(), case.operation.path))
        if make is not None:
            body = make(_tag(case.body))
            # A recipe sent as YAML is a string in the document, so it stays one here.
            yaml_text = "yaml" in (case.media_type or "")
            case.body = yaml.safe_dump(body, sort_keys=False) if yaml_text else body
        return case
