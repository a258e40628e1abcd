"""``email.send``: deliver one message over SMTP, at most once per step.

Sending twice is prevented in two ways. The Message-ID is derived from the step's idempotency
key, so the same step always produces the same Message-ID. And the ``email_sent`` table (the
sent log) is checked before sending and written once the server has accepted the message: a
retry or replay of a step whose message is in the log returns the logged result with
``already_sent: true`` and sends nothing.

The delivery and the log write run together as one task that a step timeout does not cancel,
so a step that times out while the server is accepting the message still records it, and its
retry finds it in the log.

The one window that remains: the process dies (or the log write fails) after the server
accepted the message and before the row is committed. The retry then cannot know the message
went out and sends it again, with the same Message-ID, which lets receiving systems that
de-duplicate on Message-ID drop it. SMTP has no way to ask the server whether it already has a
message, so this window cannot be closed from this side; it is as short as one database write.

Errors: connection refused, timeouts, dropped connections and 4xx replies are retryable; 5xx
replies (including every recipient refused), failed logins and certificate failures are
permanent. When some recipients are refused and others accepted, the step succeeds and lists the
refused ones in ``refused``; they are not tried again.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPDataError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from sqlalchemy import insert, select

from connectors.email.config import SmtpConfig
from connectors.email.message import SendOutput, SendParams, build_message, message_id_for
from connectors.email.models import EmailSentRow
from engine import (
    ActionContext,
    ActionError,
    Database,
    NotFoundError,
    PermanentError,
    RetryableError,
    Tx,
    Vault,
    count_sent,
)

log = logging.getLogger("sous.email")

SENT = EmailSentRow.__table__  # type: ignore[attr-defined]

_in_flight: set[asyncio.Task[SendOutput]] = set()


async def send_email(ctx: ActionContext, params: SendParams) -> SendOutput:
    config = ctx.services.get(SmtpConfig)
    db = ctx.services.get(Database)
    key = ctx.idempotency_key
    return await send_logged(
        db,
        config,
        params,
        key=key,
        workspace=ctx.workspace,
        now=ctx.clock.now(),
        password=lambda: _password(ctx, config),
    )


async def send_logged(
    db: Database,
    config: SmtpConfig,
    params: SendParams,
    *,
    key: str,
    workspace: str,
    now: datetime,
    password: Callable[[], Awaitable[str | None]] | None = None,
) -> SendOutput:
    """Send ``params`` once for ``key``: a key found in the sent log sends nothing and answers
    what was logged (``already_sent``); else the message (its Message-ID derived from ``key``)
    goes out and is logged. ``password`` gives the SMTP password (default: the config's)."""
    previous = await _logged(db, key)
    if previous is not None:
        log.info("[%s] message %s was sent before; not sending again", key, previous.message_id)
        return SendOutput(
            message_id=previous.message_id,
            accepted=previous.accepted or [],
            refused=previous.refused or {},
            already_sent=True,
        )
    secret = await password() if password is not None else config.password
    message = build_message(params, sender=config.sender, message_id=message_id_for(key), date=now)
    work = _deliver_and_record(
        db, config, secret, message, params.envelope_recipients(), (key, workspace, now)
    )
    task = asyncio.ensure_future(work)
    _in_flight.add(task)
    task.add_done_callback(_forget)
    return await asyncio.shield(task)


def _forget(task: asyncio.Task[SendOutput]) -> None:
    _in_flight.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a shielded task whose caller left must not warn


async def _deliver_and_record(
    db: Database,
    config: SmtpConfig,
    password: str | None,
    message: EmailMessage,
    recipients: list[str],
    logged: tuple[str, str, datetime],
) -> SendOutput:
    accepted, refused = await deliver(config, password, message, recipients)
    output = SendOutput(message_id=str(message["Message-ID"]), accepted=accepted, refused=refused)
    key, workspace, now = logged
    count_sent(db.usage, "emails", workspace, None, now)  # the SMTP server took it
    row = {
        "idempotency_key": key,
        "workspace_id": workspace,
        "message_id": output.message_id,
        "accepted": output.accepted,
        "refused": output.refused,
        "sent_at": now,
    }
    try:
        await db.writer.write(lambda tx: _insert(tx, row))
    except Exception:
        log.exception(
            "message %s was sent but not recorded in the sent log; a retry of %s would resend it",
            output.message_id,
            key,
        )
    return output


async def deliver(
    config: SmtpConfig, password: str | None, message: EmailMessage, recipients: list[str]
) -> tuple[list[str], dict[str, str]]:
    """Send ``message`` to ``recipients``; returns the accepted ones and the refused ones with
    the server's reply. Raises :class:`RetryableError` or :class:`PermanentError`."""
    client = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        use_tls=config.tls == "tls",
        start_tls=config.tls == "starttls",
        timeout=config.timeout,
        local_hostname=config.local_hostname,
        validate_certs=config.validate_certs,
        cert_bundle=config.ca_file,
    )
    try:
        await client.connect()
        if config.username:
            await client.login(config.username, password or "")
        errors, _ = await client.send_message(
            message, sender=config.sender_address, recipients=recipients
        )
    except (SMTPException, OSError, ValueError) as exc:
        raise classify(exc, f"{config.host}:{config.port}") from exc
    finally:
        await _quit(client)
    refused = {address: f"{reply.code} {reply.message}" for address, reply in errors.items()}
    return [r for r in recipients if r not in refused], refused


