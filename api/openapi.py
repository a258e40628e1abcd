"""The OpenAPI document, finished in one place, and the answers that follow from it.

FastAPI builds the document from the routes; :func:`install` then gives every operation

- a stable, readable ``operationId``: ``<tag>.<action>`` (``recipes.create``, ``runs.list``);
- a description, and an example for every error answer;
- every error status the server can answer, each with the one error body (:mod:`api.errors`);
- OpenAPI links from each operation that creates or lists something to the operations on
  what it returned (``POST /v1/recipes`` → ``GET /v1/recipes/{recipe_id}``, …);
- a documented ``Location`` header on every ``201`` answer, which :class:`LocationHeader`
  sets from the created resource.

:func:`allowed_methods` answers ``Allow`` for ``OPTIONS`` and ``405`` from the same document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import CODES, DESCRIPTIONS, error_response, request_id_of

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}

# Where a created resource lives: JSON Pointers into the 201 answer's body, in braces.
LOCATIONS = {
    ("POST", "/v1/keys"): "/v1/keys/{/id}",
    ("POST", "/v1/workspaces"): "/v1/workspaces/{/id}",
    ("POST", "/v1/stores"): "/v1/stores/{/store_hash}",
    ("POST", "/v1/recipes"): "/v1/recipes/{/id}",
    ("POST", "/v1/recipes/{recipe_id}/copy"): "/v1/recipes/{/id}",
    ("POST", "/v1/hooks"): "/v1/hooks/{/id}",
    ("POST", "/v1/packs"): "/v1/packs/{/pack/name}/{/pack/version}",
    ("POST", "/v1/packs/archive"): "/v1/packs/{/pack/name}/{/pack/version}",
    ("POST", "/v1/templates/{pack}/{template}/instantiate"): "/v1/recipes/{/recipe/id}",
    ("POST", "/v1/packs/{name}/stores"): "/v1/recipes",
}

# Which field of a returned object fills a path parameter of the next call (default: `id`).
FIELDS = {"store": "store_hash", "name": "name", "version": "version", "key_id": "id"}

Link = tuple[str, str, dict[str, str]]


def _pack_links(name: str, version: str) -> list[Link]:
    """What a client can do with an installed pack, given where its name and version are."""
    both = {"name": name, "version": version}
    return [
        ("get", "/v1/packs/{name}/{version}", both),
        ("delete", "/v1/packs/{name}/{version}", both),
        ("post", "/v1/packs/{name}/upgrade", {"name": name}),
        ("post", "/v1/packs/{name}/stores", {"name": name}),
    ]


def _template_links(pack: str, template: str) -> list[Link]:
    both = {"pack": pack, "template": template}
    return [
        ("get", "/v1/templates/{pack}/{template}", both),
        ("get", "/v1/templates/{pack}/{template}/schema", both),
        ("post", "/v1/templates/{pack}/{template}/instantiate", both),
    ]


# Links the path-prefix rule in :func:`_links` cannot see (untyped pages, ids under other
# names, two parameters at once): (from method, from path, status) → [(to method, to path,
# params)].
EXTRA_LINKS: dict[tuple[str, str, str], list[Link]] = {
    ("post", "/v1/events", "202"): [
        ("get", "/v1/events/{event_id}", {"event_id": "$response.body#/event_id"}),
        ("get", "/v1/runs/{run_id}", {"run_id": "$response.body#/runs/0"}),
        ("post", "/v1/runs/{run_id}/replay", {"run_id": "$response.body#/runs/0"}),
        ("post", "/v1/runs/{run_id}/cancel", {"run_id": "$response.body#/runs/0"}),
    ],
    ("post", "/v1/runs/{run_id}/replay", "202"): [
        ("get", "/v1/runs/{run_id}", {"run_id": "$response.body#/run_id"}),
    ],
    ("post", "/v1/packs", "201"): _pack_links(
        "$response.body#/pack/name", "$response.body#/pack/version"
    ),
    ("post", "/v1/packs/archive", "201"): _pack_links(
        "$response.body#/pack/name", "$response.body#/pack/version"
    ),
    ("get", "/v1/packs", "200"): _pack_links(
        "$response.body#/data/0/name", "$response.body#/data/0/version"
    ),
    ("get", "/v1/packs/{name}/{version}", "200"): _pack_links(
        "$request.path.name", "$request.path.version"
    )[1:],
    ("get", "/v1/templates", "200"): _template_links(
        "$response.body#/data/0/pack", "$response.body#/data/0/name"
    ),
    ("get", "/v1/templates/{pack}/{template}", "200"): _template_links(
        "$request.path.pack", "$request.path.template"
    )[1:],
    ("post", "/v1/templates/{pack}/{template}/instantiate", "201"): [
        ("get", "/v1/recipes/{recipe_id}", {"recipe_id": "$response.body#/recipe/id"}),
    ],
    ("get", "/v1/recipes/{recipe_id}", "200"): [
        (
            "get",
            "/v1/recipes/{recipe_id}/versions/{version}",
            {"recipe_id": "$request.path.recipe_id", "version": "$response.body#/version"},
        ),
    ],
    ("post", "/v1/hooks/{hook_id}/events", "202"): [
        ("get", "/v1/events/{event_id}", {"event_id": "$response.body#/event_id"}),
    ],
    ("get", "/v1/stores", "200"): [
        ("post", "/v1/webhooks/bigcommerce/{store}", {"store": "$response.body#/data/0/store_hash"})
    ],
}


_RECIPE_RULES = (
    "the document breaks a rule its schema cannot say: an unknown trigger, action or operator, "
    "a duration out of range (a flood window is 1 s to 1 day), a step id used twice, a "
    "template that does not parse"
)
# What validation refuses with 422 beyond the schema, per operation: said in the description
# and in the 422 answer's `x-refused-when`.
REFUSALS = {
    "recipes.create": _RECIPE_RULES,
    "recipes.update": _RECIPE_RULES + "; without `If-Match` or `version` the answer is 428",
    "recipes.dry_run_document": "`recipe` is not a valid recipe document, both `event` and "
    "`event_id` are given, or `event_id` names no event of the workspace",
    "recipes.dry_run": "both `event` and `event_id` are given, `event_id` names no event of the "
    "workspace, or the event does not fit",
    "stores.connect": "the store refuses the access token (`store_rejected`)",
    "events.send": "no trigger accepts the `type` (custom events are `custom.<name>`)",
    "packs.install": "neither or both of `url` and `library` are given, or the pack is invalid",
    "packs.upload": "the body is not a pack archive, or its `sha256` does not match",
    "packs.export": "the workspace has no recipes to export, or names one it does not have",
    "packs.upgrade": "the new version's recipes or inputs are invalid, or `to` names a version "
    "of the pack that is not there",
    "recipes.rollback": "`version` is not one of the recipe's versions",
    "packs.for_stores": "the pack's templates do not accept the inputs given, or `templates` "
    "names one the pack does not have",
    "templates.instantiate": "the inputs do not fit the template's input schema",
    "recipes.start_test_run": "both `event` and `event_id` are given, `event_id` names no event "
    "of the workspace, or the event does not fit",
    "usage.show": "`since` is after `until`, or they are more than 366 days apart",
    "recipes.backtest": "`until` is not later than `since`",
    "recipes.backtest_document": "`recipe` is not a valid recipe document, or `until` is not "
    "later than `since`",
    "runs.bulk_replay": "the `status` filter names runs the action does not take (replay takes "
    "finished runs)",
    "runs.bulk_release": "the `status` filter names runs other than held ones",
    "runs.bulk_discard": "the `status` filter names runs other than held ones",
}


def _endpoint_name(operation_id: str, path: str, method: str) -> str:
    """The function name inside FastAPI's generated id (``name + path + _ + method``)."""
    suffix = re.sub(r"\W", "_", path) + "_" + method
    return operation_id.removesuffix(suffix) if operation_id.endswith(suffix) else operation_id


