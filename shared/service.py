"""What every process's `__main__` does: settings from the environment, logging, run until SIGTERM.

A bad setting, or a spool another process holds, ends the program with one line naming the
problem and a non-zero exit; SIGTERM and SIGINT set the stop event the worker's `run()` watches,
so the batch in progress finishes before the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, TypeVar

from shared import logs
from shared.errors import SettingsError, SpoolError
from shared.settings import with_dotenv


class Worker(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


class HasLogLevel(Protocol):
    @property
    def log_level(self) -> str: ...


SettingsT = TypeVar("SettingsT", bound=HasLogLevel)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less when `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _run_until_signalled(worker: Worker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await worker.run(stop)


def serve(
    program: str,
    load: Callable[[Mapping[str, str]], SettingsT],
    build: Callable[[SettingsT], Worker],
    *,
    urls_with_passwords: Callable[[SettingsT], Iterable[str]] = lambda _settings: (),
) -> None:
    """Run one process of the bridge; `program` names it in the one-line errors."""
    try:
        settings = load(with_dotenv(os.environ))
    except SettingsError as exc:
        sys.exit(f"{program}: {exc}")
    logs.configure(settings.log_level)
    for url in urls_with_passwords(settings):
        logs.hide_url_password(url)
    try:
        asyncio.run(_run_until_signalled(build(settings)))
    except SpoolError as exc:
        sys.exit(f"{program}: {exc}")
