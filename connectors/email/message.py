"""``email.send`` parameters and output, and the MIME message built from them."""

from __future__ import annotations

import base64 as b64
import binascii
import hashlib
import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, field_validator, model_validator

from engine import Params

MAX_RECIPIENTS = 100
MAX_BODY_CHARS = 5_000_000
MAX_ATTACHMENT_BYTES = 10_000_000

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_SPEC = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_addresses(value: object) -> list[str]:
    """One address, a comma-separated string of them, or a list, as ``Name <addr>`` strings.

    An empty string or ``None`` (a template that rendered to nothing) is an empty list. Only
    plain ASCII addresses are accepted (no SMTPUTF8); display names may be any text.
    """
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("expected an email address or a list of them")
    found: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected an email address, got {type(item).__name__}")
        if not item.strip():
            continue
        if _CONTROL.search(item):
            raise ValueError(f"{item!r} contains a line break or control character")
        pairs = [(name, addr) for name, addr in getaddresses([item]) if name or addr]
        if not pairs:
            raise ValueError(f"{item!r} is not an email address")
        for name, addr in pairs:
            if len(addr) > 254 or not _ADDR_SPEC.match(addr):
                raise ValueError(f"{addr or item!r} is not a valid email address")
            found.append(str(Address(display_name=name, addr_spec=addr)))
    return found


def bare(address: str) -> str:
    """``addr`` of ``Name <addr>``."""
    return getaddresses([address])[0][1]


Addresses = Annotated[list[str], BeforeValidator(parse_addresses)]


class Attachment(Params):
    """A file attached to the message. ``content`` is text (sent as UTF-8), or base64 when
    ``base64`` is true (for binary files)."""

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(
        default="application/octet-stream", pattern=r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$"
    )
    content: str
    base64: bool = False

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if _CONTROL.search(value) or "/" in value or "\\" in value:
            raise ValueError("a file name has no path separators or control characters")
        return value

    @model_validator(mode="after")
    def _decodes(self) -> Attachment:
        if self.base64:
            try:
                b64.b64decode(self.content, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"{self.filename}: content is not valid base64") from None
        return self

    def data(self) -> bytes:
        if self.base64:
            return b64.b64decode(self.content, validate=True)
        return self.content.encode("utf-8")


class SendParams(Params):
    to: Addresses = Field(description="One address, a comma-separated list, or a list")
    cc: Addresses = Field(default_factory=list)
    bcc: Addresses = Field(default_factory=list, description="Delivered, but not shown to others")
    reply_to: Addresses = Field(default_factory=list)
    subject: str = Field(max_length=998)
    text: str | None = Field(default=None, max_length=MAX_BODY_CHARS, description="Plain-text body")
    html: str | None = Field(default=None, max_length=MAX_BODY_CHARS, description="HTML body")
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        """A rendered subject may carry a line break from the data; headers cannot."""
        return " ".join(value.split())

    @model_validator(mode="after")
    def _complete(self) -> SendParams:
        if not self.to:
            raise ValueError("to: at least one recipient is required")
        if len(self.envelope_recipients()) > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients (to, cc and bcc together)")
        if self.text is None and self.html is None:
            raise ValueError("a message needs a text or an html body (or both)")
        total = sum(len(a.data()) for a in self.attachments)
        if total > MAX_ATTACHMENT_BYTES:
            raise ValueError(
                f"attachments total {total} bytes; the limit is {MAX_ATTACHMENT_BYTES}"
            )
        return self

    def envelope_recipients(self) -> list[str]:
        """Every bare address from to, cc and bcc, once each, in order."""
        seen: dict[str, str] = {}
        for address in (*self.to, *self.cc, *self.bcc):
            addr = bare(address)
            seen.setdefault(addr.lower(), addr)
        return list(seen.values())


class SendOutput(BaseModel):
    message_id: str = Field(
        description="The Message-ID header, derived from the step's idempotency key"
    )
    accepted: list[str] = Field(description="Recipients the SMTP server accepted")
    refused: dict[str, str] = Field(
        default_factory=dict, description="Recipients the server refused, with its reply"
    )
    already_sent: bool = Field(
        default=False,
        description="True when the sent log shows this step's message went out before",
    )


def message_id_for(idempotency_key: str) -> str:
    """The same key always gives the same Message-ID, so a resend is recognisable downstream."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@sous>"


def build_message(
    params: SendParams, *, sender: str, message_id: str, date: datetime
) -> EmailMessage:
    """The MIME message: text and/or HTML alternatives, then attachments. Bcc is not a header."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(params.to)
    if params.cc:
        msg["Cc"] = ", ".join(params.cc)
    if params.reply_to:
        msg["Reply-To"] = ", ".join(params.reply_to)
    msg["Subject"] = params.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: tells responders not to auto-reply
    if params.text is not None:
        msg.set_content(params.text)
        if params.html is not None:
            msg.add_alternative(params.html, subtype="html")
    elif params.html is not None:
        msg.set_content(params.html, subtype="html")
    for attachment in params.attachments:
        _attach(msg, attachment)
    return msg


def _attach(msg: EmailMessage, attachment: Attachment) -> None:
    maintype, subtype = attachment.content_type.lower().split("/", 1)
    if maintype == "text" and not attachment.base64:
        msg.add_attachment(attachment.content, subtype=subtype, filename=attachment.filename)
        return
    msg.add_attachment(
        attachment.data(), maintype=maintype, subtype=subtype, filename=attachment.filename
    )
