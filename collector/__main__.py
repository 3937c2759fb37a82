"""`python -m collector` (`bridge-collector`): placeholder until the collector lands (issue 4).

It says so in its log and waits for SIGTERM, so supervisord shows it RUNNING and the rest of the
pipeline can be operated and tested around it.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from shared import logs


def main() -> None:
    logs.configure("INFO")
    logging.getLogger("collector").warning(
        "placeholder: the IBKR collector is not implemented yet; no snapshots will be spooled"
    )
    stopped = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
