"""The alerter's step against a real PostgreSQL, a real spool and a real webhook receiver.

Snapshots reach the table through the real writer, and so do the alerter's events: the test
plays the collector (it appends snapshot lines to the spool) and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

import testkit.snapshots
from alerter import state as saved
from alerter.alerter import Alerter
from alerter.buffer_wait import LIMITS_WAIT_MAX
from alerter.delivery import Notification, target_key
from alerter.episodes import Episode
from alerter.journal import SPOOL_LOCK
from alerter.settings import AlerterSettings
from alerter.transitions import IN_THE_BUFFER, NOT_ANSWERING
from database import reads
from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared import records
from shared.buffer import Buffer
from shared.spool import SpoolAppender
from testkit.waiting import wait_until_async
from tests.fixtures.pipeline import RefusingSpool, append
from tests.fixtures.proxy import QUICK_TIMEOUTS, SILENT_BOUND_S, TcpProxy, proxy_url
from tests.fixtures.receiver import Receiver
from tests.fixtures.supervisor import free_port
from writer.settings import WriterSettings
from writer.writer import Writer

RULES = """
[[limit]]
name = "delta cap"
figure = "net_dollar_delta"
account = "DU0001"
above = 100
margin = 10

[health]
stale_snapshot_s = false
gateway_disconnected_s = false
login_required_s = false
breaker_open_s = false
buffer_above_mb = false
dead_letter_quiet_s = false
heartbeat_silent_s = false
"""
SENTINEL = "s3ntinel-hunter2"


@pytest.fixture
def alerter_environ(
    pipeline_environ: dict[str, str], receiver: Receiver, tmp_path: Path
) -> dict[str, str]:
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES)
    url = receiver.url(f"hook/{SENTINEL}").replace("json://", f"json://user:{SENTINEL}@")
    return {
        **pipeline_environ,
        "BRIDGE_ALERTS_FILE": str(rules),
        "BRIDGE_ALERT_URLS": url,
        "BRIDGE_ALERT_RETRY_DELAYS_S": "0.2",
    }


@pytest.fixture
async def writer(pipeline_environ: dict[str, str]) -> AsyncIterator[Writer]:
    writer = Writer(WriterSettings.from_environ(pipeline_environ))
    yield writer
    await writer.close()


class Feed:
    """Plays the collector: one snapshot of DU0001 per call, 5 s after the previous one, or
    one connection event."""

    def __init__(self, spool: SpoolAppender, writer: Writer) -> None:
        self.spool, self.writer = spool, writer
        self.tick = datetime.now(UTC).replace(microsecond=0)

    async def dollar_delta(self, value: float) -> None:
        self.tick += timedelta(seconds=5)
        snapshot = testkit.snapshots.snapshot(
            "DU0001", self.tick, net_dollar_delta=value, position_count=1
        )
        append(self.spool, [records.encode(snapshot)])
        await self.writer.run_until_caught_up()

    async def scenario(self, worst_pnl: float) -> None:
        """A scenario grid of DU0001 at the last snapshot's tick whose worst P&L is this."""
        grid = (worst_pnl, *[0.0] * 59)
        counts = {"contributing": 1, "missing": 0, "reasons": {}}
        scenario = records.Scenario(
            id=records.scenario_id("DU0001", self.tick), ts=self.tick, account="DU0001",
            mode="SOCKET", currency="USD", grid=grid, beta_grid=None, delta_gamma_10=None,
            completeness={"grid": counts},
        )  # fmt: skip
        append(self.spool, [records.encode(scenario)])
        await self.writer.run_until_caught_up()

    async def explain(self, actual: float, explained: float) -> None:
        """A scored P&L explain of DU0001 over the interval ending at the last snapshot."""
        explain = records.PnlExplain(
            id=records.explain_id("DU0001", self.tick), ts=self.tick, account="DU0001",
            mode="SOCKET", start_ts=self.tick - timedelta(seconds=5), currency="USD",
            actual_pnl=actual, explained_pnl=explained, terms={}, marks=(), missing={},
            underlying_symbols=(), underlying_rows=(), position_conids=(), position_rows=(),
            position_missing=(),
        )  # fmt: skip
        append(self.spool, [records.encode(explain)])
        await self.writer.run_until_caught_up()

    async def event(self, name: str) -> None:
        """One connection event, as the collector records it, a little after the last one."""
        self.tick += timedelta(seconds=1)
        event = records.new_api_log(
            ts=self.tick, mode="PORTAL", level="info", event=name, message=name
        )
        append(self.spool, [records.encode(event)])
        await self.writer.run_until_caught_up()


@pytest.fixture
def feed(spool: SpoolAppender, writer: Writer) -> Feed:
    return Feed(spool, writer)


async def _start(environ: dict[str, str]) -> Alerter:
    alerter = Alerter(AlerterSettings.from_environ(environ))
    alerter.open()
    return alerter


def _alert_rows(url: str) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT event, details FROM api_logs WHERE event LIKE 'alert_%' ORDER BY ts"
        ).fetchall()
    return [(event, details) for event, details in rows]


