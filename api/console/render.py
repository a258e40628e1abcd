"""Rendering console pages: one Jinja2 environment (autoescaped), the navigation, and
:func:`page`, which hands every template the signed-in visitor, its workspace and CSRF token.

A page's template extends ``base.html`` and fills ``{% block content %}``; forms that change
something include ``{{ csrf_field() }}`` (htmx requests send the token as a header by
themselves: ``base.html`` sets ``hx-headers`` on ``<body>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

if TYPE_CHECKING:
    from api.console.auth import Visitor


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str


NAV: tuple[NavItem, ...] = (
    NavItem("Home", "/console/"),
    NavItem("Templates", "/console/templates"),
    NavItem("Recipes", "/console/recipes"),
    NavItem("Runs", "/console/runs"),
    NavItem("Approvals", "/console/approvals"),
    NavItem("Events", "/console/events"),
    NavItem("Backtest", "/console/backtest"),
    NavItem("Backorders", "/console/backorders"),
    NavItem("Packs", "/console/packs"),
    NavItem("Workspaces", "/console/workspaces"),
    NavItem("Usage", "/console/usage"),
    NavItem("Audit", "/console/audit"),
    NavItem("Settings", "/console/settings"),
)
"""The console's sections, in the order the navigation shows them."""


class PageError(Exception):
    """Answer with the friendly error page: a ``title`` and what to do next (``advice``)."""

    def __init__(self, status: int, title: str, advice: str = "") -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.advice = advice


def _when(value: datetime | None) -> Markup:
    """A time as ``<time datetime=…>`` in UTC, to the minute; an em dash when there is none."""
    if value is None:
        return Markup("&mdash;")
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    utc = aware.astimezone(UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M UTC")
    )


def _active(request: Request, href: str) -> bool:
    path = request.url.path
    if href == "/console/":
        return path in ("/console", "/console/")
    return path == href or path.startswith(href + "/")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("api.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.globals["nav"] = NAV
    return env


ENV = _environment()
"""The one environment: templates under ``api/console/templates``, every value escaped."""


def visitor_of(request: Request) -> Visitor | None:
    """The visitor :data:`~api.console.auth.VisitorDep` found for this request, if any."""
    visitor: Visitor | None = getattr(request.state, "visitor", None)
    return visitor


def render(request: Request, template: str, **context: Any) -> str:
    """``template`` rendered with the console's common context (see :func:`page`)."""
    visitor = visitor_of(request)
    csrf = visitor.csrf if visitor else context.pop("csrf", "")

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="csrf" value="{}">').format(csrf)

    common = {
        "request": request,
        "visitor": visitor,
        "workspace": visitor.workspace if visitor else None,
        "csrf": csrf,
        "csrf_field": csrf_field,
        "hx_headers": json.dumps({"X-CSRF-Token": csrf}) if csrf else "",
        "is_active": lambda href: _active(request, href),
        "title": context.pop("title", "Sous"),
    }
    return ENV.get_template(template).render(**common, **context)


def page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """An HTML answer: ``template`` with the signed-in ``visitor``, its ``workspace``, the
    ``csrf`` token (and ``csrf_field()``), the navigation, and ``context``. Pass ``title``."""
    body = render(request, template, **context)
    return HTMLResponse(body, status_code=status_code, headers=headers)


def error_page(
    request: Request, status: int, title: str, advice: str = "", request_id: str | None = None
) -> HTMLResponse:
    return page(
        request,
        "error.html",
        status_code=status,
        title=title,
        status=status,
        advice=advice,
        request_id=request_id,
    )
