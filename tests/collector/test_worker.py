"""The collector's worker process (collector/worker.py): a process killed while idle costs one
job, said as `WorkerCrashed`, and the next job starts a new one; a job's own exception comes
back as it was raised."""

from __future__ import annotations

import os
import signal

import pytest

from collector.errors import WorkerCrashed
from collector.worker import Worker


def _refuse(message: str) -> None:
    raise ValueError(message)


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
