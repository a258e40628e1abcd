"""Reading a submitted form (``application/x-www-form-urlencoded``, what console forms and htmx
send). Console forms carry no files, so no multipart parser is needed: any other body is read as
an empty form. The body is read once and kept on the request, so the CSRF check and the handler
read the same fields."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from api.console.render import PageError

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 200


class Form:
    """The fields of a submitted form: ``form.get("name")`` is the first value (stripped of
    nothing), ``form.all("name")`` every value."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

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
    if kind == FORM_TYPE:
        body = await request.body()
        try:
            text = body.decode("utf-8")
            pairs = parse_qsl(
                text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS
            )
        except (UnicodeDecodeError, ValueError):
            raise PageError(
                400, "The form could not be read", "Reload the page and send it again."
            ) from None
    form = Form(pairs)
    request.state.console_form = form
    return form