async def test_a_limit_fires_once_survives_a_restart_and_resolves_once_with_hysteresis(
    alerter_environ: dict[str, str], feed: Feed, receiver: Receiver, database_url: str
) -> None:
    """150 > 100 fires (one notification, one alert_fired row); a restarted alerter does not
    notify it again; 95 (inside, but not by the margin of 10) keeps it; 85 resolves it."""
    await feed.dollar_delta(150.0)
    alerter = await _start(alerter_environ)
    fired = await alerter.step()
    assert [(t.alert.rule, t.alert.subject, t.change) for t in fired] == [
        ("delta cap", "DU0001", "fired")
    ]
    await wait_until_async(lambda: len(receiver.received) == 1, what="the notification")
    assert receiver.received[0]["title"] == "FIRING: delta cap (DU0001)"
    assert "net_dollar_delta of DU0001 is 150, limit 100" in receiver.received[0]["message"]
    assert await alerter.step() == []
    (firing,) = alerter.firing()
    assert (firing["rule"], firing["account"], firing["value"], firing["limit"]) == (
        "delta cap", "DU0001", 150.0, 100.0,
    )  # fmt: skip
    await alerter.close()

    restarted = await _start(alerter_environ)
    assert await restarted.step() == []
    assert restarted.firing() == [firing]

    await feed.dollar_delta(95.0)  # 95 > 100 - 10
    assert await restarted.step() == []
    await feed.dollar_delta(85.0)
    resolved = await restarted.step()
    assert [t.change for t in resolved] == ["resolved"]
    await wait_until_async(lambda: len(receiver.received) == 2, what="the resolution")
    assert receiver.received[1]["title"] == "RESOLVED: delta cap (DU0001)"
    assert restarted.firing() == []
    await restarted.close()

    await feed.writer.run_until_caught_up()  # the alerter's events travel the spool too
    rows = _alert_rows(database_url)
    assert [event for event, _ in rows] == ["alert_fired", "alert_resolved"]
    assert {k: rows[0][1][k] for k in ("rule", "account", "value", "limit")} == {
        "rule": "delta cap", "account": "DU0001", "value": 150.0, "limit": 100.0,
    }  # fmt: skip
    assert (rows[1][1]["value"], rows[1][1]["since"]) == (85.0, rows[0][1]["since"])
    assert len(receiver.received) == 2


async def test_a_limit_on_the_scenario_worst_loss_fires_from_the_newest_grid(
    alerter_environ: dict[str, str], feed: Feed, tmp_path: Path
) -> None:
    """`scenario_worst_pnl` is the newest grid's worst P&L as of the snapshot: -500 stays
    inside a floor of -1,000; the next grid's -2,500 fires it."""
    rules = tmp_path / "scenario.toml"
    rules.write_text(
        RULES.replace('figure = "net_dollar_delta"', 'figure = "scenario_worst_pnl"')
        .replace('name = "delta cap"', 'name = "worst loss floor"')
        .replace("above = 100", "below = -1000")
    )
    environ = {**alerter_environ, "BRIDGE_ALERTS_FILE": str(rules)}
    await feed.dollar_delta(50.0)
    await feed.scenario(-500.0)
    alerter = await _start(environ)
    assert await alerter.step() == []
    await feed.dollar_delta(50.0)
    await feed.scenario(-2500.0)
    fired = await alerter.step()
    assert [(t.alert.rule, t.change) for t in fired] == [("worst loss floor", "fired")]
    (firing,) = alerter.firing()
    assert (firing["value"], firing["limit"]) == (-2500.0, -1000.0)
    await alerter.close()


async def test_a_limit_on_the_explained_share_waits_for_the_days_twelfth_interval(
    alerter_environ: dict[str, str], feed: Feed, tmp_path: Path
) -> None:
    """`explain_share` is the day so far as of each snapshot: eleven intervals explaining half
    of the actual P&L (share 0.5, under a floor of 0.9) are too few to judge, replayed or not;
    the twelfth (reads.EXPLAIN_MIN_SCORED) fires the floor, at its own snapshot."""
    assert reads.EXPLAIN_MIN_SCORED == 12
    rules = tmp_path / "explain.toml"
    rules.write_text(
        RULES.replace('figure = "net_dollar_delta"', 'figure = "explain_share"')
        .replace('name = "delta cap"', 'name = "explain floor"')
        .replace("above = 100", "below = 0.9")
        .replace("margin = 10", "margin = 0.05")
    )
    environ = {**alerter_environ, "BRIDGE_ALERTS_FILE": str(rules)}
    midnight = datetime.combine(feed.tick.date() + timedelta(days=1), time(), UTC)
    if midnight - feed.tick < timedelta(minutes=2):  # the twelve intervals in one UTC day
        feed.tick = midnight
    await feed.dollar_delta(50.0)
    await feed.explain(100.0, 50.0)
    alerter = await _start(environ)
    assert await alerter.step() == []
    for _ in range(10):  # replayed at the next step, each as of its own snapshot
        await feed.dollar_delta(50.0)
        await feed.explain(100.0, 50.0)
    assert await alerter.step() == []
    assert alerter.firing() == []
    await feed.dollar_delta(50.0)
    await feed.explain(100.0, 50.0)
    fired = await alerter.step()
    assert [(t.alert.rule, t.change) for t in fired] == [("explain floor", "fired")]
    (firing,) = alerter.firing()
    assert (firing["value"], firing["limit"]) == (0.5, 0.9)
    await alerter.close()


