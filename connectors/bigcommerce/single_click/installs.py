"""Installed stores and their users, in the caller's database session (blocking: the API calls
these from its thread pool, inside one transaction with its own changes).

Workspaces (``SOUS_BIGCOMMERCE_APP_WORKSPACE``): ``store`` gives each installed store a
workspace of its own (``bc-{store hash}``); ``user`` puts it in the installing user's (the
workspace of another store that user installed or loaded, else ``bcu-{user id}``), so one
merchant's stores share recipes; any other value names the one workspace every install goes to
(someone running Sous for their own stores). A store already connected in that workspace with a
pasted token is taken over: its token becomes the app's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from connectors.bigcommerce.single_click.models import BcAppInstallRow, BcAppJwtRow, BcAppUserRow
from connectors.bigcommerce.single_click.oauth import Grant
from connectors.bigcommerce.single_click.signed import BigCommerceUser, SignedPayload
from engine import Cipher, StoreRow, Workspace, new_id

STORE_POLICY, USER_POLICY = "store", "user"


class CallbackRefused(Exception):
    """A verified callback Sous will not act on; ``status`` and a message safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Installed:
    """The store row an install wrote (its token already encrypted in it) and the plain
    webhook secret, for registering the store's webhooks."""

    store: StoreRow
    webhook_secret: str
    workspace: str
    created: bool


def session_user(store_hash: str, user_id: int) -> str:
    """The console session's ``user_id`` of a store's user."""
    return f"bigcommerce:{store_hash}:{user_id}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def choose_workspace(session: Session, policy: str, store_hash: str, user_id: int) -> str:
    if policy == STORE_POLICY:
        return f"bc-{store_hash}"
    if policy != USER_POLICY:
        return policy
    found = session.exec(
        select(BcAppInstallRow.workspace_id)
        .join(BcAppUserRow, col(BcAppUserRow.store_hash) == col(BcAppInstallRow.store_hash))
        .where(BcAppUserRow.user_id == user_id)
        .order_by(col(BcAppInstallRow.installed_at))
    ).first()
    return found or f"bcu-{user_id}"


def _store_row(
    session: Session, install: BcAppInstallRow | None, workspace: str, store_hash: str
) -> StoreRow | None:
    if install is not None:
        row = session.get(StoreRow, install.store_id)
        if row is not None:
            return row
    return session.exec(
        select(StoreRow).where(
            StoreRow.workspace_id == workspace, StoreRow.store_hash == store_hash
        )
    ).first()


def save_install(
    session: Session,
    cipher: Cipher,
    grant: Grant,
    *,
    policy: str,
    api_base_url: str,
    name: str,
    now: datetime,
) -> Installed:
    """Keep an install: the store row with the new token (created, or the one a previous
    install or a pasted token made), the install's facts, the owner and the installing user.
    Commits."""
    install = session.get(BcAppInstallRow, grant.store_hash)
    workspace = (
        install.workspace_id
        if install is not None
        else choose_workspace(session, policy, grant.store_hash, grant.user.id)
    )
    row = _store_row(session, install, workspace, grant.store_hash)
    created = row is None
    if row is None:
        secret = secrets.token_urlsafe(32)
        row = StoreRow(
            id=new_id("sto"),
            workspace_id=workspace,
            store_hash=grant.store_hash,
            name=name,
            api_base_url=api_base_url,
            access_token_enc="",
            webhook_secret_enc=cipher.encrypt(secret),
            created_at=now,
        )
    else:
        workspace, secret = row.workspace_id, cipher.decrypt(row.webhook_secret_enc)
    row.access_token_enc = cipher.encrypt(grant.access_token)
    row.api_base_url, row.status = api_base_url, "active"
    row.info = {**(row.info or {}), "app": {"scope": grant.scope, "installed_at": now.isoformat()}}
    session.add(row)
    if session.get(Workspace, workspace) is None:
        session.add(Workspace(id=workspace, name=name or workspace, created_at=now))
    facts: dict[str, Any] = {
        "store_id": row.id,
        "workspace_id": workspace,
        "scope": grant.scope,
        "account_uuid": grant.account_uuid[:64],
        "owner_id": grant.owner.id,
        "owner_email": grant.owner.email,
        "installed_by": grant.user.id,
        "installed_at": now,
    }
    if install is None:
        install = BcAppInstallRow(store_hash=grant.store_hash, **facts)
    else:
        install.sqlmodel_update(facts)
    session.add(install)
    _keep_user(session, grant.store_hash, grant.owner, owner=True, now=now)
    if grant.user.id != grant.owner.id:
        _keep_user(session, grant.store_hash, grant.user, owner=False, now=now)
    session.commit()
    session.refresh(row)
    return Installed(row, secret, workspace, created)


