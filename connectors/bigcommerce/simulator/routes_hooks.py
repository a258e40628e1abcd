"""Webhooks v3 ``/hooks``: create, list (filters ``is_active``, ``scope``, ``destination``), get,
update, delete, and ``GET /hooks/admin``.

Limits as webhooks.md §3: at most 10 hooks per scope and one per scope + destination (422
otherwise). Destinations must be ``https`` on port 443 only when the simulator is configured with
``require_https_destinations`` (local receivers are plain http on a loopback port).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .deps import V3, SimDep, StoreDep, ok, read_object
from .formats import ApiError, invalid, page_args, paginate_v3, q_bool
from .records import Hook, build
from .state import Store

router = APIRouter()


def _hook(store: Store, hook_id: int) -> Hook:
    hook = store.hooks.get(hook_id)
    if hook is None:
        raise ApiError(404, f"Webhook with id [{hook_id}] not found")
    return hook


def _validate(store: Store, hook: Hook, https_only: bool) -> None:
    parts = urlsplit(hook.destination)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid({"destination": "must be an absolute http(s) URL"})
    if https_only and (parts.scheme != "https" or (parts.port or 443) != 443):
        raise invalid({"destination": "must be served over https on port 443"})
    if not hook.scope.startswith("store/"):
        raise invalid({"scope": "is not a known webhook scope"})
    same_scope = [h for h in store.hooks.values() if h.scope == hook.scope and h.id != hook.id]
    if any(h.destination == hook.destination for h in same_scope):
        raise invalid({"destination": "a webhook for this scope and destination already exists"})
    if len(same_scope) >= 10:
        raise invalid({"scope": "at most 10 webhooks per scope"})
    if hook.headers is not None and (
        len(hook.headers) > 64
        or any(len(k.encode()) > 64 or len(v.encode()) > 8192 for k, v in hook.headers.items())
    ):
        raise invalid({"headers": "at most 64 headers, names <= 64 bytes, values <= 8 KB"})


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ("scope", "destination", "is_active", "headers") if k in body}


@router.post(V3 + "/hooks")
async def create(request: Request, store: StoreDep, sim: SimDep) -> JSONResponse:
    body = await read_object(request)
    missing = {k: "error.path.missing" for k in ("scope", "destination") if not body.get(k)}
    if missing:
        raise invalid(missing)
    now = int(store.now().timestamp())
    hook = build(
        Hook,
        {
            **_fields(body),
            "id": 0,
            "client_id": store.client_id,
            "store_hash": store.store_hash,
            "created_at": now,
            "updated_at": now,
        },
    )
    _validate(store, hook, sim.config.require_https_destinations)
    hook.id = store.next_id("hook")
    hook.status = "active" if hook.is_active else "inactive"
    store.hooks[hook.id] = hook
    return ok(hook.public())


@router.get(V3 + "/hooks")
async def list_hooks(request: Request, store: StoreDep) -> JSONResponse:
    params = request.query_params
    page, limit = page_args(params)
    found = sorted(store.hooks.values(), key=lambda h: h.id)
    if (active := q_bool(params, "is_active")) is not None:
        found = [h for h in found if h.is_active == active]
    if (scope := params.get("scope")) is not None:
        found = [h for h in found if h.scope == scope]
    if (destination := params.get("destination")) is not None:
        found = [h for h in found if h.destination == destination]
    chunk, meta = paginate_v3(found, page, limit)
    return ok([h.public() for h in chunk], meta)


@router.get(V3 + "/hooks/admin")
async def admin(request: Request, store: StoreDep) -> JSONResponse:
    active = q_bool(request.query_params, "is_active")
    hooks = [
        h
        for h in sorted(store.hooks.values(), key=lambda h: h.id)
        if active is None or h.is_active == active
    ]
    listing = [{**h.public(), "status": h.status} for h in hooks]
    return ok({"emails": [], "hooks_list": listing, "blocked_domains": []})


@router.get(V3 + "/hooks/{hook_id}")
async def get_hook(store: StoreDep, hook_id: int) -> JSONResponse:
    return ok(_hook(store, hook_id).public())


@router.put(V3 + "/hooks/{hook_id}")
async def update(request: Request, store: StoreDep, sim: SimDep, hook_id: int) -> JSONResponse:
    hook = _hook(store, hook_id)
    body = _fields(await read_object(request))
    if not body:
        raise invalid({"body": "at least one field is required"})
    candidate = build(Hook, {**hook.model_dump(), **body})
    _validate(store, candidate, sim.config.require_https_destinations)
    for key in body:
        setattr(hook, key, getattr(candidate, key))
    if "is_active" in body:
        hook.status = "active" if hook.is_active else "inactive"
    hook.updated_at = int(store.now().timestamp())
    return ok(hook.public())


@router.delete(V3 + "/hooks/{hook_id}")
async def delete(store: StoreDep, hook_id: int) -> JSONResponse:
    hook = _hook(store, hook_id)
    del store.hooks[hook_id]
    return ok(hook.public())
