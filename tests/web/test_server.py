"""The web program over a real PostgreSQL and real files: the page, /healthz and /metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from database.sink import RecordSink
from shared import records
from testkit.postgres import PostgresServer
from testkit.web import serving
from tests import builders
from tests.fixtures.heartbeats import publish_body
from tests.fixtures.proxy import QUICK_TIMEOUTS, SILENT_BOUND_S, TcpProxy, proxy_url
from tests.fixtures.web import (
    healthy_heartbeats,
    insert_events,
    insert_snapshots,
    prepare_schema,
    snapshot_row,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _now() -> datetime:
    return NOW


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except json.JSONDecodeError:
            return response.status, text


async def test_overview_shows_each_account_s_newest_row_its_age_and_completeness(
    web_environ: dict[str, str], database_url: str
) -> None:
    """/api/overview gives each account's newest row only, its age in seconds, and its completeness
    (options with Greeks of options)."""
    await prepare_schema(database_url)
    insert_snapshots(
        database_url,
        [
            snapshot_row("DU1", NOW - timedelta(seconds=65), net_dollar_delta=1.0),
            snapshot_row("DU1", NOW - timedelta(seconds=15), net_dollar_delta=2.5, net_vega=None),
            snapshot_row("DU2", NOW - timedelta(seconds=5), option_count=4, options_with_greeks=3),
        ],
    )
    async with serving(web_environ, clock=_now) as (_server, base):
        code, body = await _get(f"{base}/api/overview")
    assert code == 200
    accounts = {row["account"]: row for row in body["accounts"]}
    assert sorted(accounts) == ["DU1", "DU2"]
    assert accounts["DU1"]["net_dollar_delta"] == 2.5
    assert accounts["DU1"]["net_vega"] is None  # unknown stays null, never 0
    assert accounts["DU1"]["age_s"] == 15.0
    assert (accounts["DU2"]["options_with_greeks"], accounts["DU2"]["option_count"]) == (3, 4)
    shown = [f["column"] for f in body["layout"]["figures"]]
    assert shown[:3] == ["net_dollar_delta", "net_beta_delta", "net_dollar_gamma"]
    assert body["database"]["error"] is None


async def test_a_5_day_chart_is_bucketed_in_sql_min_max_last(
    web_environ: dict[str, str], database_url: str
) -> None:
    """5 days make 600-s buckets: three rows in one bucket give its min, max and last; the
    bucket's last row gives the underlyings; an underlying absent from a bucket is null."""
    await prepare_schema(database_url)
    base_ts = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # a multiple of 600 s since 2000-01-01
    insert_snapshots(
        database_url,
        [
            snapshot_row("DU1", base_ts, net_dollar_delta=1.0),
            snapshot_row("DU1", base_ts + timedelta(seconds=5), net_dollar_delta=5.0),
            snapshot_row(
                "DU1", base_ts + timedelta(seconds=10), net_dollar_delta=3.0,
                underlyings={"SPY": {"net_delta": 4.0}, "ES": {"net_delta": -1.5}},
            ),
            snapshot_row("DU1", base_ts + timedelta(seconds=600), net_dollar_delta=None),
            snapshot_row("DU2", base_ts, net_dollar_delta=99.0),  # another account
        ],
    )  # fmt: skip
    async with serving(web_environ, clock=_now) as (_server, base):
        code, body = await _get(f"{base}/api/series?account=DU1&window=5d")
    assert code == 200
    assert body["window"]["step_s"] == 600
    assert body["t"] == [base_ts.isoformat(), (base_ts + timedelta(seconds=600)).isoformat()]
    assert body["rows"] == [3, 1]
    dollar = body["figures"]["net_dollar_delta"]
    assert (dollar["min"], dollar["max"], dollar["last"]) == ([1.0, None], [5.0, None], [3.0, None])
    assert body["underlyings"]["ES"]["net_delta"] == [-1.5, None]
    assert body["underlyings"]["SPY"]["net_delta"] == [4.0, 10.0]


