"""One spawned worker process for the collector's CPU-bound QuantLib work (the scenario grid,
the Greeks the Portal's rounding destroys), so that it never runs on the event loop.

Not a thread: QuantLib's Python wrappers hold the interpreter's lock while they price (a
pure-Python loop beside a thread pricing QD+ puts ran at half its speed on 2 idle cores), and
the grid in a thread made ticks late by tens of ms (docs/scenarios.md, "Jitter"). Spawned, not
forked: a fork would copy the event loop's threads and sockets into the child.

A process starts with a warm-up job (`warm_up`, called when the collector starts, or else the
first job): it imports what the jobs will need, QuantLib with it, and reports its pid. One job
runs at a time, and a job is never queued behind another (`busy`): the caller decides what a
busy worker means; a job started while the warm-up runs waits for it in the process. A job
running past `kill_after_s` is hung, not slow: its process is killed (SIGKILL, by the pid it
reported: Python 3.11's pool has no public way to stop a process) and a new one started at
once. A process that died on its own is replaced at the next job.

The pool's own failures are translated here, once, into the collector's errors: a dead process
is `WorkerCrashed` (`WorkerKilled` when the bound killed it), a result not there in the time a
caller waits `WorkerTimeout`. A job's own exception (a defect in the function) reaches the
caller as it was raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final, Generic, NamedTuple, TypeVar

from collector.errors import WorkerCrashed, WorkerFailed, WorkerKilled, WorkerTimeout
from shared import logs

log = logging.getLogger("collector.worker")

T = TypeVar("T")

# A job running longer is hung: 12 ticks at the default 5-s interval, about 20 times the
# measured grid of 1,000 options (2.8 s) and 150 times the recompute of 1,000 moving options
# (0.38 s a tick; docs/benchmarks.md). The collector's setting is BRIDGE_WORKER_KILL_AFTER_S.
KILL_AFTER_S: Final = 60.0


def _started(*functions: Callable[..., object]) -> int:
    """The warm-up job: the process's pid. Its arguments are the functions its jobs will run,
    sent by reference: unpickling them here imports their modules (QuantLib with them), the
    slow part of a start, so that the first job does not pay for it."""
    return os.getpid()


class _Process(NamedTuple):
    pool: ProcessPoolExecutor  # of one process
    pid: asyncio.Future[int]  # its warm-up: the pid it reports once started


def _reported(pid: asyncio.Future[int] | None) -> int | None:
    """The pid a warm-up reported; None while it runs, or when it failed."""
    if pid is None or not pid.done() or pid.cancelled() or pid.exception() is not None:
        return None
    return pid.result()


def _died(name: str, exc: BrokenProcessPool) -> WorkerCrashed:
    return WorkerCrashed(f"the {name}'s worker process died: {exc}")


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
        """Wait for the job to end, whatever its outcome (`on_result` callbacks run first);
        a killed job ends once its process is gone."""
        await asyncio.wait([self._future])

    async def result(self, timeout_s: float | None = None) -> T:
        """The function's return value. `WorkerTimeout` when it is not there within
        `timeout_s` (the job goes on in the worker); `WorkerCrashed` when the process died,
        `WorkerKilled` when it ran past the worker's `kill_after_s`; `WorkerFailed` when the
        worker was closed before it ran."""
        try:
            # shield: a wait that gives up must not cancel the job (its result is kept)
            return await asyncio.wait_for(asyncio.shield(self._future), timeout_s)
        except TimeoutError:
            raise WorkerTimeout(f"the {self._name} took longer than {timeout_s:.3g} s") from None
        except BrokenProcessPool as exc:
            raise _died(self._name, exc) from None


class Worker:
    """A single spawned process, started by `warm_up` or the first job, replaced after a
    crash (at the next job) or a kill (at once)."""

    def __init__(
        self,
        name: str,
        *,
        loads: tuple[Callable[..., object], ...] = (),
        kill_after_s: float = KILL_AFTER_S,
    ) -> None:
        """`loads`: the functions its jobs run (top-level), imported by each new process
        before its first job."""
        self._name = name
        self._loads = loads
        self._kill_after_s = kill_after_s
        self._process: _Process | None = None
        self._job: Job[Any] | None = None
        self._starts = 0
        self._kills = 0
        self._closed = False
        # Told of each kill (the collector's event), once the process is gone, unless closed.
        self.on_killed: Callable[[WorkerKilled], None] | None = None

    @property
    def name(self) -> str:
        """What the errors call its jobs: "scenario grid", "recompute"."""
        return self._name

    @property
    def kill_after_s(self) -> float:
        """How long a job may run before its process is killed."""
        return self._kill_after_s

    @property
    def busy(self) -> bool:
        """A job was started and has not finished (whether or not anyone still waits for it)."""
        return self._job is not None and not self._job.done

    @property
    def starts(self) -> int:
        """Processes started so far: 1 after the warm-up or the first job, one more for each
        replacement."""
        return self._starts

    @property
    def kills(self) -> int:
        """Processes killed so far for a job past `kill_after_s`."""
        return self._kills

    def warm_up(self) -> None:
        """Start the process now, unless one runs, and return at once: it imports what the
        jobs need meanwhile, and a job started before it is done waits for it."""
        self._open()

    async def ready(self) -> int:
        """The process's pid, once it has started and imported what the jobs need (started
        now if none runs). `WorkerCrashed` when it died starting."""
        _, pid = self._open()
        try:
            return await asyncio.shield(pid)
        except BrokenProcessPool as exc:
            raise _died(self.name, exc) from None

    def start(self, function: Callable[..., T], *args: object) -> Job[T]:
        """Run `function(*args)` in the process (both must pickle: a top-level function).
        The caller checks `busy` first: a second job would wait behind the first.
        `WorkerCrashed` when the process is found dead (killed while idle); the next job
        starts a new one."""
        pool, pid = self._open()
        try:
            running = asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool as exc:
            self._forget(pool)
            raise _died(self.name, exc) from None
        running.add_done_callback(lambda done: self._replace_if_broken(pool, done))
        job = Job(asyncio.ensure_future(self._bounded(pool, pid, running)), self.name)
        self._job = job
        return job

    async def idle(self) -> None:
        """Wait for the job running, if any, to end (its result delivered, or its failure)."""
        if self._job is not None:
            await self._job.ended()

    def close(self) -> None:
        """Stop the process; a job still running is abandoned, its process killed (the pool
        would wait for the job, and the interpreter's exit for the pool)."""
        self._closed = True
        if self._process is not None:
            pid = _reported(self._process.pid)
            if self.busy and pid is not None:
                # Its job fails as a crash (gone already, it has failed so).
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            # A job not yet sent to the process is not run.
            self._process.pool.shutdown(wait=False, cancel_futures=True)
            self._process = None

    def _open(self) -> tuple[ProcessPoolExecutor, asyncio.Future[int]]:
        """The current process's pool and its warm-up (its pid); a new one if none."""
        if self._process is None:
            pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self._starts += 1
            pid = asyncio.get_running_loop().run_in_executor(pool, _started, *self._loads)
            pid.add_done_callback(lambda done: self._replace_if_broken(pool, done))
            self._process = _Process(pool, pid)
        return self._process

    def _forget(self, pool: ProcessPoolExecutor) -> None:
        """`pool`'s process is dead: the next job starts a new one."""
        if self._process is not None and self._process.pool is pool:
            self._process = None
        pool.shutdown(wait=False)

    def _replace_if_broken(self, pool: ProcessPoolExecutor, done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and isinstance(done.exception(), BrokenProcessPool):
            self._forget(pool)

    async def _bounded(
        self, pool: ProcessPoolExecutor, pid: asyncio.Future[int], running: asyncio.Future[T]
    ) -> T:
        """`running`'s outcome, unless it runs past `kill_after_s`: then its process is killed,
        a new one started, and `WorkerKilled` raised once the old one is gone. `WorkerFailed`
        when the worker was closed before the job reached its process."""
        # The job runs once the process has started: its bound counts from then.
        await asyncio.wait([pid])
        reported = _reported(pid)
        if reported is None:
            await asyncio.wait([running])  # no process to kill: it ends as its warm-up did
        else:
            await asyncio.wait([running], timeout=self._kill_after_s)
            if not running.done():
                await self._kill(pool, reported)
                await asyncio.wait([running])  # it died on its own meanwhile: a crash
        if running.cancelled():  # by `close`, before it ran (asyncio's error is not ours)
            raise WorkerFailed(f"the {self.name} was not run: its worker was closed")
        return running.result()

    async def _kill(self, pool: ProcessPoolExecutor, pid: int) -> None:
        """Kill `pool`'s process, running a hung job; once it is gone, start a new one and
        raise `WorkerKilled`. Returns when it had died on its own already."""
        # Our own child: its pid is freed only once the pool has reaped it, after it died on
        # its own, which the job's future says within moments; another program could hold it
        # then only if the system had gone through every pid meanwhile.
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self._kills += 1
        self._forget(pool)
        # The pool's manager thread joins the dead process. `shutdown(wait=True)` cannot be
        # relied on to wait for it: once any shutdown has run (`_forget`'s, or the job's
        # done-callback's on the loop) the pool no longer holds the thread to join, and a
        # second one returns at once. So wait for the pid itself to be reaped: then the
        # process is gone (not a zombie) and its memory freed before the new one starts.
        await _reaped(pid, timeout_s=_REAP_TIMEOUT_S)
        killed = WorkerKilled(
            f"the {self.name} ran past {self._kill_after_s:g} s: its worker process"
            f" (pid {pid}) was killed"
        )
        log.error(
            "worker process killed",
            extra=logs.fields(worker=self.name, pid=pid, kill_after_s=f"{self._kill_after_s:g}"),
        )
        # Closed meanwhile: no new process, and no one to tell (the owner may be gone).
        if not self._closed:
            self._open()  # loading for the next job now, not when it comes
            if self.on_killed is not None:
                self.on_killed(killed)
        raise killed


# How long a killed process may take to be reaped by its pool before the worker goes on anyway
# (logged): SIGKILL cannot be caught, so only a machine stalled for that long gets near it.
_REAP_TIMEOUT_S = 10.0
_REAP_POLL_S = 0.01


async def _reaped(pid: int, *, timeout_s: float) -> None:
    """Return once no process has `pid` (a zombie still has it), or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            log.error("killed worker process not reaped", extra=logs.fields(pid=pid))
            return
        await asyncio.sleep(_REAP_POLL_S)
