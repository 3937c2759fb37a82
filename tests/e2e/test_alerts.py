"""Alerts end to end: the real supervisord, simulator, collector, writer and alerter, and two
webhook receivers behind Apprise's `json://` URLs.

One story for the limit (fires once, survives a SIGKILL of the alerter, resolves once, a receiver
that is down gets it later while the other does not wait) and the gateway dropped outside a reset
window; one for the same drop inside a window, which must stay silent; one for a storm: 60
accounts past a limit at one step reach each URL as one notification.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from testkit.waiting import wait_until
from tests.e2e.bridge_checks import control, query
from tests.fixtures.receiver import Receiver
from tests.fixtures.supervisor import Supervisor

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EVERYTHING = ("postgres", "simulator", "collector", "writer", "replayer", "alerter")
ACCOUNT = "DU7654321"
SPY = 756733  # DU7654321 is short 100 shares; selling 1,900 more takes ~1.1 M of dollar delta
QUIET = """
[health]
stale_snapshot_s = false
login_required_s = false
breaker_open_s = false
buffer_above_mb = false
dead_letter_quiet_s = false
heartbeat_silent_s = false
"""


def _start(supervisor: Supervisor, rules: str, **environ: str) -> str:
    (supervisor.root / "alerts.toml").write_text(rules)  # the default BRIDGE_ALERTS_FILE
    supervisor.environ.update(BRIDGE_ALERT_INTERVAL_S="1", BRIDGE_ALERT_RETRY_DELAYS_S="1")
    supervisor.environ.update(environ)
    supervisor.start()
    supervisor.wait_running(*EVERYTHING)
    return supervisor.wait_database_url()


def _alert_rows(url: str, event: str, rule: str) -> list[dict[str, Any]]:
    rows = query(
        url,
        "SELECT details FROM api_logs WHERE event = %s AND details->>'rule' = %s ORDER BY ts",
        event,
        rule,
    )
    return [details for (details,) in rows]


def _heartbeat(supervisor: Supervisor, process: str) -> dict[str, Any]:
    path = supervisor.root / f"var/run/{process}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _position(supervisor: Supervisor, quantity: int) -> None:
    control(supervisor.control_url, "POST", "/positions",
            {"account": ACCOUNT, "conid": SPY, "quantity": quantity})  # fmt: skip


def _status(supervisor: Supervisor) -> dict[str, Any]:
    result = subprocess.run(
        [str(supervisor.root / ".venv/bin/bridge-status"), "--json"],
        env={"PATH": "/usr/bin:/bin", "BRIDGE_VAR_DIR": str(supervisor.root / "var")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return dict(json.loads(result.stdout))


@pytest.mark.timeout(360)  # one start, four episodes, a 30-s gateway outage
def test_limit_and_gateway_alerts_fire_once_resolve_once_and_survive_the_alerter(
    supervisor: Supervisor, receiver: Receiver, second_receiver: Receiver
) -> None:
    """Under supervisord, a limit breach and a gateway outage each fire once and resolve once at
    both notification URLs, and an alerter killed mid-episode does not notify again."""
    a, b = receiver, second_receiver
    # No reset window anywhere near: 12 hours from now, New York time.
    far = datetime.now(ZoneInfo("America/New_York")) + timedelta(hours=12)
    _start(
        supervisor,
        QUIET + "gateway_disconnected_s = 8\n",
        BRIDGE_ALERT_URLS=f"{a.url()} {b.url()}",
        IB_RESET_WINDOWS=f"{far:%a} {far:%H}:00-{far:%H}:30",
    )
    url = supervisor.database_url
    wait_until(
        lambda: bool(query(url, "SELECT 1 FROM portfolio_greeks WHERE account = %s", ACCOUNT)),
        what="the first row",
        timeout_s=60,
    )
    # The operator sets a limit 100,000 under the account's dollar delta and restarts the alerter.
    truth = control(supervisor.control_url, "GET", "/truth")["accounts"][ACCOUNT]
    dollar_delta = truth["net_dollar_delta"]
    assert dollar_delta is not None
    limit = round(dollar_delta) - 100_000
    (supervisor.root / "alerts.toml").write_text(
        '[[limit]]\nname = "dollar delta cap"\nfigure = "net_dollar_delta"\n'
        f'account = "{ACCOUNT}"\nabove = {limit}\nmargin = 20000\n'
        + QUIET + "gateway_disconnected_s = 8\n"
    )  # fmt: skip
    assert "alerter: started" in supervisor.ctl("restart", "alerter").stdout
    restarted = time.monotonic()
    wait_until(lambda: len(a.titles("FIRING: dollar delta cap")) == 1, what="the alert",
               timeout_s=15)  # fmt: skip
    wait_until(lambda: len(b.titles("FIRING: dollar delta cap")) == 1, what="the alert",
               timeout_s=15)  # fmt: skip
    assert time.monotonic() - restarted <= 15
    wait_until(lambda: len(_alert_rows(url, "alert_fired", "dollar delta cap")) == 1,
               what="the row")  # fmt: skip
    (fired,) = _alert_rows(url, "alert_fired", "dollar delta cap")
    assert (fired["account"], fired["limit"], fired["figure"]) == (
        ACCOUNT,
        limit,
        "net_dollar_delta",
    )
    assert fired["value"] > limit

    # SIGKILLed mid-episode: restarted, still firing since the same instant, not notified again.
    before = _heartbeat(supervisor, "alerter")
    (firing,) = before["firing"]
    os.kill(supervisor.pid("alerter"), signal.SIGKILL)
    wait_until(lambda: _heartbeat(supervisor, "alerter").get("pid") not in (None, before["pid"]),
               what="the restarted alerter's heartbeat", timeout_s=60)  # fmt: skip
    restarted_at = _heartbeat(supervisor, "alerter")["heartbeat"]
    wait_until(lambda: _heartbeat(supervisor, "alerter")["heartbeat"] > restarted_at,
               what="a step of the restarted alerter")  # fmt: skip
    (still,) = _heartbeat(supervisor, "alerter")["firing"]
    assert (still["rule"], still["since"]) == ("dollar delta cap", firing["since"])
    assert (len(a.titles("dollar delta cap")), len(b.titles("dollar delta cap"))) == (1, 1)
    assert len(_alert_rows(url, "alert_fired", "dollar delta cap")) == 1

    # Back inside by more than the margin: resolved once.
    _position(supervisor, -2000)
    wait_until(lambda: len(b.titles("RESOLVED: dollar delta cap")) == 1, what="the resolution",
               timeout_s=30)  # fmt: skip
    wait_until(lambda: len(a.titles("RESOLVED: dollar delta cap")) == 1, what="the resolution")
    wait_until(
        lambda: len(_alert_rows(url, "alert_resolved", "dollar delta cap")) == 1, what="the row"
    )

    # Receiver a down: the next episode reaches b and the table at once, a when it is back.
    a.down()
    _position(supervisor, -100)
    wait_until(
        lambda: len(b.titles("FIRING: dollar delta cap")) == 2, what="episode 2", timeout_s=30
    )
    wait_until(lambda: len(_alert_rows(url, "alert_fired", "dollar delta cap")) == 2,
               what="its row", timeout_s=5)  # fmt: skip
    wait_until(lambda: "target 1 (json)" in supervisor.log("alerter")
               and "not delivered: will retry" in supervisor.log("alerter"),
               what="the failed delivery, logged")  # fmt: skip
    a.up()
    wait_until(lambda: len(a.titles("FIRING: dollar delta cap")) == 2, what="the retried delivery")
    assert len(b.titles("FIRING: dollar delta cap")) == 2

    # The gateway dropped (a 30-s reset) outside any window: alerted after 8 s, not before.
    dropped = time.monotonic()
    control(supervisor.control_url, "POST", "/faults", {"reset_s": 30, "drop_connections": True})
    wait_until(lambda: len(b.titles("FIRING: gateway_disconnected")) == 1,
               what="the disconnect alert", timeout_s=40)  # fmt: skip
    assert time.monotonic() - dropped >= 8
    wait_until(lambda: len(_alert_rows(url, "alert_fired", "gateway_disconnected")) == 1,
               what="its row", timeout_s=5)  # fmt: skip
    (disconnect,) = _alert_rows(url, "alert_fired", "gateway_disconnected")
    assert disconnect["limit"] == 8
    subjects = {f["subject"] for f in _status(supervisor)["findings"]}
    assert {
        f"alert dollar delta cap ({ACCOUNT})",
        "alert gateway_disconnected (gateway)",
    } <= subjects
    assert (len(a.titles("dollar delta cap")), len(b.titles("dollar delta cap"))) == (3, 3)


@pytest.mark.timeout(240)  # one start and a 20-s reset (reconnected 35 s later)
def test_a_drop_inside_a_reset_window_does_not_alert(
    supervisor: Supervisor, receiver: Receiver
) -> None:
    """A gateway drop inside IBKR's reset window, longer than the rule's 5 s, raises no alert."""
    url = _start(
        supervisor,
        QUIET + "gateway_disconnected_s = 5\n",
        BRIDGE_ALERT_URLS=receiver.url(),
        IB_RESET_WINDOWS="Mon-Sun 00:00-00:00",  # always inside
    )
    wait_until(lambda: (_heartbeat(supervisor, "collector").get("gateway") or {}).get("connected")
               is True, what="the collector connected", timeout_s=60)  # fmt: skip
    wait_until(lambda: "firing" in _heartbeat(supervisor, "alerter"), what="the alerter's step")
    control(supervisor.control_url, "POST", "/faults", {"reset_s": 20, "drop_connections": True})
    wait_until(lambda: (_heartbeat(supervisor, "collector").get("gateway") or {}).get("connected")
               is False, what="the disconnect seen", timeout_s=30)  # fmt: skip
    down_since = time.monotonic()
    wait_until(lambda: (_heartbeat(supervisor, "collector").get("gateway") or {}).get("connected")
               is True, what="connected again", timeout_s=90)  # fmt: skip
    assert time.monotonic() - down_since > 5  # long enough to have alerted outside a window
    alerter_beat = _heartbeat(supervisor, "alerter")["heartbeat"]
    wait_until(lambda: _heartbeat(supervisor, "alerter")["heartbeat"] > alerter_beat,
               what="a step after the reconnection")  # fmt: skip
    assert receiver.received == []
    assert _alert_rows(url, "alert_fired", "gateway_disconnected") == []


def _named(service: Receiver) -> str:
    """Every title and message `service` received, one after the other."""
    return "\n".join(f"{body.get('title')}\n{body.get('message')}" for body in service.received)


def _names_every_account(service: Receiver, accounts: list[str]) -> bool:
    named = _named(service)
    return all(account in named for account in accounts)


def _storm_scenario(accounts: list[str]) -> str:
    """60 accounts, each long 100 SPY, prices frozen."""
    lines = [
        "seed = 3",
        "frozen = true",
        f"accounts = {json.dumps(accounts)}",
        "",
        "[[underlyings]]",
        "conid = 756733",
        'symbol = "SPY"',
        'sec_type = "STK"',
        'exchange = "SMART"',
        'primary_exchange = "ARCA"',
        "spot = 600.0",
        "vol = 0.18",
    ]
    for account in accounts:
        lines += ["", f"[cash.{account}]", "USD = 100000.0"]  # a base currency: USD
    for account in accounts:
        lines += [
            "",
            "[[positions]]",
            f'account = "{account}"',
            "holdings = [{ conid = 756733, quantity = 100 }]",
        ]
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(300)
def test_a_storm_of_sixty_accounts_reaches_each_url_as_one_notification(
    supervisor: Supervisor, receiver: Receiver, second_receiver: Receiver
) -> None:
    """60 accounts past a "*" limit at one step, under the real supervisord: every alert is
    stored, and each URL gets one notification naming all 60, not 60 requests."""
    accounts = [f"DU{number:07d}" for number in range(60)]
    scenario = supervisor.root / "storm.toml"
    scenario.write_text(_storm_scenario(accounts))
    url = _start(
        supervisor,
        QUIET,
        BRIDGE_ALERT_URLS=f"{receiver.url()} {second_receiver.url()}",
        IBKR_SIM_SCENARIO=str(scenario),
        IB_RESET_WINDOWS="none",
    )
    # A tick of all 60 with their daily P&L known: the first ticks may come before reqPnL has
    # answered for every account, and an unknown P&L fires no limit (it would fire a step later).
    wait_until(lambda: bool(query(url, "SELECT 1 FROM portfolio_greeks WHERE daily_pnl IS NOT"
                                       " NULL GROUP BY ts HAVING count(*) = 60")),
               what="a tick of all 60 accounts' daily P&L stored", timeout_s=120)  # fmt: skip
    # The operator adds a limit every account is past, and restarts the alerter: one step. The
    # daily P&L (reqPnL, per account): past 50 accounts ib_async asks no account values
    # (ib_async.IB.MaxSyncedSubAccounts), so the socket gives no base currency to convert at.
    (supervisor.root / "alerts.toml").write_text(
        '[[limit]]\nname = "storm cap"\nfigure = "daily_pnl"\nbelow = 1000000\n' + QUIET
    )
    assert "alerter: started" in supervisor.ctl("restart", "alerter").stdout
    wait_until(lambda: len(_alert_rows(url, "alert_fired", "storm cap")) == 60,
               what="60 alerts stored", timeout_s=60)  # fmt: skip
    for service in (receiver, second_receiver):
        wait_until(partial(_names_every_account, service, accounts),
                   what="every alert named in the notification", timeout_s=30)  # fmt: skip
        (notification,) = service.received
        assert notification["title"] == "60 alerts: 60 FIRING, 0 RESOLVED"
    stored = {row["account"] for row in _alert_rows(url, "alert_fired", "storm cap")}
    assert stored == set(accounts)
