"""The collector's worker process (collector/worker.py): a process killed while idle costs one
job, said as `WorkerCrashed`, and the next job starts a new one; a job's own exception comes
back as it was raised; a warm-up starts the process before any job, and a job that never ends
has its process killed at the bound (BRIDGE_WORKER_KILL_AFTER_S) and replaced."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from collector.errors import WorkerCrashed, WorkerKilled
from collector.settings import CollectorSettings
from collector.worker import KILL_AFTER_S, Worker
from shared.errors import SettingsError
from testkit.waiting import wait_until_async


def _refuse(message: str) -> None:
    raise ValueError(message)


def _never_ends() -> None:
    threading.Event().wait()  # hung: no result, ever


def _says_then_never_ends(path: str) -> None:
    Path(path).touch()  # the test sees the job has reached the process
    _never_ends()


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_worker_killed_while_idle_fails_one_job_then_a_new_process_serves() -> None:
    """The process killed between jobs: the next job fails as `WorkerCrashed` (at its start or
    at its result, whichever sees the death first), the one after runs in a new process."""
    worker = Worker("test job")
    try:
        pid = await worker.start(os.getpid).result(60)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashed, match="test job's worker process died"):
            await worker.start(os.getpid).result(60)
        assert not worker.busy
        assert await worker.start(os.getpid).result(60) != pid
    finally:
        worker.close()
    assert worker.starts == 2


async def test_a_jobs_own_exception_is_not_a_crash() -> None:
    """A job that raises: its own exception, as raised; the process lives on for the next."""
    worker = Worker("test job")
    try:
        with pytest.raises(ValueError, match="no such option"):
            await worker.start(_refuse, "no such option").result(60)
        assert await worker.start(os.getpid).result(60) > 0
    finally:
        worker.close()
    assert worker.starts == 1


async def test_a_warmed_up_worker_runs_its_first_job_in_the_process_it_started() -> None:
    """`warm_up` starts the process at once, without waiting for it; its pid is known before
    any job, and the first job runs there: no second start."""
    worker = Worker("test job", loads=(_refuse,))
    try:
        worker.warm_up()
        assert worker.starts == 1
        pid = await worker.ready()
        assert _is_running(pid)
        assert await worker.start(os.getpid).result(60) == pid
    finally:
        worker.close()
    assert worker.starts == 1


async def test_a_job_past_the_bound_has_its_process_killed_and_the_next_job_a_new_one() -> None:
    """A job that never ends: at `kill_after_s` its process is killed (gone, not a zombie,
    when the job ends), the job fails as `WorkerKilled`, the kill is counted and told; the
    next job runs in a new process."""
    worker = Worker("test job", kill_after_s=0.5)
    told: list[WorkerKilled] = []
    worker.on_killed = told.append
    try:
        pid = await worker.ready()
        hung = worker.start(_never_ends)
        with pytest.raises(WorkerKilled, match=f"ran past 0.5 s.*pid {pid}"):
            await hung.result(60)
        assert not _is_running(pid)
        assert not worker.busy
        assert (worker.kills, len(told)) == (1, 1)
        replacement = await worker.start(os.getpid).result(60)
    finally:
        worker.close()
    assert replacement != pid
    assert worker.starts == 2


async def test_a_job_within_the_bound_is_not_killed() -> None:
    """A job that ends before `kill_after_s` keeps its process, however long a caller's wait
    gave it (the bound is the worker's, not the wait's)."""
    worker = Worker("test job", kill_after_s=30)
    try:
        pid = await worker.ready()
        assert await worker.start(os.getpid).result(60) == pid
    finally:
        worker.close()
    assert (worker.kills, worker.starts) == (0, 1)


async def test_closing_a_worker_kills_a_job_that_never_ends(tmp_path: Path) -> None:
    """Closed while its job hangs: the process is killed (a pool waits for its job, and the
    interpreter's exit for the pool), the job ends as a crash, not a kill at the bound."""
    worker = Worker("test job")
    running = tmp_path / "running"
    hung = worker.start(_says_then_never_ends, str(running))
    await wait_until_async(running.exists, what="the job running in the worker process")
    worker.close()
    with pytest.raises(WorkerCrashed, match="died") as failed:
        await hung.result(60)
    assert not isinstance(failed.value, WorkerKilled)
    assert worker.kills == 0


def test_the_bound_is_a_minute_or_the_poll_interval_and_never_inside_a_tick() -> None:
    """BRIDGE_WORKER_KILL_AFTER_S: 60 s by default, the poll interval when that is longer;
    shorter than the interval is refused (a tick waits for its recompute 0.8 of it)."""
    read = CollectorSettings.from_environ
    assert read({}).worker_kill_after_s == KILL_AFTER_S == 60
    assert read({"BRIDGE_POLL_INTERVAL_S": "120"}).worker_kill_after_s == 120
    assert read({"BRIDGE_WORKER_KILL_AFTER_S": "300"}).worker_kill_after_s == 300
    with pytest.raises(SettingsError, match="BRIDGE_WORKER_KILL_AFTER_S"):
        read({"BRIDGE_POLL_INTERVAL_S": "10", "BRIDGE_WORKER_KILL_AFTER_S": "5"})
