"""Settings: the workspace's API keys (a new key is shown once), its secrets (write-only: names
are listed, values never), and the staff e-mail address alerts go to.

Only sessions with the ``admin`` scope change anything here, and only they see the keys (as with
``GET /v1/keys``); the others get a read-only page. Writes open their own session in the
handler's thread, as the API's write routes do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api.console.auth import AdminVisitor, Visitor, VisitorDep, end_sessions_of_key
from api.console.forms import FormDep
from api.console.render import PageError, page
from api.deps import ClockDep, DatabaseDep, SessionDep, SettingsDep, VaultDep, key_cache
from api.keys import SCOPES, new_key, revoke
from api.models import KeyCreate, SecretPut
from api.tables import ApiKeyRow, WorkspaceSettingsRow
from engine import NotFoundError, Workspace, audit_change
from sous.settings import Settings

router = APIRouter()

KEYS_SHOWN = 100
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
DONE = {
    "key-revoked": "The key is revoked; every console session opened with it has ended.",
    "secret-saved": "The secret is saved. Recipes read it as secrets.NAME.",
    "secret-deleted": "The secret is deleted.",
    "email-saved": "The staff e-mail address and alerts are saved.",
}

SecretName = Annotated[str, Path(pattern=SECRET_NAME.pattern)]


@dataclass
class Problems:
    """What was wrong with a submitted form, by section (``keys``, ``secrets``, ``email``)."""

    keys: str = ""
    secrets: str = ""
    email: str = ""
    kept: dict[str, str] = field(default_factory=dict)
    """What the visitor typed, to fill the form in again (never a secret's value)."""


def staff_email(session: Session, workspace: str, settings: Settings) -> tuple[str, bool, bool]:
    """The workspace's staff e-mail address, whether it is its own (else the default,
    ``SOUS_STAFF_EMAIL``), and whether alerts are e-mailed to it."""
    row = session.get(WorkspaceSettingsRow, workspace)
    alerts = row is None or row.alerts
    if row is not None and row.staff_email:
        return row.staff_email, True, alerts
    return settings.staff_email or "", False, alerts


def _settings_page(
    request: Request,
    visitor: Visitor,
    session: Session,
    settings: Settings,
    names: list[str],
    *,
    created: tuple[ApiKeyRow, str] | None = None,
    problems: Problems | None = None,
    status_code: int = 200,
) -> Response:
    keys: list[ApiKeyRow] = []
    if visitor.can("admin"):
        keys = list(
            session.exec(
                select(ApiKeyRow)
                .where(ApiKeyRow.workspace_id == visitor.workspace)
                .order_by(col(ApiKeyRow.id).desc())
                .limit(KEYS_SHOWN)
            ).all()
        )
    row = session.get(Workspace, visitor.workspace)
    email, own, alerts = staff_email(session, visitor.workspace, settings)
    return page(
        request,
        "settings.html",
        status_code=status_code,
        title="Settings",
        workspace_name=row.name if row else visitor.workspace,
        admin=visitor.can("admin"),
        keys=keys,
        keys_shown=KEYS_SHOWN,
        scopes=SCOPES,
        created=created,
        secrets=names,
        staff_email=email,
        staff_email_own=own,
        alerts=alerts,
        problems=problems or Problems(),
        done=DONE.get(request.query_params.get("done", ""), ""),
        session_key=visitor.key_id,
    )


@router.get("/settings")
def show_settings(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> Response:
    names = vault.names(visitor.workspace)
    return _settings_page(request, visitor, session, settings, names)


def _done(what: str) -> Response:
    return RedirectResponse(f"/console/settings?done={what}", status_code=303)


@router.post("/settings/keys")
def create_key(
    request: Request,
    form: FormDep,
    visitor: AdminVisitor,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> Response:
    name, scope = form.get("name").strip(), form.get("scope")
    try:
        body = KeyCreate.model_validate({"name": name, "scopes": [scope]})
    except ValidationError:
        problems = Problems(
            keys="Give the key a name (up to 200 characters) and pick a scope.",
            kept={"name": name[:200]},
        )
        return _render_with(request, visitor, db, settings, vault, problems=problems)
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        row, key = new_key(session, visitor.workspace, list(body.scopes), body.name, clock.now())
        session.commit()
    return _render_with(request, visitor, db, settings, vault, created=(row, key))


def _render_with(
    request: Request,
    visitor: Visitor,
    db: DatabaseDep,
    settings: Settings,
    vault: VaultDep,
    *,
    created: tuple[ApiKeyRow, str] | None = None,
    problems: Problems | None = None,
) -> Response:
    """The settings page as the answer to a form (a new key, or what was wrong)."""
    names = vault.names(visitor.workspace)
    with db.read_session() as session:
        return _settings_page(
            request,
            visitor,
            session,
            settings,
            names,
            created=created,
            problems=problems,
            status_code=422 if problems else 200,
        )


@router.post("/settings/keys/{key_id}/revoke")
def revoke_key(
    key_id: Annotated[str, Path(max_length=40)],
    request: Request,
    visitor: AdminVisitor,
    db: DatabaseDep,
    clock: ClockDep,
) -> Response:
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        row = session.get(ApiKeyRow, key_id)
        if row is None or row.workspace_id != visitor.workspace:
            raise PageError(404, "No such API key", "It may belong to another workspace.")
        if row.revoked_at is None:
            revoke(session, row, clock.now())
        end_sessions_of_key(session, row.id)
        session.commit()
    key_cache(request).pop(row.key_hash, None)
    if row.id == visitor.key_id:  # this very session has ended with its key
        return RedirectResponse("/console/sign-in", status_code=303)
    return _done("key-revoked")


@router.post("/settings/secrets")
def put_secret(
    request: Request,
    form: FormDep,
    visitor: AdminVisitor,
    db: DatabaseDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> Response:
    name, value = form.get("name").strip(), form.get("value")
    problem = ""
    if not SECRET_NAME.match(name):
        problem = "A secret's name is letters, digits and _, not starting with a digit."
    else:
        try:
            SecretPut.model_validate({"value": value})
        except ValidationError:
            problem = "Give the secret a value of 1 to 10,000 characters (no NUL characters)."
    if problem:
        problems = Problems(secrets=problem, kept={"secret_name": name[:100]})
        return _render_with(request, visitor, db, settings, vault, problems=problems)
    vault.put(visitor.workspace, name, value)
    return _done("secret-saved")


@router.post("/settings/secrets/{name}/delete")
def delete_secret(name: SecretName, visitor: AdminVisitor, vault: VaultDep) -> Response:
    try:
        vault.delete(visitor.workspace, name)
    except NotFoundError:
        raise PageError(404, "No such secret", "It may have been deleted already.") from None
    return _done("secret-deleted")


@router.post("/settings/staff-email")
def set_staff_email(
    request: Request,
    form: FormDep,
    visitor: AdminVisitor,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> Response:
    address = form.get("staff_email").strip()
    if address and (len(address) > 320 or not EMAIL.match(address)):
        problems = Problems(email="That is not an e-mail address.", kept={"email": address[:320]})
        return _render_with(request, visitor, db, settings, vault, problems=problems)
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        row = session.get(WorkspaceSettingsRow, visitor.workspace) or WorkspaceSettingsRow(
            workspace_id=visitor.workspace
        )
        before = _alerting(row.staff_email, row.alerts)
        row.staff_email, row.alerts = address or None, form.get("alerts") == "on"
        row.updated_at = clock.now()
        session.add(row)
        audit_change(
            session,
            visitor.workspace,
            "workspace",
            "settings",
            visitor.workspace,
            row.updated_at,
            summary=f"staff e-mail: {before} → {_alerting(row.staff_email, row.alerts)}",
        )
        session.commit()
    return _done("email-saved")


def _alerting(address: str | None, alerts: bool) -> str:
    return f"{address or '(the default)'}, alerts {'on' if alerts else 'off'}"
