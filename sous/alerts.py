"""Alerts in a running Sous: failed runs and auto-disabled recipes e-mailed to each workspace's
staff address (its own, set in the console's Settings, else ``SOUS_STAFF_EMAIL``), through the
SMTP server ``email.send`` uses, unless the workspace switched them off there; see
``connectors/email/alerts.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

from sous.container import Container

if TYPE_CHECKING:
    from connectors.email.alerts import AlertMailer


def install_alerts(container: Container) -> AlertMailer:
    """Handle the alert jobs in this process (every process that runs jobs does)."""
    from api.tables import WorkspaceSettingsRow
    from connectors.email.alerts import AlertMailer

    default = container.settings.staff_email

    def address(session: Session, workspace: str) -> str | None:
        row = session.get(WorkspaceSettingsRow, workspace)
        if row is not None and not row.alerts:
            return None  # switched off on the Settings page
        return (row.staff_email if row is not None and row.staff_email else default) or None

    async def recipients(workspace: str) -> str | None:
        return await container.db.query(lambda session: address(session, workspace))

    container.engine.links = container.base_url()
    mailer = AlertMailer(container.engine, recipients)
    mailer.install()
    return mailer
