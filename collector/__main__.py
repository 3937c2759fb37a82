"""`python -m collector` (`bridge-collector`): settings and logging wired to the Collector."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from collector.collector import Collector
from collector.settings import CollectorSettings
from shared import logs
from shared.errors import SettingsError, SpoolError
from shared.settings import with_dotenv


async def _serve(settings: CollectorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await Collector(settings).run(stop)


def main() -> None:
    try:
        settings = CollectorSettings.from_environ(with_dotenv(os.environ))
    except SettingsError as exc:
        sys.exit(f"bridge-collector: {exc}")
    logs.configure(settings.log_level)
    logs.hide_url_password(settings.portal_url)
    try:
        asyncio.run(_serve(settings))
    except SpoolError as exc:
        sys.exit(f"bridge-collector: {exc}")


if __name__ == "__main__":
    main()
