"""Public models, one per role (``RecipeCreate``, ``RecipePublic``, ``RecipesPublic``, …).

Times are ISO 8601 in UTC. Lists are ``{data, next_cursor}``: pass ``next_cursor`` back as
``cursor`` for the next page; it is ``null`` on the last page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from api.errors import ErrorItem
from api.keys import WORKSPACE_ID
from engine import SLUG, Recipe, Text


def _utc(value: datetime) -> datetime:
    """The time in UTC; one whose offset moves it past the calendar's ends (``0001-01-01T00:00
    +04:00``) is the calendar's first or last moment, which it means in any filter."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        end = datetime.min if value.year == 1 else datetime.max
        return end.replace(tzinfo=UTC)


def _iso_only(value: object) -> object:
    """Times are ISO 8601 text; numbers (which pydantic would read as Unix time) are refused."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("expected an ISO 8601 time, such as 2026-11-27T09:00:00Z")
    return value


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
UtcDateTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_utc)]
ScopeName = Literal["read", "write", "admin"]
JSONObject = dict[str, Any]
MAX_VERSION = 2**31 - 1
"""Version numbers are INTEGER columns (32-bit on PostgreSQL): a larger one is refused with 422
naming the field, and the schema's ``maximum`` says so."""


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# -- workspace, keys, secrets --------------------------------------------------------------
class WorkspaceLimits(BaseModel):
    """Most a workspace may use in one day (UTC); a missing or null limit is no limit."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"runs": 10_000}]})
    runs: int | None = Field(default=None, ge=0, le=2**31 - 1, description="Recipe runs")
    steps: int | None = Field(default=None, ge=0, le=2**31 - 1, description="Steps run")
    store_requests: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="Requests to the stores' APIs"
    )
    emails: int | None = Field(default=None, ge=0, le=2**31 - 1, description="E-mails sent")
    http_calls: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="Outbound HTTP calls (http.request)"
    )


class WorkspacePublic(BaseModel):
    id: str
    name: str
    created_at: UtcDateTime | None = None
    recipes: int = 0
    stores: int = 0
    agency: str | None = Field(
        default=None, description="The agency workspace this client workspace belongs to"
    )
    archived_at: UtcDateTime | None = None
    limits: WorkspaceLimits = Field(default_factory=WorkspaceLimits)


class WorkspacesPublic(BaseModel):
    data: list[WorkspacePublic]
    next_cursor: str | None = None


class WorkspaceUpdate(BaseModel):
    model_config = _examples({"name": "Acme Outdoor"})
    name: Text = Field(min_length=1, max_length=200)


class WorkspaceCreate(BaseModel):
    """A client workspace of the calling agency."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Acme Outdoor", "limits": {"runs": 10_000}}]},
    )
    name: Text = Field(min_length=1, max_length=200)
    id: str | None = Field(
        default=None,
        pattern=WORKSPACE_ID.pattern,
        description="The workspace id (default: made from the name, `acme-outdoor`; "
        "`ws-` and a hash for a name without Latin letters or digits)",
    )
    limits: WorkspaceLimits | None = None


