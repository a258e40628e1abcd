"""Errors on console pages are HTML pages saying what to do next; the API keeps its JSON body.

:func:`install` wraps each of the app's error handlers (installed by :mod:`api.errors`): on a
console path the JSON answer it would give becomes the friendly page, with the same status and
message. The console's own exceptions are handled here too: no session (to the sign-in page),
a refused CSRF token (403), and :class:`~api.console.render.PageError`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import RedirectResponse, Response

from api.console.auth import CsrfRefused, SignInRequired, sign_in_url
from api.console.render import PageError, error_page
from api.console.security import is_console
from api.errors import request_id_of

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

ADVICE = {
    400: "The request could not be read. Go back and try again.",
    401: "Sign in again to go on.",
    403: "Your session may not do this. Sign in with a key that has the scope it needs.",
    404: "There is no such page here, or it belongs to another workspace. "
    "Check the address, or go back to the home page.",
    405: "This page cannot be used that way. Go back and use the page's own buttons.",
    409: "Something changed meanwhile. Reload the page and try again.",
    413: "What you sent is too large. Send less at a time.",
    422: "Some of what you entered is not valid. Go back, correct it and send it again.",
    502: "The store could not be reached. Try again in a moment.",
    503: "Sous is not ready yet. Try again in a moment.",
}
TITLES = {404: "Page not found", 405: "Not allowed here", 422: "That did not work"}


def _from_json(request: Request, answer: Response) -> Response:
    """The HTML page standing for the JSON error ``answer``."""
    try:
        error: dict[str, Any] = json.loads(bytes(answer.body))["error"]
    except (ValueError, KeyError, TypeError):
        error = {}
    status = answer.status_code
    message = str(error.get("message") or "That did not work")
    details = [str(d.get("message")) for d in error.get("details") or [] if isinstance(d, dict)]
    title = TITLES.get(status, message[:1].upper() + message[1:])
    advice = ADVICE.get(status, "Go back and try again.")
    if status != 404 and title != message[:1].upper() + message[1:]:
        advice = f"{message[:1].upper() + message[1:]}. {advice}"
    if details:
        advice = f"{advice} ({'; '.join(details[:5])})"
    page = error_page(request, status, title, advice, request_id_of(request))
    if "allow" in answer.headers:
        page.headers["allow"] = answer.headers["allow"]
    return page


def _wrap(original: Handler) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        answer = original(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        if not is_console(request.url.path) or answer.status_code < 400:
            return answer
        return _from_json(request, answer)

    return handler


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = sign_in_url(exc.next_url)
    if request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    return error_page(
        request,
        403,
        "This form has expired",
        "The page was opened in another session, or the request did not come from this site. "
        "Reload the page and try again.",
        request_id_of(request),
    )


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    return error_page(request, exc.status, exc.title, exc.advice, request_id_of(request))


def install(app: FastAPI) -> None:
    """Call after :func:`api.errors.install`."""
    for kind, original in list(app.exception_handlers.items()):
        if isinstance(kind, type) and issubclass(kind, WebSocketRequestValidationError):
            continue
        app.add_exception_handler(kind, _wrap(original))
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(PageError, _page_error)
