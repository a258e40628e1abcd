"""A local SMTP server that keeps what it receives in memory: for the sandbox and for tests.

It runs on the caller's event loop (aiosmtpd's protocol served by ``loop.create_server``), so
tests can ``await sink.wait_for(2)`` instead of polling. It can refuse chosen recipients with
550 (or defer them with 451), offer STARTTLS with a given certificate, and require a login.

::

    sink = SmtpSink(port=0)          # 0: any free port
    await sink.start()
    ...                              # send to 127.0.0.1:sink.port
    [message] = await sink.wait_for(1)
    await sink.stop()
"""

from __future__ import annotations

import asyncio
import base64
import email
import hmac
import ssl
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from engine import Clock, SystemClock

MAX_KEPT = 1000


@dataclass(frozen=True)
class CapturedAttachment:
    filename: str | None
    content_type: str
    data: bytes

    def to_dict(self) -> dict[str, Any]:
        text = self.content_type.startswith("text/")
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
            "content": self.data.decode("utf-8", "replace")
            if text
            else base64.b64encode(self.data).decode(),
            "base64": not text,
        }


@dataclass(frozen=True)
class CapturedMessage:
    """One message as the sink received it: the envelope, and the parsed headers and parts."""

    mail_from: str
    rcpt_tos: list[str]
    sender: str
    to: list[str]
    cc: list[str]
    reply_to: list[str]
    subject: str
    message_id: str | None
    text: str | None
    html: str | None
    attachments: list[CapturedAttachment]
    received_at: datetime
    raw: bytes = field(repr=False)

    @classmethod
    def parse(
        cls, mail_from: str, rcpt_tos: list[str], raw: bytes, received_at: datetime
    ) -> CapturedMessage:
        msg = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        return cls(
            mail_from=mail_from,
            rcpt_tos=list(rcpt_tos),
            sender=str(msg.get("From", "")),
            to=_addresses(msg, "To"),
            cc=_addresses(msg, "Cc"),
            reply_to=_addresses(msg, "Reply-To"),
            subject=str(msg.get("Subject", "")),
            message_id=str(msg["Message-ID"]) if msg["Message-ID"] else None,
            text=_content(text),
            html=_content(html),
            attachments=[
                CapturedAttachment(part.get_filename(), part.get_content_type(), _payload(part))
                for part in msg.iter_attachments()
                if isinstance(part, EmailMessage)
            ],
            received_at=received_at,
            raw=raw,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos,
            "from": self.sender,
            "to": self.to,
            "cc": self.cc,
            "reply_to": self.reply_to,
            "subject": self.subject,
            "message_id": self.message_id,
            "text": self.text,
            "html": self.html,
            "attachments": [a.to_dict() for a in self.attachments],
            "received_at": self.received_at.isoformat(),
            "size": len(self.raw),
        }


def _addresses(msg: EmailMessage, header: str) -> list[str]:
    value = msg.get(header)
    if value is None:
        return []
    return [str(a) for a in getattr(value, "addresses", ())] or [str(value)]


def _content(part: Any) -> str | None:
    if part is None:
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None


def _payload(part: EmailMessage) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        lowered = address.lower()
        if lowered in self._sink.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if lowered in self._sink.defer:
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._sink.gate is not None:
            self._sink.at_gate.set()
            await self._sink.gate.wait()
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        await self._sink._keep(str(envelope.mail_from or ""), list(envelope.rcpt_tos), raw)
        return "250 2.0.0 OK: queued"


class SmtpSink:
    """An in-memory SMTP server on ``host`` (loopback by default) and ``port`` (0: a free one).

    ``refuse`` and ``defer`` are addresses answered with 550 and 451 at RCPT. With a
    ``tls_context`` the server offers STARTTLS (and ``require_starttls`` insists on it); with
    ``login`` (username, password) it requires AUTH, which aiosmtpd only accepts over TLS.

    To hold a delivery half-way (a test of what happens when the sender gives up mid-message),
    set ``gate`` to an :class:`asyncio.Event`: DATA then sets ``at_gate`` and waits for
    ``gate`` before accepting the message.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        refuse: Iterable[str] = (),
        defer: Iterable[str] = (),
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        login: tuple[str, str] | None = None,
        clock: Clock | None = None,
        hostname: str = "sink.sous.test",
    ) -> None:
        self.host = host
        self._port = port
        self.refuse = {a.lower() for a in refuse}
        self.defer = {a.lower() for a in defer}
        self._tls_context = tls_context
        self._require_starttls = require_starttls
        self._login = login
        self._clock: Clock = clock or SystemClock()
        self._hostname = hostname
        self.messages: list[CapturedMessage] = []
        self.logins: list[str] = []
        self.gate: asyncio.Event | None = None
        self.at_gate = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._arrived: asyncio.Condition | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one picked, when started with 0)."""
        if self._server is None:
            raise RuntimeError("the SMTP sink is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._arrived = asyncio.Condition()
        handler = _Handler(self)

        def protocol() -> SMTP:
            session = SMTP(
                handler,
                hostname=self._hostname,
                ident="Sous SMTP sink",
                tls_context=self._tls_context,
                require_starttls=self._require_starttls,
                auth_required=self._login is not None,
                authenticator=self._authenticate if self._login is not None else None,
                loop=loop,
            )
            self._sessions.add(session)
            return session

        self._server = await loop.create_server(protocol, self.host, self._port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for session in list(self._sessions):  # a client still connected is cut off
                if session.transport is not None:
                    session.transport.close()
            await server.wait_closed()

    async def __aenter__(self) -> SmtpSink:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def clear(self) -> None:
        self.messages.clear()

    async def wait_for(
        self,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[CapturedMessage]:
        """Wait until at least ``count`` messages have arrived; returns them all.

        Raises :class:`TimeoutError` naming how many did arrive when ``timeout`` passes first.
        """
        if self._arrived is None:
            raise RuntimeError("the SMTP sink is not started")
        arrived = self._arrived
        try:
            async with asyncio.timeout(timeout):
                async with arrived:
                    await arrived.wait_for(lambda: len(self.messages) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"waited {timeout:g}s for {count} message(s); {len(self.messages)} arrived"
            ) from None
        return list(self.messages)

    async def _keep(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        message = CapturedMessage.parse(mail_from, rcpt_tos, raw, self._clock.now())
        self.messages.append(message)
        del self.messages[:-MAX_KEPT]
        if self._arrived is not None:
            async with self._arrived:
                self._arrived.notify_all()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self._login is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = self._login
        ok = hmac.compare_digest(auth_data.login, user.encode()) and hmac.compare_digest(
            auth_data.password, password.encode()
        )
        if ok:
            self.logins.append(user)
        return AuthResult(success=ok, handled=False)
