"""Single-click apps: BigCommerce's token endpoint and the control panel's part (``apps.py``).

* ``POST /oauth2/token`` stands for ``https://login.bigcommerce.com/oauth2/token``: JSON (or a
  form) with ``client_id``, ``client_secret``, ``code``, ``context``, ``scope``, ``grant_type``
  and ``redirect_uri``, every one checked; answers the documented body, or
  ``{error, error_description}`` (400; 401 for a wrong client).
* ``POST /_sim/apps`` registers an app (``client_id``, ``client_secret`` (both optional),
  ``scopes``, ``auth_callback``, ``load_callback``, ``uninstall_callback``,
  ``remove_user_callback``); ``GET /_sim/apps`` lists them, ``GET /_sim/apps/tokens`` lists the
  token requests.
* ``GET|POST /_sim/stores/{hash}/users``: the store's users (``{email, locale, can_install,
  id}``; ``id`` makes a user of another store a user of this one too).
* ``GET /_sim/stores/{hash}/apps/{client_id}/install?user_id=``: the browser, after the consent
  screen: a 302 to the app's auth callback with a fresh code.
* ``GET /_sim/stores/{hash}/apps/{client_id}/load?user_id=&url=``: a 302 to the load callback
  with a ``signed_payload_jwt``.
* ``POST /_sim/stores/{hash}/apps/{client_id}/users/{user_id}``: the owner gives a user the app.
* ``DELETE /_sim/stores/{hash}/apps/{client_id}/users/{user_id}``: the owner takes it back
  (the remove_user callback is called); ``DELETE /_sim/stores/{hash}/apps/{client_id}?user_id=``
  uninstalls (the uninstall callback is called, then the app's token is revoked). Both answer
  ``{"callback": {kind, url, status, body} | null}``.
* ``GET /_sim/stores/{hash}/apps``: the store's installations (tokens included).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from .apps import OAuthError
from .deps import SimDep, no_content, read_object
from .formats import ApiError
from .simulator import Simulator
from .state import Store

router = APIRouter()


def _store(sim: Simulator, store_hash: str) -> Store:
    store = sim.state.stores.get(store_hash)
    if store is None:
        raise ApiError(404, f"Store {store_hash} not found.")
    return store


@router.post("/oauth2/token")
async def token(request: Request, sim: SimDep) -> JSONResponse:
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body: Any
    try:
        if kind == "application/x-www-form-urlencoded":
            body = dict(parse_qsl(raw.decode()))
        else:
            body = json.loads(raw) if kind == "application/json" else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        refused = OAuthError(400, "invalid_request", "send the fields as a JSON object")
        return JSONResponse(refused.body(), refused.status)
    try:
        return JSONResponse(sim.apps.exchange(body, sim.state.stores))
    except OAuthError as refused:
        return JSONResponse(refused.body(), refused.status)


@router.post("/_sim/apps")
async def register_app(request: Request, sim: SimDep) -> JSONResponse:
    app = sim.apps.register(await read_object(request))
    return JSONResponse(app.public(), 201)


@router.get("/_sim/apps")
async def list_apps(sim: SimDep) -> JSONResponse:
    return JSONResponse([app.public() for app in sim.apps.apps.values()])


@router.get("/_sim/apps/tokens")
async def token_requests(sim: SimDep) -> JSONResponse:
    return JSONResponse(sim.apps.token_requests)


@router.get("/_sim/stores/{store_hash}/users")
async def users(sim: SimDep, store_hash: str) -> JSONResponse:
    found = sim.apps.users_of(_store(sim, store_hash)).values()
    return JSONResponse([u.public() for u in found])


@router.post("/_sim/stores/{store_hash}/users")
async def add_user(request: Request, sim: SimDep, store_hash: str) -> JSONResponse:
    body = await read_object(request)
    email, user_id = body.get("email"), body.get("id")
    if not isinstance(email, str) or "@" not in email:
        raise ApiError(422, "email is required", {"email": "required"})
    if user_id is not None and (not isinstance(user_id, int) or isinstance(user_id, bool)):
        raise ApiError(422, "id must be an integer", {"id": "must be an integer"})
    user = sim.apps.add_user(
        _store(sim, store_hash),
        email,
        str(body.get("locale") or "en-US"),
        bool(body.get("can_install", False)),
        user_id,
    )
    return JSONResponse(user.public(), 201)


@router.get("/_sim/stores/{store_hash}/apps")
async def installations(sim: SimDep, store_hash: str) -> JSONResponse:
    _store(sim, store_hash)
    found = [i.public() for (h, _), i in sim.apps.installs.items() if h == store_hash]
    return JSONResponse(found)


@router.get("/_sim/stores/{store_hash}/apps/{client_id}/install")
async def install(
    sim: SimDep, store_hash: str, client_id: str, user_id: int | None = None
) -> Response:
    url = sim.apps.start_install(_store(sim, store_hash), client_id, user_id)
    return RedirectResponse(url, status_code=302)


@router.get("/_sim/stores/{store_hash}/apps/{client_id}/load")
async def load(
    sim: SimDep, store_hash: str, client_id: str, user_id: int | None = None, url: str = "/"
) -> Response:
    target = sim.apps.load_url(_store(sim, store_hash), client_id, user_id, url)
    return RedirectResponse(target, status_code=302)


@router.post("/_sim/stores/{store_hash}/apps/{client_id}/users/{user_id}")
async def give_app(sim: SimDep, store_hash: str, client_id: str, user_id: int) -> Response:
    store = _store(sim, store_hash)
    sim.apps.installation(store, client_id).users.add(sim.apps.user(store, user_id).id)
    return no_content()


@router.delete("/_sim/stores/{store_hash}/apps/{client_id}/users/{user_id}")
async def remove_user(sim: SimDep, store_hash: str, client_id: str, user_id: int) -> JSONResponse:
    record = await sim.apps.remove_user(_store(sim, store_hash), client_id, user_id)
    return JSONResponse({"callback": record})


@router.delete("/_sim/stores/{store_hash}/apps/{client_id}")
async def uninstall(
    sim: SimDep, store_hash: str, client_id: str, user_id: int | None = None
) -> JSONResponse:
    record = await sim.apps.uninstall(_store(sim, store_hash), client_id, user_id)
    return JSONResponse({"callback": record})
