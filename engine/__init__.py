"""The engine's public surface: every name ``api/`` and ``connectors/`` may import.

Import from here (``from engine import Database, NewEvent``), never from the engine's inner
modules: those are free to move. Names load on first use, so importing one does not load the
whole engine (the CLI's quick commands stay quick).

The engine is a pipeline, one folder a stage: ``model/`` (recipes, events, statuses: pure data),
``authoring/`` (loading, validation, rendering, dry runs), ``match/`` (which recipes an event
starts), ``plan/`` (admission: flood limits and run modes), ``run/`` (workers and the runner, where
retries and waits are decided; ``run/runstate.py`` writes the trace rows), with ``ops/`` (control,
replay, recovery, auto-disable, retention) and ``timing/`` (scheduler, schedules, leadership) beside
them, on ``store/`` (the database, its tables, recipes and the vault) and ``queue/``.
:mod:`engine.contracts` says what each part may ask of the others; :mod:`engine.engine` wires them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.authoring.dryrun import (
        dry_run as dry_run,
    )
    from engine.authoring.loader import (
        line_for as line_for,
        parse_yaml as parse_yaml,
    )
    from engine.authoring.schema import (
        recipe_schema as recipe_schema,
    )
    from engine.authoring.validation import (
        Loc as Loc,
        format_loc as format_loc,
        validate_document as validate_document,
    )
    from engine.clock import (
        Clock as Clock,
        ManualClock as ManualClock,
        SystemClock as SystemClock,
    )
    from engine.conditions.operators import (
        OPERATORS as OPERATORS,
    )
    from engine.context import (
        ActionContext as ActionContext,
        Services as Services,
    )
    from engine.contracts import (
        ConnectorHost as ConnectorHost,
        EngineSettings as EngineSettings,
        IngestResult as IngestResult,
        JobHandler as JobHandler,
        Listener as Listener,
        StoreConnector as StoreConnector,
    )
    from engine.engine import (
        Engine as Engine,
    )
    from engine.errors import (
        ActionError as ActionError,
        ConditionError as ConditionError,
        ConflictError as ConflictError,
        ErrorDetail as ErrorDetail,
        NotFoundError as NotFoundError,
        PermanentError as PermanentError,
        RecipeError as RecipeError,
        RegistryError as RegistryError,
        RenderError as RenderError,
        Retry as Retry,
        RetryableError as RetryableError,
        SousError as SousError,
    )
    from engine.model.durations import (
        parse_duration as parse_duration,
    )
    from engine.model.events import (
        CausedBy as CausedBy,
        Event as Event,
        NewEvent as NewEvent,
    )
    from engine.model.ids import (
        new_id as new_id,
    )
    from engine.model.recipe import (
        SLUG as SLUG,
        SLUG_MAX as SLUG_MAX,
        Recipe as Recipe,
    )
    from engine.model.retry import (
        RetryPolicy as RetryPolicy,
    )
    from engine.model.status import (
        FINAL as FINAL,
        RunStatus as RunStatus,
        StepStatus as StepStatus,
    )
    from engine.model.text import (
        Text as Text,
    )
    from engine.observe import (
        REQUEST_ID as REQUEST_ID,
        span as span,
    )
    from engine.ops.backtest import (
        BacktestReport as BacktestReport,
        backtest as backtest,
    )
    from engine.ops.control import (
        RunChanges as RunChanges,
    )
    from engine.ops.testrun import (
        TestRun as TestRun,
    )
    from engine.packs.archive import (
        PackError as PackError,
        build_archive as build_archive,
        sha256 as sha256,
    )
    from engine.packs.export import (
        export_workspace as export_workspace,
    )
    from engine.packs.install import (
        PackService as PackService,
        TemplateEntry as TemplateEntry,
        default_library as default_library,
    )
    from engine.packs.instances import (
        make_for_stores as make_for_stores,
        make_recipe as make_recipe,
    )
    from engine.packs.templatize import (
        export_templates as export_templates,
        template_of as template_of,
    )
    from engine.packs.upgrade import (
        apply_upgrade as apply_upgrade,
        plan_upgrade as plan_upgrade,
    )
    from engine.queue.base import (
        Job as Job,
        NewJob as NewJob,
    )
    from engine.registry import (
        ActionSpec as ActionSpec,
        Connector as Connector,
        Params as Params,
        Registry as Registry,
        TriggerSpec as TriggerSpec,
    )
    from engine.run.alerts import (
        ALERT_DIGEST as ALERT_DIGEST,
        ALERT_FAILURE as ALERT_FAILURE,
        ALERT_NOTICE as ALERT_NOTICE,
        RUN_FAILED as RUN_FAILED,
        alert_lock as alert_lock,
        run_link as run_link,
    )
    from engine.run.approval import (
        DECISIONS as DECISIONS,
        MAX_APPROVAL_TIMEOUT as MAX_APPROVAL_TIMEOUT,
        Approval as Approval,
        ApprovalLinks as ApprovalLinks,
        approval_id as approval_id,
    )
    from engine.run.calls import (
        CALLED as CALLED,
        RecipeCalls as RecipeCalls,
    )
    from engine.run.jobs import (
        complete as complete,
        put_back as put_back,
        retry_delay as retry_delay,
    )
    from engine.run.runner import (
        event_from_row as event_from_row,
    )
    from engine.run.runstate import (
        load_event as load_event,
    )
    from engine.run.waits import (
        MAX_WAIT as MAX_WAIT,
        Refetchers as Refetchers,
        Wait as Wait,
    )
    from engine.store.audit import (
        AuditRow as AuditRow,
        acting_as as acting_as,
        audit_change as audit_change,
        document_diff as document_diff,
        set_actor as set_actor,
    )
    from engine.store.db import (
        Database as Database,
        Tx as Tx,
        transient as transient,
    )
    from engine.store.models import (
        ApprovalRow as ApprovalRow,
        EventRow as EventRow,
        MatchRow as MatchRow,
        RecipeRow as RecipeRow,
        RunRow as RunRow,
        StepRow as StepRow,
        StoreRow as StoreRow,
        Workspace as Workspace,
    )
    from engine.store.recipes import (
        StoredRecipe as StoredRecipe,
    )
    from engine.store.redact import (
        redact as redact,
    )
    from engine.store.usage import (
        METRICS as METRICS,
        UsageRow as UsageRow,
        count_sent as count_sent,
        count_usage as count_usage,
    )
    from engine.store.vault import (
        Cipher as Cipher,
        Vault as Vault,
    )
    from engine.timing.leader import periodically as periodically
    from engine.timing.schedules import (
        CronTimetable as CronTimetable,
        IntervalTimetable as IntervalTimetable,
        ScheduleParams as ScheduleParams,
        Timetable as Timetable,
        cron_expression as cron_expression,
        time_zone as time_zone,
        utc as utc,
    )

_WHERE: dict[str, str] = {
    "CALLED": "engine.run.calls",
    "RecipeCalls": "engine.run.calls",
    "Engine": "engine.engine",
    "ConnectorHost": "engine.contracts",
    "StoreConnector": "engine.contracts",
    "EngineSettings": "engine.contracts",
    "IngestResult": "engine.contracts",
    "JobHandler": "engine.contracts",
    "Listener": "engine.contracts",
    "dry_run": "engine.authoring.dryrun",
    "line_for": "engine.authoring.loader",
    "parse_yaml": "engine.authoring.loader",
    "recipe_schema": "engine.authoring.schema",
    "Loc": "engine.authoring.validation",
    "format_loc": "engine.authoring.validation",
    "validate_document": "engine.authoring.validation",
    "Clock": "engine.clock",
    "ManualClock": "engine.clock",
    "SystemClock": "engine.clock",
    "OPERATORS": "engine.conditions.operators",
    "ActionContext": "engine.context",
    "Services": "engine.context",
    "ActionError": "engine.errors",
    "ConditionError": "engine.errors",
    "ConflictError": "engine.errors",
    "ErrorDetail": "engine.errors",
    "NotFoundError": "engine.errors",
    "PermanentError": "engine.errors",
    "RecipeError": "engine.errors",
    "RegistryError": "engine.errors",
    "RenderError": "engine.errors",
    "Retry": "engine.errors",
    "RetryableError": "engine.errors",
    "SousError": "engine.errors",
    "parse_duration": "engine.model.durations",
    "CausedBy": "engine.model.events",
    "Event": "engine.model.events",
    "NewEvent": "engine.model.events",
    "new_id": "engine.model.ids",
    "Recipe": "engine.model.recipe",
    "SLUG": "engine.model.recipe",
    "SLUG_MAX": "engine.model.recipe",
    "RetryPolicy": "engine.model.retry",
    "FINAL": "engine.model.status",
    "RunStatus": "engine.model.status",
    "StepStatus": "engine.model.status",
    "Text": "engine.model.text",
    "REQUEST_ID": "engine.observe",
    "span": "engine.observe",
    "BacktestReport": "engine.ops.backtest",
    "backtest": "engine.ops.backtest",
    "RunChanges": "engine.ops.control",
    "TestRun": "engine.ops.testrun",
    "PackError": "engine.packs.archive",
    "build_archive": "engine.packs.archive",
    "sha256": "engine.packs.archive",
    "export_workspace": "engine.packs.export",
    "PackService": "engine.packs.install",
    "TemplateEntry": "engine.packs.install",
    "default_library": "engine.packs.install",
    "make_for_stores": "engine.packs.instances",
    "make_recipe": "engine.packs.instances",
    "export_templates": "engine.packs.templatize",
    "template_of": "engine.packs.templatize",
    "apply_upgrade": "engine.packs.upgrade",
    "plan_upgrade": "engine.packs.upgrade",
    "Job": "engine.queue.base",
    "NewJob": "engine.queue.base",
    "ActionSpec": "engine.registry",
    "Connector": "engine.registry",
    "Params": "engine.registry",
    "Registry": "engine.registry",
    "TriggerSpec": "engine.registry",
    "ALERT_DIGEST": "engine.run.alerts",
    "ALERT_FAILURE": "engine.run.alerts",
    "ALERT_NOTICE": "engine.run.alerts",
    "RUN_FAILED": "engine.run.alerts",
    "alert_lock": "engine.run.alerts",
    "run_link": "engine.run.alerts",
    "complete": "engine.run.jobs",
    "put_back": "engine.run.jobs",
    "retry_delay": "engine.run.jobs",
    "event_from_row": "engine.run.runner",
    "load_event": "engine.run.runstate",
    "DECISIONS": "engine.run.approval",
    "MAX_APPROVAL_TIMEOUT": "engine.run.approval",
    "Approval": "engine.run.approval",
    "ApprovalLinks": "engine.run.approval",
    "approval_id": "engine.run.approval",
    "MAX_WAIT": "engine.run.waits",
    "Refetchers": "engine.run.waits",
    "Wait": "engine.run.waits",
    "Database": "engine.store.db",
    "Tx": "engine.store.db",
    "transient": "engine.store.db",
    "ApprovalRow": "engine.store.models",
    "EventRow": "engine.store.models",
    "MatchRow": "engine.store.models",
    "RecipeRow": "engine.store.models",
    "RunRow": "engine.store.models",
    "StepRow": "engine.store.models",
    "StoreRow": "engine.store.models",
    "Workspace": "engine.store.models",
    "AuditRow": "engine.store.audit",
    "acting_as": "engine.store.audit",
    "audit_change": "engine.store.audit",
    "document_diff": "engine.store.audit",
    "set_actor": "engine.store.audit",
    "StoredRecipe": "engine.store.recipes",
    "redact": "engine.store.redact",
    "METRICS": "engine.store.usage",
    "UsageRow": "engine.store.usage",
    "count_sent": "engine.store.usage",
    "count_usage": "engine.store.usage",
    "Cipher": "engine.store.vault",
    "Vault": "engine.store.vault",
    "periodically": "engine.timing.leader",
    "CronTimetable": "engine.timing.schedules",
    "IntervalTimetable": "engine.timing.schedules",
    "ScheduleParams": "engine.timing.schedules",
    "Timetable": "engine.timing.schedules",
    "cron_expression": "engine.timing.schedules",
    "time_zone": "engine.timing.schedules",
    "utc": "engine.timing.schedules",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
