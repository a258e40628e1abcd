"""API keys and workspaces: create, look up, revoke.

A key reads ``sous_`` followed by 43 random URL-safe characters. Only its SHA-256 is stored,
with its first characters as a display prefix. Scopes nest: ``admin`` includes ``write``,
which includes ``read``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import update
from sqlmodel import Session, col, select

from api.tables import ApiKeyRow
from engine import Database, Workspace, new_id

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
KEY_PREFIX = "sous_"
_DISPLAY = len(KEY_PREFIX) + 6
_TOUCH_EVERY = timedelta(minutes=1)
WORKSPACE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's id, its workspace, and what it may do."""

    key_id: str
    workspace: str
    scopes: frozenset[str]

    def can(self, scope: Scope) -> bool:
        return any(SCOPES.index(s) >= SCOPES.index(scope) for s in self.scopes if s in SCOPES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def workspace_id(name: str) -> str:
    """``"Acme Shop"`` → ``"acme-shop"``: the id a workspace name gets."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-_")[:64]
    if not WORKSPACE_ID.match(slug):
        raise ValueError(f"cannot make a workspace id from {name!r}: use letters and digits")
    return slug


def ensure_workspace(session: Session, name: str, now: datetime) -> Workspace:
    """The workspace with this name (or id), created if missing."""
    ident = workspace_id(name)
    found = session.get(Workspace, ident)
    if found is None:
        found = Workspace(id=ident, name=name.strip(), created_at=now)
        session.add(found)
        session.flush()
    return found


def new_key(
    session: Session, workspace: str, scopes: list[str], name: str, now: datetime
) -> tuple[ApiKeyRow, str]:
    """Add a key to ``workspace``; returns its row and the key (shown only this once)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)} (got {scopes!r})")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=new_id("key"),
        workspace_id=workspace,
        name=name,
        prefix=key[:_DISPLAY],
        key_hash=hash_key(key),
        scopes=sorted(set(scopes), key=SCOPES.index),
        created_at=now,
    )
    session.add(row)
    return row, key


def create_key(db: Database, workspace_name: str, scopes: list[str], name: str) -> str:
    """Create a key for ``workspace_name`` (the workspace too, if missing); return the key."""
    now = datetime.now(UTC)
    with db.session() as s:
        workspace = ensure_workspace(s, workspace_name, now)
        _, key = new_key(s, workspace.id, scopes, name, now)
        s.commit()
    return key


def authenticate(db: Database, key: str, now: datetime) -> Caller | None:
    """The caller a key stands for, or ``None`` if it is unknown or revoked."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    with db.read_session() as s:
        row = s.exec(
            select(ApiKeyRow).where(
                ApiKeyRow.key_hash == hash_key(key), col(ApiKeyRow.revoked_at).is_(None)
            )
        ).first()
    if row is None:
        return None
    last = row.last_used_at
    if last is None or _aware(last) < now - _TOUCH_EVERY:
        with db.session() as s:  # a short write of its own, only now and then
            s.exec(update(ApiKeyRow).where(col(ApiKeyRow.id) == row.id).values(last_used_at=now))
            s.commit()
    return Caller(row.id, row.workspace_id, frozenset(row.scopes))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
