"""``sous serve``: the API, the engine and the scheduler in one process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import uvicorn

from engine.authoring.loader import load_paths
from engine.ops.retention import Retention, RetentionSettings
from engine.timing.scheduler import Scheduler
from sous.container import Container, build
from sous.logs import configure_logging
from sous.output import paint
from sous.settings import Settings, load_settings

log = logging.getLogger("sous")


def load_recipe_folder(
    container: Container, folder: Path, workspace: str = "default", store: str | None = None
) -> int:
    """Create or update every valid recipe of a folder (limited to ``store`` if given); report
    the invalid ones and go on."""
    result = load_paths([folder], container.registry)
    for error in result.errors:
        log.warning("recipe skipped: %s", error)
    for source, recipe in result.recipes:
        document = recipe.document()
        if store is not None:
            document["store"] = store
        stored = container.engine.recipes.upsert(workspace, document, source=str(source))
        container.engine.refresh(stored)
    if container.scheduler is not None:
        container.scheduler.sync()
    return len(result.recipes)


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, sandbox: bool = False, shopper: bool = True, announce: bool = True
) -> AsyncIterator[tuple[Container, uvicorn.Server]]:
    """Everything ``sous serve`` runs, started; stopped in reverse order on exit."""
    async with contextlib.AsyncExitStack() as stack:
        box = None
        if sandbox:
            from sous.sandbox import Sandbox

            box = await stack.enter_async_context(
                Sandbox(settings, shopper=shopper, announce=announce)
            )
            settings = box.settings
        container = build(settings)
        stack.push_async_callback(container.db.aclose)
        from api.live import LiveHub
        from sous.alerts import install_alerts
        from sous.wiring import wire

        await wire(container, stack)
        # Listen to every process's live notifications from the start (distributed mode), so a
        # client may resume here a stream it began on another API process.
        await LiveHub.of(container.engine).listening()
        install_alerts(container)
        await container.engine.start()
        stack.push_async_callback(container.engine.stop)
        if settings.recipes_dir:
            load_recipe_folder(container, settings.recipes_dir)
        scheduler = _scheduler(container)
        await scheduler.start()
        stack.push_async_callback(scheduler.stop)
        if box is not None:
            await box.attach(container)
        server = await _start_http(container, settings, box, stack)
        yield container, server


def _scheduler(container: Container) -> Scheduler:
    """Schedule and poll triggers, plus the periodic retention clean-up."""
    settings = container.settings
    retention = Retention(
        container.db,
        container.clock,
        RetentionSettings.days(
            succeeded=settings.retention_succeeded_days,
            failed=settings.retention_failed_days,
            events=settings.retention_events_days,
            audit=settings.retention_audit_days,
        ),
    )
    # With the PostgreSQL queue the workers fire schedule recipes (sous.worker.ScheduleFirer).
    distributed = container.settings.queue == "procrastinate"
    scheduler = Scheduler(container.engine, schedules=not distributed)
    scheduler.every(
        "retention", retention.settings.every, retention.run, first_after=timedelta(minutes=5)
    )
    container.scheduler = scheduler
    return scheduler


async def _start_http(
    container: Container,
    settings: Settings,
    sandbox: object | None,
    stack: contextlib.AsyncExitStack,
) -> uvicorn.Server:
    from api.app import create_app

    app = create_app(container, sandbox=sandbox)  # type: ignore[arg-type]
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    container.http_task = task

    async def stop() -> None:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
    while not server.started:
        if task.done():
            task.result()
            raise SystemExit(f"sous: could not serve on {settings.host}:{settings.port}")
        await asyncio.sleep(0.02)
    return server


def freeze_heap() -> None:
    """Move everything loaded at start-up (modules, models, compiled recipes) out of the
    garbage collector's view. A full collection then walks only what requests allocate: on a
    loaded server it otherwise scans every start-up object again every second or two, and
    stalls all requests for 100 ms or more each time."""
    gc.collect()
    gc.freeze()


async def serve(args: argparse.Namespace) -> int:
    settings = load_settings(
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        workers=args.workers,
        recipes_dir=args.recipes,
    )
    configure_logging(settings.log_level)
    async with running(settings, sandbox=args.sandbox) as (container, _):
        freeze_heap()
        base = f"http://{settings.host}:{settings.port}"
        print(
            paint(f"Sous is serving on {base}  (API docs: {base}/docs; Ctrl-C stops it)", "green"),
            flush=True,
        )
        assert container.http_task is not None  # running() started the server
        await container.http_task
    return 0