def _keep_user(
    session: Session,
    store_hash: str,
    user: BigCommerceUser,
    *,
    owner: bool,
    now: datetime,
    loaded: bool = False,
) -> BcAppUserRow:
    row = session.get(BcAppUserRow, (store_hash, user.id))
    if row is None:
        row = BcAppUserRow(store_hash=store_hash, user_id=user.id, email=user.email, added_at=now)
    row.email, row.is_owner = user.email, owner
    if user.locale:
        row.locale = user.locale
    if loaded:
        row.last_load_at = now
    session.add(row)
    return row


def installed(session: Session, store_hash: str) -> BcAppInstallRow:
    install = session.get(BcAppInstallRow, store_hash)
    if install is None or session.get(StoreRow, install.store_id) is None:
        raise CallbackRefused(
            404,
            f"Sous has no installation for store {store_hash}: install the app again from "
            "the store's control panel",
        )
    return install


def use_once(session: Session, payload: SignedPayload, now: datetime) -> None:
    """Refuse a payload whose ``jti`` was used before; remember it until it expires."""
    session.exec(delete(BcAppJwtRow).where(col(BcAppJwtRow.expires_at) < now))
    expires = datetime.fromtimestamp(payload.expires_at, UTC) + timedelta(minutes=1)
    session.add(BcAppJwtRow(jti=payload.jti, expires_at=expires))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise CallbackRefused(401, "this signed payload was used already") from None


def record_load(session: Session, payload: SignedPayload, now: datetime) -> BcAppInstallRow:
    """A user opened the app: check the store is installed and the payload is new, then add
    the user if Sous has not seen them (callbacks.mdx, users.mdx). Commits."""
    install = installed(session, payload.store_hash)
    if payload.owner.id != install.owner_id:  # the store changed hands
        install.owner_id, install.owner_email = payload.owner.id, payload.owner.email
        session.add(install)
    use_once(session, payload, now)
    _keep_user(
        session, payload.store_hash, payload.user, owner=payload.by_owner, now=now, loaded=True
    )
    session.commit()
    session.refresh(install)
    return install


def _not_stale(issued_at: int, since: datetime, what: str) -> None:
    if issued_at < int(_aware(since).timestamp()):
        raise CallbackRefused(401, f"this signed payload was issued before {what}")


def check_uninstall(session: Session, payload: SignedPayload) -> BcAppInstallRow:
    """Only the store's owner or a user Sous knows for the store may uninstall, with a payload
    issued since the install (an old one replayed after a re-install is refused)."""
    install = installed(session, payload.store_hash)
    _not_stale(payload.issued_at, install.installed_at, "the store installed the app")
    known = session.get(BcAppUserRow, (payload.store_hash, payload.user.id))
    if not payload.by_owner and payload.user.id != install.owner_id and known is None:
        raise CallbackRefused(403, "only the store owner or an authorized user can uninstall")
    return install


def forget_install(session: Session, store_hash: str) -> list[str]:
    """Delete the install, its users and its store row (the token with it); returns the
    console session users to sign out. Does not commit."""
    users = session.exec(select(BcAppUserRow).where(BcAppUserRow.store_hash == store_hash)).all()
    install = session.get(BcAppInstallRow, store_hash)
    if install is not None:
        row = session.get(StoreRow, install.store_id)
        if row is not None:
            session.delete(row)
        session.delete(install)
    session.exec(delete(BcAppUserRow).where(col(BcAppUserRow.store_hash) == store_hash))
    return [session_user(store_hash, u.user_id) for u in users]


def remove_user(session: Session, payload: SignedPayload) -> str | None:
    """Delete the user the payload names from the store's users (remove_user); returns their
    console session user, or ``None`` if Sous did not know them. A payload issued before the
    user was (re-)added is refused. Does not commit."""
    installed(session, payload.store_hash)
    row = session.get(BcAppUserRow, (payload.store_hash, payload.user.id))
    if row is None:
        return None
    _not_stale(payload.issued_at, row.added_at, "the user was given access")
    if row.is_owner:
        raise CallbackRefused(403, "the store owner cannot be removed")
    session.delete(row)
    return session_user(payload.store_hash, payload.user.id)