async def test_a_catch_up_longer_than_a_page_is_replayed_whole(
    alerter_environ: dict[str, str], feed: Feed, spool: SpoolAppender, writer: Writer
) -> None:
    """While the alerter is down, 240 snapshots (more than reads.UNSEEN_PAGE): the 221st to
    the 230th past the limit (130), then back (60). The restart reads them a page at a time and
    reports the episode at its own times, late."""
    assert reads.UNSEEN_PAGE < 221
    await feed.dollar_delta(50.0)
    alerter = _alerter_at(alerter_environ, feed)
    assert await alerter.step() == []
    await alerter.close()
    lines, ticks = [], []
    for number in range(1, 241):
        feed.tick += timedelta(seconds=5)
        ticks.append(feed.tick)
        value = 130.0 if 221 <= number <= 230 else (60.0 if number > 230 else 50.0)
        lines.append(records.encode(records.Snapshot(
            id=records.snapshot_id("DU0001", feed.tick), ts=feed.tick, account="DU0001",
            mode="SOCKET", net_delta=None, net_gamma=None, net_theta=None, net_vega=None,
            net_dollar_delta=value, position_count=1, option_count=0, options_with_greeks=0,
            stalest_greek_age_s=None,
        )))  # fmt: skip
    append(spool, lines)
    await writer.run_until_caught_up()
    restarted = _alerter_at(alerter_environ, feed)
    changes = await restarted.step()
    assert [(t.change, t.at, t.late) for t in changes] == [
        ("fired", ticks[220], True),
        ("resolved", ticks[230], True),
    ]
    await restarted.close()


async def test_an_episode_that_began_while_the_alerter_was_down_is_not_missed(
    alerter_environ: dict[str, str], feed: Feed, receiver: Receiver
) -> None:
    """Inside at the last step before the stop; past the limit at the next start: it fires."""
    await feed.dollar_delta(50.0)
    alerter = await _start(alerter_environ)
    assert await alerter.step() == []
    await alerter.close()
    await feed.dollar_delta(130.0)
    restarted = await _start(alerter_environ)
    assert [t.change for t in await restarted.step()] == ["fired"]
    await restarted.close()


def _alerter_at(environ: dict[str, str], feed: Feed) -> Alerter:
    """An alerter whose clock stands just after the feed's last snapshot."""
    alerter = Alerter(
        AlerterSettings.from_environ(environ), clock=lambda: feed.tick + timedelta(seconds=1)
    )
    alerter.open()
    return alerter


async def test_an_episode_wholly_while_the_alerter_was_down_is_reported_late(
    alerter_environ: dict[str, str], feed: Feed, receiver: Receiver, database_url: str
) -> None:
    """Inside at its last step; while it was not running, 130 and 140 (past 100), then 85
    (clear by the margin) and 60: the restarted alerter replays the snapshots stored meanwhile
    and reports both changes, late, at the times they happened; once, however often it starts
    again."""
    await feed.dollar_delta(50.0)
    alerter = _alerter_at(alerter_environ, feed)
    assert await alerter.step() == []
    await alerter.close()
    ticks = []
    for value in (130.0, 140.0, 85.0, 60.0):
        await feed.dollar_delta(value)
        ticks.append(feed.tick)

    restarted = _alerter_at(alerter_environ, feed)
    changes = await restarted.step()
    assert [(t.change, t.at, t.late) for t in changes] == [
        ("fired", ticks[0], True),
        ("resolved", ticks[2], True),
    ]
    # One notification for the step: the episode summed up, its firing and its resolution.
    await wait_until_async(lambda: len(receiver.received) == 1, what="the summary")
    assert receiver.received[0]["title"] == "RESOLVED: delta cap (DU0001), 1 episode"
    summary = receiver.received[0]["message"]
    assert "net_dollar_delta of DU0001 is 130, limit 100" in summary
    assert f"(at {ticks[0]:%Y-%m-%d %H:%M:%S} UTC, while the alerter was not running)" in summary
    assert "is back at 85" in summary
    assert f"(at {ticks[2]:%Y-%m-%d %H:%M:%S} UTC, while the alerter" in summary
    assert restarted.firing() == []
    await restarted.close()

    again = _alerter_at(alerter_environ, feed)
    assert await again.step() == []
    await again.close()
    await feed.writer.run_until_caught_up()
    rows = _alert_rows(database_url)
    assert [(event, details["late"], details["value"]) for event, details in rows] == [
        ("alert_fired", True, 130.0),
        ("alert_resolved", True, 85.0),
    ]
    assert len(receiver.received) == 1


async def test_two_snapshots_in_one_interval_are_both_seen(
    alerter_environ: dict[str, str], feed: Feed
) -> None:
    """130 then 85 stored between two steps: the 130 fires at its own time (not late: the
    alerter was watching), and the 85 resolves it; not only the newest snapshot is read."""
    await feed.dollar_delta(50.0)
    alerter = _alerter_at(alerter_environ, feed)
    assert await alerter.step() == []
    await feed.dollar_delta(130.0)
    past = feed.tick
    await feed.dollar_delta(85.0)
    changes = await alerter.step()
    assert [(t.change, t.at, t.late) for t in changes] == [
        ("fired", past, False),
        ("resolved", feed.tick + timedelta(seconds=1), False),
    ]
    await alerter.close()


