"""BigCommerce's side of single-click apps (apps/guide: auth.mdx, callbacks.mdx, users.mdx).

* Apps are registered as in the Developer Portal: client ID and secret, scopes, and the auth,
  load, uninstall and remove_user callback URLs (:meth:`Apps.register`).
* Every store has an owner and may have more users (:meth:`Apps.add_user`); the owner and
  users allowed to install (``can_install``, the documentation's *authorized users*) install
  and uninstall apps, other users only load the apps the owner gave them.
* An install is what the control panel does after the consent screen: a single-use ``code``
  and a redirect of the browser to the auth callback with ``code``, ``scope``, ``context`` and
  ``account_uuid`` (:meth:`Apps.start_install`). The app then calls the token endpoint
  (:meth:`Apps.exchange`), which checks every field and answers the documented body with a new
  access token for the store.
* A load redirects the browser to the load callback with a ``signed_payload_jwt``; uninstall
  and remove_user are server-to-server GETs with one (:meth:`Apps.call_back`). The payload's
  claims are the documented ones, signed with HS256 and the app's client secret.

On uninstall the store calls the app first, then revokes its token and removes its
``auto_uninstall`` scripts; the request log shows what the app removed itself (webhooks,
scripts) while its token still worked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from .formats import ApiError
from .state import Store

LOAD, UNINSTALL, REMOVE_USER = "load", "uninstall", "remove_user"
JWT_LIFETIME_S = 24 * 3600
"""``exp`` is 24 hours after ``nbf`` (callbacks.mdx)."""
TOKEN_FIELDS = (
    "client_id",
    "client_secret",
    "code",
    "context",
    "scope",
    "grant_type",
    "redirect_uri",
)


class OAuthError(Exception):
    """A refusal of the token endpoint: RFC 6749 section 5.2's ``{error, error_description}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class RegisteredApp:
    client_id: str
    client_secret: str
    scopes: list[str]
    auth_callback: str
    load_callback: str
    uninstall_callback: str | None = None
    remove_user_callback: str | None = None
    account_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)

    def public(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StoreUser:
    id: int
    email: str
    locale: str = "en-US"
    can_install: bool = False

    def public(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Installation:
    client_id: str
    store_hash: str
    access_token: str
    scope: str
    installed_by: int
    users: set[int] = field(default_factory=set)
    """Users the owner gave the app to (the owner and whoever installed have it anyway)."""

    def public(self) -> dict[str, Any]:
        return {**self.__dict__, "users": sorted(self.users)}


@dataclass
class Code:
    client_id: str
    store_hash: str
    user_id: int
    scope: str
    redirect_uri: str
    used: bool = False


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign_jwt(claims: dict[str, Any], secret: str, header: dict[str, Any] | None = None) -> str:
    """An HS256 JWT of ``claims`` (also used by tests to forge payloads)."""
    head = _b64(json.dumps(header or {"typ": "JWT", "alg": "HS256"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def with_query(url: str, params: dict[str, Any]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


class Apps:
    """The registered apps, store users and installations of one simulator."""

    def __init__(self, now: Any, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.now = now
        self.transport = transport
        self.apps: dict[str, RegisteredApp] = {}
        self.users: dict[str, dict[int, StoreUser]] = {}
        self.installs: dict[tuple[str, str], Installation] = {}
        self.codes: dict[str, Code] = {}
        self.token_requests: list[dict[str, Any]] = []
        """Every token request: the fields given and the outcome (``ok`` or the error)."""
        self.callbacks: list[dict[str, Any]] = []
        """Every server-to-server callback made: kind, url, status."""
        self._next_user = 9_000_001

    # -- registration and users ---------------------------------------------------------------
    def register(self, body: dict[str, Any]) -> RegisteredApp:
        scopes = body.get("scopes")
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ApiError(422, "scopes must be a list of OAuth scopes", {"scopes": "required"})
        for name in ("auth_callback", "load_callback"):
            if not isinstance(body.get(name), str):
                raise ApiError(422, f"{name} is required", {name: "required"})
        app = RegisteredApp(
            client_id=str(body.get("client_id") or secrets.token_hex(12)),
            client_secret=str(body.get("client_secret") or secrets.token_urlsafe(24)),
            scopes=list(scopes),
            auth_callback=body["auth_callback"],
            load_callback=body["load_callback"],
            uninstall_callback=body.get("uninstall_callback"),
            remove_user_callback=body.get("remove_user_callback"),
        )
        self.apps[app.client_id] = app
        return app

    def app(self, client_id: str) -> RegisteredApp:
        found = self.apps.get(client_id)
        if found is None:
            raise ApiError(404, f"App {client_id} is not registered.")
        return found

    def users_of(self, store: Store) -> dict[int, StoreUser]:
        """The store's users; the owner is made on first use."""
        users = self.users.setdefault(store.store_hash, {})
        if not users:
            owner = StoreUser(self._user_id(), f"owner@{store.store_hash}.example", "en-US", True)
            users[owner.id] = owner
        return users

    def owner(self, store: Store) -> StoreUser:
        return next(iter(self.users_of(store).values()))

    def add_user(
        self, store: Store, email: str, locale: str, can_install: bool, user_id: int | None = None
    ) -> StoreUser:
        """A user of ``store``; ``user_id`` names someone who is a user of another store too
        (BigCommerce accounts are not per store)."""
        user = StoreUser(user_id or self._user_id(), email, locale, can_install)
        self.users_of(store)[user.id] = user
        return user

    def user(self, store: Store, user_id: int | None) -> StoreUser:
        if user_id is None:
            return self.owner(store)
        found = self.users_of(store).get(user_id)
        if found is None:
            raise ApiError(404, f"User {user_id} is not a user of store {store.store_hash}.")
        return found

    def _user_id(self) -> int:
        self._next_user += 1
        return self._next_user

    # -- install and the token endpoint ----------------------------------------------------------
    def start_install(self, store: Store, client_id: str, user_id: int | None) -> str:
        """The URL the control panel sends the browser to once the user accepts the scopes."""
        app, user = self.app(client_id), self.user(store, user_id)
        if not user.can_install:
            raise ApiError(403, "Only the store owner or an authorized user can install apps.")
        code = secrets.token_urlsafe(12)
        self.codes[code] = Code(client_id, store.store_hash, user.id, app.scope, app.auth_callback)
        query = {
            "account_uuid": app.account_uuid,
            "code": code,
            "context": f"stores/{store.store_hash}",
            "scope": app.scope,
        }
        return with_query(app.auth_callback, query)

    def exchange(self, body: dict[str, Any], stores: dict[str, Store]) -> dict[str, Any]:
        """``POST /oauth2/token``: every field checked; the code works once."""
        record: dict[str, Any] = {"fields": sorted(body), "outcome": "ok"}
        self.token_requests.append(record)
        try:
            answer = self._exchange(body, stores)
        except OAuthError as refused:
            record["outcome"] = refused.error
            raise
        return answer

    def _exchange(self, body: dict[str, Any], stores: dict[str, Store]) -> dict[str, Any]:
        missing = [f for f in TOKEN_FIELDS if not isinstance(body.get(f), str) or not body[f]]
        if missing:
            raise OAuthError(400, "invalid_request", f"missing: {', '.join(missing)}")
        app = self.apps.get(body["client_id"])
        if app is None or not hmac.compare_digest(app.client_secret, body["client_secret"]):
            raise OAuthError(401, "invalid_client", "unknown client_id or wrong client_secret")
        if body["grant_type"] != "authorization_code":
            raise OAuthError(400, "unsupported_grant_type", "grant_type: authorization_code")
        code = self.codes.get(body["code"])
        if code is None or code.used or code.client_id != app.client_id:
            raise OAuthError(400, "invalid_grant", "the code is unknown or was used already")
        code.used = True  # a refused exchange spends the code too
        if body["context"] != f"stores/{code.store_hash}":
            raise OAuthError(400, "invalid_grant", "the context is not the code's store")
        if body["redirect_uri"] != code.redirect_uri:
            raise OAuthError(400, "invalid_grant", "redirect_uri is not the app's auth callback")
        if set(body["scope"].split()) != set(code.scope.split()):
            raise OAuthError(400, "invalid_scope", "the scope is not the one the user accepted")
        store = stores[code.store_hash]
        previous = self.installs.get((store.store_hash, app.client_id))
        if previous is not None:
            store.app_tokens.pop(previous.access_token, None)
        install = Installation(
            app.client_id, store.store_hash, secrets.token_urlsafe(24), code.scope, code.user_id
        )
        if previous is not None:
            install.users = previous.users
        self.installs[(store.store_hash, app.client_id)] = install
        store.app_tokens[install.access_token] = app.client_id
        user, owner = self.user(store, code.user_id), self.owner(store)
        return {
            "access_token": install.access_token,
            "scope": install.scope,
            "user": {"id": user.id, "username": user.email, "email": user.email},
            "owner": {"id": owner.id, "username": owner.email, "email": owner.email},
            "context": body["context"],
            "account_uuid": app.account_uuid,
        }

    # -- callbacks with a signed payload ---------------------------------------------------------
    def installation(self, store: Store, client_id: str) -> Installation:
        found = self.installs.get((store.store_hash, client_id))
        if found is None:
            raise ApiError(404, f"App {client_id} is not installed on store {store.store_hash}.")
        return found

    def claims(
        self, app: RegisteredApp, store: Store, user: StoreUser, url: str = "/"
    ) -> dict[str, Any]:
        """The documented claims of a callback's ``signed_payload_jwt``."""
        now = int(self.now().timestamp())
        owner = self.owner(store)
        return {
            "aud": app.client_id,
            "iss": "bc",
            "iat": now,
            "nbf": now,
            "exp": now + JWT_LIFETIME_S,
            "jti": str(uuid.uuid4()),
            "sub": f"stores/{store.store_hash}",
            "user": {"id": user.id, "email": user.email, "locale": user.locale},
            "owner": {"id": owner.id, "email": owner.email},
            "url": url,
            "channel_id": None,
        }

    def may_load(self, install: Installation, user: StoreUser) -> bool:
        return user.id in install.users or user.id == install.installed_by or user.can_install

    def load_url(self, store: Store, client_id: str, user_id: int | None, url: str = "/") -> str:
        app, install = self.app(client_id), self.installation(store, client_id)
        user = self.user(store, user_id)
        if not self.may_load(install, user):
            raise ApiError(403, f"User {user.id} has not been given this app.")
        token = sign_jwt(self.claims(app, store, user, url), app.client_secret)
        return with_query(app.load_callback, {"signed_payload_jwt": token})

    async def call_back(self, kind: str, app: RegisteredApp, store: Store, user: StoreUser) -> Any:
        """A server-to-server callback (uninstall, remove_user); ``None`` when the app has no
        URL for it (BigCommerce then goes on without telling the app)."""
        url = app.uninstall_callback if kind == UNINSTALL else app.remove_user_callback
        if not url:
            return None
        token = sign_jwt(self.claims(app, store, user), app.client_secret)
        target = with_query(url, {"signed_payload_jwt": token})
        record: dict[str, Any] = {"kind": kind, "url": url, "user_id": user.id}
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=10) as http:
                answer = await http.get(target, headers={"Accept": "application/json"})
            record.update(status=answer.status_code, body=answer.text[:2000])
        except httpx.HTTPError as exc:
            record.update(status=None, body=f"{type(exc).__name__}: {exc}")
        self.callbacks.append(record)
        return record

    async def uninstall(self, store: Store, client_id: str, user_id: int | None) -> Any:
        app, install = self.app(client_id), self.installation(store, client_id)
        user = self.user(store, user_id)
        if not user.can_install:
            raise ApiError(403, "Only the store owner or an authorized user can uninstall apps.")
        record = await self.call_back(UNINSTALL, app, store, user)
        store.app_tokens.pop(install.access_token, None)
        del self.installs[(store.store_hash, client_id)]
        for key, script in list(store.scripts.items()):  # scripts.v3.yml: auto_uninstall
            if script["api_client_id"] == client_id and script.get("auto_uninstall"):
                del store.scripts[key]
        return record

    async def remove_user(self, store: Store, client_id: str, user_id: int) -> Any:
        app, install = self.app(client_id), self.installation(store, client_id)
        user = self.user(store, user_id)
        if user.id == self.owner(store).id:
            raise ApiError(409, "The store owner cannot be removed.")
        install.users.discard(user.id)
        return await self.call_back(REMOVE_USER, app, store, user)
