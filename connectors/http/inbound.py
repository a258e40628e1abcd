"""Webhooks in: any outside system (a 3PL, an ERP, a form) starts recipes over plain HTTP.

A workspace creates an *inbound hook* (``POST /v1/hooks``): a URL, ``/v1/hooks/{id}/events``,
and a secret shown once. Senders sign each message the Standard Webhooks way
(:mod:`connectors.http.signing`); a message that passes becomes an ``http.webhook`` event,
deduplicated on its ``webhook-id``, and recipes with ``trigger: {type: http.webhook, with:
{hook: <name>}}`` run on it. The secret is kept encrypted; only the workspace's API keys with the
``write`` scope manage hooks, and the receiving URL needs no API key (the signature is the key).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlmodel import Field as SQLField, SQLModel

from engine import Event, Params, TriggerSpec

EVENT_TYPE = "http.webhook"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class InboundHookRow(SQLModel, table=True):
    __tablename__ = "inbound_hook"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: str = SQLField(primary_key=True, max_length=40)
    workspace_id: str = SQLField(index=True, max_length=64)
    name: str = SQLField(max_length=63)
    secret_enc: str = SQLField(max_length=500)
    created_at: datetime = SQLField(sa_column=Column(DateTime(timezone=True), nullable=False))


class WebhookPayload(BaseModel):
    hook: str = Field(description="the inbound hook's name")
    webhook_id: str = Field(description="the sender's message id (retries repeat it)")
    body: dict[str, Any] = Field(description="the JSON object the sender posted")


class WebhookFilter(Params):
    hook: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="the inbound hook's name (any hook of the workspace when absent)",
    )


def _hook_filter(params: Any, event: Event) -> str | None:
    assert isinstance(params, WebhookFilter)
    name = event.payload.get("hook")
    if params.hook is not None and name != params.hook:
        return f"hook {name!r} is not {params.hook!r}"
    return None


TRIGGER = TriggerSpec(
    type=EVENT_TYPE,
    description="A signed webhook reached one of the workspace's inbound hooks (/v1/hooks).",
    payload=WebhookPayload,
    sample={
        "hook": "warehouse",
        "webhook_id": "msg_2Lz0kq8G1f",
        "body": {"type": "shipment.delayed", "sku": "SUN-CATEYE", "new_date": "2026-12-11"},
    },
    params=WebhookFilter,
    filter=_hook_filter,
)