def operation_id(tag: str, name: str, method: str) -> str:
    """``<tag>.<action>``: the action is the function's name without the resource's name."""
    nouns = {tag, tag.rstrip("s"), tag + "s"}
    action = "_".join(word for word in name.split("_") if word not in nouns)
    return f"{tag}.{action or ('show' if method == 'get' else method)}"


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def _name_operations(doc: dict[str, Any]) -> None:
    seen: set[str] = set()
    for path, method, op in _operations(doc):
        tag = (op.get("tags") or ["sous"])[0]
        name = _endpoint_name(op.get("operationId", ""), path, method)
        new = operation_id(tag, name, method)
        if new in seen:  # two functions of one tag with one action: keep the full name
            new = f"{tag}.{name}"
        seen.add(new)
        op["operationId"] = new


def _error_statuses(path: str, method: str, op: dict[str, Any]) -> set[int]:
    statuses = {int(s) for s in op["responses"] if s.isdigit() and int(s) >= 400}
    statuses.discard(400)  # the server answers unreadable bodies with 422
    params = op.get("parameters", [])
    if op.get("security"):
        statuses.add(401)
        if method != "get":  # every key may read; writing may need the write or admin scope
            statuses.add(403)
    if "{" in path:
        statuses.add(404)
    if params or "requestBody" in op:
        statuses.add(422)
    if "requestBody" in op:
        statuses |= {413, 415}
    if any(p["in"] == "header" and p["name"].lower() == "if-match" for p in params):
        statuses.add(412)
    if any(p["in"] == "header" and p["name"].lower() == "sous-workspace" for p in params):
        statuses |= {403, 404, 409}  # not an agency key; not its client; an archived client
    return statuses


