"""One spawned worker process for the collector's CPU-bound QuantLib work (the scenario grid,
the Greeks the Portal's rounding destroys), so that it never runs on the event loop.

Not a thread: QuantLib's Python wrappers hold the interpreter's lock while they price (a
pure-Python loop beside a thread pricing QD+ puts ran at half its speed on 2 idle cores), and
the grid in a thread made ticks late by tens of ms (docs/scenarios.md, "Jitter"). Spawned, not
forked: a fork would copy the event loop's threads and sockets into the child. The process
starts with its first job and is replaced after a crash; one job runs at a time, and a job is
never queued behind another (`busy`): the caller decides what a busy worker means.

The pool's own failures are translated here, once, into the collector's errors: a dead process
is `WorkerCrashed`, a result not there in time `WorkerTimeout`. A job's own exception (a
defect in the function) reaches the caller as it was raised.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

from collector.errors import WorkerCrashed, WorkerTimeout

T = TypeVar("T")


class Job(Generic[T]):
    """One function call running in the worker process."""

    def __init__(self, future: asyncio.Future[T], name: str) -> None:
        self._future = future
        self._name = name

    @property
    def done(self) -> bool:
        return self._future.done()

    def on_result(self, callback: Callable[[T], None]) -> None:
        """Call `callback` with the result once there is one, however long after any wait
        gave up (a late result is still a result); never with a failure."""

        def deliver(future: asyncio.Future[T]) -> None:
            if not future.cancelled() and future.exception() is None:
                callback(future.result())

        self._future.add_done_callback(deliver)

    async def ended(self) -> None:
        """Wait for the job to end, whatever its outcome (`on_result` callbacks run first)."""
        await asyncio.wait([self._future])

    async def result(self, timeout_s: float | None = None) -> T:
        """The function's return value. `WorkerTimeout` when it is not there within
        `timeout_s` (the job goes on in the worker); `WorkerCrashed` when the process died."""
        try:
            # shield: a wait that gives up must not cancel the job (its result is kept)
            return await asyncio.wait_for(asyncio.shield(self._future), timeout_s)
        except TimeoutError:
            raise WorkerTimeout(f"the {self._name} took longer than {timeout_s:.3g} s") from None
        except BrokenProcessPool as exc:
            raise WorkerCrashed(f"the {self._name}'s worker process died: {exc}") from None


class Worker:
    """A single spawned process, started with its first job and replaced after a crash."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ProcessPoolExecutor | None = None
        self._job: Job[Any] | None = None
        self._starts = 0

    @property
    def name(self) -> str:
        """What the errors call its jobs: "scenario grid", "recompute"."""
        return self._name

    @property
    def busy(self) -> bool:
        """A job was started and has not finished (whether or not anyone still waits for it)."""
        return self._job is not None and not self._job.done

    @property
    def starts(self) -> int:
        """Processes started so far: 1 after the first job, one more after each crash."""
        return self._starts

    def start(self, function: Callable[..., T], *args: object) -> Job[T]:
        """Run `function(*args)` in the process (both must pickle: a top-level function).
        The caller checks `busy` first: a second job would wait behind the first.
        `WorkerCrashed` when the process is found dead (killed while idle); the next job
        starts a new one."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self._starts += 1
        pool = self._pool
        try:
            future = asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool as exc:
            self._pool = None
            pool.shutdown(wait=False)
            raise WorkerCrashed(f"the {self.name}'s worker process died: {exc}") from None

        def replace_if_broken(done: asyncio.Future[T]) -> None:
            if not done.cancelled() and isinstance(done.exception(), BrokenProcessPool):
                if self._pool is pool:
                    self._pool = None  # a new process for the next job
                pool.shutdown(wait=False)

        future.add_done_callback(replace_if_broken)
        job = Job(future, self.name)
        self._job = job
        return job

    async def idle(self) -> None:
        """Wait for the job running, if any, to end (its result delivered, or its failure)."""
        if self._job is not None:
            await self._job.ended()

    def close(self) -> None:
        """Stop the process; a job still running is abandoned."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
