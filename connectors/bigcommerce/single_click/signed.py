"""The ``signed_payload_jwt`` BigCommerce sends to an app's load, uninstall and remove_user
callbacks: a JWT signed with HS256 and the app's client secret (callbacks.mdx).

:func:`verify` accepts a token only when every documented claim is as it should be: the header
names HS256 (``none`` and every other algorithm are refused), the signature matches, ``iss`` is
``bc``, ``aud`` is this app's client ID, ``nbf``/``iat`` are not in the future and ``exp`` not
in the past (with :data:`LEEWAY` seconds for clocks that differ), ``jti`` is there, ``sub`` is
``stores/{hash}``, and ``user`` and ``owner`` carry an integer ``id`` and an ``email``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

LEEWAY = 30
"""Seconds of clock difference tolerated on ``nbf``, ``iat`` and ``exp``."""
MAX_LENGTH = 8192
ISSUER = "bc"
STORE_SUBJECT = re.compile(r"^stores/([A-Za-z0-9]{1,64})$")


class InvalidPayload(Exception):
    """The ``signed_payload_jwt`` is not one BigCommerce signed for this app, or is no longer
    valid; the message says why (it is safe to show)."""


@dataclass(frozen=True)
class BigCommerceUser:
    id: int
    email: str
    locale: str | None = None


@dataclass(frozen=True)
class SignedPayload:
    """The verified claims of one callback."""

    store_hash: str
    user: BigCommerceUser
    owner: BigCommerceUser
    issued_at: int
    expires_at: int
    jti: str
    url: str = "/"
    channel_id: int | None = None

    @property
    def by_owner(self) -> bool:
        """The user is the store's owner (same id; the emails are compared too)."""
        return self.user.id == self.owner.id


def _b64decode(part: str) -> bytes:
    if not part or not re.fullmatch(r"[A-Za-z0-9_-]+", part):
        raise InvalidPayload("the token is not made of three base64url parts")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidPayload("the token is not made of three base64url parts") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidPayload(f"the token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidPayload(f"the token's {what} is not a JSON object")
    return value


def _integer(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidPayload(f"the {name!r} claim is missing or not an integer")
    return value


def _user(claims: dict[str, Any], name: str) -> BigCommerceUser:
    value = claims.get(name)
    if not isinstance(value, dict):
        raise InvalidPayload(f"the {name!r} claim is missing")
    uid, email, locale = value.get("id"), value.get("email"), value.get("locale")
    if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
        raise InvalidPayload(f"{name}.id is missing or not a positive integer")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise InvalidPayload(f"{name}.email is missing or not an e-mail address")
    if locale is not None and (not isinstance(locale, str) or len(locale) > 35):
        raise InvalidPayload(f"{name}.locale is not a language tag")
    return BigCommerceUser(uid, email, locale)


def _signature_ok(token: str, secret: str) -> dict[str, Any]:
    if len(token) > MAX_LENGTH:
        raise InvalidPayload("the token is too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidPayload("the token is not made of three base64url parts")
    header = _json_object(_b64decode(parts[0]), "header")
    if header.get("alg") != "HS256":
        raise InvalidPayload("the token is not signed with HS256")
    if header.get("typ", "JWT") != "JWT":
        raise InvalidPayload("the token is not a JWT")
    signed = f"{parts[0]}.{parts[1]}".encode()
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64decode(parts[2])):
        raise InvalidPayload("the token's signature does not match this app's client secret")
    return _json_object(_b64decode(parts[1]), "payload")


def verify(token: str, *, client_id: str, client_secret: str, now: float) -> SignedPayload:
    """The claims of ``token`` if BigCommerce signed it for this app and it is valid at
    ``now`` (UNIX seconds); :class:`InvalidPayload` otherwise."""
    claims = _signature_ok(token, client_secret)
    if claims.get("iss") != ISSUER:
        raise InvalidPayload("the token was not issued by BigCommerce (iss)")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise InvalidPayload("the token was issued for another app (aud)")
    issued, not_before, expires = (_integer(claims, n) for n in ("iat", "nbf", "exp"))
    if not_before > now + LEEWAY or issued > now + LEEWAY:
        raise InvalidPayload("the token is not valid yet (nbf, iat)")
    if expires <= now - LEEWAY:
        raise InvalidPayload("the token has expired (exp)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= 64:
        raise InvalidPayload("the token has no id (jti)")
    found = STORE_SUBJECT.match(str(claims.get("sub") or ""))
    if found is None:
        raise InvalidPayload("the token names no store (sub)")
    url, channel = claims.get("url", "/"), claims.get("channel_id")
    if channel is not None and (not isinstance(channel, int) or isinstance(channel, bool)):
        raise InvalidPayload("channel_id is not an integer")
    return SignedPayload(
        store_hash=found.group(1),
        user=_user(claims, "user"),
        owner=_user(claims, "owner"),
        issued_at=issued,
        expires_at=expires,
        jti=jti,
        url=url if isinstance(url, str) else "/",
        channel_id=channel,
    )