async def test_snapshots_the_writer_buffered_are_waited_for_and_seen_in_order(
    alerter_environ: dict[str, str],
    pipeline_environ: dict[str, str],
    feed: Feed,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The writer's database fails for 130 and 85 (past, then clear): they go to its buffer,
    and the next snapshot, 60, is stored before them. The limits wait while the buffer holds
    them (said in the log and the heartbeat), then step through them in order once the
    replayer has stored them: fired and resolved, late, at their own times."""
    caplog.set_level(logging.INFO)
    await feed.dollar_delta(50.0)
    alerter = _alerter_at(alerter_environ, feed)
    assert await alerter.step() == []

    refused = f"postgresql://bridge@127.0.0.1:{free_port()}/bridge"
    feed.writer = Writer(WriterSettings.from_environ({**pipeline_environ, "DATABASE_URL": refused}))
    ticks = []
    for value in (130.0, 85.0):
        await feed.dollar_delta(value)
        ticks.append(feed.tick)
    await feed.writer.close()
    assert Buffer(Path(pipeline_environ["BRIDGE_BUFFER_PATH"])).stats().pending_bytes > 0
    feed.writer = Writer(WriterSettings.from_environ(pipeline_environ))
    await feed.dollar_delta(60.0)

    assert await alerter.step() == []
    run_dir = Path(alerter_environ["BRIDGE_VAR_DIR"]) / "run"
    beat = json.loads((run_dir / "alerter.json").read_text())
    assert beat["limits_waiting_since"] == (feed.tick + timedelta(seconds=1)).isoformat()
    assert "the limits wait until they are stored" in caplog.text

    replayer = Replayer(ReplayerSettings.from_environ(pipeline_environ))
    assert (await replayer.drain_once()).stored == 2
    await replayer.close()
    changes = await alerter.step()
    assert [(t.change, t.at, t.late_because) for t in changes] == [
        ("fired", ticks[0], IN_THE_BUFFER),
        ("resolved", ticks[1], IN_THE_BUFFER),
    ]
    assert f"(at {ticks[0]:%Y-%m-%d %H:%M:%S} UTC, {IN_THE_BUFFER})" in changes[0].describe()
    assert "limits watched again" in caplog.text
    assert await alerter.step() == []
    await alerter.close()
    await feed.writer.close()
    beat = json.loads((run_dir / "alerter.json").read_text())
    assert beat["limits_waiting_since"] is None


async def test_a_buffer_that_does_not_drain_holds_the_limits_five_minutes_at_most(
    alerter_environ: dict[str, str], feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    """A buffer nobody drains (the replayer down, say): the limits wait LIMITS_WAIT_MAX for it,
    then go on without its snapshots, said once in the log."""
    caplog.set_level(logging.INFO)
    await feed.dollar_delta(130.0)
    buffer = Path(alerter_environ["BRIDGE_BUFFER_PATH"])
    buffer.write_bytes(b"x" * 200)
    clock = feed.tick + timedelta(seconds=1)
    alerter = Alerter(AlerterSettings.from_environ(alerter_environ), clock=lambda: clock)
    alerter.open()
    assert await alerter.step() == []
    clock += LIMITS_WAIT_MAX - timedelta(seconds=1)
    assert await alerter.step() == []
    clock += timedelta(seconds=1)
    assert [t.change for t in await alerter.step()] == ["fired"]
    assert await alerter.step() == []
    assert caplog.text.count("the writer's buffer has not drained") == 1
    await alerter.close()


async def test_an_explain_interval_the_buffer_stores_late_counts_from_the_next_snapshot(
    alerter_environ: dict[str, str],
    pipeline_environ: dict[str, str],
    feed: Feed,
    tmp_path: Path,
) -> None:
    """Twelve intervals with a residual of 1 (the worst, under a cap of 50); the 13th, with a
    residual of 100, waits in the writer's buffer while the 14th (residual 1) is stored. The
    limits wait LIMITS_WAIT_MAX, then judge the 14th without it; the replayer then stores it,
    older than every interval read: the next snapshot's day so far counts it (as the SQL
    scoring the day afresh would), and the cap fires there."""
    rules = tmp_path / "worst.toml"
    rules.write_text(
        RULES.replace('figure = "net_dollar_delta"', 'figure = "explain_worst_unexplained"')
        .replace('name = "delta cap"', 'name = "residual cap"')
        .replace("above = 100", "above = 50")
        .replace("margin = 10", "margin = 5")
    )
    environ = {**alerter_environ, "BRIDGE_ALERTS_FILE": str(rules)}
    midnight = datetime.combine(feed.tick.date() + timedelta(days=1), time(), UTC)
    if midnight - feed.tick < timedelta(minutes=3):  # the fifteen intervals in one UTC day
        feed.tick = midnight
    for _ in range(12):
        await feed.dollar_delta(50.0)
        await feed.explain(2.0, 1.0)
    clock = feed.tick + timedelta(seconds=1)
    alerter = Alerter(AlerterSettings.from_environ(environ), clock=lambda: clock)
    alerter.open()
    assert await alerter.step() == []

    refused = f"postgresql://bridge@127.0.0.1:{free_port()}/bridge"
    feed.writer = Writer(WriterSettings.from_environ({**pipeline_environ, "DATABASE_URL": refused}))
    await feed.dollar_delta(50.0)
    await feed.explain(101.0, 1.0)
    await feed.writer.close()
    feed.writer = Writer(WriterSettings.from_environ(pipeline_environ))
    await feed.dollar_delta(50.0)
    await feed.explain(2.0, 1.0)
    clock = feed.tick + timedelta(seconds=1)
    assert await alerter.step() == []  # waiting for the buffer
    clock += LIMITS_WAIT_MAX
    assert await alerter.step() == []  # the 14th judged without the 13th
    assert alerter.firing() == []

    replayer = Replayer(ReplayerSettings.from_environ(pipeline_environ))
    assert (await replayer.drain_once()).stored == 2
    await replayer.close()
    await feed.dollar_delta(50.0)
    await feed.explain(2.0, 1.0)
    clock = feed.tick + timedelta(seconds=1)
    fired = await alerter.step()
    assert [(t.alert.rule, t.change, t.at) for t in fired] == [("residual cap", "fired", clock)]
    (firing,) = alerter.firing()
    assert (firing["value"], firing["limit"]) == (100.0, 50.0)
    await alerter.close()
    await feed.writer.close()


@pytest.mark.timeout(60)
async def test_a_database_gone_silent_stops_no_step_and_what_it_missed_is_seen_late(
    alerter_environ: dict[str, str], feed: Feed, db_proxy: TcpProxy, database_url: str
) -> None:
    """The alerter's server stops answering (a link that drops packets) while the writer's
    still stores 130, 85 and 60: the step gives up within the reply timeout (the feed is still
    watched, the heartbeat says why); once it answers again the limits step through what was
    stored meanwhile: fired and resolved, late."""
    environ = {
        **alerter_environ,
        **QUICK_TIMEOUTS,
        "DATABASE_URL": proxy_url(database_url, db_proxy),
    }
    await feed.dollar_delta(50.0)
    alerter = _alerter_at(environ, feed)
    assert await alerter.step() == []
    db_proxy.deaf()
    ticks = []
    for value in (130.0, 85.0, 60.0):
        await feed.dollar_delta(value)
        ticks.append(feed.tick)
    assert await asyncio.wait_for(alerter.step(), SILENT_BOUND_S) == []
    beat = json.loads((Path(environ["BRIDGE_VAR_DIR"]) / "run/alerter.json").read_text())
    assert "no answer from the server" in beat["last_db_error"]

    db_proxy.healthy()
    changes = await alerter.step()
    assert [(t.change, t.at, t.late_because) for t in changes] == [
        ("fired", ticks[0], NOT_ANSWERING),
        ("resolved", ticks[1], NOT_ANSWERING),
    ]
    await alerter.close()


async def test_a_first_start_reports_no_history(
    alerter_environ: dict[str, str], feed: Feed, receiver: Receiver
) -> None:
    """An alerter that never ran before has nothing to catch up on: an episode over before its
    first step is history, not news."""
    for value in (130.0, 85.0):
        await feed.dollar_delta(value)
    alerter = _alerter_at(alerter_environ, feed)
    assert await alerter.step() == []
    await alerter.close()
    assert receiver.received == []


async def test_a_receiver_that_is_down_gets_it_later_and_nothing_waits(
    alerter_environ: dict[str, str],
    feed: Feed,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    database_url: str,
) -> None:
    """Delivery fails while the receiver is down: logged and retried while the alerter goes on
    (its event is stored meanwhile); delivered once the receiver is back; the URL's secrets in
    no log line."""
    caplog.set_level(logging.INFO)
    receiver.down()
    await feed.dollar_delta(150.0)
    alerter = Alerter(
        AlerterSettings.from_environ({**alerter_environ, "BRIDGE_ALERT_INTERVAL_S": "0.2"})
    )
    stop = asyncio.Event()
    running = asyncio.create_task(alerter.run(stop))
    await wait_until_async(
        lambda: "notification not delivered: will retry" in caplog.text, what="a failed attempt"
    )
    await feed.writer.run_until_caught_up()
    assert [event for event, _ in _alert_rows(database_url)] == ["alert_fired"]
    receiver.up()
    await wait_until_async(lambda: len(receiver.received) == 1, what="the retried delivery")
    stop.set()
    await running
    assert receiver.received[0]["title"] == "FIRING: delta cap (DU0001)"
    assert receiver.paths == [f"/hook/{SENTINEL}"]
    assert SENTINEL not in caplog.text
    state = json.loads((Path(alerter_environ["BRIDGE_VAR_DIR"]) / "run/alerter.state").read_text())
    assert state["outbox"] == []


async def test_without_a_database_the_feed_is_still_watched(
    alerter_environ: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL unreachable: said once in the log (without its password) and in the
    heartbeat; the limit neither fires nor resolves; the buffer rule still fires."""
    caplog.set_level(logging.INFO)
    port = free_port()
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES.replace("buffer_above_mb = false", "buffer_above_mb = 0.0001"))
    environ = {
        **alerter_environ,
        "BRIDGE_ALERTS_FILE": str(rules),
        "DATABASE_URL": f"postgresql://bridge:{SENTINEL}@127.0.0.1:{port}/bridge",
        "BRIDGE_DB_CONNECT_TIMEOUT_S": "1",
    }
    buffer = Path(environ["BRIDGE_BUFFER_PATH"])
    buffer.parent.mkdir(parents=True, exist_ok=True)
    buffer.write_bytes(b"x" * 200)  # 0.0002 MB > 0.0001 MB
    alerter = await _start(environ)
    (fired,) = await alerter.step()
    assert (fired.alert.rule, fired.change, fired.alert.episode.value) == (
        "buffer_large", "fired", 0.0002,
    )  # fmt: skip
    assert await alerter.step() == []
    await alerter.close()
    beat = json.loads((Path(environ["BRIDGE_VAR_DIR"]) / "run/alerter.json").read_text())
    assert beat["last_db_error"]
    assert [f["rule"] for f in beat["firing"]] == ["buffer_large"]
    assert caplog.text.count("database not answering") == 1
    assert SENTINEL not in caplog.text


