"""Liveness and readiness, for process supervisors and load balancers (no API key)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import DatabaseDep
from api.errors import ApiError, responses
from api.models import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> Health:
    return Health()


@router.get("/readyz", summary="The database is reachable", responses=responses(503))
def readyz(db: DatabaseDep) -> Readiness:
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise ApiError(503, f"the database is not reachable: {type(exc).__name__}") from None
    return Readiness()