async def _quit(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (SMTPException, OSError):
        client.close()


def classify(exc: BaseException, where: str) -> ActionError:
    """The engine error for an SMTP failure: retryable when trying later may help."""
    if isinstance(exc, SMTPRecipientsRefused):
        detail = ", ".join(f"{r.recipient} ({r.code} {r.message})" for r in exc.recipients)
        if any(400 <= r.code < 500 for r in exc.recipients):
            return RetryableError(f"every recipient was refused, some only for now: {detail}")
        return PermanentError(f"every recipient was refused: {detail}")
    if isinstance(exc, SMTPResponseException):
        what = "the connection"
        if isinstance(exc, SMTPAuthenticationError):
            what = "the login"
        elif isinstance(exc, SMTPSenderRefused):
            what = f"the sender {exc.sender}"
        elif isinstance(exc, SMTPDataError):
            what = "the message"
        text = f"SMTP server {where} refused {what}: {exc.code} {exc.message}"
        return PermanentError(text) if 500 <= exc.code < 600 else RetryableError(text)
    cert = _cause(exc, ssl.SSLCertVerificationError)
    if cert is not None:
        return PermanentError(f"TLS with SMTP server {where} failed: {cert}")
    if isinstance(exc, SMTPTimeoutError | TimeoutError):
        return RetryableError(f"SMTP server {where} timed out: {exc}")
    if isinstance(exc, SMTPConnectError | SMTPServerDisconnected | OSError):
        return RetryableError(f"cannot reach SMTP server {where}: {exc}")
    if isinstance(exc, SMTPNotSupported):
        return PermanentError(f"SMTP server {where} does not support what is needed: {exc}")
    return PermanentError(f"SMTP server {where}: {exc}")


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def _password(ctx: ActionContext, config: SmtpConfig) -> str | None:
    if config.password is not None or not config.password_secret:
        return config.password
    name = config.password_secret
    vault = ctx.services.find(Vault)
    if vault is None:
        raise PermanentError(
            f"the SMTP password is read from secret {name!r}, but no vault is configured"
        )
    try:
        value = await asyncio.to_thread(vault.get, ctx.workspace, name)
    except NotFoundError:
        raise PermanentError(
            f"no secret named {name!r} in this workspace; add the SMTP password"
        ) from None
    ctx.secrets[name] = value  # masked in the step's trace like a template's secret
    return value


async def _logged(db: Database, key: str) -> EmailSentRow | None:
    def read() -> EmailSentRow | None:
        with db.read_session() as session:
            return session.get(EmailSentRow, key)

    return await asyncio.to_thread(read)


def _insert(tx: Tx, row: dict[str, Any]) -> None:
    key = row["idempotency_key"]
    if (
        tx.conn.execute(select(SENT.c.idempotency_key).where(SENT.c.idempotency_key == key)).first()
        is None
    ):
        tx.conn.execute(insert(SENT).values(**row))
