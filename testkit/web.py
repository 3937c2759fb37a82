"""The web program served in-process on a port the OS chooses, for the tests and the web
benchmark: `async with serving(environ) as (server, base_url)`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from testkit.waiting import wait_until_async
from web.server import WebServer
from web.settings import WebSettings


@asynccontextmanager
async def serving(
    environ: dict[str, str],
    *,
    clock: Callable[[], datetime] | None = None,
    monotonic: Callable[[], float] | None = None,
) -> AsyncIterator[tuple[WebServer, str]]:
    settings = WebSettings.from_environ(environ)
    clocks: dict[str, Any] = {"clock": clock, "monotonic": monotonic}
    server = WebServer(settings, **{name: given for name, given in clocks.items() if given})
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))
    await wait_until_async(lambda: server.port is not None or task.done(), what="the web port")
    if task.done():
        await task  # raises what stopped it
    try:
        yield server, f"http://127.0.0.1:{server.port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
