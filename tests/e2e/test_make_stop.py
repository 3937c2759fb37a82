"""`make stop` returns only once every program and supervisord have exited, so `make stop &&
make run` works; run against the project's Makefile and the real supervisord, with a program
that takes its time to stop (as PostgreSQL does)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.waiting import wait_until
from tests.fixtures.supervisor import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_SLOW_TO_STOP = (
    "import pathlib, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(2), sys.exit(0)))\n"
    "pathlib.Path(sys.argv[1]).touch()\n"
    "time.sleep(3600)\n"
)

_CONFIG = """
[unix_http_server]
file=%(here)s/var/run/supervisor.sock
chmod=0700

[supervisord]
logfile=%(here)s/var/log/supervisord.log
pidfile=%(here)s/var/run/supervisord.pid
directory=%(here)s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/var/run/supervisor.sock

[program:slow]
command={python} %(here)s/slow.py %(here)s/var/run/slow.ready
startsecs=0
stopwaitsecs=30
"""


def _make(root: Path, target: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # -o: the test's root has no pyproject.toml to install from; .venv is the project's.
        ["make", "--no-print-directory", "-o", ".venv/.installed", target],
        cwd=root,
        env={"PATH": os.environ["PATH"], **environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _supervisord_alive(root: Path) -> bool:
    pid_file = root / "var/run/supervisord.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "bridge"
    root.mkdir()
    shutil.copy(PROJECT_ROOT / "Makefile", root / "Makefile")
    (root / ".venv").symlink_to(Path(sys.prefix))
    (root / "supervisord.conf").write_text(_CONFIG.format(python=sys.executable))
    (root / "slow.py").write_text(_SLOW_TO_STOP)
    yield root
    if _supervisord_alive(root):
        pid = int((root / "var/run/supervisord.pid").read_text())
        if _make(root, "stop", STOP_TIMEOUT_S="30").returncode != 0:
            os.kill(pid, signal.SIGTERM)  # its programs get their stop signal from it


@pytest.mark.timeout(120)
def test_make_stop_waits_so_make_run_can_follow(root: Path) -> None:
    """`make stop && make run` right after a start: the second run starts a fresh supervisord
    (no "Another program is already listening"), and stop leaves nothing running."""
    started = _make(root, "run")
    assert started.returncode == 0, started.stdout + started.stderr
    wait_until((root / "var/run/slow.ready").exists, what="the slow program's handler")
    first_pid = int((root / "var/run/supervisord.pid").read_text())

    stopped = _make(root, "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not _supervisord_alive(root)
    again = _make(root, "run")
    assert "Another program is already listening" not in again.stdout + again.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Stopped: every program and supervisord have exited." in stopped.stdout
    assert int((root / "var/run/supervisord.pid").read_text()) != first_pid

    assert _make(root, "stop").returncode == 0
    assert not _supervisord_alive(root)
    assert "supervisord is not running" in _make(root, "stop").stdout


@pytest.mark.timeout(120)
def test_make_stop_gives_up_after_its_timeout_with_a_clear_message(root: Path) -> None:
    """A program slower to stop than STOP_TIMEOUT_S: make stop fails, naming supervisord."""
    assert _make(root, "run").returncode == 0
    wait_until((root / "var/run/slow.ready").exists, what="the slow program's handler")
    stopped = _make(root, "stop", STOP_TIMEOUT_S="1")
    assert stopped.returncode != 0
    assert "still running after 1 s" in stopped.stderr