async def test_a_login_prompt_after_the_last_connection_fires_until_connected(
    alerter_environ: dict[str, str], feed: Feed, tmp_path: Path
) -> None:
    """session_required after connected: fires (outside any window); connected again: resolves."""
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES.replace("login_required_s = false", "login_required_s = 0"))
    far = datetime.now(ZoneInfo("America/New_York")) + timedelta(hours=12)  # no window now
    environ = {
        **alerter_environ,
        "BRIDGE_ALERTS_FILE": str(rules),
        "IB_RESET_WINDOWS": f"{far:%a} {far:%H}:00-{far:%H}:30",
    }
    await feed.event("connected")
    alerter = await _start(environ)
    assert await alerter.step() == []
    await feed.event("session_required")
    assert [(t.alert.rule, t.change) for t in await alerter.step()] == [("login_required", "fired")]
    await feed.event("connected")
    assert [(t.alert.rule, t.change) for t in await alerter.step()] == [
        ("login_required", "resolved")
    ]
    await alerter.close()


async def test_a_lost_state_file_never_gives_a_new_event_the_id_of_an_old_one(
    alerter_environ: dict[str, str], feed: Feed, database_url: str
) -> None:
    """The state files deleted after an episode fired: the restarted alerter cannot know it and
    fires again; that alert_fired is a row of its own, not skipped as the first one's (their
    ids were both built from episode 1)."""
    run_dir = Path(alerter_environ["BRIDGE_VAR_DIR"]) / "run"
    await feed.dollar_delta(150.0)
    alerter = await _start(alerter_environ)
    assert [t.change for t in await alerter.step()] == ["fired"]
    await alerter.close()
    for state_file in run_dir.glob("alerter.state*"):
        state_file.unlink()
    restarted = await _start(alerter_environ)
    assert [t.change for t in await restarted.step()] == ["fired"]
    await restarted.close()
    await feed.writer.run_until_caught_up()
    assert [event for event, _ in _alert_rows(database_url)] == ["alert_fired", "alert_fired"]


