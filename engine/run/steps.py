"""One step of a run: evaluate its ``if``, render its ``with:``, validate, call the action under
its timeout, and classify what went wrong.

Failures become :class:`StepFailed` with a *kind* the step's retry policy is matched against:
``timeout`` (the step's time ran out), ``rate_limit`` (status 429), ``server_error`` (5xx) and
``retryable`` (any other :class:`~engine.errors.RetryableError`, e.g. ``Retry(defer=…)``). An
error carrying an HTTP status is classified by it whatever its class, so BigCommerce's
``RateLimited`` (a ``Retry`` with status 429) is a ``rate_limit``. A policy listing
``retryable`` retries all of the connector-raised kinds; ``timeout`` must be listed itself.
Error messages are stored with every vault secret the step read masked.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from engine import conditions
from engine.authoring.dryrun import Later
from engine.authoring.rendering import Renderer
from engine.clock import Clock
from engine.context import ActionContext, Emit, Services
from engine.errors import (
    ConditionError,
    NotFoundError,
    PermanentError,
    RenderError,
    Retry,
    RetryableError,
)
from engine.model.recipe import Step
from engine.model.retry import RetryOn, RetryPolicy
from engine.model.status import StepStatus
from engine.registry import ActionSpec, Registry
from engine.run import foreach
from engine.run.waits import Wait
from engine.store.redact import redact
from engine.store.vault import Vault

if TYPE_CHECKING:
    from engine.model.run import EachProgress, RunState

log = logging.getLogger("sous.runner")

_UNRENDERED = object()
_CONNECTOR_KINDS = frozenset({RetryOn.RATE_LIMIT, RetryOn.SERVER_ERROR, RetryOn.RETRYABLE})


class SecretsView:
    """``secrets.NAME`` in a template: read from the vault, remembered so the trace masks it."""

    def __init__(self, vault: Vault, workspace: str, used: dict[str, str]) -> None:
        self._vault = vault
        self._workspace = workspace
        self._used = used

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> str:
        try:
            value = self._vault.get(self._workspace, name)
        except NotFoundError:
            raise RenderError(
                "secrets", f"no secret named {name!r} in this workspace; add it first"
            ) from None
        self._used[name] = value
        return value


class StepFailed(Exception):
    def __init__(
        self,
        message: str,
        retryable: bool = False,
        defer: float | None = None,
        kind: RetryOn | None = None,
        traced_input: Any = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.defer = defer
        self.kind = kind
        self.traced_input = traced_input
        """The step's rendered ``with:`` as the trace keeps it (secrets masked); ``None`` when
        it failed before its parameters were rendered."""


@dataclass(slots=True)
class StepDone:
    outcome: str
    """``succeeded``, ``skipped`` (its ``if`` was false) or, in a test run, ``would_do`` (a
    write recorded, not made)."""
    output: Any
    traced_in: Any
    traced_out: Any


def _standing_in(outputs: dict[str, Any]) -> dict[str, Any]:
    """A test run's step outputs as later steps see them: a write recorded, not made, has no
    output, so what they read of it renders as ``<steps.ID.FIELD>``."""
    return {
        key: Later(f"steps.{key}") if isinstance(out, dict) and "would_do" in out else out
        for key, out in outputs.items()
    }


def _template_data(state: RunState, scope: dict[str, Any] | None) -> dict[str, Any]:
    """What a step's templates see: the event, the earlier steps' outputs, and ``scope``."""
    data = state.event.context()
    outputs = state.outputs
    if scope is not None:
        outputs = {**outputs, **scope.get("steps", {})}
        data.update({k: v for k, v in scope.items() if k != "steps"})
    data["steps"] = _standing_in(outputs) if state.test else outputs
    return data


def writes(action: ActionSpec, params: Any) -> bool:
    """Whether calling ``action`` with ``params`` changes something outside Sous (a test run
    records it instead): its ``is_write`` says so per call, else whether it declares ``writes``."""
    if action.is_write is not None:
        return action.is_write(params)
    return bool(action.writes)


def kind_of(exc: BaseException) -> RetryOn:
    """The retry kind of a retryable failure: by its HTTP status when it has one."""
    status = getattr(exc, "status", None)
    if status == 429:
        return RetryOn.RATE_LIMIT
    if isinstance(status, int) and status >= 500:
        return RetryOn.SERVER_ERROR
    return RetryOn.RETRYABLE


def retries(policy: RetryPolicy, exc: StepFailed, attempts: int) -> bool:
    """Whether a failed attempt number ``attempts`` is tried again under ``policy``."""
    if not exc.retryable or exc.kind is None or attempts >= policy.tries:
        return False
    if exc.kind in policy.on:
        return True
    return exc.kind in _CONNECTOR_KINDS and RetryOn.RETRYABLE in policy.on


class StepExecutor:
    def __init__(self, registry: Registry, clock: Clock, services: Services) -> None:
        self._registry = registry
        self._clock = clock
        self._services = services
        self._renderer = Renderer(clock.now)

    def policy(self, step: Step) -> RetryPolicy:
        return step.retry or self._registry.action(step.use).retry

    async def _invoke(self, action: ActionSpec, step: Step, ctx: ActionContext, params: Any) -> Any:
        """Call the action under its timeout; its failures as :class:`StepFailed`."""
        timeout = step.timeout or action.timeout
        try:
            return await asyncio.wait_for(action.handler(ctx, params), timeout)
        except Wait:
            raise
        except TimeoutError:
            raise StepFailed(
                f"timed out after {timeout:g}s", retryable=True, kind=RetryOn.TIMEOUT
            ) from None
        except Retry as exc:
            raise StepFailed(str(exc), retryable=True, defer=exc.defer, kind=kind_of(exc)) from None
        except RetryableError as exc:
            raise StepFailed(str(exc), retryable=True, kind=kind_of(exc)) from None
        except PermanentError as exc:
            raise StepFailed(str(exc)) from None
        except Exception as exc:
            log.exception("action %s raised unexpectedly", step.use)
            raise StepFailed(f"{type(exc).__name__}: {exc}") from None

    def passes(self, state: RunState, step: Step) -> bool:
        """Whether a step (one whose sub-steps run, with no ``with:`` of its own) runs: its
        ``if`` holds, or it has none; raises :class:`StepFailed`."""
        if step.if_ is None:
            return True
        try:
            return conditions.truthy(conditions.apply(step.if_, _template_data(state, None)))
        except ConditionError as exc:
            raise StepFailed(f"if: {exc}") from None

    def each_list(self, state: RunState, step: Step) -> EachProgress | None:
        """Start a ``for_each`` step: its list rendered (and capped), or ``None`` when its
        ``if`` is false; raises :class:`StepFailed`."""
        if not self.passes(state, step):
            return None
        data = _template_data(state, None)
        try:
            return foreach.start(step, self._renderer.render(step.for_each, data, "for_each"))
        except RenderError as exc:
            raise StepFailed(str(exc)) from None
        except ValueError as exc:
            raise StepFailed(str(exc)) from None

    async def run(
        self,
        state: RunState,
        step: Step,
        index: int,
        emit: Emit,
        scope: dict[str, Any] | None = None,
    ) -> StepDone:
        """Run one step; raises :class:`StepFailed` (secrets masked, with the rendered input
        when there is one) or :class:`Wait`. ``scope``: more names for its templates (a
        ``for_each`` item's ``item``, ``index`` and the outputs of its earlier sub-steps as
        ``steps.<id>``)."""
        used: dict[str, str] = {}
        rendered: Any = _UNRENDERED
        secret_fields: frozenset[str] = frozenset()
        try:
            data = _template_data(state, scope)
            if step.if_ is not None:
                try:
                    passed = conditions.truthy(conditions.apply(step.if_, data))
                except ConditionError as exc:
                    raise StepFailed(f"if: {exc}") from None
                if not passed:
                    return StepDone(StepStatus.SKIPPED, None, None, None)
            action = self._registry.action(step.use)
            secret_fields = action.secret_fields
            vault = self._services.find(Vault)
            if vault is not None:
                data["secrets"] = SecretsView(vault, state.workspace, used)
            try:
                rendered = self._renderer.render(step.with_, data, "with")
            except RenderError as exc:
                raise StepFailed(str(exc)) from None
            try:
                params = action.params.model_validate(rendered)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise StepFailed(f"with.{where}: {first['msg']} (after rendering)") from None
            if state.test and writes(action, params):
                traced = redact(rendered, action.secret_fields, used.values())
                would = {"would_do": action.writes, "action": step.use, "with": traced}
                return StepDone(StepStatus.WOULD_DO, would, traced, would)
            ctx = ActionContext(
                run_id=state.run_id,
                step_id=step.id or str(index),
                recipe_uid=state.recipe_uid,
                workspace=state.workspace,
                store=state.event.store,
                event=state.event,
                clock=self._clock,
                services=self._services,
                emit=emit,
                attempt=state.attempts,
                secrets=used,
            )
            try:
                result = await self._invoke(action, step, ctx, params)
            except Wait as wait:
                wait.traced_input = redact(rendered, action.secret_fields, used.values())
                if not state.test:
                    raise
                would = {"would_wait_until": wait.until.isoformat(), "recheck": wait.recheck}
                return StepDone(StepStatus.WOULD_DO, would, wait.traced_input, would)
            output = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
            masked = used.values()
            return StepDone(
                StepStatus.SUCCEEDED,
                output,
                redact(rendered, action.secret_fields, masked),
                redact(output, (), masked),
            )
        except StepFailed as exc:
            traced = None
            if rendered is not _UNRENDERED:
                traced = redact(rendered, secret_fields, used.values())
            message = redact(str(exc), (), used.values()) if used else str(exc)
            raise StepFailed(message, exc.retryable, exc.defer, exc.kind, traced) from None
