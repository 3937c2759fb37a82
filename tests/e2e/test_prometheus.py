"""A real Prometheus (Debian's 2.42) against the bridge: the rules file and a live scrape.

The rules of docs/prometheus/ibkr-bridge.rules.yml must pass `promtool check rules`, and its
unit tests (ibkr-bridge.rules.test.yml, a firing and a quiet case per rule) `promtool test
rules`. Then `python -m web` serves stored snapshots with a token set, and a real `prometheus`
scrapes it every second with the scrape configuration docs/web.md documents (bearer token from a
credentials file): its query API must return each account's newest stored figures, `up` must be
1, a job without the token must be refused (401), a name listed in BRIDGE_WEB_ALLOWED_HOSTS
served and another one refused (421), and the rules file, loaded into it, must evaluate against
the real metrics. Skipped without the package, failed under CI
(tests/fixtures/prometheus.py).
"""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from testkit.waiting import wait_until
from tests.fixtures.processes import Processes
from tests.fixtures.prometheus import PrometheusServer, Starter
from tests.fixtures.supervisor import free_port
from tests.fixtures.web import answers, insert_snapshots, prepare_schema, snapshot_row

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs/prometheus/ibkr-bridge.rules.yml"
RULE_TESTS = ROOT / "docs/prometheus/ibkr-bridge.rules.test.yml"
TOKEN = "prometheus-scrape-token-5d0c1e"
JOB = "ibkr-bridge"  # the job name of docs/web.md's scrape configuration, and of the rules
FRESH, STALE = "DU1000001", "DU1000002"
ALLOWED_NAME, OTHER_NAME = "bridge-host", "rebound.example"  # what Prometheus sends as Host


