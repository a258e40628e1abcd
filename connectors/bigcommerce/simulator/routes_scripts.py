"""The Scripts API (``scripts.v3.yml``; docs/integrations/scripts.mdx): ``GET/POST
/v3/content/scripts``, ``GET/PUT/DELETE /v3/content/scripts/{uuid}``.

As documented: a script belongs to the API account that created it (``api_client_id``: the
installed app whose token made the request, else the store's own account), and every call sees
only that account's scripts; an account has at most 10 scripts; ``kind: src`` takes ``src`` and
no ``html``, ``kind: script_tag`` takes ``html`` (one to five ``<script>`` tags, at most 65 536
characters) and no ``src``, and loads with ``load_method: default`` only; ``all_pages`` and
``checkout`` need the Checkout Content scope (``store_content_checkout``), every call the
Content scope (``store_v2_content``, or its read-only form for reads) when made by an app. A
script without ``consent_category`` has ``unknown``, as documented (though the spec's enum does
not list it). On uninstall, the app's ``auto_uninstall`` scripts are removed (``apps.py``).
"""

from __future__ import annotations

import re
import uuid as uuids
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRouter

from .deps import V3, SimDep, StoreDep, ok, read_object
from .formats import ApiError, invalid, iso, page_args, paginate_v3
from .simulator import Simulator
from .state import Store

router = APIRouter()
MAX_PER_APP = 10
ENUMS = {
    "load_method": ("default", "async", "defer"),
    "location": ("head", "footer"),
    "visibility": ("storefront", "all_pages", "checkout", "order_confirmation"),
    "kind": ("src", "script_tag"),
    "consent_category": ("essential", "functional", "analytics", "targeting"),
}
TEXT = ("name", "description", "html", "src")
FLAGS = ("auto_uninstall", "enabled")
SCRIPT_TAG = re.compile(r"<script\b", re.IGNORECASE)
CHECKOUT_VISIBILITY = ("all_pages", "checkout")


def _caller(request: Request, sim: Simulator, store: Store, write: bool) -> str:
    """The API account making the call; an app needs the Content scope for it."""
    token = request.headers.get("x-auth-token", "")
    client_id = store.app_tokens.get(token)
    if client_id is None:
        return store.client_id
    scopes = sim.apps.installs[(store.store_hash, client_id)].scope.split()
    allowed = {"store_v2_content"} if write else {"store_v2_content", "store_v2_content_read_only"}
    if not allowed & set(scopes):
        raise ApiError(403, "You don't have a required scope to access the endpoint")
    return client_id


def _own(store: Store, caller: str, uuid: str) -> dict[str, Any]:
    script = store.scripts.get(uuid)
    if script is None or script["api_client_id"] != caller:
        raise ApiError(404, "The requested resource was not found.")
    return script


def _checked(body: dict[str, Any], script: dict[str, Any], scopes: set[str] | None) -> None:
    """Apply ``body`` to ``script`` (a copy), refusing what the documentation forbids."""
    errors: dict[str, str] = {}
    for name in TEXT:
        if name in body and not isinstance(body[name], str):
            errors[name] = "must be a string"
    for name, allowed in ENUMS.items():
        if name in body and body[name] not in allowed:
            errors[name] = f"must be one of {', '.join(allowed)}"
    for name in FLAGS:
        if name in body and not isinstance(body[name], bool):
            errors[name] = "must be a boolean"
    channel = body.get("channel_id", 1)
    if not isinstance(channel, int) or isinstance(channel, bool) or channel < 1:
        errors["channel_id"] = "must be an integer >= 1"
    hashes = body.get("integrity_hashes", [])
    if (
        not isinstance(hashes, list)
        or len(hashes) > 5
        or not all(isinstance(h, str) for h in hashes)
    ):
        errors["integrity_hashes"] = "at most five strings"
    if errors:
        raise invalid(errors)
    script.update({k: v for k, v in body.items() if k in (*TEXT, *ENUMS, *FLAGS)})
    script.update(channel_id=channel, integrity_hashes=hashes)
    _consistent(script, scopes)


