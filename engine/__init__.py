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
    )
    from engine.authoring.loader import (
        parse_yaml as parse_yaml,
    )
    from engine.authoring.schema import (
        recipe_schema as recipe_schema,
    )
    from engine.authoring.validation import (
        Loc as Loc,
    )
    from engine.authoring.validation import (
        format_loc as format_loc,
    )
    from engine.authoring.validation import (
        validate_document as validate_document,
    )
    from engine.clock import (
        Clock as Clock,
    )
    from engine.clock import (
        ManualClock as ManualClock,
    )
    from engine.clock import (
        SystemClock as SystemClock,
    )
    from engine.conditions.operators import (
        OPERATORS as OPERATORS,
    )
    from engine.context import (
        ActionContext as ActionContext,
    )
    from engine.context import (
        Services as Services,
    )
    from engine.contracts import (
        ConnectorHost as ConnectorHost,
    )
    from engine.contracts import (
        EngineSettings as EngineSettings,
    )
    from engine.contracts import (
        IngestResult as IngestResult,
    )
    from engine.contracts import (
        JobHandler as JobHandler,
    )
    from engine.contracts import (
        Listener as Listener,
    )
    from engine.engine import (
        Engine as Engine,
    )
    from engine.errors import (
        ActionError as ActionError,
    )
    from engine.errors import (
        ConditionError as ConditionError,
    )
    from engine.errors import (
        ConflictError as ConflictError,
    )
    from engine.errors import (
        ErrorDetail as ErrorDetail,
    )
    from engine.errors import (
        NotFoundError as NotFoundError,
    )
    from engine.errors import (
        PermanentError as PermanentError,
    )
    from engine.errors import (
        RecipeError as RecipeError,
    )
    from engine.errors import (
        RegistryError as RegistryError,
    )
    from engine.errors import (
        RenderError as RenderError,
    )
    from engine.errors import (
        Retry as Retry,
    )
    from engine.errors import (
        RetryableError as RetryableError,
    )
    from engine.errors import (
        SousError as SousError,
    )
    from engine.model.durations import (
        parse_duration as parse_duration,
    )
    from engine.model.events import (
        CausedBy as CausedBy,
    )
    from engine.model.events import (
        Event as Event,
    )
    from engine.model.events import (
        NewEvent as NewEvent,
    )
    from engine.model.ids import (
        new_id as new_id,
    )
    from engine.model.recipe import (
        Recipe as Recipe,
    )
    from engine.model.retry import (
        RetryPolicy as RetryPolicy,
    )
    from engine.model.status import (
        FINAL as FINAL,
    )
    from engine.model.status import (
        RunStatus as RunStatus,
    )
    from engine.model.status import (
        StepStatus as StepStatus,
    )
    from engine.observe import (
        REQUEST_ID as REQUEST_ID,
    )
    from engine.observe import (
        span as span,
    )
    from engine.ops.control import (
        RunChanges as RunChanges,
    )
    from engine.packs.archive import (
        PackError as PackError,
    )
    from engine.packs.archive import (
        build_archive as build_archive,
    )
    from engine.packs.archive import (
        sha256 as sha256,
    )
    from engine.packs.export import (
        export_workspace as export_workspace,
    )
    from engine.packs.install import (
        PackService as PackService,
    )
    from engine.packs.install import (
        TemplateEntry as TemplateEntry,
    )
    from engine.packs.install import (
        default_library as default_library,
    )
    from engine.packs.instances import (
        make_for_stores as make_for_stores,
    )
    from engine.packs.instances import (
        make_recipe as make_recipe,
    )
    from engine.packs.upgrade import (
        apply_upgrade as apply_upgrade,
    )
    from engine.packs.upgrade import (
        plan_upgrade as plan_upgrade,
    )
    from engine.queue.base import (
        Job as Job,
    )
    from engine.queue.base import (
        NewJob as NewJob,
    )
    from engine.registry import (
        ActionSpec as ActionSpec,
    )
    from engine.registry import (
        Connector as Connector,
    )
    from engine.registry import (
        Params as Params,
    )
    from engine.registry import (
        TriggerSpec as TriggerSpec,
    )
    from engine.run.jobs import (
        complete as complete,
    )
    from engine.run.jobs import (
        put_back as put_back,
    )
    from engine.run.jobs import (
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
    )
    from engine.run.waits import (
        Refetchers as Refetchers,
    )
    from engine.run.waits import (
        Wait as Wait,
    )
    from engine.store.db import (
        Database as Database,
    )
    from engine.store.db import (
        Tx as Tx,
    )
    from engine.store.models import (
        EventRow as EventRow,
    )
    from engine.store.models import (
        MatchRow as MatchRow,
    )
    from engine.store.models import (
        RecipeRow as RecipeRow,
    )
    from engine.store.models import (
        RunRow as RunRow,
    )
    from engine.store.models import (
        StepRow as StepRow,
    )
    from engine.store.models import (
        StoreRow as StoreRow,
    )
    from engine.store.models import (
        Workspace as Workspace,
    )
    from engine.store.recipes import (
        StoredRecipe as StoredRecipe,
    )
    from engine.store.redact import (
        redact as redact,
    )
    from engine.store.vault import (
        Cipher as Cipher,
    )
    from engine.store.vault import (
        Vault as Vault,
    )
    from engine.timing.leader import periodically as periodically
    from engine.timing.schedules import (
        CronTimetable as CronTimetable,
    )
    from engine.timing.schedules import (
        IntervalTimetable as IntervalTimetable,
    )
    from engine.timing.schedules import (
        ScheduleParams as ScheduleParams,
    )
    from engine.timing.schedules import (
        Timetable as Timetable,
    )
    from engine.timing.schedules import (
        cron_expression as cron_expression,
    )
    from engine.timing.schedules import (
        time_zone as time_zone,
    )
    from engine.timing.schedules import (
        utc as utc,
    )

