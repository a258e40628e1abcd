"""Approvals: the pending decisions of the workspace's runs, with Approve / Reject buttons; and
the page an e-mailed approval link opens.

A link (signed by :class:`engine.ApprovalLinks`) decides nothing when it is opened — mail
scanners open links — it shows what is asked and a button. The button's form carries a token
kept in a cookie of its own (a double-submit, as the sign-in form: the person may have no
session); its POST checks the token, the origin, the signature and the expiry, then decides.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.console.auth import CsrfRefused, VisitorDep, form_token_ok, with_form_token
from api.console.forms import FormDep
from api.console.pages.listing import WriteVisitor, done
from api.console.render import PageError, page
from api.deps import ContainerDep, DatabaseDep, EngineDep
from api.routes.approvals import pending_approvals, public_approval
from engine import ApprovalLinks, ApprovalRow, ConflictError, NotFoundError

router = APIRouter()

ApprovalId = Annotated[str, Path(max_length=120)]
LINK_COOKIE = "sous_approval"
DONE = {
    "approved": "Approved: the run goes on.",
    "rejected": "Rejected: the run goes on as its step says (it stops, or later steps branch).",
}
DECIDED = {"approve": "approved", "reject": "rejected"}


def _back(value: str) -> str:
    """Where a decision made in the console returns: this page or a run's page."""
    run = value.removeprefix("/console/runs/")
    if run != value and run and all(c.isalnum() or c == "_" for c in run):
        return value
    return "/console/approvals"


@router.get("/approvals")
async def approvals_page(
    request: Request, visitor: VisitorDep, db: DatabaseDep, cursor: str | None = None
) -> Response:
    listing = await db.query(
        lambda s: pending_approvals(s, visitor.workspace, limit=50, cursor=cursor)
    )
    return page(
        request,
        "approvals.html",
        title="Approvals",
        approvals=listing.data,
        next_cursor=listing.next_cursor,
        can_write=visitor.can("write"),
        done=DONE.get(request.query_params.get("done", ""), ""),
        back="/console/approvals",
    )


@router.post("/approvals/{approval_id}")
async def decide(
    approval_id: ApprovalId, visitor: WriteVisitor, form: FormDep, engine: EngineDep
) -> Response:
    decision = form.get("decision")
    if decision not in DECIDED:
        raise PageError(400, "Choose approve or reject", "Use the page's buttons.")
    who = f"key:{visitor.key_id}" if visitor.key_id else f"user:{visitor.user_id}"
    try:
        await engine.decide_approval(
            approval_id,
            decision,
            by=f"console:{who}",
            comment=form.get("comment")[:2000] or None,
            workspace=visitor.workspace,
        )
    except NotFoundError:
        raise PageError(404, "Approval not found", "It may belong to another workspace.") from None
    except ConflictError as exc:
        raise PageError(409, "That was refused", str(exc)) from None
    return done(_back(form.get("back", "")), DECIDED[decision])


# -- e-mailed links -------------------------------------------------------------------------
def _links(container: ContainerDep) -> ApprovalLinks:
    links = container.services.find(ApprovalLinks)
    if links is None:
        raise PageError(404, "Approval links are not enabled on this server")
    return links


def _checked(
    request: Request, container: ContainerDep, ident: str, decision: str, expires: int, sig: str
) -> None:
    problem = _links(container).problem(ident, decision, expires, sig, container.clock.now())
    if problem is not None:
        raise PageError(403, problem, "Ask for a new link, or decide in the console.")


def _pending(container: ContainerDep, ident: str) -> ApprovalRow:
    with container.db.read_session() as session:
        row = session.get(ApprovalRow, ident)
    if row is None:
        raise PageError(404, "This approval does not exist (any more)")
    if row.status != "pending":
        by = f" ({row.decided_by})" if row.decided_by else ""
        raise PageError(409, f"This approval was already decided: {row.status}{by}")
    return row


LinkQuery = Annotated[str, Query(max_length=10)]


@router.get("/approve/{approval_id}", response_class=HTMLResponse)
async def link_page(
    request: Request,
    approval_id: ApprovalId,
    container: ContainerDep,
    decision: LinkQuery = "",
    expires: int = 0,
    sig: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    _checked(request, container, approval_id, decision, expires, sig)
    row = _pending(container, approval_id)

    def render(token: str) -> Response:
        return page(
            request,
            "approval_link.html",
            title=row.title,
            approval=public_approval(row),
            decision=decision,
            csrf=token,
            action=str(request.url.path) + "?" + str(request.url.query),
        )

    return with_form_token(request, render, LINK_COOKIE, "/console/approve", "strict")


@router.post("/approve/{approval_id}", response_class=HTMLResponse)
async def link_decide(
    request: Request,
    approval_id: ApprovalId,
    container: ContainerDep,
    engine: EngineDep,
    form: FormDep,
    decision: LinkQuery = "",
    expires: int = 0,
    sig: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    if not form_token_ok(request, LINK_COOKIE, form.get("csrf")):
        raise CsrfRefused()
    _checked(request, container, approval_id, decision, expires, sig)
    _pending(container, approval_id)
    try:
        decided = await engine.decide_approval(
            approval_id, decision, by="link", comment=form.get("comment")[:2000] or None
        )
    except ConflictError as exc:
        raise PageError(409, "That was refused", str(exc)) from None
    response = page(
        request,
        "approval_link.html",
        title=decided.title,
        approval=public_approval(decided),
        decision=decision,
        csrf="",
        action="",
    )
    response.delete_cookie(LINK_COOKIE, path="/console/approve")
    return response
