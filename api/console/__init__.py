"""The console: web pages for merchants, served by the same app as the API and scoped the same
way (a page sees its visitor's workspace only).

``router`` holds every console route under ``/console``: signing in and out
(:mod:`api.console.sign_in`) and the pages, one module each in :mod:`api.console.pages` (every
module there that has a ``router`` is included, in name order). :func:`install` adds what lives
beside the routes: the static files, the HTML error pages, the security headers, ``GET /``
(to the console) and an offline ``/docs``.

A page::

    router = APIRouter()

    @router.get("/things")
    def things(request: Request, visitor: VisitorDep, session: SessionDep) -> Response:
        rows = session.exec(select(Thing).where(Thing.workspace_id == visitor.workspace)).all()
        return page(request, "things.html", title="Things", rows=rows)
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.console import errors, pages, sign_in
from api.console.render import render
from api.console.security import ConsoleHeaders

router = APIRouter(prefix="/console", include_in_schema=False)
router.include_router(sign_in.router)
for _module in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: m.name):
    _page = importlib.import_module(f"{pages.__name__}.{_module.name}")
    if isinstance(getattr(_page, "router", None), APIRouter):
        router.include_router(_page.router)


def install(app: FastAPI) -> None:
    """Add the console's surroundings to ``app`` (after :func:`api.errors.install`; before the
    outermost middleware, so that a failure on a page is still answered as a page)."""
    app.include_router(router)
    app.mount(
        "/console/static",
        StaticFiles(packages=[("api.console", "static")]),
        name="console-static",
    )
    errors.install(app)
    app.add_middleware(ConsoleHeaders)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/console/", status_code=307)

    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs(request: Request) -> Response:
        body = render(request, "docs.html", title=app.title, openapi_url=openapi_url)
        return HTMLResponse(body)
