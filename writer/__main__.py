"""`python -m writer` (`bridge-writer`): settings and logging wired to the Writer until SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from shared import logs
from shared.errors import SettingsError
from shared.settings import with_dotenv
from writer.settings import WriterSettings
from writer.writer import Writer


async def _serve(settings: WriterSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await Writer(settings).run(stop)


def main() -> None:
    try:
        settings = WriterSettings.from_environ(with_dotenv(os.environ))
    except SettingsError as exc:
        sys.exit(f"bridge-writer: {exc}")
    logs.configure(settings.log_level)
    if settings.database.url is not None:
        logs.hide_url_password(settings.database.url.reveal())
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()
