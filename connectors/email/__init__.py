"""Email: send a message over SMTP (``email.send``), at most once per step.

- ``email.send``: to, cc, bcc, reply_to, subject, text and/or html bodies, attachments (text or
  base64). Delivered through the SMTP server in the :class:`SmtpConfig` service; the sent log
  (table ``email_sent``) keeps a retried step from sending its message twice (see
  :mod:`connectors.email.send` for the one window that remains).
- :class:`~connectors.email.sink.SmtpSink`: a local SMTP server that keeps messages in memory,
  for the sandbox and tests.

The composition root calls :func:`services_from_settings` to register the SMTP settings.
"""

from __future__ import annotations

from connectors.email.config import SmtpConfig, services_from_settings
from connectors.email.message import Attachment, SendOutput, SendParams
from connectors.email.send import send_email
from engine import ActionSpec, Connector, RetryPolicy

CONNECTOR = Connector(
    name="email",
    description="Send email through the configured SMTP server",
    actions=(
        ActionSpec(
            name="email.send",
            description="Send an email (text and/or HTML, attachments); never twice for one step",
            params=SendParams,
            output=SendOutput,
            handler=send_email,
            writes="sends an email to the given recipients",
            retry=RetryPolicy(tries=5, backoff=10, factor=3, cap=1800),
            timeout=120,
        ),
    ),
)

__all__ = [
    "CONNECTOR",
    "Attachment",
    "SendOutput",
    "SendParams",
    "SmtpConfig",
    "services_from_settings",
]