async def test_events_share_the_time_axis_routine_ones_are_left_out(
    web_environ: dict[str, str], database_url: str
) -> None:
    """/api/series carries the window's events on the chart's time axis, a gap with its span,
    routine events left out."""
    await prepare_schema(database_url)
    gap = {
        "from": (NOW - timedelta(minutes=9)).isoformat(),
        "to": (NOW - timedelta(minutes=8)).isoformat(),
    }
    insert_events(
        database_url,
        [
            (NOW - timedelta(minutes=10), "warning", "disconnected", {}),
            (NOW - timedelta(minutes=7), "warning", "gap", gap),
            (NOW - timedelta(minutes=6), "info", "market_data_budget", {}),
            (NOW - timedelta(minutes=5), "warning", "alert_fired", {"rule": "theta"}),
            (NOW - timedelta(hours=2), "warning", "disconnected", {}),  # outside the hour
        ],
    )
    insert_snapshots(database_url, [snapshot_row("DU1", NOW)])
    async with serving(web_environ, clock=_now) as (_server, base):
        _code, body = await _get(f"{base}/api/series?account=DU1&window=1h")
    assert [(e["event"], e["lane"]) for e in body["events"]] == [
        ("disconnected", "connection"),
        ("gap", "gap"),
        ("alert_fired", "alert"),
    ]
    assert (body["events"][1]["from"], body["events"][1]["to"]) == (gap["from"], gap["to"])


