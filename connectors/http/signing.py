"""Standard Webhooks signatures (https://www.standardwebhooks.com), for webhooks Sous receives.

A sender signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 under the shared
secret and sends three headers: ``webhook-id`` (unique per message: retries repeat it, so Sous
keeps it as the event's deduplication key), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature`` (``v1,<base64>``, several separated by spaces while a secret is rotated).
Secrets are ``whsec_`` followed by the base64 of the key bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300
"""How far a message's timestamp may be from this machine's clock (replayed messages are older)."""


class SignatureError(ValueError):
    """Why a message was refused, in words for its sender."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for a message."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
    """Check a message's signature and timestamp; return its ``webhook-id``."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    given = headers.get("webhook-signature", "")
    if not (msg_id and stamp and given):
        raise SignatureError(
            "sign the request as Standard Webhooks do: headers webhook-id, webhook-timestamp "
            "and webhook-signature (v1,<base64 HMAC-SHA256 of id.timestamp.body>)"
        )
    if len(msg_id) > 200:
        raise SignatureError("webhook-id is longer than 200 characters")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp must be Unix seconds") from None
    if abs(now.timestamp() - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError(
            f"webhook-timestamp is more than {TOLERANCE_SECONDS} s away from now; "
            "send a fresh timestamp (and check the sender's clock)"
        )
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in given.split():
        if hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise SignatureError("webhook-signature does not match this hook's secret")