def _consistent(script: dict[str, Any], scopes: set[str] | None) -> None:
    name = script.get("name") or ""
    if not 1 <= len(name) <= 255:
        raise invalid({"name": "is required (1 to 255 characters)"})
    if script["kind"] == "src":
        if not script.get("src") or script.get("html"):
            raise invalid({"src": "kind src takes src, and no html"})
    else:
        html = script.get("html") or ""
        if script.get("src") or not 1 <= len(SCRIPT_TAG.findall(html)) <= 5:
            raise invalid({"html": "kind script_tag takes html with one to five script tags"})
        if len(html) > 65536:
            raise invalid({"html": "at most 65536 characters"})
        if script["load_method"] != "default":
            raise invalid({"load_method": "a script_tag script loads with default only"})
    needs_checkout = script["visibility"] in CHECKOUT_VISIBILITY
    if needs_checkout and scopes is not None and "store_content_checkout" not in scopes:
        raise ApiError(403, "all_pages and checkout visibility need the Checkout Content scope")


def _public(script: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in script.items() if v is not None and not k.startswith("_")}
    out["date_created"], out["date_modified"] = iso(script["_created"]), iso(script["_modified"])
    return out


def _scopes(sim: Simulator, store: Store, caller: str) -> set[str] | None:
    install = sim.apps.installs.get((store.store_hash, caller))
    return set(install.scope.split()) if install is not None else None


@router.post(V3 + "/content/scripts")
async def create(request: Request, store: StoreDep, sim: SimDep) -> JSONResponse:
    caller = _caller(request, sim, store, write=True)
    body = await read_object(request)
    if sum(1 for s in store.scripts.values() if s["api_client_id"] == caller) >= MAX_PER_APP:
        raise invalid({"name": f"an app can have at most {MAX_PER_APP} scripts"})
    now = store.now()
    script: dict[str, Any] = {
        "uuid": str(uuids.uuid4()),
        "kind": "src",
        "load_method": "default",
        "location": "footer",
        "visibility": "storefront",
        "auto_uninstall": False,
        "enabled": True,
        "consent_category": "unknown",
        "api_client_id": caller,
        "_created": now,
        "_modified": now,
    }
    _checked(body, script, _scopes(sim, store, caller))
    store.scripts[script["uuid"]] = script
    return ok(_public(script))


@router.get(V3 + "/content/scripts")
async def list_scripts(request: Request, store: StoreDep, sim: SimDep) -> JSONResponse:
    caller = _caller(request, sim, store, write=False)
    params = request.query_params
    page, limit = page_args(params)
    found = [s for s in store.scripts.values() if s["api_client_id"] == caller]
    channels = params.get("channel_id:in")
    if channels:
        try:
            wanted = {int(c) for c in channels.split(",")}
        except ValueError:
            raise invalid({"channel_id:in": "must be channel ids"}) from None
        found = [s for s in found if s["channel_id"] in wanted]
    sort, direction = params.get("sort"), params.get("direction", "asc")
    if sort is not None and sort not in ("name", "description", "date_created", "date_modified"):
        raise invalid({"sort": "must be name, description, date_created or date_modified"})
    key = {"date_created": "_created", "date_modified": "_modified"}.get(sort or "", sort)
    if key:
        found.sort(key=lambda s: s.get(key) or "", reverse=direction == "desc")
    chunk, meta = paginate_v3(found, page, limit)
    return ok([_public(s) for s in chunk], meta)


@router.get(V3 + "/content/scripts/{uuid}")
async def get(request: Request, store: StoreDep, sim: SimDep, uuid: str) -> JSONResponse:
    return ok(_public(_own(store, _caller(request, sim, store, write=False), uuid)))


@router.put(V3 + "/content/scripts/{uuid}")
async def update(request: Request, store: StoreDep, sim: SimDep, uuid: str) -> JSONResponse:
    caller = _caller(request, sim, store, write=True)
    script = _own(store, caller, uuid)
    body = await read_object(request)
    changed = dict(script)
    kept = {"channel_id": script["channel_id"], "integrity_hashes": script["integrity_hashes"]}
    _checked({**kept, **body}, changed, _scopes(sim, store, caller))
    changed["_modified"] = store.now()
    store.scripts[uuid] = changed
    return ok(_public(changed))


@router.delete(V3 + "/content/scripts/{uuid}")
async def delete(request: Request, store: StoreDep, sim: SimDep, uuid: str) -> Response:
    _own(store, _caller(request, sim, store, write=True), uuid)
    del store.scripts[uuid]
    return Response(status_code=204)
