"""Approvals: a ``core.approval`` step pauses its run until a person approves or rejects.

The step raises :class:`Approval` (a :class:`~engine.run.waits.Wait` until its timeout); the
runner writes the approval's row (:class:`~engine.store.models.ApprovalRow`, ``pending``) and
parks the run ``waiting`` with its job due at the timeout, as for any wait: nothing is kept in
memory, so a restart changes nothing.

A decision (:func:`decide`: the API, the console, or a signed link from the e-mail) moves the
row from ``pending`` to ``approved`` or ``rejected`` and makes the run's job due now, in one
transaction; only the first decision does (a second one is a :class:`ConflictError`). When the
job runs, :func:`settle` reads the row: decided, or past its timeout (then the step's
``default`` decision is written, ``timed_out``), or still pending (the job goes back, due at the
timeout — or now, when a decision committed meanwhile: :func:`due`). A rejection stops the run
(``skipped``, with who rejected it as the reason) or, with ``on_reject: continue``, lets later
steps branch on ``steps.<id>.decision``. Cancelling the run cancels its pending approval.

E-mailed links are signed by :class:`ApprovalLinks` (HMAC-SHA256 with the server's secret
over the approval, the decision and the expiry): they expire with the approval and, since only
a pending approval can be decided, work once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select, update

from engine.errors import ConflictError, NotFoundError
from engine.model.ids import new_id
from engine.model.run import RunState
from engine.model.status import RunStatus
from engine.queue.base import JobQueue
from engine.run.waits import Wait
from engine.store.audit import AuditRow, current_actor
from engine.store.db import Tx
from engine.store.models import ApprovalRow, RunRow

APPROVALS = ApprovalRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]

DECISIONS = ("approve", "reject")
MAX_APPROVAL_TIMEOUT = timedelta(days=30)
"""The longest an approval may wait for its decision."""
PENDING = "pending"
_STATUS = {"approve": "approved", "reject": "rejected"}


class Approval(Wait):
    """Raised by ``core.approval``: wait for a person's decision until ``until``."""

    def __init__(
        self,
        until: datetime,
        *,
        title: str,
        message: str = "",
        to: Sequence[str] = (),
        default: str = "reject",
        on_reject: str = "stop",
    ) -> None:
        super().__init__(until)
        self.title = title
        self.message = message
        self.to = list(to)
        self.default = default
        self.on_reject = on_reject


def approval_id(run_id: str, step_id: str) -> str:
    """The id of the approval step ``step_id`` of run ``run_id`` asks for: the same however
    often the step runs (so a link e-mailed before a crash still names it)."""
    return f"apv_{run_id.partition('_')[2] or run_id}_{step_id}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def open_approval(tx: Tx, state: RunState, step_id: str, wait: Approval, now: datetime) -> str:
    """Write the approval's pending row (once: a step run again finds it); its id."""
    ident = approval_id(state.run_id, step_id)
    found = tx.conn.execute(select(APPROVALS.c.id).where(APPROVALS.c.id == ident)).first()
    if found is None:
        tx.conn.execute(
            APPROVALS.insert().values(
                id=ident,
                workspace_id=state.workspace,
                run_id=state.run_id,
                recipe_uid=state.recipe_uid,
                step_id=step_id,
                title=wait.title[:200],
                message=wait.message[:10_000],
                recipients=wait.to or None,
                default_decision=wait.default,
                on_reject=wait.on_reject,
                status=PENDING,
                created_at=now,
                expires_at=wait.until,
                timed_out=False,
            )
        )
    return ident


@dataclass(frozen=True)
class Verdict:
    """A decided approval as the step's output, and whether it stops the run."""

    output: dict[str, Any]
    stops: bool
    reason: str


def verdict_of(row: Any) -> Verdict:
    decided_at = row.decided_at
    output = {
        "approval_id": row.id,
        "decision": row.decision,
        "approved": row.decision == "approve",
        "decided_by": row.decided_by,
        "decided_at": _aware(decided_at).isoformat() if decided_at else None,
        "comment": row.comment,
        "timed_out": bool(row.timed_out),
    }
    who = "no decision before the timeout" if row.timed_out else row.decided_by
    reason = f"approval {row.step_id} rejected ({who})" + (
        f": {row.comment}" if row.comment else ""
    )
    stops = row.decision == "reject" and row.on_reject == "stop"
    return Verdict(output, stops, reason)


def settle(tx: Tx, ident: str, now: datetime) -> Verdict | None:
    """The approval's verdict: its decision, or past its timeout the step's default (written
    now, ``timed_out``); ``None`` while it is pending."""
    row = tx.conn.execute(select(APPROVALS).where(APPROVALS.c.id == ident)).first()
    if row is None:
        raise NotFoundError("approval", ident)
    if row.status == PENDING and _aware(row.expires_at) <= now:
        values = {
            "status": _STATUS[row.default_decision],
            "decision": row.default_decision,
            "decided_at": now,
            "decided_by": "timeout",
            "timed_out": True,
        }
        tx.conn.execute(
            update(APPROVALS)
            .where(APPROVALS.c.id == ident, APPROVALS.c.status == PENDING)
            .values(**values)
        )
        row = tx.conn.execute(select(APPROVALS).where(APPROVALS.c.id == ident)).one()
    return None if row.status == PENDING else verdict_of(row)


