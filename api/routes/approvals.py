"""Approvals: the pending decisions runs wait for at ``core.approval`` steps, and deciding them.

A decision wakes the run at once; only the first one counts (a second answers 409). Each is in
the audit log (kind ``approval``) with who made it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from api.deps import CurrentKey, DatabaseDep, EngineDep, RequireWrite
from api.errors import responses
from api.models import UtcDateTime
from api.pagination import Cursor, Limit, newest_first
from engine import ApprovalRow, RunRow, RunStatus, Text

router = APIRouter(prefix="/v1/approvals", tags=["approvals"], responses=responses(401, 403, 422))

_EXAMPLE: dict[str, Any] = {
    "id": "apv_01jf3k9q2w8x7v6b5n4m3c2z1a_ok",
    "run_id": "run_01jf3k9q2w8x7v6b5n4m3c2z1a",
    "recipe_uid": "rcp_01jf3k9q2w8x7v6b5n4m3c2z1a",
    "step_id": "ok",
    "title": "Release the backorder of order 1042?",
    "message": "Order 1042 is worth 2,450.00.",
    "to": ["manager@shop.example"],
    "status": "pending",
    "default": "reject",
    "on_reject": "stop",
    "created_at": "2026-12-14T10:00:00Z",
    "expires_at": "2026-12-16T10:00:00Z",
    "decision": None,
    "decided_by": None,
    "decided_at": None,
    "comment": None,
    "timed_out": False,
}


class ApprovalPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    id: str
    run_id: str
    recipe_uid: str
    step_id: str
    title: str
    message: str
    to: list[str] = Field(description="Who was e-mailed the approve / reject links")
    status: str = Field(description="pending, approved, rejected or cancelled")
    default: str = Field(description="The decision at expires_at if nobody decides")
    on_reject: str = Field(description="stop (the run ends skipped) or continue")
    created_at: UtcDateTime
    expires_at: UtcDateTime
    decision: str | None = None
    decided_by: str | None = None
    decided_at: UtcDateTime | None = None
    comment: str | None = None
    timed_out: bool = False


class ApprovalsPage(BaseModel):
    data: list[ApprovalPublic]
    next_cursor: str | None = None


class DecisionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "approve", "comment": "fine, ship it"}]},
    )
    decision: Literal["approve", "reject"]
    comment: Text | None = Field(default=None, max_length=2000)


def public_approval(row: Any) -> ApprovalPublic:
    return ApprovalPublic(
        id=row.id,
        run_id=row.run_id,
        recipe_uid=row.recipe_uid,
        step_id=row.step_id,
        title=row.title,
        message=row.message,
        to=list(row.recipients or []),
        status=row.status,
        default=row.default_decision,
        on_reject=row.on_reject,
        created_at=row.created_at,
        expires_at=row.expires_at,
        decision=row.decision,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        comment=row.comment,
        timed_out=row.timed_out,
    )


def pending_approvals(
    session: Session,
    workspace: str,
    *,
    run_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> ApprovalsPage:
    """One page of ``workspace``'s pending approvals whose runs wait for them, newest first
    (for the API and the console)."""
    query = (
        select(ApprovalRow)
        .join(RunRow, col(RunRow.id) == col(ApprovalRow.run_id))
        .where(
            ApprovalRow.workspace_id == workspace,
            ApprovalRow.status == "pending",
            RunRow.workspace_id == workspace,
            RunRow.status == RunStatus.WAITING,
        )
    )
    if run_id is not None:
        query = query.where(ApprovalRow.run_id == run_id)
    rows, next_cursor = newest_first(session, query, ApprovalRow.id, limit, cursor)
    return ApprovalsPage(data=[public_approval(r) for r in rows], next_cursor=next_cursor)


@router.get("", summary="List the pending approvals, newest first")
async def list_approvals(
    caller: CurrentKey, db: DatabaseDep, limit: Limit = 50, cursor: Cursor = None
) -> ApprovalsPage:
    return await db.query(
        lambda s: pending_approvals(s, caller.workspace, limit=limit, cursor=cursor)
    )


@router.post(
    "/{approval_id}",
    summary="Approve or reject a pending approval",
    description="The run waiting for it goes on at once (a rejection ends it `skipped` unless "
    "its step says `on_reject: continue`). Only the first decision counts: an approval already "
    "decided, expired (its default applies) or whose run was cancelled answers 409.",
    responses=responses(404, 409),
)
async def decide_approval(
    approval_id: Annotated[str, Path(max_length=120)],
    body: DecisionRequest,
    caller: RequireWrite,
    engine: EngineDep,
) -> ApprovalPublic:
    row = await engine.decide_approval(
        approval_id,
        body.decision,
        by=caller.actor,
        comment=body.comment,
        workspace=caller.workspace,
    )
    return public_approval(row)