def _alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def _promtool(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # From the docs folder: the unit-test file names the rules file relative to itself.
    return subprocess.run(
        [str(promtool), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=RULES.parent,
    )


def test_promtool_accepts_every_rule_of_the_rules_file(promtool: Path) -> None:
    """promtool accepts the shipped Prometheus rules file and reads every one of its alerts."""
    result = _promtool(promtool, "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    # As many rules as the file has alerts: promtool read them all, none was skipped.
    assert f"SUCCESS: {len(_alert_names())} rules found" in result.stdout, result.stdout


def test_each_rule_fires_and_stays_quiet_as_its_promtool_unit_tests_expect(
    promtool: Path,
) -> None:
    """Every alert of the rules file has a case where it fires and one where it must not, and
    `promtool test rules` passes them all."""
    cases = yaml.safe_load(RULE_TESTS.read_text())
    assert cases["rule_files"] == [RULES.name]
    fires: set[str] = set()
    quiet: set[str] = set()
    for group in cases["tests"]:
        for case in group["alert_rule_test"]:
            (fires if case["exp_alerts"] else quiet).add(case["alertname"])
    names = set(_alert_names())
    assert len(names) >= 5  # healthy, snapshot age, breaker, gap, scrape
    assert fires == names
    assert quiet == names
    result = _promtool(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def _by_account(prometheus: PrometheusServer, expression: str) -> dict[str, float]:
    return {
        sample["metric"]["account"]: float(sample["value"][1])
        for sample in prometheus.query(expression)
    }


def _value(prometheus: PrometheusServer, expression: str) -> float | None:
    """The one sample `expression` gives now, or None while it has none yet."""
    result = prometheus.query(expression)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def _newest(url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "SELECT DISTINCT ON (account) * FROM portfolio_greeks ORDER BY account, ts DESC"
        )
        return {row["account"]: row for row in cur.fetchall()}


def _targets(prometheus: PrometheusServer) -> dict[str, dict[str, Any]]:
    """Each scrape job's one target, as /api/v1/targets reports it (health, lastError)."""
    active = prometheus.api("targets", state="active")["activeTargets"]
    return {target["labels"]["job"]: target for target in active}


def _rules(prometheus: PrometheusServer) -> dict[str, dict[str, Any]]:
    groups = prometheus.api("rules", type="alert")["groups"]
    return {rule["name"]: rule for group in groups for rule in group["rules"]}


def _firing_accounts(prometheus: PrometheusServer) -> set[str]:
    expression = 'ALERTS{alertname="IbkrBridgeSnapshotStale", alertstate="firing"}'
    return {sample["metric"]["account"] for sample in prometheus.query(expression)}


@pytest.mark.timeout(180)
def test_a_real_prometheus_scrapes_the_stored_figures_with_the_token(
    start_prometheus: Starter,
    web_environ: dict[str, str],
    database_url: str,
    processes: Processes,
    tmp_path: Path,
) -> None:
    # Two accounts, three ticks each, every figure different per tick: only the newest row of
    # each may come out of Prometheus. The second account's newest row is 2 minutes old, past
    # the rules' 30 s, so its stale-snapshot alert must fire and the first's must not.
    """A real Prometheus scraping /metrics with the token stores each account's newest figures only,
    and its stale-snapshot rule fires for the account past 30 s and not for the fresh one."""
    asyncio.run(prepare_schema(database_url))
    now = datetime.now(UTC)
    rows = [
        snapshot_row(
            account,
            newest - timedelta(seconds=5 * tick),
            net_dollar_delta=1234.5 * k + 17.25 * tick,  # not snapshot_row's default
            net_theta=-3.5 * k - tick,
        )
        for k, (account, newest) in enumerate(
            [(FRESH, now), (STALE, now - timedelta(minutes=2))], start=1
        )
        for tick in range(3)
    ]
    insert_snapshots(database_url, rows)
    stored = _newest(database_url)
    assert set(stored) == {FRESH, STALE}

    port = free_port()
    web = processes.start(
        "web",
        {
            **web_environ,
            "BRIDGE_WEB_PORT": str(port),
            "BRIDGE_WEB_TOKEN": TOKEN,
            "BRIDGE_WEB_ALLOWED_HOSTS": ALLOWED_NAME,
        },
    )
    wait_until(
        lambda: answers(f"http://127.0.0.1:{port}/healthz") or web.poll() is not None,
        what="the web program",
    )
    assert web.poll() is None, "the web program exited at start"

    # docs/web.md's scrape configuration, at 1 s. The target is a name, `localhost`, so the
    # web program's Host check judges it (an IP literal is always let through); a second job
    # without the token shows the token is what lets the first in. Two more send other names
    # as Host: one listed in BRIDGE_WEB_ALLOWED_HOSTS, one not (a rebound name). Nothing
    # resolves them here, so Prometheus reaches the web program through its proxy setting,
    # which still sends the target's name as Host, as it would to a real host of that name.
    token_file = tmp_path / "ibkr-bridge.token"
    token_file.write_text(TOKEN + "\n")  # Prometheus trims the newline, as editors add one
    token_file.chmod(0o600)
    target = {"targets": [f"localhost:{port}"]}
    prometheus = start_prometheus(
        {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "static_configs": [target],
                    "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                },
                {"job_name": "without-token", "static_configs": [target]},
                *(
                    {
                        "job_name": job,
                        "static_configs": [{"targets": [f"{name}:{port}"]}],
                        "proxy_url": f"http://127.0.0.1:{port}",
                        "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                    }
                    for job, name in (("allowed-name", ALLOWED_NAME), ("other-name", OTHER_NAME))
                ),
            ],
        }
    )

    # Read together in one wait: each query answers from the newest scrape, and a scrape that
    # timed out on this shared machine would leave the next query without the series.
    expected = {
        "up": 1.0,
        "delta": {account: row["net_dollar_delta"] for account, row in stored.items()},
        "theta": {account: row["net_theta"] for account, row in stored.items()},
    }
    seen: dict[str, Any] = {}

    def scraped_the_stored_figures() -> bool:
        seen["up"] = _value(prometheus, f'up{{job="{JOB}"}}')
        seen["delta"] = _by_account(prometheus, f'ibkr_bridge_net_dollar_delta{{job="{JOB}"}}')
        seen["theta"] = _by_account(prometheus, f'ibkr_bridge_net_theta{{job="{JOB}"}}')
        seen["ages"] = _by_account(prometheus, f'ibkr_bridge_snapshot_age_seconds{{job="{JOB}"}}')
        return {key: seen[key] for key in expected} == expected and len(seen["ages"]) == 2

    wait_until(
        scraped_the_stored_figures,
        what=lambda: (
            f"{expected} from Prometheus; last seen {seen}; targets {_targets(prometheus)}"
        ),
        timeout_s=60,
    )
    assert seen["ages"][STALE] >= 120
    assert seen["ages"][FRESH] < seen["ages"][STALE]

    # The job without the token is refused by the web program itself, not by anything else.
    wait_until(
        lambda: _value(prometheus, 'up{job="without-token"}') is not None,
        what="a scrape of the job without the token",
    )
    assert _value(prometheus, 'up{job="without-token"}') == 0
    refused = _targets(prometheus)["without-token"]
    assert refused["health"] == "down"
    assert "401" in refused["lastError"], refused

    # The Host check, through Prometheus: a listed name is served, any other refused (421).
    wait_until(
        lambda: (
            _value(prometheus, 'up{job="other-name"}') is not None
            and _by_account(prometheus, 'ibkr_bridge_net_dollar_delta{job="allowed-name"}')
            == expected["delta"]
        ),
        what=lambda: f"the named jobs scraped: {_targets(prometheus)}",
    )
    assert _value(prometheus, 'up{job="other-name"}') == 0
    misdirected = _targets(prometheus)["other-name"]
    assert "421" in misdirected["lastError"], misdirected

    # The rules file, loaded as an operator would: every rule evaluates without error against
    # the real metrics. Nothing publishes a heartbeat here, so the bridge is unhealthy (its
    # alert pending, for 1 minute), and only the 2-minute-old account's snapshot is stale.
    wait_until(
        lambda: {rule["health"] for rule in _rules(prometheus).values()} == {"ok"},
        what=lambda: f"every rule evaluated: {_rules(prometheus)}",
    )
    assert set(_rules(prometheus)) == set(_alert_names())
    wait_until(
        lambda: _value(prometheus, f'ibkr_bridge_healthy{{job="{JOB}"}}') == 0,
        what="ibkr_bridge_healthy 0 (no heartbeats: unhealthy)",
    )
    wait_until(
        lambda: _firing_accounts(prometheus) == {STALE},
        what=lambda: f"the stale-snapshot alert of {STALE} alone: {_firing_accounts(prometheus)}",
    )
    rules = _rules(prometheus)
    assert rules["IbkrBridgeUnhealthy"]["state"] == "pending"
    assert rules["IbkrBridgeScrapeFailing"]["state"] == "inactive"  # its job is up

    assert prometheus.stop() == 0, prometheus.log()
    assert "See you next time!" in prometheus.log()  # its last line after a clean shutdown