def error_example(status: int) -> dict[str, Any]:
    message = DESCRIPTIONS.get(status, "Error")
    return {
        "error": {
            "code": CODES.get(status, "error"),
            "message": message[:1].lower() + message[1:],
            "details": [{"path": "/name", "message": "required field is missing"}]
            if status == 422
            else [],
            "request_id": "req_4f2a9c1d7e3b5a60",
        }
    }


def _document_errors(path: str, method: str, op: dict[str, Any]) -> None:
    responses = op["responses"]
    responses.pop("400", None)
    for status in sorted(_error_statuses(path, method, op)):
        entry = responses.setdefault(str(status), {})
        entry.setdefault("description", DESCRIPTIONS.get(status, "Error"))
        entry["content"] = {
            "application/json": {"schema": ERROR_REF, "example": error_example(status)}
        }


def _describe(path: str, method: str, op: dict[str, Any]) -> None:
    text = op.get("description") or (op.get("summary", path) + ".")
    notes = []
    refused = REFUSALS.get(op["operationId"])
    if refused is not None:
        notes.append(f"Besides the schema, answers 422 when {refused}.")
        op["responses"]["422"]["x-refused-when"] = refused
    if op.get("security"):
        notes.append("Needs an API key (`Authorization: Bearer sous_…`).")
    if (method.upper(), path) in LOCATIONS:
        notes.append("The `201` answer's `Location` header is the created resource's URL.")
    extra = " ".join(note for note in notes if note not in text)
    op["description"] = f"{text}\n\n{extra}".strip()


