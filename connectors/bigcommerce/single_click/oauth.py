"""The install's code grant (auth.mdx): check the callback's scopes, then exchange its code for
the store's access token at ``{login_url}/oauth2/token``.

The request carries exactly the documented body (``client_id``, ``client_secret``, ``code``,
``context``, ``scope``, ``grant_type: authorization_code``, ``redirect_uri``) as JSON, and the
answer is checked before anything is kept: an ``access_token``, the same ``context``, the
``user`` and ``owner``, and the scopes the app was configured for. The caller chooses the
transport: Sous passes the outbound guard's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.bigcommerce.single_click.signed import BigCommerceUser
from connectors.http.guard import OutboundRefused

CONTEXT = re.compile(r"^stores/([A-Za-z0-9]{1,64})$")
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a secret


class InstallRefused(Exception):
    """The install cannot go on; ``status`` is the HTTP status to answer the callback with and
    the message says why (it is safe to show the merchant)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Grant:
    """What the token endpoint answered (every value, as the documentation advises)."""

    access_token: str
    scope: str
    store_hash: str
    account_uuid: str
    user: BigCommerceUser
    owner: BigCommerceUser


def store_of(context: str) -> str:
    """The store hash of a ``stores/{hash}`` context."""
    found = CONTEXT.match(context)
    if found is None:
        raise InstallRefused(400, f"{context!r} is not a store context (stores/{{hash}})")
    return found.group(1)


def scopes_of(scope: str) -> frozenset[str]:
    return frozenset(scope.split())


def check_scopes(given: str, configured: list[str]) -> None:
    """The callback's scopes must be those of the app profile Sous is configured for."""
    have, want = scopes_of(given), frozenset(configured)
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("not configured: " + ", ".join(extra))
        raise InstallRefused(
            400,
            "the app's scopes differ from those Sous is configured for ("
            + "; ".join(parts)
            + "): update the app profile or SOUS_BIGCOMMERCE_APP_SCOPES",
        )


def _user(body: dict[str, Any], name: str) -> BigCommerceUser:
    value = body.get(name)
    if not isinstance(value, dict):
        raise InstallRefused(502, f"BigCommerce's token answer has no {name}")
    uid, email = value.get("id"), value.get("email")
    if not isinstance(uid, int) or isinstance(uid, bool) or not isinstance(email, str):
        raise InstallRefused(502, f"BigCommerce's token answer has no {name}.id or {name}.email")
    return BigCommerceUser(uid, email)


def _grant(body: Any, context: str, configured: list[str]) -> Grant:
    if not isinstance(body, dict):
        raise InstallRefused(502, "BigCommerce's token answer is not a JSON object")
    token, scope = body.get("access_token"), body.get("scope")
    if not isinstance(token, str) or not token or len(token) > 1000:
        raise InstallRefused(502, "BigCommerce's token answer has no access_token")
    if body.get("context") != context:
        raise InstallRefused(502, "BigCommerce's token answer is for another store")
    if not isinstance(scope, str):
        raise InstallRefused(502, "BigCommerce's token answer has no scope")
    check_scopes(scope, configured)
    return Grant(
        access_token=token,
        scope=scope,
        store_hash=store_of(context),
        account_uuid=str(body.get("account_uuid") or ""),
        user=_user(body, "user"),
        owner=_user(body, "owner"),
    )


async def exchange_code(
    *,
    login_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    scope: str,
    context: str,
    redirect_uri: str,
    configured_scopes: list[str],
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 15.0,
) -> Grant:
    """POST the code to the token endpoint and return the checked grant."""
    body = {
        "client_id": client_id,
        "client_secret": client_secret,
        "code": code,
        "context": context,
        "scope": scope,
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
    }
    headers = {"Accept": "application/json"}
    try:
        async with httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
        ) as http:
            answer = await http.post(login_url + TOKEN_PATH, json=body, headers=headers)
    except OutboundRefused as exc:
        raise InstallRefused(502, f"the outbound guard refused the token endpoint: {exc}") from None
    except httpx.HTTPError as exc:
        raise InstallRefused(
            502, f"BigCommerce's token endpoint could not be reached: {exc}"
        ) from None
    if answer.status_code >= 500 or answer.status_code == 429:
        raise InstallRefused(502, f"BigCommerce's token endpoint answered {answer.status_code}")
    if answer.status_code != 200:
        raise InstallRefused(
            400,
            f"BigCommerce refused the install code ({answer.status_code}: {_reason(answer)}); "
            "start the install again from the store's control panel",
        )
    try:
        parsed = answer.json()
    except ValueError:
        raise InstallRefused(502, "BigCommerce's token answer is not JSON") from None
    return _grant(parsed, context, configured_scopes)


def _reason(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    if isinstance(body, dict):
        text = body.get("error_description") or body.get("error") or body.get("title")
        return str(text)[:200] if text else "no reason given"
    return "no reason given"
