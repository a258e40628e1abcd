"""Reading a submitted form (``application/x-www-form-urlencoded``, what console forms and htmx
send, or ``multipart/form-data`` for a form with a file: ``form.file("name")``). Any other body
is read as an empty form. The body is read once and kept on the request, so the CSRF check and
the handler read the same fields."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from api.console.render import PageError

FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
MAX_FIELDS = 200


@dataclass(frozen=True)
class Upload:
    """A file sent in a ``multipart/form-data`` form."""

    filename: str
    content_type: str
    data: bytes


class Form:
    """The fields of a submitted form: ``form.get("name")`` is the first value (stripped of
    nothing), ``form.all("name")`` every value, ``form.file("name")`` a file sent with it."""

    def __init__(
        self, pairs: list[tuple[str, str]], files: dict[str, Upload] | None = None
    ) -> None:
        self._pairs = pairs
        self._files = files or {}

    def file(self, name: str) -> Upload | None:
        return self._files.get(name)

    def get(self, name: str, default: str = "") -> str:
        return next((v for k, v in self._pairs if k == name), default)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self._pairs if k == name]

    def __contains__(self, name: str) -> bool:
        return any(k == name for k, _ in self._pairs)


async def read_form(request: Request) -> Form:
    """The request's form fields (an empty form unless the body is URL-encoded)."""
    cached = getattr(request.state, "console_form", None)
    if isinstance(cached, Form):
        return cached
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    pairs: list[tuple[str, str]] = []
    files: dict[str, Upload] = {}
    try:
        if kind == FORM_TYPE:
            text = (await request.body()).decode("utf-8")
            pairs = parse_qsl(
                text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS
            )
        elif kind == MULTIPART_TYPE:
            header = request.headers.get("content-type", "")
            pairs, files = _multipart(await request.body(), header)
    except (UnicodeDecodeError, ValueError):
        raise PageError(
            400, "The form could not be read", "Reload the page and send it again."
        ) from None
    form = Form(pairs, files)
    request.state.console_form = form
    return form


def _param(headers: Message, header: str, name: str) -> str | None:
    value = headers.get_param(name, header=header)
    if value is None:
        return None
    return collapse_rfc2231_value(value)


def _multipart(body: bytes, content_type: str) -> tuple[list[tuple[str, str]], dict[str, Upload]]:
    """The fields and files of a ``multipart/form-data`` body (RFC 7578); ``ValueError`` when it
    is not one."""
    about = Message()
    about["content-type"] = content_type
    boundary = _param(about, "content-type", "boundary")
    if not boundary:
        raise ValueError("no boundary")
    pairs: list[tuple[str, str]] = []
    files: dict[str, Upload] = {}
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return pairs, files
        head, found, content = chunk.partition(b"\r\n\r\n")
        if not found or len(pairs) + len(files) >= MAX_FIELDS:
            raise ValueError("a part without headers, or too many parts")
        headers = Message()
        for line in head.decode("utf-8").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip()] = value.strip()
        field = _param(headers, "content-disposition", "name")
        if field is None:
            raise ValueError("a part without a name")
        filename = _param(headers, "content-disposition", "filename")
        if filename is None:
            pairs.append((field, content.decode("utf-8")))
        else:
            kind = headers.get("content-type", "application/octet-stream")
            files[field] = Upload(filename, kind, content)
    raise ValueError("the body does not end with its closing boundary")


FormDep = Annotated[Form, Depends(read_form)]
"""The submitted form, read before the handler runs: a handler that writes can then be a plain
``def`` (run in a thread, where its blocking database work belongs)."""
