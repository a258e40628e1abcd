"""The caller's workspace: what it is called and what it holds."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import Session, select

from api.deps import ClockDep, DatabaseDep, RequireAdmin, SessionDep, WorkspaceDep
from api.errors import responses
from api.models import WorkspacePublic, WorkspaceUpdate
from engine import RecipeRow, StoreRow, Workspace

router = APIRouter(prefix="/v1/workspace", tags=["workspace"], responses=responses(401, 403, 422))


def _public(session: Session, workspace: str) -> WorkspacePublic:
    row = session.get(Workspace, workspace)
    stores = session.exec(
        select(func.count()).select_from(StoreRow).where(StoreRow.workspace_id == workspace)
    ).one()
    recipes = session.exec(
        select(func.count()).select_from(RecipeRow).where(RecipeRow.workspace_id == workspace)
    ).one()
    return WorkspacePublic(
        id=workspace,
        name=row.name if row else workspace,
        created_at=row.created_at if row else None,
        recipes=recipes,
        stores=stores,
    )


@router.get("", summary="The caller's workspace")
def show_workspace(workspace: WorkspaceDep, session: SessionDep) -> WorkspacePublic:
    return _public(session, workspace)


@router.patch("", summary="Rename the caller's workspace")
def rename_workspace(
    body: WorkspaceUpdate, caller: RequireAdmin, db: DatabaseDep, clock: ClockDep
) -> WorkspacePublic:
    with db.session() as session:  # ended in this thread: no lock outlives the handler
        row = session.get(Workspace, caller.workspace)
        if row is None:
            row = Workspace(id=caller.workspace, name=body.name, created_at=clock.now())
        row.name = body.name
        session.add(row)
        session.commit()
        return _public(session, caller.workspace)
