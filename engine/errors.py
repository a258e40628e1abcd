"""Every error Sous raises on purpose descends from :class:`SousError`.

::

    SousError
    ├── RecipeError            a recipe document is invalid (each detail names file, line and field)
    ├── ConditionError         a JsonLogic rule is malformed, unknown, too deep or too large
    ├── RenderError            a template failed to render (or tried to escape the sandbox)
    ├── RegistryError          an unknown trigger type or action name
    ├── NotFoundError          a stored resource does not exist (in the caller's workspace)
    ├── ConflictError          a stale version or a duplicate
    └── ActionError            an action failed while running
        ├── RetryableError     a transient failure: the step's retry policy may try again
        │   └── Retry          a connector asks to be retried after ``defer`` seconds
        └── PermanentError     retrying would not help (bad input, refused by the remote side)

Each subclass builds its message from typed fields, so callers can read the fields instead of
parsing text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


class SousError(Exception):
    """Base of every error Sous raises on purpose."""


@dataclass(frozen=True)
class ErrorDetail:
    """One problem at one place; ``path`` is a dotted field path (``actions[1].with.limit``)."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    loc: tuple[str | int, ...] = ()

    @property
    def pointer(self) -> str:
        """The same place as a JSON Pointer (RFC 6901), for API clients."""
        parts = (str(p).replace("~", "~0").replace("/", "~1") for p in self.loc)
        return "".join("/" + p for p in parts)

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}" if self.line else self.file
        prefix = " ".join(part for part in (where, self.path) if part)
        return f"{prefix}: {self.message}" if prefix else self.message


class RecipeError(SousError):
    """A recipe document is invalid; ``details`` lists every problem found."""

    def __init__(self, details: list[ErrorDetail]) -> None:
        self.details = details
        super().__init__("; ".join(str(d) for d in details) or "invalid recipe")


class ConditionError(SousError):
    """A JsonLogic rule is invalid. ``path`` points at the offending node (``and[1].var``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class RenderError(SousError):
    """A template could not be rendered. ``path`` names the parameter that held it."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


def unknown(kind: str, name: str, known: Iterable[str]) -> str:
    """``unknown action 'core.lgo'; did you mean 'core.log'?``: the nearest known names (not
    the whole list), or where the whole list is when nothing is near."""
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    if close:
        return f"unknown {kind} {name!r}; did you mean {' or '.join(map(repr, close))}?"
    return f"unknown {kind} {name!r} (the catalog, GET /v1/catalog, lists every one)"


class RegistryError(SousError):
    """An unknown trigger type or action name."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        super().__init__(unknown(kind, name, known))


class NotFoundError(SousError):
    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")


class ConflictError(SousError):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class ActionError(SousError):
    """An action failed while running."""


class RetryableError(ActionError):
    """A transient failure (timeout, 429, 5xx): the step's retry policy may try again."""


class Retry(RetryableError):
    """A connector asks to be tried again after ``defer`` seconds (arq's ``Retry(defer=...)``)."""

    def __init__(self, defer: float, reason: str = "retry requested") -> None:
        self.defer = defer
        self.reason = reason
        super().__init__(f"{reason} (retry in {defer:g}s)")


class PermanentError(ActionError):
    """Retrying would not help: bad input, or the remote side refused the request."""
