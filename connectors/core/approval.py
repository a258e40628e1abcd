"""``core.approval``: pause the run until a person approves or rejects (see
:mod:`engine.run.approval` for how the wait, the decision and the timeout work).

With ``to``, the step first e-mails the message with two signed links (approve, reject) through
the e-mail connector, once per step (the sent log keys it on the step's idempotency key): the
approval's id is derived from the run and the step, so a link sent before a crash still names
the approval the step asks for when it runs again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.email import SendParams, SmtpConfig
from connectors.email.message import Addresses
from connectors.email.send import send_logged
from engine import (
    MAX_APPROVAL_TIMEOUT,
    ActionContext,
    ActionSpec,
    Approval,
    ApprovalLinks,
    Database,
    Params,
    PermanentError,
    RetryPolicy,
    approval_id,
    parse_duration,
)

SHORTEST = timedelta(minutes=1)


class ApprovalParams(Params):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Release backorder of order {{ order.id }}?",
                    "message": "Order {{ order.id }} is worth {{ order.total_inc_tax }}.",
                    "to": ["manager@shop.example"],
                    "timeout": "2d",
                    "default": "reject",
                    "on_reject": "stop",
                }
            ]
        },
    )
    title: str = Field(min_length=1, max_length=200, description="What is asked (one line)")
    message: str = Field(default="", max_length=10_000, description="The details, plain text")
    to: Addresses = Field(
        default_factory=list,
        max_length=20,
        description="E-mail addresses to ask (with approve / reject links); none: the console "
        "and the API only",
    )
    timeout: str | float = Field(
        description="How long to wait for a decision: '90m', '2d' (1 minute to 30 days)"
    )
    default: Literal["approve", "reject"] = Field(
        default="reject", description="The decision when nobody decides in time"
    )
    on_reject: Literal["stop", "continue"] = Field(
        default="stop",
        description="A rejection ends the run (skipped) or lets later steps branch on "
        "steps.<id>.decision",
    )

    @field_validator("title")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return " ".join(value.split())

    @field_validator("timeout")
    @classmethod
    def _length(cls, value: str | float) -> str | float:
        try:
            length = parse_duration(value)
        except (OverflowError, ValueError):
            raise ValueError(f"not a duration: {value!r} (try '90m', '2d')") from None
        if not SHORTEST <= length <= MAX_APPROVAL_TIMEOUT:
            raise ValueError(f"an approval waits from 1 minute to {MAX_APPROVAL_TIMEOUT.days} days")
        return value


class ApprovalOutput(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "approval_id": "apv_01jf3k9q2w8x7v6b5n4m3c2z1a_ok",
                    "decision": "approve",
                    "approved": True,
                    "decided_by": "console:key:key_01jf3",
                    "decided_at": "2026-12-14T10:00:00+00:00",
                    "comment": "fine, ship it",
                    "timed_out": False,
                }
            ]
        }
    )
    approval_id: str
    decision: Literal["approve", "reject"]
    approved: bool = Field(description="decision is approve")
    decided_by: str | None = Field(
        description="Who decided: key:ID (the API), console:…, link (an e-mailed link) or "
        "timeout (the default applied)"
    )
    decided_at: str | None
    comment: str | None = None
    timed_out: bool = Field(description="Nobody decided in time: this is the default")


async def ask_for_approval(ctx: ActionContext, params: ApprovalParams) -> ApprovalOutput:
    now = ctx.clock.now()
    until = now + parse_duration(params.timeout)
    if params.to:
        await _mail(ctx, params, until, now)
    raise Approval(
        until,
        title=params.title,
        message=params.message,
        to=params.to,
        default=params.default,
        on_reject=params.on_reject,
    )


async def _mail(ctx: ActionContext, params: ApprovalParams, until: datetime, now: datetime) -> None:
    links, config = ctx.services.find(ApprovalLinks), ctx.services.find(SmtpConfig)
    if links is None or config is None:
        raise PermanentError("approval e-mails need an SMTP server (SOUS_SMTP_HOST)")
    ident = approval_id(ctx.run_id, ctx.step_id)
    text = "\n".join(
        [
            params.message,
            "",
            f"Approve: {links.url(ident, 'approve', until)}",
            f"Reject:  {links.url(ident, 'reject', until)}",
            "",
            f"Without a decision by {until:%Y-%m-%d %H:%M} UTC, the answer is: {params.default}.",
            f"Pending approvals in the console: {links.base_url}/console/approvals",
        ]
    ).lstrip()
    message = SendParams(to=params.to, subject=f"Approval needed: {params.title}", text=text)
    await send_logged(
        ctx.services.get(Database),
        config,
        message,
        key=f"{ctx.idempotency_key}:approval",
        workspace=ctx.workspace,
        now=now,
    )


ACTION = ActionSpec(
    name="core.approval",
    description="Pause the run until a person approves or rejects — in the console, the API or "
    "a signed link e-mailed to `to` — with a timeout and a default decision; durable",
    params=ApprovalParams,
    output=ApprovalOutput,
    handler=ask_for_approval,
    writes="asks people for a decision (by e-mail with to)",
    retry=RetryPolicy(tries=5, backoff=30, cap=3600),
    timeout=120,
)