def due(tx: Tx, ident: str, until: datetime, now: datetime) -> datetime:
    """When a run waiting for approval ``ident`` is due again: at its timeout, or now when a
    decision committed since it was read (its row is locked, so a decision waits for this)."""
    status = tx.conn.execute(
        select(APPROVALS.c.status).where(APPROVALS.c.id == ident).with_for_update()
    ).scalar()
    return until if status == PENDING else now


def decide(
    tx: Tx,
    queue: JobQueue,
    workspace: str | None,
    ident: str,
    decision: str,
    *,
    by: str,
    comment: str | None,
    now: datetime,
) -> Any:
    """Decide pending approval ``ident`` (of ``workspace``, if given) and wake its run; the row
    as it is now. Raises :class:`NotFoundError` or, for one already decided, expired or whose
    run is no longer waiting, :class:`ConflictError`."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be approve or reject, not {decision!r}")
    query = select(APPROVALS).where(APPROVALS.c.id == ident)
    if workspace is not None:
        query = query.where(APPROVALS.c.workspace_id == workspace)
    row = tx.conn.execute(query).first()
    if row is None:
        raise NotFoundError("approval", ident)
    run_status = tx.conn.execute(select(RUNS.c.status).where(RUNS.c.id == row.run_id)).scalar()
    if row.status != PENDING:
        by_whom = f" by {row.decided_by}" if row.decided_by else ""
        raise ConflictError(f"approval {ident} was already decided: {row.status}{by_whom}")
    if _aware(row.expires_at) <= now:
        raise ConflictError(
            f"approval {ident} expired at {_aware(row.expires_at).isoformat()}; "
            f"its default decision ({row.default_decision}) applies"
        )
    if run_status != RunStatus.WAITING:
        raise ConflictError(f"approval {ident}: its run {row.run_id} is {run_status}")
    moved = tx.conn.execute(
        update(APPROVALS)
        .where(APPROVALS.c.id == ident, APPROVALS.c.status == PENDING)
        .values(
            status=_STATUS[decision],
            decision=decision,
            decided_at=now,
            decided_by=by[:200],
            comment=comment[:2000] if comment else None,
        )
    ).rowcount
    if not moved:
        raise ConflictError(f"approval {ident} was decided meanwhile")
    queue.hasten(tx, "run", row.run_id, now)
    _audit(tx, row, decision, comment, now)
    return tx.conn.execute(select(APPROVALS).where(APPROVALS.c.id == ident)).one()


def _audit(tx: Tx, row: Any, decision: str, comment: str | None, now: datetime) -> None:
    actor = current_actor()
    summary = f"{_STATUS[decision]} “{row.title}” (run {row.run_id})"
    tx.conn.execute(
        AUDIT.insert().values(
            id=new_id("aud"),
            workspace_id=row.workspace_id,
            at=now,
            actor=actor.who,
            kind="approval",
            action=_STATUS[decision],
            target=row.id[:200],
            summary=(summary + (f": {comment}" if comment else ""))[:1000],
            reason=actor.reason,
            diff=None,
        )
    )


def cancel_pending(tx: Tx, run_ids: Sequence[str], now: datetime) -> None:
    """The pending approvals of runs just cancelled are cancelled with them."""
    if run_ids:
        tx.conn.execute(
            update(APPROVALS)
            .where(APPROVALS.c.run_id.in_(list(run_ids)), APPROVALS.c.status == PENDING)
            .values(status="cancelled", decided_at=now, decided_by="run cancelled")
        )


class ApprovalLinks:
    """Signs and checks the approve / reject links of approval e-mails.

    A link names the approval, the decision and its expiry (the approval's timeout); its
    ``sig`` is an HMAC-SHA256 of the three with a key derived from the server's secret, so
    nothing secret is in the URL and changing any part of it breaks the signature."""

    def __init__(self, secret: str, base_url: str | Callable[[], str]) -> None:
        self._key = hashlib.sha256(("sous-approval-link:" + secret).encode()).digest()
        self._base_url = base_url

    @property
    def base_url(self) -> str:
        """Where people reach this Sous (asked each time: it may be set after start-up)."""
        base = self._base_url if isinstance(self._base_url, str) else self._base_url()
        return base.rstrip("/")

    def signature(self, ident: str, decision: str, expires: int) -> str:
        signed = f"{ident}\n{decision}\n{expires}".encode()
        digest = hmac.new(self._key, signed, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def url(self, ident: str, decision: str, expires_at: datetime) -> str:
        expires = int(expires_at.timestamp())
        query = urlencode(
            {
                "decision": decision,
                "expires": expires,
                "sig": self.signature(ident, decision, expires),
            }
        )
        return f"{self.base_url}/console/approve/{ident}?{query}"

    def problem(
        self, ident: str, decision: str, expires: int, sig: str, now: datetime
    ) -> str | None:
        """Why a link may not decide (forged, or expired), or ``None``."""
        if decision not in DECISIONS or not hmac.compare_digest(
            sig.encode(), self.signature(ident, decision, expires).encode()
        ):
            return "This link is not valid: it was changed or was not made by this Sous."
        if now.timestamp() >= expires:
            return "This link has expired: the approval's time ran out."
        return None
