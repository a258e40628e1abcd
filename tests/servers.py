"""Serving an ASGI app over real loopback HTTP inside a test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import uvicorn

from sous.sandbox import free_port


@contextlib.asynccontextmanager
async def serve(
    app: Any,
    port: int | None = None,
    *,
    lifespan: Literal["auto", "on", "off"] = "off",
    start_timeout: float = 10.0,
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on ``port`` (a free loopback port by default); yields its
    base URL and stops the server afterwards."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
