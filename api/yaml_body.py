"""Recipe bodies as YAML (``Content-Type: application/yaml``), the same document as a recipe
file, for the routes that take a recipe (create and replace).

:class:`YamlBodyRoute` parses a YAML body with its line index and hands the route the same
document as JSON, so one model validates both. Problems in a YAML body name the line and the
field (``line 7, actions[0].use: …``), whether the model or the engine found them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api.errors import ApiError, ErrorItem, validation_details
from engine import ErrorDetail, Loc, RecipeError, format_loc, line_for, parse_yaml

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})

RECIPE_YAML_EXAMPLE = """\
id: sold-out-alert
name: Log sold-out products
trigger:
  type: custom.stock_changed
conditions:
  - {"<=": [{"var": "product.inventory_level"}, 0]}
actions:
  - id: note
    use: core.log
    with:
      message: "{{ product.id }} sold out"
"""

YAML_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/yaml": {
                "schema": {
                    "type": "string",
                    "description": "The recipe as YAML, the same document as a recipe file "
                    "(one document; the JSON form's fields). Errors name the line and field.",
                },
                "example": RECIPE_YAML_EXAMPLE,
            }
        }
    }
}
"""``openapi_extra`` for a route that takes a recipe: documents the YAML form beside JSON."""


def is_yaml(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media in YAML_TYPES


def _located(loc: Loc, message: str, lines: dict[Loc, int]) -> ErrorItem:
    line = line_for(lines, loc)
    field = format_loc(loc)
    where = ", ".join(p for p in (f"line {line}" if line else "", field) if p)
    pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc)
    return ErrorItem(path=pointer, message=f"{where}: {message}" if where else message)


def _document(text: str) -> tuple[Any, dict[Loc, int]]:
    docs, errors = parse_yaml(text, "body")
    if errors:
        raise ApiError(422, "the body is not valid YAML", details=_items(errors, {}))
    if len(docs) != 1:
        message = f"the body must hold one YAML document, not {len(docs)}"
        raise ApiError(422, message, details=[ErrorItem(path="", message=message)])
    return docs[0]


def _items(details: list[ErrorDetail], lines: dict[Loc, int]) -> list[ErrorItem]:
    items = []
    for d in details:
        if d.line is not None:  # a YAML syntax error: no field yet, only a line
            items.append(ErrorItem(path="", message=f"line {d.line}: {d.message}"))
        else:
            items.append(_located(d.loc, d.message, lines))
    return items


async def _as_json(request: Request) -> tuple[Request, dict[Loc, int]]:
    """The request with its YAML body turned into JSON, and the body's line index."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(422, "the body is not UTF-8 YAML") from exc
    document, lines = _document(text)
    scope = dict(request.scope)
    scope["headers"] = [
        (k, v) for k, v in request.scope["headers"] if k.lower() != b"content-type"
    ] + [(b"content-type", b"application/json")]
    converted = Request(scope, request.receive)
    converted._body = json.dumps(document, default=str).encode()
    return converted, lines


class YamlBodyRoute(APIRoute):
    """A route whose body may also be YAML; errors in a YAML body name line and field."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            if not is_yaml(request):
                return await handle(request)
            converted, lines = await _as_json(request)
            try:
                return await handle(converted)
            except RequestValidationError as exc:
                located = []
                for error, item in zip(exc.errors(), validation_details(exc.errors()), strict=True):
                    where, *rest = tuple(error.get("loc", ())) or ("body",)
                    located.append(
                        _located(tuple(rest), item.message, lines) if where == "body" else item
                    )
                raise ApiError(422, "the request is invalid", details=located) from exc
            except RecipeError as exc:
                details = _items(exc.details, lines)
                raise ApiError(
                    422, "the recipe is invalid", code="invalid_recipe", details=details
                ) from exc

        return handler