async def test_a_figure_column_added_by_a_migration_appears_with_no_code_change(
    web_environ: dict[str, str], database_url: str
) -> None:
    """A figure column missing from the table is not shown; once a migration adds it, the page and
    /metrics show it without a restart or a code change."""
    await prepare_schema(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:  # the table before migration 002
        # (and before the views that read the column since)
        conn.execute("ALTER TABLE portfolio_greeks DROP COLUMN net_beta_delta CASCADE")
    insert_snapshots(database_url, [snapshot_row("DU1", NOW)])
    async with serving(web_environ, clock=_now) as (_server, base):
        _code, before = await _get(f"{base}/api/overview")
        _code, metrics_before = await _get(f"{base}/metrics")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE portfolio_greeks ADD COLUMN net_beta_delta double precision")
    insert_snapshots(
        database_url, [snapshot_row("DU1", NOW + timedelta(seconds=5), net_beta_delta=42.0)]
    )
    async with serving(web_environ, clock=_now) as (_server, base):
        _code, after = await _get(f"{base}/api/overview")
        _code, metrics_after = await _get(f"{base}/metrics")
    panels_before = [panel["name"] for panel in before["layout"]["panels"]]
    panels_after = [panel["name"] for panel in after["layout"]["panels"]]
    assert "Beta-weighted delta" not in panels_before
    assert panels_after[:2] == ["Dollar delta", "Beta-weighted delta"]
    assert after["accounts"][0]["net_beta_delta"] == 42.0
    assert "ibkr_bridge_net_beta_delta" not in metrics_before
    assert 'ibkr_bridge_net_beta_delta{account="DU1"} 42.0' in metrics_after


async def test_the_session_is_read_only(web_environ: dict[str, str], database_url: str) -> None:
    """The server itself refuses any write on the web program's session."""
    await prepare_schema(database_url)
    async with serving(web_environ) as (server, _base):
        assert await server.reader.is_read_only()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_keeps_answering_with_what_it_knows_while_postgres_is_down(
    web_environ: dict[str, str], database_url: str, postgres_server: PostgresServer
) -> None:
    """With PostgreSQL stopped the overview and the chart still answer 200 with what they last read,
    marked with the error, and /healthz says 503 naming the database."""
    await prepare_schema(database_url)
    insert_snapshots(database_url, [snapshot_row("DU1", NOW, net_dollar_delta=7.25)])
    async with serving(web_environ, clock=_now) as (_server, base):
        _code, known = await _get(f"{base}/api/overview")
        _code, chart = await _get(f"{base}/api/series?account=DU1&window=1h")
        postgres_server.stop()
        try:
            code, during = await _get(f"{base}/api/overview")
            chart_code, chart_during = await _get(f"{base}/api/series?account=DU1&window=1h")
            health_code, health = await _get(f"{base}/healthz")
        finally:
            postgres_server.start()
    assert code == 200
    assert during["accounts"] == known["accounts"]
    assert during["database"]["error"]
    assert chart_code == 200
    assert chart_during["figures"] == chart["figures"]
    assert chart_during["database"]["error"]
    assert health_code == 503
    assert any(f["subject"] == "database" for f in health["findings"])


@pytest.mark.timeout(60)
async def test_a_database_gone_silent_holds_no_request(
    web_environ: dict[str, str], database_url: str, db_proxy: TcpProxy
) -> None:
    """The server stops answering (a link that drops packets): each request gives up within
    the reply timeout and answers with what it knows, /healthz says 503; once the server
    answers again, so does the page."""
    await prepare_schema(database_url)
    insert_snapshots(database_url, [snapshot_row("DU1", NOW, net_dollar_delta=7.25)])
    environ = {**web_environ, **QUICK_TIMEOUTS, "DATABASE_URL": proxy_url(database_url, db_proxy)}
    async with serving(environ, clock=_now) as (_server, base):
        _code, known = await _get(f"{base}/api/overview")
        db_proxy.deaf()
        code, during = await asyncio.wait_for(_get(f"{base}/api/overview"), SILENT_BOUND_S)
        health_code, health = await asyncio.wait_for(_get(f"{base}/healthz"), SILENT_BOUND_S)
        db_proxy.healthy()
        # Answers again once the reader's breaker lets a request through (0.2 s here).
        deadline = time.monotonic() + 10
        while (after := (await _get(f"{base}/api/overview"))[1])["database"]["error"]:
            assert time.monotonic() < deadline, after["database"]
            await asyncio.sleep(0.05)
    assert code == 200
    assert during["accounts"] == known["accounts"]
    # The first read of the request meets the silence; the next ones find no connection.
    assert during["database"]["error"] in (
        "no answer from the server within 2 s",
        "connection timeout expired",
    )
    assert health_code == 503
    assert any(f["subject"] == "database" for f in health["findings"])
    assert after["database"]["error"] is None


def _bridge_status(environ: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "database.status", "--json"],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return dict(json.loads(result.stdout))


async def test_healthz_says_what_bridge_status_says_from_the_same_code(
    web_environ: dict[str, str], database_url: str
) -> None:
    """No process has ever run here: 503 with bridge-status's own findings, word for word;
    once every process beats, 200."""
    await prepare_schema(database_url)
    async with serving(web_environ) as (_server, base):
        code, body = await _get(f"{base}/healthz")
        expected = _bridge_status(web_environ)
        healthy_heartbeats(Path(web_environ["BRIDGE_VAR_DIR"]) / "run")
        healthy_code, healthy = await _get(f"{base}/healthz")
    assert code == 503
    assert body["status"] == expected["status"] == "unhealthy"
    assert body["findings"] == expected["findings"]
    assert {
        "level": "unhealthy",
        "subject": "writer",
        "message": "no heartbeat file: never started here?",
    } in body["findings"]
    assert healthy_code == 200, healthy["findings"]


async def test_metrics_equal_the_database_and_the_heartbeats(
    web_environ: dict[str, str], database_url: str
) -> None:
    """The /metrics samples equal what the database and the heartbeat files hold: the figures, the
    breaker and gateway states, the writer's totals, the events per kind, the database up."""
    await prepare_schema(database_url)
    insert_snapshots(
        database_url,
        [
            snapshot_row("DU1", NOW - timedelta(seconds=10), net_dollar_delta=1.0),
            snapshot_row(
                "DU1", NOW - timedelta(seconds=5), net_dollar_delta=-2500.75, net_vega=None
            ),
            snapshot_row("DU2", NOW - timedelta(seconds=20), net_theta=-12.5),
        ],
    )  # fmt: skip
    insert_events(database_url, [(NOW, "warning", "gap", {}), (NOW, "info", "connected", {})] * 2)
    var = Path(web_environ["BRIDGE_VAR_DIR"])
    healthy_heartbeats(var / "run", breaker="open")
    (var / "deadletter.jsonl").write_text('{"reason": "x"}\n{"reason": "y"}\n')
    (var / "buffer.jsonl").write_text('{"ts": "2026-03-02T14:59:00+00:00"}\n')
    async with serving(web_environ, clock=_now) as (_server, base):
        _code, text = await _get(f"{base}/metrics")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("ibkr_bridge_net_dollar_delta", (("account", "DU1"),))] == -2500.75
    assert samples[("ibkr_bridge_net_theta", (("account", "DU2"),))] == -12.5
    assert ("ibkr_bridge_net_vega", (("account", "DU1"),)) not in samples  # null: not 0
    assert samples[("ibkr_bridge_options_with_greeks", (("account", "DU1"),))] == 2
    assert samples[("ibkr_bridge_snapshot_age_seconds", (("account", "DU1"),))] == 5.0
    assert samples[("ibkr_bridge_snapshot_age_seconds", (("account", "DU2"),))] == 20.0
    assert samples[("ibkr_bridge_dead_letters", ())] == 2
    assert samples[("ibkr_bridge_buffer_bytes", ())] == (var / "buffer.jsonl").stat().st_size
    assert samples[("ibkr_bridge_spool_lag_records", ())] == 0
    assert samples[("ibkr_bridge_breaker_state", (("process", "writer"), ("state", "open")))] == 1
    assert samples[("ibkr_bridge_breaker_state", (("process", "writer"), ("state", "closed")))] == 0
    assert (
        samples[("ibkr_bridge_breaker_state", (("process", "replayer"), ("state", "closed")))] == 1
    )
    assert samples[("ibkr_bridge_gateway_connected", ())] == 1
    assert samples[("ibkr_bridge_in_reset_window", ())] == 0
    assert samples[("ibkr_bridge_records_stored_total", (("process", "writer"),))] == 7
    assert samples[("ibkr_bridge_records_buffered_total", (("process", "writer"),))] == 1
    assert samples[("ibkr_bridge_events_total", (("event", "gap"),))] == 2
    assert samples[("ibkr_bridge_events_total", (("event", "connected"),))] == 2
    assert samples[("ibkr_bridge_database_up", ())] == 1


