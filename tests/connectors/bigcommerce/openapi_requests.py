"""Checks that requests sent to a store match BigCommerce's OpenAPI documents (openapi-core), and
a transport that records (and can fail) the connector's requests for the tests."""

from __future__ import annotations

import functools
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.conftest import SPECS, require_specs

SERVER = "https://api.bigcommerce.com"
STORE_PATH = re.compile(r"^/stores/(?P<hash>[^/]+)/(?P<version>v2|v3)(?P<rest>/.*)$")
SSL = ssl.create_default_context()  # one context for every client: building one is slow
_DIGITS = re.compile(r"\d+")
_BDIGITS = re.compile(rb"\d+")
_STORE_ID = re.compile(rb"sto_[0-9a-z]+")


@dataclass
class _Spec:
    path: Path
    version: str
    doc: dict[str, Any]
    templates: list[tuple[re.Pattern[str], int]]

    @functools.cached_property
    def api(self) -> OpenAPI:
        # BigCommerce's documents are not meta-validated (customers.v2.yml would fail it).
        return OpenAPI.from_dict(self.doc, config=Config(spec_validator_cls=None))


@functools.cache
def _specs() -> list[_Spec]:
    require_specs()
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    for path in sorted(SPECS.glob("*.yml")):
        doc = yaml.load(path.read_text(), Loader=loader)
        version = doc["servers"][0]["url"].rsplit("/", 1)[-1]
        templates = []
        for template in doc.get("paths", {}):
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            templates.append((re.compile(f"^{pattern}$"), template.count("{")))
        out.append(_Spec(path, version, doc, templates))
    return out


class _Request:
    def __init__(self, request: httpx.Request, path: str) -> None:
        self.method = request.method.lower()
        self.host_url = SERVER
        self.path = path
        self.full_url_pattern = SERVER + path
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )
        self.content_type = request.headers.get("content-type", "application/json")
        self.body = request.content or None


def check_request(request: httpx.Request) -> None:
    """Raise AssertionError unless a BigCommerce document accepts ``request``."""
    match = STORE_PATH.match(request.url.path)
    assert match is not None, f"not a store API URL: {request.url}"
    version, rest = match["version"], match["rest"]
    candidates = [
        (params, spec)
        for spec in _specs()
        if spec.version == version
        for pattern, params in spec.templates
        if pattern.match(rest)
    ]
    assert candidates, f"no {version} document has {request.method} {rest}"
    spec = min(candidates, key=lambda c: c[0])[1]
    path = f"/stores/{match['hash']}/{version}{rest}"
    try:
        spec.api.validate_request(_Request(request, path))
    except Exception as exc:
        detail = getattr(exc, "__cause__", None) or exc
        raise AssertionError(f"{request.method} {path} breaks {spec.path.name}: {detail}") from exc


class RecordingTransport(httpx.AsyncBaseTransport):
    """Sends over real HTTP and keeps every request (checked against the specs at the end)."""

    def __init__(self) -> None:
        require_specs()  # the requests are checked against them: skip (or fail in CI) without
        self.inner = httpx.AsyncHTTPTransport(verify=SSL)
        self.requests: list[httpx.Request] = []
        self._failures: list[tuple[str, str, bool]] = []

    def fail_next(self, method: str, fragment: str, *, after_commit: bool = True) -> None:
        """Answer the next matching request with a 503: after the store applied it (the
        answer is lost), or without sending it."""
        self._failures.append((method, fragment, after_commit))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        for rule in self._failures:
            method, fragment, after_commit = rule
            if request.method == method and fragment in request.url.path:
                self._failures.remove(rule)
                if after_commit:
                    sent = await self.inner.handle_async_request(request)
                    await sent.aread()
                body = {"status": 503, "title": "Service Unavailable", "type": "about:blank"}
                return httpx.Response(503, json=body, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def check_all(self) -> int:
        """Check every request against the documents; return how many were sent."""
        for request in self.requests:
            key = _shape(request)
            if key not in _CHECKED:
                check_request(request)
                _CHECKED.add(key)
        return len(self.requests)


_CHECKED: set[tuple[str, str, bytes]] = set()


def _shape(request: httpx.Request) -> tuple[str, str, bytes]:
    """A request with its store, ids and numbers blanked: one check per shape is enough."""
    url = STORE_PATH.sub(r"/stores/H/\g<version>\g<rest>", request.url.path)
    url = _DIGITS.sub("N", f"{url}?{request.url.query.decode()}")
    body = _BDIGITS.sub(b"N", _STORE_ID.sub(b"sto_X", request.content))
    return request.method, url, body
