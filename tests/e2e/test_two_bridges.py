"""Two bridges, one table: two bridge trees on one machine, each with its own supervisord and
var/ (spool, buffer, heartbeats), collect the same accounts from one gateway simulator into one
external PostgreSQL. One tree is killed whole (SIGKILL to supervisord and every program) in the
middle of the run; the table still holds exactly one row per account per tick, with no gap.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from testkit.waiting import wait_until
from tests.e2e.bridge_checks import ACCOUNTS, TICK, query
from tests.fixtures.supervisor import Supervisor, free_port, simulator_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PIPELINE = ("collector", "writer", "replayer")


@pytest.fixture
def gateway() -> Iterator[dict[str, str]]:
    """One simulator for both bridges, outside either tree (so killing a tree spares it)."""
    socket_port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IB_", "BRIDGE_"))},
        "IBKR_SIM_SOCKET_PORT": str(socket_port),
        "IBKR_SIM_PORTAL_PORT": str(free_port()),
        "IBKR_SIM_CONTROL_PORT": str(free_port()),
    }
    simulator = subprocess.Popen(  # its log is not read: DEVNULL, so no pipe ever fills
        [sys.executable, "-m", "simulator"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield {"IB_PORT": str(socket_port)}
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)


def _tree(root: Path, database_url: str, gateway: dict[str, str], client_id: int) -> Supervisor:
    tree = Supervisor(root, simulator_ports())
    # Two clients on one gateway need two client ids (the gateway refuses a second 10 with 326).
    tree.environ.update(gateway, DATABASE_URL=database_url, IB_CLIENT_ID=str(client_id))
    return tree


def _writer_totals(tree: Supervisor) -> dict[str, int]:
    path = tree.root / "var/run/writer.json"
    try:
        return dict(json.loads(path.read_text())["totals"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return {}


def _kill_tree(tree: Supervisor) -> None:
    """The host is lost: supervisord first (so it restarts nothing), then every program."""
    programs = [
        int(pid) for pid in tree.ctl("pid", "all").stdout.split() if pid.isdigit() and int(pid) > 0
    ]
    supervisord = int((tree.root / "var/run/supervisord.pid").read_text())
    for pid in [supervisord, *programs]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _rows(url: str) -> list[tuple[str, datetime, int]]:
    return [
        (account, ts, count)
        for account, ts, count in query(
            url, "SELECT account, ts, count(*) FROM portfolio_greeks GROUP BY account, ts"
        )
    ]


def _newest(url: str) -> datetime | None:
    rows = query(url, "SELECT max(ts) FROM portfolio_greeks")
    return rows[0][0] if rows else None


@pytest.mark.timeout(300)
def test_two_bridges_share_one_table_and_survive_the_loss_of_one(
    database_url: str, gateway: dict[str, str], tmp_path: Path
) -> None:
    """Both trees store into one table (one inserts, the other's copy is absorbed as a
    duplicate); tree A is SIGKILLed whole mid-run; tree B alone carries on; every tick from
    before the kill to well after it has exactly one row per account."""
    tree_a = _tree(tmp_path / "bridge-a", database_url, gateway, client_id=10)
    tree_b = _tree(tmp_path / "bridge-b", database_url, gateway, client_id=11)
    try:
        for tree in (tree_a, tree_b):
            tree.start()
            tree.wait_running(*PIPELINE, timeout_s=90)
            # Each tree's own simulator program is not the gateway here.
            tree.ctl("stop", "simulator")

        def both_storing() -> bool:
            totals = [_writer_totals(tree) for tree in (tree_a, tree_b)]
            return all(t.get("stored", 0) + t.get("duplicates", 0) > 0 for t in totals)

        wait_until(both_storing, what="both writers storing", timeout_s=120)
        # Both bridges run through a few common ticks before the loss.
        # A writer's first stored records may be connection events: wait for a snapshot.
        wait_until(lambda: _newest(database_url) is not None, what="a first snapshot", timeout_s=60)
        first_common = _newest(database_url)
        assert first_common is not None
        wait_until(
            lambda: (_newest(database_url) or first_common) >= first_common + 3 * TICK,
            what="three more ticks from both bridges",
            timeout_s=60,
        )
        totals = [_writer_totals(tree) for tree in (tree_a, tree_b)]
        assert sum(t.get("duplicates", 0) for t in totals) > 0, totals  # both wrote the ticks

        killed_at = _newest(database_url)
        assert killed_at is not None
        _kill_tree(tree_a)
        wait_until(
            lambda: (_newest(database_url) or killed_at) >= killed_at + 4 * TICK,
            what="four ticks after the kill, from bridge B alone",
            timeout_s=90,
        )
        assert tree_b.states()["writer"][0] == "RUNNING"
        end = _newest(database_url)
        assert end is not None
    finally:
        tree_b.shutdown()
        tree_a.shutdown()

    rows = _rows(database_url)
    assert max(count for _, _, count in rows) == 1  # never two rows for one account and tick
    stored = {(account, ts) for account, ts, _ in rows}
    missing = []
    tick = first_common
    while tick <= end:
        missing += [
            f"{account} {tick:%H:%M:%S}" for account in ACCOUNTS if (account, tick) not in stored
        ]
        tick += TICK
    assert not missing, f"ticks without a row: {missing}"
    assert (end - first_common) >= 7 * TICK