async def test_a_corrupt_state_file_keeps_what_the_previous_one_knew_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An alert firing and its notification undelivered, then the state file torn: the restarted
    alerter still knows both (so it neither loses the notification nor notifies the alert
    again), and its log says it used the previous copy."""
    caplog.set_level(logging.INFO)
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES)
    environ = {
        "BRIDGE_VAR_DIR": str(tmp_path / "var"),
        "BRIDGE_ALERTS_FILE": str(rules),
        "BRIDGE_ALERT_URLS": "json://127.0.0.1:9/hook",
        "IB_RESET_WINDOWS": "none",
    }
    first = Alerter(AlerterSettings.from_environ(environ))
    first.open()
    first.state.alerts["delta cap|DU0001"] = saved.Alert(
        "delta cap", "DU0001", "net_dollar_delta", "DU0001",
        Episode(past_since=datetime.now(UTC), fired_at=datetime.now(UTC), number=1),
    )  # fmt: skip
    key = target_key("json://127.0.0.1:9/hook")
    first.outbox.add(
        Notification("n1", ("delta cap|DU0001",), key, "fired", "F", "b", datetime.now(UTC))
    )
    await first.close()  # saved
    second = Alerter(AlerterSettings.from_environ(environ))
    second.open()
    await second.close()  # saved again: the first save is now the previous copy
    (tmp_path / "var/run/alerter.state").write_bytes(b'{"v": 1, "alerts": {"del')

    restarted = Alerter(AlerterSettings.from_environ(environ))
    restarted.open()
    assert [alert["rule"] for alert in restarted.firing()] == ["delta cap"]
    assert [n.id for n in restarted.outbox.pending] == ["n1"]
    assert "alerter state unreadable: the previous copy used" in caplog.text
    await restarted.close()


async def _one_waiting_for_the_first_url(
    environ: dict[str, str], feed: Feed, receiver: Receiver, second_receiver: Receiver
) -> str:
    """Fire with both URLs while the first one's service is down: the second gets it, the
    first's notification waits in the saved outbox. Returns the first URL."""
    first_url = environ["BRIDGE_ALERT_URLS"]
    receiver.down()
    await feed.dollar_delta(150.0)
    alerter = await _start({**environ, "BRIDGE_ALERT_URLS": f"{first_url} {second_receiver.url()}"})
    assert [t.change for t in await alerter.step()] == ["fired"]
    await alerter.close()  # lets the two attempts finish
    assert len(second_receiver.received) == 1
    assert len(alerter.outbox.pending) == 1
    return first_url


async def test_a_waiting_notification_follows_its_url_when_the_urls_are_reordered(
    alerter_environ: dict[str, str], feed: Feed, receiver: Receiver, second_receiver: Receiver
) -> None:
    """Restarted with the two URLs swapped and the first service back: the waiting notification
    reaches that service, not the one now in its position."""
    first_url = await _one_waiting_for_the_first_url(
        alerter_environ, feed, receiver, second_receiver
    )
    receiver.up()
    swapped = {
        **alerter_environ,
        "BRIDGE_ALERT_URLS": f"{second_receiver.url()} {first_url}",
        "BRIDGE_ALERT_INTERVAL_S": "0.2",  # the retry is due 0.2 s after the failed attempt
    }
    restarted = Alerter(AlerterSettings.from_environ(swapped))
    stop = asyncio.Event()
    running = asyncio.create_task(restarted.run(stop))
    await wait_until_async(lambda: len(receiver.received) == 1, what="the delivery", timeout_s=10)
    stop.set()
    await running
    assert receiver.received[0]["title"] == "FIRING: delta cap (DU0001)"
    assert len(second_receiver.received) == 1
    assert restarted.outbox.pending == ()


