"""Check simulator responses against BigCommerce's published OpenAPI documents (openapi-core).

Request URLs ``http://host/stores/{hash}/v3/...`` are mapped onto the specs' server
``https://api.bigcommerce.com/stores/{store_hash}/v3``; the operation is found among the specs of
that API version. A status the operation documents is validated against its schema. A status it
does not document (429, 401 outside webhooks, injected 5xx, 413 on lists, v2 204 on empty order
lists, v2 409 OutOfStock) must still have the documented general shape: v3 ``{status, title,
type}`` (conventions.md §5), v2 ``[{status, message}]`` (§3), or no body for 204.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.response.exceptions import MissingData
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.conftest import SPECS, require_specs

SERVER = "https://api.bigcommerce.com"
PATH = re.compile(r"^/stores/(?P<hash>[^/]+)/(?P<version>v2|v3)(?P<rest>/.*)$")

V3_ERROR = {
    "type": "object",
    "required": ["status", "title", "type"],
    "properties": {
        "status": {"type": "integer"},
        "title": {"type": "string"},
        "type": {"type": "string"},
        "errors": {"type": "object"},
    },
}
V2_ERROR = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
    },
}


@functools.cache
def load_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(), Loader=loader)


@dataclass
class _Spec:
    name: str
    version: str
    templates: list[tuple[re.Pattern[str], str, int]]

    @property
    def api_path(self) -> Path:
        return SPECS / self.name

    @functools.cached_property
    def api(self) -> OpenAPI:
        data = load_yaml(SPECS / self.name)
        # The documents are BigCommerce's, so they are not meta-validated here (that is slow, and
        # customers.v2.yml would fail it: "exclusiveMaximum: false" without "maximum").
        # inventory.v3.yml answers 422 as application/problem+json, which openapi-core does
        # not parse as JSON by itself.
        config = Config(
            spec_validator_cls=None,
            extra_media_type_deserializers={"application/problem+json": json.loads},
        )
        return OpenAPI.from_dict(data, config=config)


@functools.cache
def _catalogue() -> list[_Spec]:
    require_specs()
    out = []
    for path in sorted(SPECS.glob("*.yml")):
        data = load_yaml(path)
        version = data["servers"][0]["url"].rsplit("/", 1)[-1]
        templates = []
        for template in data.get("paths", {}):
            pattern = re.escape(template)
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
            templates.append((re.compile(f"^{pattern}$"), template, template.count("{")))
        out.append(_Spec(path.name, version, templates))
    return out


def find_spec(version: str, rest: str, method: str) -> tuple[_Spec, str]:
    """The spec and path template serving ``rest``; literal templates win over templated ones."""
    best: tuple[int, _Spec, str] | None = None
    for spec in _catalogue():
        if spec.version != version:
            continue
        for pattern, template, params in spec.templates:
            if pattern.match(rest) and (best is None or params < best[0]):
                best = (params, spec, template)
    if best is None:
        raise AssertionError(f"no {version} spec documents {method.upper()} {rest}")
    return best[1], best[2]


def _content_of(spec: _Spec, template: str, method: str, status: int) -> Any:
    responses = spec.api.spec / "paths" / template / method.lower() / "responses"
    with (responses / str(status)).open() as response:
        return response.get("content")


class _Request:
    def __init__(self, request: httpx.Request, path: str) -> None:
        self.method = request.method.lower()
        self.host_url = SERVER
        self.path = path
        self.full_url_pattern = SERVER + path
        query = ImmutableMultiDict(list(request.url.params.multi_items()))
        self.parameters = RequestParameters(
            query=query, header=Headers(dict(request.headers)), cookie=ImmutableMultiDict()
        )
        self.content_type = request.headers.get("content-type", "application/json")
        self.body = request.content or None


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.data = response.content
        self.content_type = response.headers.get("content-type", "application/json")
        self.headers = Headers(dict(response.headers))


@dataclass
class SpecLog:
    """What was checked: ``(METHOD, template, status, documented)`` per response."""

    checked: list[tuple[str, str, int, bool]] = field(default_factory=list)


def _schema_check(schema: dict[str, Any], data: Any, what: str) -> None:
    errors = sorted(OAS30Validator(schema).iter_errors(data), key=str)
    if errors:
        raise AssertionError(f"{what}: {errors[0].message} in {json.dumps(data)[:300]}")


def check_response(response: httpx.Response, log: SpecLog | None = None) -> bool:
    """Validate one response; returns True when the spec documents its status."""
    match = PATH.match(response.request.url.path)
    if match is None:
        raise AssertionError(f"not a store API URL: {response.request.url}")
    version, rest, method = match["version"], match["rest"], response.request.method
    spec, template = find_spec(version, rest, method)
    path = f"/stores/{match['hash']}/{version}{rest}"
    what = f"{method} {version}{template} -> {response.status_code}"
    documented = True
    try:
        spec.api.validate_response(_Request(response.request, path), _Response(response))
    except ResponseNotFound:
        documented = False
    except MissingData as exc:
        # openapi-core wants a body whenever a response has a ``content`` key, even the spec's
        # ``content: {}`` ("no content"); an empty map with an empty body is what the spec says.
        # A 204 has no body whatever the spec gives it (scripts.v3.yml documents a JSON body).
        no_content = response.status_code == 204
        if response.content or (
            not no_content and _content_of(spec, template, method, response.status_code)
        ):
            raise AssertionError(f"{what} does not match {spec.name}: {exc}") from exc
    except Exception as exc:
        raise AssertionError(f"{what} does not match {spec.name}: {exc}") from exc
    if not documented and response.status_code == 204:
        assert not response.content, f"{what}: 204 with a body"
    elif not documented:
        body = response.json()
        _schema_check(V2_ERROR if version == "v2" else V3_ERROR, body, what)
        statuses = [body[0]["status"]] if version == "v2" else [body["status"]]
        assert statuses == [response.status_code], f"{what}: status in body {statuses}"
    if log is not None:
        log.checked.append((method, f"/{version}{template}", response.status_code, documented))
    return documented
