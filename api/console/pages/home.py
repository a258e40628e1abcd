"""The home page: what needs attention first."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.console.auth import VisitorDep
from api.console.render import page

router = APIRouter()


@router.get("/")
def home(request: Request, visitor: VisitorDep) -> Response:
    return page(request, "home.html", title="Home")