async def test_a_waiting_notification_for_a_removed_url_is_dropped_and_said(
    alerter_environ: dict[str, str],
    feed: Feed,
    receiver: Receiver,
    second_receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Restarted without the URL a notification waits for: it is dropped (logged, by count),
    not left pinned in the outbox by an error at each step."""
    caplog.set_level(logging.INFO)
    await _one_waiting_for_the_first_url(alerter_environ, feed, receiver, second_receiver)
    restarted = await _start({**alerter_environ, "BRIDGE_ALERT_URLS": second_receiver.url()})
    assert await restarted.step() == []
    await restarted.close()
    assert restarted.outbox.pending == ()
    assert "notifications for a URL no longer in BRIDGE_ALERT_URLS dropped" in caplog.text
    assert SENTINEL not in caplog.text
    assert len(second_receiver.received) == 1


async def _fired_into_a_refusing_spool(
    environ: dict[str, str], feed: Feed
) -> tuple[Alerter, RefusingSpool]:
    settings = AlerterSettings.from_environ(environ)
    spool = RefusingSpool(
        settings.paths.alerter_spool_dir, segment_max_bytes=1 << 20, lock_name=SPOOL_LOCK
    )
    alerter = Alerter(settings, spool=spool)
    alerter.open()
    await feed.dollar_delta(150.0)
    assert [t.change for t in await alerter.step()] == ["fired"]
    assert alerter.held_events == 1
    return alerter, spool


async def test_events_the_spool_refuses_survive_a_stop_and_are_stored_after_the_restart(
    alerter_environ: dict[str, str],
    feed: Feed,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The spool refuses the alert_fired event, then the alerter stops: the event is in the
    saved state with the firing it reports, and the restarted alerter appends it (the state
    says firing, so nothing fires again): the row is stored."""
    caplog.set_level(logging.INFO)
    alerter, _ = await _fired_into_a_refusing_spool(alerter_environ, feed)
    await alerter.close()  # still refused
    assert "events held in its state" in caplog.text
    restarted = await _start(alerter_environ)
    assert restarted.held_events == 1
    assert await restarted.step() == []
    assert restarted.held_events == 0
    await restarted.close()
    await feed.writer.run_until_caught_up()
    assert [event for event, _ in _alert_rows(database_url)] == ["alert_fired"]


async def test_events_the_spool_refused_are_tried_again_at_a_stop(
    alerter_environ: dict[str, str], feed: Feed, database_url: str
) -> None:
    """The spool refuses the event at its step and takes appends again before the stop: the
    stop appends it."""
    alerter, spool = await _fired_into_a_refusing_spool(alerter_environ, feed)
    spool.refusing = False
    await alerter.close()
    assert alerter.held_events == 0
    await feed.writer.run_until_caught_up()
    assert [event for event, _ in _alert_rows(database_url)] == ["alert_fired"]


async def test_a_wall_clock_step_neither_fires_a_limit_early_nor_holds_it(
    alerter_environ: dict[str, str], feed: Feed, tmp_path: Path
) -> None:
    """for_s = 30, past at a step: the wall clock stepped an hour ahead while a second passes
    does not fire it; 30 s on the monotonic clock do, though the wall clock went back."""
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES.replace("margin = 10\n", "margin = 10\nfor_s = 30\n"))
    environ = {**alerter_environ, "BRIDGE_ALERTS_FILE": str(rules)}
    await feed.dollar_delta(150.0)
    wall, steady = feed.tick + timedelta(seconds=1), 1000.0
    alerter = Alerter(
        AlerterSettings.from_environ(environ), clock=lambda: wall, monotonic=lambda: steady
    )
    alerter.open()
    assert await alerter.step() == []
    wall, steady = wall + timedelta(hours=1), steady + 1
    assert await alerter.step() == []
    wall, steady = wall - timedelta(hours=1), steady + 30
    assert [t.change for t in await alerter.step()] == ["fired"]
    await alerter.close()