async def test_breaker_transitions_recorded_in_api_logs_go_on_the_event_axis(
    web_environ: dict[str, str], database_url: str
) -> None:
    """The writer's breaker opened and closed before this web program started (they are rows,
    not something it saw): both are on the breaker lane, in order."""
    await prepare_schema(database_url)
    now = datetime.now(UTC)
    insert_snapshots(database_url, [snapshot_row("DU1", now)])
    insert_events(
        database_url,
        [
            (now - timedelta(minutes=5), "warning", "breaker_opened", {"process": "writer"}),
            (now - timedelta(minutes=4), "info", "breaker_closed", {"process": "writer"}),
        ],
    )
    async with serving(web_environ) as (_server, base):
        _code, body = await _get(f"{base}/api/series?account=DU1&window=1h")
    assert [e["event"] for e in body["events"] if e["lane"] == "breaker"] == [
        "breaker_opened",
        "breaker_closed",
    ]


async def test_firing_alerts_from_the_alerter_s_heartbeat_are_shown(
    web_environ: dict[str, str], database_url: str
) -> None:
    """The alerts firing in the alerter's heartbeat are on /api/overview and in /metrics; without an
    alerter heartbeat, none are."""
    await prepare_schema(database_url)
    run_dir = Path(web_environ["BRIDGE_VAR_DIR"]) / "run"
    async with serving(web_environ) as (_server, base):
        _code, without = await _get(f"{base}/api/overview")
        firing = {
            "rule": "theta floor",
            "account": "DU1",
            "figure": "net_theta",
            "value": -2500.0,
            "limit": -2000.0,
            "since": "2026-03-02T14:00:00+00:00",
        }
        publish_body(
            run_dir,
            "alerter",
            {"state": "running", "firing": [firing]},
            now=datetime.now(UTC),
            interval_s=1,
        )
        _code, with_alerter = await _get(f"{base}/api/overview")
        _code, metrics = await _get(f"{base}/metrics")
    assert without["alerts"] is None  # no alerter here: nothing claimed either way
    assert with_alerter["alerts"] == [firing]
    assert "ibkr_bridge_alerts_firing 1.0" in metrics