class WorkspacePatch(BaseModel):
    """Rename, archive (or unarchive), or set the limits of a workspace."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Acme"}, {"archived": True}]}
    )
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    archived: bool | None = Field(
        default=None,
        description="Archived: its keys stop working, its recipes are disabled, it runs nothing",
    )
    limits: WorkspaceLimits | None = Field(default=None, description="Replaces the limits")


class KeyCreate(BaseModel):
    model_config = _examples(
        {"name": "no-code front end", "scopes": ["read", "write"]},
        {"name": "Acme's own dashboard", "scopes": ["read"], "stores": ["abc123"]},
    )
    name: Text = Field(min_length=1, max_length=200)
    scopes: list[ScopeName] = Field(min_length=1, max_length=3)
    agency: bool = Field(
        default=False,
        description="An agency key: it may create client workspaces and act in them "
        "(`Sous-Workspace` header); only an agency key, in its own workspace, makes one",
    )
    stores: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Limit the key to these stores (hashes): it sees only their recipes, "
        "events and runs, and every route that spans the whole workspace refuses it",
    )


class KeyPublic(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    scopes: list[ScopeName]
    created_at: UtcDateTime
    last_used_at: UtcDateTime | None = None
    revoked_at: UtcDateTime | None = None
    agency: bool = False
    stores: list[str] | None = None


class KeyCreated(KeyPublic):
    key: str = Field(description="The key itself: shown only in this response")


class KeysPublic(BaseModel):
    data: list[KeyPublic]
    next_cursor: str | None = None


class SecretPut(BaseModel):
    model_config = _examples({"value": "smtp-password-123"})
    value: str = Field(min_length=1, max_length=10_000)


class SecretPublic(BaseModel):
    name: str


class SecretsPublic(BaseModel):
    data: list[SecretPublic]
    next_cursor: str | None = None


# -- stores --------------------------------------------------------------------------------
class StoreCreate(BaseModel):
    model_config = _examples(
        {"store_hash": "abc123", "access_token": "x1y2z3", "name": "Acme Outdoor"}
    )
    store_hash: str = Field(pattern=r"^[a-z0-9]{1,64}$")
    access_token: str = Field(
        pattern=r"^[\x21-\x7e]{1,500}$", description="The API account's token"
    )
    api_base_url: Text | None = Field(
        default=None,
        max_length=500,
        description="Defaults to BigCommerce's API (or the simulator's, in the sandbox)",
    )
    name: Text = Field(default="", max_length=200)


class StorePublic(BaseModel):
    id: str
    store_hash: str
    name: str
    api_base_url: str
    status: str
    created_at: UtcDateTime
    last_event_at: UtcDateTime | None = None
    info: JSONObject | None = None


class StoreHealth(BaseModel):
    last_event_at: UtcDateTime | None = None
    hooks_active: int | None = Field(
        default=None,
        description="How many of Sous's webhooks on the store are active, as last checked "
        "(at connection and at each reconciliation); null when not known",
    )
    hooks_expected: int | None = Field(
        default=None, description="How many webhooks Sous needs on the store (one per scope)"
    )
    hooks_ok: bool | None = Field(
        default=None,
        description="True when every expected webhook is active; false means events may be "
        "missed until the next reconciliation re-activates them; null when not known",
    )
    quota: JSONObject | None = Field(default=None, description="API quota last seen, if known")
    details: JSONObject = Field(default_factory=dict)


class StoreDetail(StorePublic):
    health: StoreHealth


class StoresPublic(BaseModel):
    data: list[StorePublic]
    next_cursor: str | None = None


# -- recipes -------------------------------------------------------------------------------
class RecipeCreate(Recipe):
    """A recipe document: the same JSON as a recipe YAML file."""


class RecipeUpdate(Recipe):
    """The whole new document. ``version`` (or the ``If-Match`` header) names the version
    this change is based on; a stale one is refused with 409."""


class RecipePublic(BaseModel):
    id: str = Field(description="The recipe's id (slug), unique in the workspace")
    uid: str = Field(description="The recipe's permanent internal id")
    name: str
    trigger_type: str
    version: int
    enabled: bool
    disabled_reason: str | None = None
    source: str
    created_at: UtcDateTime
    updated_at: UtcDateTime
    document: JSONObject
    warnings: list[str] = Field(
        default_factory=list,
        description="Saved, but something will keep it from running as written: for example a "
        "store that is not connected (yet). Given when the recipe is created or replaced.",
    )


class RecipesPublic(BaseModel):
    data: list[RecipePublic]
    next_cursor: str | None = None


class ValidationResult(BaseModel):
    valid: bool
    errors: list[ErrorItem]


class RecipeVersionPublic(BaseModel):
    version: int
    created_at: UtcDateTime
    author: str | None = Field(
        default=None,
        description="Who saved it: `key:ID`, `console:key:ID`, `console:user:ID`, `cli`, `system`",
    )
    reason: str | None = Field(default=None, description="Why, from the `Sous-Reason` header")


class AuditEntry(BaseModel):
    id: str
    at: UtcDateTime
    actor: str = Field(description="`key:ID`, `console:key:ID`, `console:user:ID`, `cli`, `system`")
    kind: Literal["recipe", "store", "key", "secret", "pack", "workspace", "hook", "approval"]
    action: str = Field(description="created, updated, enabled, disabled, deleted, revoked, …")
    target: str = Field(description="What changed: a recipe id, store hash, key id, secret name…")
    summary: str
    reason: str | None = None
    diff: str | None = Field(default=None, description="A recipe's change, as a unified diff")


class AuditPage(BaseModel):
    data: list[AuditEntry]
    next_cursor: str | None = None


class RecipeVersionsPublic(BaseModel):
    data: list[RecipeVersionPublic]
    next_cursor: str | None = None


class RecipeVersionDocument(BaseModel):
    version: int
    document: JSONObject


class RecipeDiff(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: int = Field(alias="from")
    to: int
    diff: str = Field(description="A unified diff of the two documents as sorted JSON")


class RecipeDisable(BaseModel):
    model_config = _examples({"reason": "paused during the stock count"})
    reason: Text | None = Field(default=None, max_length=1000)


class RecipeCopy(BaseModel):
    """Where a recipe is copied to, and what changes on the way."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"store": "def456"},
                {"workspace": "south-supply", "store": "sss111", "id": "vip-alert"},
            ]
        },
    )
    workspace: str | None = Field(
        default=None,
        max_length=64,
        description="The workspace to copy to (default: the same one); an agency key names any "
        "of its workspaces",
    )
    store: str | list[str] | None = Field(
        default=None, description="The store hash(es) the copy runs for (default: the recipe's)"
    )
    id: str | None = Field(
        default=None,
        pattern=SLUG,
        description="The copy's id (default: the recipe's; with `-copy` in the same workspace)",
    )
    name: Text | None = Field(default=None, min_length=1, max_length=200)