async def test_a_limit_on_an_account_never_stored_is_named_in_a_warning_once(
    alerter_environ: dict[str, str], feed: Feed, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A second limit on DU00001 (one zero too many) while DU0001 is stored: one warning naming
    that rule, none for the rule whose account is stored."""
    caplog.set_level(logging.INFO)
    rules = tmp_path / "alerts.toml"
    rules.write_text(
        RULES.replace(
            "[health]",
            '[[limit]]\nname = "typo cap"\nfigure = "net_dollar_delta"\naccount = "DU00001"\n'
            "above = 100\n\n[health]",
        )
    )
    await feed.dollar_delta(50.0)
    alerter = await _start({**alerter_environ, "BRIDGE_ALERTS_FILE": str(rules)})
    assert await alerter.step() == []
    assert await alerter.step() == []
    await alerter.close()
    warned = [r for r in caplog.records if "no snapshot stored in the last 7 days" in r.message]
    assert [r.__dict__["fields"] for r in warned] == [{"rule": "typo cap", "account": "DU00001"}]


async def test_a_storm_of_sixty_accounts_reaches_each_url_as_one_notification(
    alerter_environ: dict[str, str],
    feed: Feed,
    receiver: Receiver,
    second_receiver: Receiver,
    database_url: str,
) -> None:
    """60 accounts past 5 "*" limits at one step: each URL gets one notification naming the 300
    alerts (not 300 requests), and the table one row per alert."""
    rules = Path(alerter_environ["BRIDGE_ALERTS_FILE"])
    limits = "".join(
        f'[[limit]]\nfigure = "net_dollar_delta"\nabove = {above}\n\n'
        for above in (100, 110, 120, 130, 140)
    )
    rules.write_text(limits + RULES[RULES.index("[health]") :])
    urls = f"{alerter_environ['BRIDGE_ALERT_URLS']} {second_receiver.url()}"
    environ = {**alerter_environ, "BRIDGE_ALERTS_FILE": str(rules), "BRIDGE_ALERT_URLS": urls}
    tick = feed.tick + timedelta(seconds=5)
    snapshots = [
        testkit.snapshots.snapshot(account, tick, net_dollar_delta=150.0, position_count=1)
        for account in (f"DU{number:04d}" for number in range(60))
    ]
    append(feed.spool, [records.encode(snapshot) for snapshot in snapshots])
    await feed.writer.run_until_caught_up()

    alerter = await _start(environ)
    assert len(await alerter.step()) == 300
    await wait_until_async(
        lambda: len(receiver.received) == len(second_receiver.received) == 1, what="the digests"
    )
    assert await alerter.step() == []
    await alerter.close()
    for service in (receiver, second_receiver):
        (notification,) = service.received
        assert notification["title"] == "300 alerts: 300 FIRING, 0 RESOLVED"
        assert len(notification["message"].splitlines()) == 300
        assert "net_dollar_delta above 140: net_dollar_delta of DU0059" in notification["message"]
    await feed.writer.run_until_caught_up()
    assert len(_alert_rows(database_url)) == 300


async def test_a_retry_is_due_on_the_monotonic_clock_not_the_wall_clock(
    alerter_environ: dict[str, str],
    feed: Feed,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A delivery fails (retry due 0.2 s later); the wall clock then steps an hour back while a
    second passes: the retry goes at the next step, not an hour later."""
    caplog.set_level(logging.INFO)
    receiver.down()
    await feed.dollar_delta(150.0)
    wall, steady = feed.tick + timedelta(seconds=1), 1000.0
    alerter = Alerter(
        AlerterSettings.from_environ(alerter_environ),
        clock=lambda: wall,
        monotonic=lambda: steady,
    )
    alerter.open()
    assert [t.change for t in await alerter.step()] == ["fired"]
    await wait_until_async(
        lambda: "notification not delivered: will retry" in caplog.text, what="a failed attempt"
    )
    receiver.up()
    wall, steady = wall - timedelta(hours=1), steady + 1
    assert await alerter.step() == []
    await wait_until_async(lambda: len(receiver.received) == 1, what="the retry", timeout_s=10)
    await alerter.close()


async def test_deliveries_under_way_together_are_saved_once_when_all_have_finished(
    alerter_environ: dict[str, str], feed: Feed, receiver: Receiver, second_receiver: Receiver
) -> None:
    """Two URLs notified at once: the state is saved once both deliveries have finished (a
    storm rewrote and fsynced it once per send), and before the next step, so a restart right
    after does not notify again what was delivered."""
    urls = f"{alerter_environ['BRIDGE_ALERT_URLS']} {second_receiver.url()}"
    state_file = Path(alerter_environ["BRIDGE_VAR_DIR"]) / "run/alerter.state"
    previous = state_file.with_name(state_file.name + saved.PREVIOUS_SUFFIX)
    await feed.dollar_delta(150.0)
    alerter = await _start({**alerter_environ, "BRIDGE_ALERT_URLS": urls})
    assert [t.change for t in await alerter.step()] == ["fired"]

    def outbox(path: Path) -> list[Any]:
        return list(json.loads(path.read_text())["outbox"])

    await wait_until_async(lambda: outbox(state_file) == [], what="the deliveries saved")
    assert (len(receiver.received), len(second_receiver.received)) == (1, 1)
    # The save before this one is the step's, with both queued: one save for the two.
    assert len(outbox(previous)) == 2
    await alerter.close()


async def test_what_waited_for_a_service_that_was_down_reaches_it_in_one_request(
    alerter_environ: dict[str, str], feed: Feed, receiver: Receiver
) -> None:
    """The service down through a firing and its resolution: once it is back, both reach it in
    one request, in order, not one request each."""
    receiver.down()
    await feed.dollar_delta(150.0)
    alerter = await _start(alerter_environ)
    assert [t.change for t in await alerter.step()] == ["fired"]
    await alerter.close()  # the attempt failed; the firing waits
    await feed.dollar_delta(85.0)
    receiver.up()
    restarted = Alerter(
        AlerterSettings.from_environ({**alerter_environ, "BRIDGE_ALERT_INTERVAL_S": "0.2"})
    )
    stop = asyncio.Event()
    running = asyncio.create_task(restarted.run(stop))
    await wait_until_async(
        lambda: bool(receiver.received) and restarted.outbox.pending == (), what="the delivery"
    )
    stop.set()
    await running
    (request,) = receiver.received
    assert request["title"] == (
        "2 notifications held back: FIRING: delta cap (DU0001); RESOLVED: delta cap (DU0001)"
    )
    assert request["message"].index("is 150") < request["message"].index("is back at 85")
