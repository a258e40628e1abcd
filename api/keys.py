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
from engine import Database, Workspace, acting_as, audit_change, new_id

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
KEY_PREFIX = "sous_"
_DISPLAY = len(KEY_PREFIX) + 6
_TOUCH_EVERY = timedelta(minutes=1)
WORKSPACE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's id, the workspace it acts in, and what it may do.

    ``home`` is the key's own workspace (``workspace`` unless an agency key acts in one of its
    clients); ``agency`` says the key is an agency key; ``stores``, when set, are the only
    stores (hashes) it may see."""

    key_id: str
    workspace: str
    scopes: frozenset[str]
    home: str = ""
    agency: bool = False
    stores: frozenset[str] | None = None

    def can(self, scope: Scope) -> bool:
        return any(SCOPES.index(s) >= SCOPES.index(scope) for s in self.scopes if s in SCOPES)

    @property
    def actor(self) -> str:
        """Who this is, as the audit log names it: ``key:ID``."""
        return f"key:{self.key_id}"

    @property
    def in_client(self) -> bool:
        """An agency key acting in one of its client workspaces."""
        return bool(self.home) and self.workspace != self.home

    def sees(self, store: str | None) -> bool:
        """Whether this key may see a store's things (``None``: those of no one store)."""
        return self.stores is None or store in self.stores


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def workspace_id(name: str) -> str:
    """``"Acme Shop"`` → ``"acme-shop"``: the id a workspace name gets; a name with no Latin
    letter or digit (``"東京ストア"``) gets ``ws-`` and a hash of the name."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-_")[:64]
    if WORKSPACE_ID.match(slug):
        return slug
    return "ws-" + hashlib.sha256(name.strip().casefold().encode()).hexdigest()[:12]


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
    session: Session,
    workspace: str,
    scopes: list[str],
    name: str,
    now: datetime,
    *,
    agency: bool = False,
    stores: list[str] | None = None,
) -> tuple[ApiKeyRow, str]:
    """Add a key to ``workspace``; returns its row and the key (shown only this once)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)} (got {scopes!r})")
    if agency and stores is not None:
        raise ValueError("an agency key spans workspaces: it cannot be limited to stores")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=new_id("key"),
        workspace_id=workspace,
        name=name,
        prefix=key[:_DISPLAY],
        key_hash=hash_key(key),
        scopes=sorted(set(scopes), key=SCOPES.index),
        created_at=now,
        agency=agency,
        stores=sorted(set(stores)) if stores is not None else None,
    )
    session.add(row)
    limits = f", stores {', '.join(row.stores)}" if row.stores is not None else ""
    audit_change(
        session,
        workspace,
        "key",
        "created",
        row.id,
        now,
        summary=f"{name!r}: {', '.join(row.scopes)}{' (agency)' if agency else ''}{limits}",
    )
    return row, key


def revoke(session: Session, row: ApiKeyRow, now: datetime) -> None:
    """Revoke a key (once), with its audit row, in ``session``."""
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
        audit_change(session, row.workspace_id, "key", "revoked", row.id, now, summary=row.name)


def create_key(
    db: Database, workspace_name: str, scopes: list[str], name: str, *, agency: bool = False
) -> str:
    """Create a key for ``workspace_name`` (the workspace too, if missing); return the key.
    An ``agency`` key may create client workspaces and act in them."""
    now = datetime.now(UTC)
    with db.session() as s, acting_as("cli"):
        workspace = ensure_workspace(s, workspace_name, now)
        if agency and workspace.agency_id is not None:
            raise ValueError(f"{workspace.id!r} is a client workspace, not an agency")
        _, key = new_key(s, workspace.id, scopes, name, now, agency=agency)
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
        home = s.get(Workspace, row.workspace_id) if row is not None else None
    if row is None or (home is not None and home.archived_at is not None):
        return None
    last = row.last_used_at
    if last is None or _aware(last) < now - _TOUCH_EVERY:
        with db.session() as s:  # a short write of its own, only now and then
            s.exec(update(ApiKeyRow).where(col(ApiKeyRow.id) == row.id).values(last_used_at=now))
            s.commit()
    return Caller(
        row.id,
        row.workspace_id,
        frozenset(row.scopes),
        home=row.workspace_id,
        agency=row.agency,
        stores=frozenset(row.stores) if row.stores is not None else None,
    )


def client_of(db: Database, agency: str, workspace: str) -> Workspace | None:
    """``workspace`` if it is a client workspace of ``agency`` (archived or not), else ``None``."""
    with db.read_session() as s:
        found = s.get(Workspace, workspace)
    return found if found is not None and found.agency_id == agency else None


def clients(session: Session, agency: str, *, archived: bool = False) -> list[Workspace]:
    """The client workspaces of ``agency`` (the archived ones too when ``archived``), by id."""
    query = select(Workspace).where(Workspace.agency_id == agency)
    if not archived:
        query = query.where(col(Workspace.archived_at).is_(None))
    return list(session.exec(query.order_by(col(Workspace.id))).all())


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def reachable(db: Database, caller: Caller, workspace: str) -> bool:
    """Whether ``caller`` may act in ``workspace``: its own, or (an agency key) the agency's
    own workspace and its clients' that are not archived."""
    if workspace == caller.workspace:
        return True
    if not caller.agency:
        return False
    if workspace == caller.home:
        return True
    found = client_of(db, caller.home, workspace)
    return found is not None and found.archived_at is None
