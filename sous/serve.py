"""``sous serve``: the API, the engine and the scheduler in one process."""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path

import uvicorn

from engine.loader import load_paths
from sous.container import Container, build
from sous.output import paint
from sous.settings import Settings, load_settings

log = logging.getLogger("sous")


def load_recipe_folder(container: Container, folder: Path, workspace: str = "default") -> int:
    """Create or update every valid recipe of a folder; report the invalid ones and go on."""
    result = load_paths([folder], container.registry)
    for error in result.errors:
        log.warning("recipe skipped: %s", error)
    for source, recipe in result.recipes:
        stored = container.engine.recipes.upsert(workspace, recipe.document(), source=str(source))
        container.engine.refresh(stored)
    return len(result.recipes)


async def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        workers=args.workers,
        recipes_dir=args.recipes,
    )
    async with contextlib.AsyncExitStack() as stack:
        sandbox = None
        if args.sandbox:
            from sous.sandbox import Sandbox

            sandbox = await stack.enter_async_context(Sandbox(settings))
            settings = sandbox.settings
        container = build(settings)
        stack.callback(container.db.dispose)
        from sous.wiring import wire

        await wire(container, stack)
        await container.engine.start()
        stack.push_async_callback(container.engine.stop)
        if settings.recipes_dir:
            load_recipe_folder(container, settings.recipes_dir)
        if sandbox is not None:
            await sandbox.attach(container)
        await _serve_http(container, settings, sandbox)
    return 0


async def _serve_http(container: Container, settings: Settings, sandbox: object | None) -> None:
    from api.app import create_app

    app = create_app(container, sandbox=sandbox)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    base = f"http://{settings.host}:{settings.port}"
    print(paint(f"Sous is serving on {base}  (API docs: {base}/docs)", "green"), flush=True)
    await server.serve()