def _response_fields(doc: dict[str, Any], schema: dict[str, Any]) -> tuple[str, set[str]]:
    """(pointer prefix, property names) of the object a response is about: the body itself,
    or the first item of a ``{data: [...]}`` page."""
    schema = _resolve(doc, schema)
    props = schema.get("properties", {})
    if set(props) >= {"data"} and _resolve(doc, props["data"]).get("type") == "array":
        items = _resolve(doc, _resolve(doc, props["data"]).get("items", {}))
        return "/data/0", set(items.get("properties", {}))
    return "", set(props)


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def _param_names(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def _link_parameters(
    source: str, target: str, prefix: str, fields: set[str]
) -> dict[str, str] | None:
    """How ``target``'s path parameters are filled: from the source's own path where the two
    share it, else from the answer's fields; ``None`` when a parameter has no source."""
    known = set(_param_names(source))
    values = {}
    for name in _param_names(target):
        field = FIELDS.get(name, "id")
        if name in known:
            values[name] = f"$request.path.{name}"
        elif field in fields:
            values[name] = f"$response.body#{prefix}/{field}"
        else:
            return None
    return values


def _links(doc: dict[str, Any]) -> None:
    operations = _operations(doc)
    for path, method, op in operations:
        for status, response in op["responses"].items():
            if status not in ("200", "201", "202"):
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            prefix, fields = _response_fields(doc, schema)
            links: dict[str, Any] = {}
            creates_or_lists = (method == "post" and status == "201") or prefix == "/data/0"
            for target_path, _, target in operations:
                if not creates_or_lists or not target_path.startswith(path + "/{"):
                    continue
                if len(_param_names(target_path)) != len(_param_names(path)) + 1 and not (
                    target_path.startswith(path + "/{name}/{version}")
                ):
                    continue
                params = _link_parameters(path, target_path, prefix, fields)
                if params is not None:
                    links[target["operationId"]] = {
                        "operationId": target["operationId"],
                        "parameters": params,
                    }
            for to_method, to_path, params in EXTRA_LINKS.get((method, path, status), []):
                target = doc["paths"].get(to_path, {}).get(to_method)
                if target is not None:
                    links[target["operationId"]] = {
                        "operationId": target["operationId"],
                        "parameters": params,
                    }
            if links:
                response["links"] = links


def _locations(doc: dict[str, Any]) -> None:
    for path, method, op in _operations(doc):
        created = op["responses"].get("201")
        if created is not None and (method.upper(), path) in LOCATIONS:
            created.setdefault("headers", {})["Location"] = {
                "description": "The created resource's URL",
                "schema": {"type": "string", "example": "/v1/recipes/sold-out-alert"},
            }


def _require_raw_bodies(op: dict[str, Any]) -> None:
    """A body that is only raw bytes (a pack archive) is the whole request: without it the
    server answers 415, so the document says it is required."""
    content = op.get("requestBody", {}).get("content", {})
    if content and all(
        media.get("schema", {}).get("format") == "binary" for media in content.values()
    ):
        op["requestBody"]["required"] = True


def _media_examples(doc: dict[str, Any], op: dict[str, Any]) -> None:
    """Show a model's example on each request and answer that uses the model."""
    bodies = [op.get("requestBody", {}), *op["responses"].values()]
    for body in bodies:
        for media in body.get("content", {}).values():
            examples = _resolve(doc, media.get("schema", {})).get("examples")
            if examples and "example" not in media and "examples" not in media:
                media["example"] = examples[0]


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """The document FastAPI made, finished as the module's docstring says."""
    _name_operations(doc)
    for path, method, op in _operations(doc):
        _document_errors(path, method, op)
        _describe(path, method, op)
        _media_examples(doc, op)
        _require_raw_bodies(op)
    _locations(doc)
    _links(doc)
    doc.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    doc.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    return doc


def install(app: FastAPI) -> None:
    """Serve the finished document at ``/openapi.json``; set ``Location`` on 201 answers."""
    make = app.openapi

    @lru_cache(maxsize=1)
    def openapi() -> dict[str, Any]:
        app.openapi_schema = None
        return finish(make())

    app.openapi = openapi  # type: ignore[method-assign]
    install_allow(app)


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$")


def allowed_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the document lists for ``path`` (plus ``OPTIONS``), or ``None``."""
    paths = app.openapi().get("paths", {})
    for template, item in sorted(paths.items(), key=lambda pair: pair[0].count("{")):
        if _template(template).match(path):
            methods = [m.upper() for m in METHODS if m in item]
            return [*methods, "OPTIONS"]
    return None


def _fill(template: str, body: Any) -> str | None:
    def value(match: re.Match[str]) -> str:
        node = body
        for part in match.group(1).strip("/").split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            raise LookupError(match.group(1))
        return str(node)

    try:
        return re.sub(r"{(/[^}]*)}", value, template)
    except LookupError:
        return None


class LocationHeader:
    """Adds ``Location`` to ``201`` answers of the operations :data:`LOCATIONS` names."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[tuple[str, re.Pattern[str], str]] = [
            (method, _template(path), target) for (method, path), target in LOCATIONS.items()
        ]

    def _target(self, scope: Scope) -> str | None:
        for method, pattern, target in self._routes:
            if scope["method"] == method and pattern.match(scope["path"]):
                return target
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope) if scope["type"] == "http" else None
        if target is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _holding_201(send, target))


def _holding_201(send: Send, target: str) -> Callable[[Message], Any]:
    """Hold a 201's start until its body is complete, then add ``Location`` from the body."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def sending(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and message["status"] == 201:
            start = message
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        try:
            location = _fill(target, json.loads(body))
        except ValueError:
            location = None
        headers = list(start.get("headers", []))
        if location is not None:
            headers.append((b"location", location.encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return sending


def install_allow(app: FastAPI) -> None:
    """``405`` answers carry ``Allow``; ``OPTIONS`` on a known path answers ``204`` with it."""

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        allowed = allowed_methods(request.app, request.url.path) or []
        allow = {"Allow": ", ".join(allowed)} if allowed else None
        if request.method == "OPTIONS" and allowed:
            return Response(status_code=204, headers=allow)
        takes = ", ".join(m for m in allowed if m != "OPTIONS") or "another method"
        return error_response(
            405,
            f"{request.url.path} does not take {request.method}; use {takes}",
            request_id=request_id_of(request),
            headers=allow,
        )

    app.add_exception_handler(405, method_not_allowed)
