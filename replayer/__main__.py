"""`python -m replayer` (`bridge-replayer`): settings and logging wired to the Replayer."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared import logs
from shared.errors import SettingsError
from shared.settings import with_dotenv


async def _serve(settings: ReplayerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await Replayer(settings).run(stop)


def main() -> None:
    try:
        settings = ReplayerSettings.from_environ(with_dotenv(os.environ))
    except SettingsError as exc:
        sys.exit(f"bridge-replayer: {exc}")
    logs.configure(settings.log_level)
    if settings.database.url is not None:
        logs.hide_url_password(settings.database.url.reveal())
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()