_WHERE: dict[str, str] = {
    "Engine": "engine.engine",
    "ConnectorHost": "engine.contracts",
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
    "RetryPolicy": "engine.model.retry",
    "FINAL": "engine.model.status",
    "RunStatus": "engine.model.status",
    "StepStatus": "engine.model.status",
    "REQUEST_ID": "engine.observe",
    "span": "engine.observe",
    "RunChanges": "engine.ops.control",
    "PackError": "engine.packs.archive",
    "build_archive": "engine.packs.archive",
    "sha256": "engine.packs.archive",
    "export_workspace": "engine.packs.export",
    "PackService": "engine.packs.install",
    "TemplateEntry": "engine.packs.install",
    "default_library": "engine.packs.install",
    "make_for_stores": "engine.packs.instances",
    "make_recipe": "engine.packs.instances",
    "apply_upgrade": "engine.packs.upgrade",
    "plan_upgrade": "engine.packs.upgrade",
    "Job": "engine.queue.base",
    "NewJob": "engine.queue.base",
    "ActionSpec": "engine.registry",
    "Connector": "engine.registry",
    "Params": "engine.registry",
    "TriggerSpec": "engine.registry",
    "complete": "engine.run.jobs",
    "put_back": "engine.run.jobs",
    "retry_delay": "engine.run.jobs",
    "event_from_row": "engine.run.runner",
    "load_event": "engine.run.runstate",
    "MAX_WAIT": "engine.run.waits",
    "Refetchers": "engine.run.waits",
    "Wait": "engine.run.waits",
    "Database": "engine.store.db",
    "Tx": "engine.store.db",
    "EventRow": "engine.store.models",
    "MatchRow": "engine.store.models",
    "RecipeRow": "engine.store.models",
    "RunRow": "engine.store.models",
    "StepRow": "engine.store.models",
    "StoreRow": "engine.store.models",
    "Workspace": "engine.store.models",
    "StoredRecipe": "engine.store.recipes",
    "redact": "engine.store.redact",
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