async def test_a_format_3_account_shows_as_the_same_account_in_format_2(
    web_environ: dict[str, str], database_url: str
) -> None:
    """The page's newest figures, completeness and per-underlying lines of a format-3 account
    equal those of the same snapshots stored in format 2 (the lean row says the same)."""
    await prepare_schema(database_url)
    lines = []
    for minutes in range(1, 4):
        ts = NOW - timedelta(minutes=minutes)
        for account, version in (("DU_V2", 2), ("DU_V3", 3)):
            snapshot = dataclasses.replace(
                builders.trader_snapshot(account),
                ts=ts,
                id=records.snapshot_id(account, ts),
                version=version,
                net_dollar_delta=1000.0 * minutes,
            )
            lines.append(records.encode(snapshot))
    sink = RecordSink(lambda: psycopg.AsyncConnection.connect(database_url))
    try:
        assert (await sink.store(lines)).stored == 6
    finally:
        await sink.close()
    async with serving(web_environ, clock=_now) as (_server, base):
        _code, overview = await _get(f"{base}/api/overview")
        charts = {
            account: (await _get(f"{base}/api/series?account={account}&window=1h"))[1]
            for account in ("DU_V2", "DU_V3")
        }
    newest = {row.pop("account"): row for row in overview["accounts"]}
    for row in newest.values():
        row.pop("format_version")
        row.pop("stored_at", None)
    assert newest["DU_V2"]["completeness"]["net_beta_delta"]["missing"] == 4
    assert newest["DU_V3"] == newest["DU_V2"]
    assert set(charts["DU_V2"]["underlyings"]) == {"SPY", "ZC"}
    assert charts["DU_V3"]["underlyings"] == charts["DU_V2"]["underlyings"]
    assert charts["DU_V3"]["figures"] == charts["DU_V2"]["figures"]
    assert charts["DU_V3"]["t"] == charts["DU_V2"]["t"]


async def test_the_explain_api_sums_scored_intervals_per_bucket_and_refuses_bad_queries(
    web_environ: dict[str, str], database_url: str
) -> None:
    """/api/explain: the last hour's intervals one by one; over 5 days the scored ones summed
    per hour (a fill counted, not summed); no account or an unknown window is a 400."""
    await prepare_schema(database_url)
    intervals = [(NOW - timedelta(minutes=10 - k), 10.0 * (k + 1), 9.0 * (k + 1)) for k in range(3)]
    lines = [
        records.encode(
            dataclasses.replace(
                builders.pnl_explain("DU1", actual=actual, explained=explained,
                                     marks=("positions_changed",) if k == 2 else ()),
                id=records.explain_id("DU1", ts), ts=ts, start_ts=ts - timedelta(seconds=5),
            )
        )
        for k, (ts, actual, explained) in enumerate(intervals)
    ]  # fmt: skip

    async def connect() -> psycopg.AsyncConnection[tuple[object, ...]]:
        return await psycopg.AsyncConnection.connect(database_url, autocommit=True)

    sink = RecordSink(connect)
    await sink.store(lines)
    await sink.close()
    async with serving(web_environ, clock=_now) as (_server, base):
        _code, hour = await _get(f"{base}/api/explain?account=DU1&window=1h")
        _code, days = await _get(f"{base}/api/explain?account=DU1&window=5d")
        refused = [
            (await _get(f"{base}/api/explain?window=1h"))[0],
            (await _get(f"{base}/api/explain?account=DU1&window=1y"))[0],
        ]
    assert hour["width"] is None
    assert [(r["actual_pnl"], r["scored"]) for r in hour["rows"]] == [
        (10.0, True), (20.0, True), (30.0, False),
    ]  # fmt: skip
    assert days["width"] == "1h"
    assert [(r["actual_pnl"], r["explained_pnl"]) for r in days["rows"]] == [(30.0, 27.0)]
    assert hour["score"]["scored"] == 2
    assert hour["score"]["not_scored"] == 1
    assert refused == [400, 400]
