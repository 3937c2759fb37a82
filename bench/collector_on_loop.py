"""`python -m bench.collector_on_loop`: the collector with its recomputed Greeks priced on the
event loop, as they were before collector/recompute_worker.py: the "on the loop" rows of the
tick jitter benchmark (bench/collector.py `tick_jitter`). Nothing else differs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from collector.collector import Collector
from collector.settings import CollectorSettings
from collector.worker import Job, Worker
from shared.service import serve

T = TypeVar("T")


class OnLoop(Worker):
    """Runs each job at once, on the event loop, before `start` returns: the loop is blocked
    for as long as the job takes, as `GreekRecomputer.apply` blocked it."""

    def start(self, function: Callable[..., T], *args: object) -> Job[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        future.set_result(function(*args))
        return Job(future, self.name)


def main() -> None:
    serve(
        "bridge-collector",
        CollectorSettings.from_environ,
        lambda settings: Collector(settings, recompute_worker=OnLoop("recompute")),
        urls_with_passwords=lambda settings: [settings.portal_url],
    )


if __name__ == "__main__":
    main()