class RecipeRollback(BaseModel):
    model_config = _examples({"version": 2})
    version: int = Field(ge=1, le=MAX_VERSION)


class SampleEvent(BaseModel):
    type: Text | None = Field(default=None, max_length=120, description="Defaults to the trigger's")
    store: Text | None = Field(default=None, max_length=64)
    payload: JSONObject | None = Field(default=None, description="Defaults to the trigger's sample")


RECIPE_EXAMPLE = {
    "id": "sold-out-alert",
    "name": "Log sold-out products",
    "trigger": {"type": "custom.stock_changed"},
    "conditions": [{"<=": [{"var": "product.inventory_level"}, 0]}],
    "actions": [
        {"id": "note", "use": "core.log", "with": {"message": "{{ product.id }} sold out"}}
    ],
}
_TEST_EXAMPLE = {"event": {"payload": {"product": {"id": 77, "inventory_level": 0}}}}


class DryRunRequest(BaseModel):
    """An event to test on: given inline, or a past event of this workspace by id; with
    neither, the trigger's sample payload."""

    model_config = _examples(_TEST_EXAMPLE, {"event_id": "evt_01jd8x3k0000000000000000"})
    event: SampleEvent | None = None
    event_id: Text | None = Field(default=None, max_length=40)


class DryRunUnsaved(DryRunRequest):
    model_config = _examples({"recipe": RECIPE_EXAMPLE, **_TEST_EXAMPLE})
    recipe: JSONObject


class StepPreviewPublic(BaseModel):
    id: str
    use: str
    would_run: bool | None = Field(description="null when it depends on earlier steps' output")
    params: Any = None
    error: str | None = None


class DryRunPublic(BaseModel):
    matched: bool
    stage: str = Field(description="matched, trigger, conditions or loop")
    reason: JSONObject | None = Field(description="Which condition said no, and why")
    steps: list[StepPreviewPublic]


class TestRunRequest(DryRunRequest):
    """The event to run on (inline, or a past event of this workspace by id; with neither, the
    trigger's sample payload)."""

    __test__ = False  # not a test class, whatever its name
    model_config = _examples({"mode": "test", **_TEST_EXAMPLE})
    mode: Literal["test"] = Field(
        default="test", description="test: reads are made, writes recorded as would_do"
    )


class TestRunAccepted(BaseModel):
    __test__ = False  # not a test class, whatever its name
    mode: str
    matched: bool = Field(description="false when the recipe would not fire: nothing ran")
    stage: str = Field(description="matched, trigger, conditions or loop")
    reason: JSONObject | None = Field(default=None, description="Why it would not fire")
    run_id: str | None = Field(default=None, description="GET /v1/runs/{run_id} for the trace")
    event_id: str | None = None


class BacktestRequest(BaseModel):
    """The events to backtest on: those of the recipe's trigger type received within
    ``[since, until)``; without ``until``, up to the newest."""

    model_config = _examples({"since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"})
    since: UtcDateTime
    until: UtcDateTime | None = None
    limit: int = Field(default=1_000_000, ge=1, le=1_000_000, description="The most events to read")


class BacktestUnsaved(BacktestRequest):
    model_config = _examples({"recipe": RECIPE_EXAMPLE, "since": "2026-11-01T00:00:00Z"})
    recipe: JSONObject


class ConditionTallyPublic(BaseModel):
    index: int
    rule: Any
    rejected: int = Field(description="Events on which this condition was the first to say no")
    example: JSONObject | None = Field(
        description="Why it said no on the first of them (with that event_id)"
    )


class SubjectsPublic(BaseModel):
    distinct: int
    capped: bool = Field(description="true when more distinct ones than were counted")
    top: list[JSONObject] = Field(description="The most fired on: {id, name, fires}")


