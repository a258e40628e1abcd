"""The audit log: every change to a workspace's recipes, stores, keys, secrets, packs and
settings — who made it, when, what (a diff for recipes), and why when said.

A change and its audit row are written in the same transaction: whoever writes calls
:func:`record` with the session it commits. Who is acting is a context variable, set once per
request by the API (an API key, ``key:ID``; a console visitor, ``console:…``) with
:func:`acting_as`; anything else (the engine disabling a failing recipe, a loader, the command
line) is ``system`` unless it says otherwise.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text
from sqlmodel import Field, Session, SQLModel

from engine.model.ids import new_id

KINDS = ("recipe", "store", "key", "secret", "pack", "workspace", "hook", "approval")
"""What an audit row is about."""


class AuditRow(SQLModel, table=True):
    """One change. ``target`` is what changed (a recipe's id, a store hash, a key id, a secret's
    name, ``pack@version``…); ``diff`` is a unified diff of a recipe's document."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_ws_id", "workspace_id", "id"),
        Index("ix_audit_ws_kind_id", "workspace_id", "kind", "id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(max_length=64)
    at: datetime = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    actor: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    action: str = Field(max_length=40)
    target: str = Field(default="", max_length=200)
    summary: str = Field(default="", max_length=1000)
    reason: str | None = Field(default=None, max_length=500)
    diff: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


@dataclass(frozen=True)
class Actor:
    """Who is making changes, and (optionally) why."""

    who: str = "system"
    reason: str | None = None


_SYSTEM = Actor()
_ACTOR: ContextVar[Actor | None] = ContextVar("sous_audit_actor", default=None)


def current_actor() -> Actor:
    return _ACTOR.get() or _SYSTEM


def set_actor(who: str, reason: str | None = None) -> None:
    """Name who makes the changes from here on in this context (a request's)."""
    _ACTOR.set(Actor(who[:200], reason[:500] if reason else None))


@contextmanager
def acting_as(who: str, reason: str | None = None) -> Iterator[Actor]:
    """Changes made inside are ``who``'s (with ``reason``)."""
    token = _ACTOR.set(Actor(who[:200], reason[:500] if reason else None))
    try:
        yield current_actor()
    finally:
        _ACTOR.reset(token)


def record(
    session: Session,
    workspace: str,
    kind: str,
    action: str,
    target: str,
    at: datetime,
    *,
    summary: str = "",
    diff: str | None = None,
) -> AuditRow:
    """Add the audit row of a change to ``session`` (committed with the change)."""
    actor = current_actor()
    row = AuditRow(
        id=new_id("aud"),
        workspace_id=workspace,
        at=at,
        actor=actor.who,
        kind=kind,
        action=action,
        target=target[:200],
        summary=summary[:1000],
        reason=actor.reason,
        diff=diff,
    )
    session.add(row)
    return row


def document_diff(before: dict[str, Any] | None, after: dict[str, Any] | None, label: str) -> str:
    """A unified diff of two recipe documents (sorted, indented JSON; ``version`` left out)."""

    def lines(doc: dict[str, Any] | None) -> list[str]:
        if doc is None:
            return []
        clean = {k: v for k, v in doc.items() if k != "version"}
        return json.dumps(clean, indent=2, sort_keys=True).splitlines()

    return "\n".join(
        difflib.unified_diff(lines(before), lines(after), f"{label} before", label, lineterm="")
    )


audit_change = record
""":func:`record`, by the name the engine's public surface gives it."""
