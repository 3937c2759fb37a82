"""The dashboard and the probes of a running bridge, under the real supervisord, in a real browser.

The page is loaded once in headless Chromium from the `web` program of the local profile; it must
show each account's newest row exactly as PostgreSQL holds it, draw its chart, show a gap staged
through the simulator on the event axis, and do all of it without a reload. `/metrics` is parsed
with prometheus_client's own parser and checked against the database and the heartbeat files;
`/healthz` must turn 503 within 30 s of the writer being stopped, and 200 again after its start.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page
from prometheus_client.parser import text_string_to_metric_families

from shared.spool import backlog, load_checkpoint
from testkit.waiting import wait_until
from tests.e2e.bridge_checks import ACCOUNTS, control, query
from tests.fixtures.supervisor import Supervisor

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EVERYTHING = ("postgres", "simulator", "collector", "writer", "replayer", "web")
# Whatever the table has of these is on the page (a figure it lacks is not shown).
FIGURES = ("net_dollar_delta", "net_theta", "net_vega")
# `make screenshot` sets it to docs/dashboard.png: the README's picture comes from this page.
SCREENSHOT_TO = "DASHBOARD_SCREENSHOT"


def _start(supervisor: Supervisor) -> str:
    supervisor.start()
    supervisor.wait_running(*EVERYTHING)
    url = supervisor.wait_database_url()
    wait_until(lambda: _ticks(url) >= 2, what="2 complete ticks", timeout_s=60)
    return url


def _ticks(url: str) -> int:
    rows = query(url, "SELECT ts FROM portfolio_greeks GROUP BY ts HAVING count(*) = %s", 2)
    return len(rows)


def _priced_ticks(url: str) -> int:
    sql = "SELECT ts FROM portfolio_greeks WHERE net_dollar_delta IS NOT NULL GROUP BY ts"
    return len(query(url, sql + " HAVING count(*) = %s", 2))


def _latest(url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "SELECT DISTINCT ON (account) * FROM portfolio_greeks ORDER BY account, ts DESC"
        )
        return {row["account"]: row for row in cur.fetchall()}


def _http(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310  # loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _updates(page: Page) -> int:
    return int(page.evaluate("() => Number(document.body.dataset.updates || 0)"))


def _wait_updates(page: Page, count: int) -> None:
    page.wait_for_function(
        f"() => Number(document.body.dataset.updates || 0) >= {count}", timeout=60_000
    )


def _page_figures(page: Page, account: str) -> dict[str, str]:
    cells = page.query_selector_all(f'td[data-account="{account}"][data-figure]')
    return {str(c.get_attribute("data-figure")): str(c.get_attribute("data-value")) for c in cells}


@pytest.mark.timeout(240)
def test_the_dashboard_shows_the_stored_figures_the_chart_and_a_staged_gap_live(
    supervisor: Supervisor, browser: Browser, tmp_path: Path
) -> None:
    """In a real browser under supervisord the dashboard shows the stored figures and the chart, and
    updates in place (no reload) with a staged gap on the event axis."""
    # A scenario grid every 10 s rather than every minute, so the picture has risk profiles.
    supervisor.environ["BRIDGE_SCENARIO_INTERVAL_S"] = "10"
    url = _start(supervisor)
    # Figures with prices in them before the drop, so the chart has a line on both sides.
    wait_until(lambda: _priced_ticks(url) >= 3, what="3 ticks with dollar delta", timeout_s=60)
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(supervisor.web_url + "/")
    _wait_updates(page, 1)
    page.evaluate("() => { window.loadedOnce = 'still the same page'; }")
    first_ts = page.get_attribute(f'tr[data-account="{ACCOUNTS[0]}"]', "data-ts")

    # A dropped connection while the gateway refuses for 8 s: the next attempts fail, ticks
    # are missed, and the collector reports them as a gap when snapshots resume.
    dropped_at = datetime.now(UTC)
    control(supervisor.control_url, "POST", "/faults", {"reset_s": 8, "drop_connections": True})
    wait_until(
        lambda: bool(
            query(url, "SELECT 1 FROM api_logs WHERE event = 'gap' AND ts > %s", dropped_at)
        ),
        what="the gap event in api_logs",
        timeout_s=90,
    )
    page.wait_for_selector('#events li[data-event="gap"]', timeout=30_000)
    page.wait_for_selector('#events li[data-event="disconnected"]', timeout=30_000)
    resumed = _ticks(url)
    wait_until(lambda: _ticks(url) >= resumed + 2, what="2 ticks after the gap", timeout_s=30)

    # The picture of a live bridge, gap and risk profiles included (the README's, under
    # `make screenshot`).
    wait_until(
        lambda: bool(query(url, "SELECT 1 FROM scenario_pnl WHERE ts > %s", dropped_at)),
        what="a scenario grid after the gap",
        timeout_s=60,
    )
    _wait_updates(page, _updates(page) + 1)
    picture = tmp_path / "dashboard.png"
    page.screenshot(path=str(picture), full_page=True)
    assert picture.stat().st_size > 10_000
    if os.environ.get(SCREENSHOT_TO):
        shutil.copy(picture, os.environ[SCREENSHOT_TO])

    # Freeze the data: no new rows once the collector is stopped and the writer caught up.
    assert "collector: stopped" in supervisor.ctl("stop", "collector").stdout
    spool = supervisor.root / "var/spool"
    wait_until(
        lambda: backlog(spool, load_checkpoint(spool)).records == 0, what="the writer caught up"
    )
    stored = _latest(url)
    seen = _updates(page)
    _wait_updates(page, seen + 2)  # two refreshes after the last row was stored
    for account in ACCOUNTS:
        shown = _page_figures(page, account)
        row = stored[account]
        assert set(FIGURES) <= set(shown)
        for figure in shown:
            expected = "null" if row[figure] is None else row[figure]
            on_page = shown[figure] if shown[figure] == "null" else float(shown[figure])
            assert on_page == expected, (account, figure, shown[figure], row[figure])
        shown_ts = page.get_attribute(f'tr[data-account="{account}"]', "data-ts")
        assert datetime.fromisoformat(str(shown_ts)) == row["ts"]

    # Updated in place: the same document, newer rows.
    assert page.evaluate("() => window.loadedOnce") == "still the same page"
    assert datetime.fromisoformat(str(first_ts)) < stored[ACCOUNTS[0]]["ts"]

    # The chart drew its lines, from the points the server sent.
    drawn = page.evaluate(
        """() => {
            const gd = document.getElementById('chart');
            const line = gd.data.find((t) => t.meta === 'net_dollar_delta');
            const paths = [...gd.querySelectorAll('.scatterlayer path.js-line')]
                .filter((p) => (p.getAttribute('d') || '').includes('L'));
            const gaps = (gd.layout.shapes || []).filter((s) => s.type === 'rect').length;
            return {points: line.y.filter((v) => v !== null).length, paths: paths.length, gaps};
        }"""
    )
    assert drawn["points"] >= 4, drawn
    assert drawn["paths"] >= 4, drawn  # dollar delta, gamma, theta, vega at least
    assert drawn["gaps"] >= 1, drawn  # the gap's band on the time axis

    # /metrics, parsed by Prometheus's own parser, against the database and the heartbeats.
    code, body = _http(supervisor.web_url + "/metrics")
    assert code == 200
    writer = json.loads((supervisor.root / "var/run/writer.json").read_text())
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    for account in ACCOUNTS:
        for figure in _page_figures(page, account):
            key = (f"ibkr_bridge_{figure}", (("account", account),))
            if stored[account][figure] is None:
                assert key not in samples
            else:
                assert samples[key] == stored[account][figure]
        assert (
            samples[("ibkr_bridge_option_count", (("account", account),))]
            == stored[account]["option_count"]
        )
    assert (
        samples[("ibkr_bridge_records_stored_total", (("process", "writer"),))]
        == writer["totals"]["stored"]
    )
    assert samples[("ibkr_bridge_breaker_state", (("process", "writer"), ("state", "closed")))] == 1
    gaps = query(url, "SELECT count(*) FROM api_logs WHERE event = 'gap'")[0][0]
    assert samples[("ibkr_bridge_events_total", (("event", "gap"),))] == gaps
    collector = json.loads((supervisor.root / "var/run/collector.json").read_text())
    assert collector["state"] == "stopped"
    assert samples[("ibkr_bridge_gateway_connected", ())] == 0  # stopped: not connected
    page.close()


@pytest.mark.timeout(240)
def test_healthz_turns_503_within_30_s_of_the_writer_stopping_and_200_after_its_start(
    supervisor: Supervisor,
) -> None:
    """Stopping the writer under supervisord turns /healthz 503 (`writer: stopped`) within 30 s;
    starting it again turns it 200."""
    _start(supervisor)
    healthz = supervisor.web_url + "/healthz"
    wait_until(lambda: _http(healthz)[0] == 200, what="/healthz 200", timeout_s=60)
    assert "writer: stopped" in supervisor.ctl("stop", "writer").stdout
    wait_until(lambda: _http(healthz)[0] == 503, what="/healthz 503", timeout_s=30)
    findings = json.loads(_http(healthz)[1])["findings"]
    assert {"level": "unhealthy", "subject": "writer", "message": "stopped"} in findings
    assert "writer: started" in supervisor.ctl("start", "writer").stdout
    wait_until(lambda: _http(healthz)[0] == 200, what="/healthz 200 again", timeout_s=60)