class BacktestPublic(BaseModel):
    recipe: str
    trigger: str
    since: UtcDateTime
    until: UtcDateTime | None = Field(description="null: up to the newest event")
    events: int = Field(description="Events of the trigger type (and stores) in the range")
    fired: int = Field(description="How many of them the recipe would have fired on")
    fire_rate: float
    rejected: dict[str, int] = Field(description="By stage: trigger, loop, conditions")
    conditions: list[ConditionTallyPublic]
    per_day: dict[str, int]
    subjects: dict[str, SubjectsPublic] = Field(
        description="What it would have fired on, by kind: order, product, customer, ..."
    )
    first: list[JSONObject] = Field(description="The first events it would have fired on")
    complete: bool = Field(description="false when the limit stopped it before the range's end")
    stopped_at: UtcDateTime | None = None
    seconds: float
    events_per_second: float | None = None


# -- events --------------------------------------------------------------------------------
class EventCreate(BaseModel):
    model_config = _examples(
        {
            "type": "custom.erp_stock_sync",
            "payload": {"product": {"id": 77, "inventory_level": 0}},
            "dedup_key": "erp-2026-11-27-0001",
        }
    )
    type: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", max_length=120)
    payload: JSONObject = Field(default_factory=dict)
    store: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,64}$")
    dedup_key: Text | None = Field(default=None, min_length=1, max_length=200)
    occurred_at: UtcDateTime | None = None


class EventAccepted(BaseModel):
    event_id: str
    duplicate: bool
    runs: list[str]


class EventPublic(BaseModel):
    id: str
    type: str
    store: str | None
    source: str
    dedup_key: str
    occurred_at: UtcDateTime
    received_at: UtcDateTime
    caused_by: JSONObject | None = None
    target_recipe: str | None = None


class DecisionPublic(BaseModel):
    recipe_uid: str
    recipe_id: str | None = Field(description="null when the recipe was deleted since")
    recipe_version: int
    matched: bool
    stage: str
    reason: JSONObject | None = None
    run_id: str | None = None


class EventDetail(EventPublic):
    payload: JSONObject
    decisions: list[DecisionPublic]


class EventsPublic(BaseModel):
    data: list[EventPublic]
    next_cursor: str | None = None


# -- runs ----------------------------------------------------------------------------------
class RunPublic(BaseModel):
    id: str
    recipe_uid: str
    recipe_id: str | None
    recipe_version: int
    event_id: str
    store: str | None
    status: str
    status_reason: str | None = None
    next_step: int
    depth: int
    created_at: UtcDateTime
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    due_at: UtcDateTime | None = None
    mode: Literal["live", "test"] = Field(
        default="live", description="test: a test run, whose writes were recorded, not made"
    )


class StepPublic(BaseModel):
    index: int
    id: str
    use: str
    status: str
    attempts: int
    input: Any = None
    output: Any = None
    error: str | None = None
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    duration_ms: float | None = None
    attempt_log: list[JSONObject] | None = Field(
        default=None,
        description="Every failed attempt: started_at, finished_at, error, and retry_in_s "
        "(the delay before the next attempt; null after the last). Null when the first "
        "attempt succeeded",
    )


class RunDetail(RunPublic):
    steps: list[StepPublic]


class RunsPublic(BaseModel):
    data: list[RunPublic]
    next_cursor: str | None = None


class ReplayRequest(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={"examples": [{"from": "failed_step", "recipe_version": "original"}]},
    )
    from_: Literal["start", "failed_step"] = Field(default="start", alias="from")
    recipe_version: Literal["original", "current"] = "original"


class ReplayAccepted(BaseModel):
    run_id: str
    event_id: str
    recipe_version: int
    from_step: int = Field(description="The index of the first step the new run executes")


# -- catalog -------------------------------------------------------------------------------
class TriggerInfo(BaseModel):
    type: str
    description: str
    kind: str
    payload_schema: JSONObject | None
    sample: JSONObject
    params_schema: JSONObject


class ActionInfo(BaseModel):
    name: str
    description: str
    params_schema: JSONObject
    output_schema: JSONObject | None
    writes: str = Field(description="What it changes outside Sous; empty when it only reads")
    retry: JSONObject
    timeout: float


class OperatorInfo(BaseModel):
    name: str
    category: str
    description: str
    arguments: str
    min_args: int
    max_args: int | None
    example: JSONObject
    array_only: bool
    chains: bool
    extension: bool


class CatalogPublic(BaseModel):
    triggers: list[TriggerInfo]
    actions: list[ActionInfo]
    operators: list[OperatorInfo]


class Health(BaseModel):
    model_config = _examples({"status": "ok"})
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    model_config = _examples({"status": "ready", "database": "ok"})
    status: Literal["ready"] = "ready"
    database: Literal["ok"] = "ok"
