"""Health rules of `bridge-status`, from plain facts and a fixed `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.health import Facts, assess, feed_conditions, silent_after_s, stale_after_s, worst
from shared.heartbeat_files import Gateway, Heartbeat

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _beat(age_s: float, interval_s: float = 1.0, **fields: Any) -> dict[str, Any]:
    return {
        "heartbeat": (NOW - timedelta(seconds=age_s)).isoformat(),
        "interval_s": interval_s,
        "state": "running",
        **fields,
    }


def _collector(**gateway: Any) -> dict[str, Any]:
    accounts = gateway.pop("accounts", {"DU1": 2.0})
    return _beat(
        1,
        5,
        poll_interval_s=5,
        gateway={"connected": True, **gateway},
        accounts={
            name: {"last_snapshot_ts": (NOW - timedelta(seconds=age)).isoformat()}
            for name, age in accounts.items()
        },
    )


def _facts(**changes: Any) -> Facts:
    values: dict[str, Any] = {
        "heartbeats": {
            "collector": _collector(),
            "writer": _beat(0.5, breaker="closed"),
            "replayer": _beat(30, 60, breaker="closed"),
            "alerter": _beat(1, 5, firing=[]),
        },
        "spool_lag_records": 0,
        "spool_lag_s": None,
        "buffer_bytes": 0,
        "oldest_buffered_ts": None,
        "dead_letters": 0,
        "rows_last_hour": 720,
    }
    heartbeats = {**values["heartbeats"], **changes.pop("heartbeats", {})}
    # Each body as its file holds it, read as every reader reads it.
    values["heartbeats"] = {
        name: Heartbeat.from_json(body) if body is not None else None
        for name, body in heartbeats.items()
    }
    values.update(changes)
    return Facts(**values)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(_facts(), [], id="all-well"),
        pytest.param(
            _facts(heartbeats={"writer": None}),
            [("unhealthy", "writer", "no heartbeat file")],
            id="writer-never-started",
        ),
        pytest.param(
            _facts(heartbeats={"writer": _beat(9)}),
            [("unhealthy", "writer", "silent: last heartbeat 9 s ago")],
            id="writer-silent",
        ),
        pytest.param(
            _facts(heartbeats={"replayer": _beat(150, 60)}), [], id="replayer-beats-per-period"
        ),
        pytest.param(
            _facts(heartbeats={"writer": _beat(0, breaker="open", last_db_error="refused")}),
            [("unhealthy", "writer", "database breaker open: refused")],
            id="breaker-open",
        ),
        pytest.param(
            _facts(heartbeats={"collector": _collector(connected=False)}),
            [("unhealthy", "gateway", "not connected")],
            id="gateway-down",
        ),
        pytest.param(
            _facts(
                heartbeats={
                    "collector": _collector(
                        connected=False, in_reset_window=True, accounts={"DU1": 300}
                    )
                }
            ),
            [("warning", "gateway", "not connected (inside a daily reset window: expected)")],
            id="reset-window-is-quiet",
        ),
        pytest.param(
            _facts(heartbeats={"collector": _collector(accounts={"DU1": 2, "DU2": 16})}),
            [("unhealthy", "account DU2", "last snapshot 16 s ago")],
            id="one-account-stale",
        ),
        pytest.param(
            _facts(spool_lag_s=45.0, spool_lag_records=120),
            [("unhealthy", "spool", "writer is 45 s (120 records) behind")],
            id="spool-lag",
        ),
        pytest.param(
            _facts(buffer_bytes=900, oldest_buffered_ts=NOW - timedelta(seconds=40)),
            [("warning", "buffer", "900 bytes buffered, oldest record 40 s old")],
            id="backlog-waits-for-replay",
        ),
        pytest.param(
            _facts(
                heartbeats={
                    "alerter": _beat(
                        1,
                        5,
                        firing=[
                            {
                                "rule": "theta floor",
                                "account": "DU1",
                                "subject": "DU1",
                                "figure": "net_theta",
                                "value": -2450.5,
                                "limit": -2000.0,
                                "since": "2026-11-24T14:55:00+00:00",
                            }
                        ],
                    )
                }
            ),
            [
                (
                    "warning",
                    "alert theta floor (DU1)",
                    "net_theta of DU1 is -2450.5, limit -2000, since 2026-11-24T14:55:00+00:00",
                )
            ],
            id="alert-firing",
        ),
        pytest.param(
            _facts(heartbeats={"alerter": None}),
            [("unhealthy", "alerter", "no heartbeat file")],
            id="alerter-missing",
        ),
        pytest.param(
            _facts(dead_letters=2),
            [("warning", "dead letters", "2 lines need an operator")],
            id="dead-letters",
        ),
        pytest.param(
            # 3,500 >= the 3,000 warning threshold, and under the 8,192 cap.
            _facts(buffer_bytes=3500, buffer_max_bytes=8192, buffer_warn_bytes=3000),
            [("warning", "buffer", "3500 of 8192 bytes, past the warning threshold of 3000")],
            id="buffer-past-warning",
        ),
        pytest.param(
            # 3,700 of 4,096, but the writer found no room for its next record.
            _facts(
                buffer_bytes=3700,
                buffer_max_bytes=4096,
                buffer_warn_bytes=3276,
                heartbeats={"writer": _beat(0.5, breaker="half_open", buffer_full=True)},
            ),
            [
                (
                    "unhealthy",
                    "buffer",
                    "full: 3700 of 4096 bytes (BRIDGE_BUFFER_MAX_BYTES); "
                    "while PostgreSQL is down new records wait in the spool",
                )
            ],
            id="buffer-full",
        ),
        pytest.param(
            _facts(buffer_bytes=4096, buffer_max_bytes=4096, buffer_warn_bytes=3276),
            [("unhealthy", "buffer", "full: 4096 of 4096 bytes")],
            id="buffer-at-cap-writer-down",
        ),
        pytest.param(
            _facts(buffer_bytes=100, buffer_max_bytes=4096, buffer_warn_bytes=3276),
            [],
            id="buffer-under-warning",
        ),
        pytest.param(
            _facts(
                heartbeats={
                    "writer": _beat(
                        0.5,
                        breaker="closed",
                        troubles={"checkpoint": "cannot save the spool checkpoint: ENOSPC"},
                    )
                }
            ),
            [("unhealthy", "writer", "cannot save the spool checkpoint: ENOSPC")],
            id="writer-trouble",
        ),
        pytest.param(
            _facts(
                heartbeats={
                    "collector": {
                        **_collector(),
                        "spool": {"pending_in_memory": 4, "dropped": 0, "error": "No space"},
                    }
                }
            ),
            [("unhealthy", "collector", "cannot append to the spool (No space): 4 records held")],
            id="collector-holds-records",
        ),
        pytest.param(
            _facts(
                heartbeats={
                    "collector": {
                        **_collector(),
                        "spool": {"pending_in_memory": 0, "dropped": 7, "error": None},
                    }
                }
            ),
            [("warning", "collector", "7 records dropped while the spool could not be written")],
            id="collector-dropped",
        ),
    ],
)
def test_findings(facts: Facts, expected: list[tuple[str, str, str]]) -> None:
    """Each situation yields exactly the finding an operator should read."""
    findings = assess(facts, NOW)
    assert [(f.level, f.subject) for f in findings] == [(e[0], e[1]) for e in expected]
    for finding, (_, _, message) in zip(findings, expected, strict=True):
        assert finding.message.startswith(message)


@pytest.mark.parametrize(
    ("levels", "expected"),
    [([], "ok"), (["warning"], "warning"), (["warning", "unhealthy"], "unhealthy")],
)
def test_worst_level_decides_the_exit(levels: list[str], expected: str) -> None:
    """Warnings alone keep the exit code 0; any unhealthy finding makes it 1."""
    facts = _facts(
        dead_letters=1 if "warning" in levels else 0,
        heartbeats={"writer": None} if "unhealthy" in levels else {},
    )
    assert worst(assess(facts, NOW)) == expected


def test_feed_conditions_read_each_heartbeat_once_before_any_limit() -> None:
    """Ages from the stamps, the gateway and breakers as published, each account's newest
    snapshot the later of the heartbeat (2 s) and the database (DU1 stored 10 s ago; DU9 only
    stored, 100 s ago)."""
    beats = {
        "collector": Heartbeat.from_json(_collector()),
        "writer": Heartbeat.from_json(_beat(0.5, breaker="open")),
        "replayer": Heartbeat.from_json(_beat(30, 60, state="stopped", breaker="closed")),
        "alerter": None,
    }
    stored = {"DU1": NOW - timedelta(seconds=10), "DU9": NOW - timedelta(seconds=100)}
    feed = feed_conditions(beats, NOW, stored_snapshots=stored)
    assert feed.heartbeat_age_s == {"collector": 1, "writer": 0.5, "replayer": 30, "alerter": None}
    assert feed.stopped == {"replayer"}
    assert feed.breakers == {"writer": "open", "replayer": "closed"}
    assert feed.gateway == Gateway(connected=True)
    assert feed.snapshot_age_s == {"DU1": 2.0, "DU9": 100.0}
    assert feed.poll_interval_s == 5
    # quiet: past the limit, stopped, or never heard from
    assert [feed.quiet_for(p, 20) for p in ("collector", "replayer", "alerter")] == [
        False,
        True,
        True,
    ]
    assert feed.quiet_for("collector", 0.5)


@pytest.mark.parametrize(
    ("interval_s", "silent_s", "poll_s", "stale_s"),
    [(1.0, 8.0, 5.0, 15.0), (60.0, 185.0, 1.0, 3.0)],  # 3 x 1 + 5, 3 x 60 + 5; 3 x 5, 3 x 1
)
def test_bridge_status_limits(
    interval_s: float, silent_s: float, poll_s: float, stale_s: float
) -> None:
    """bridge-status's limits: three promised intervals plus 5 s; three poll intervals."""
    assert (silent_after_s(interval_s), stale_after_s(poll_s)) == (silent_s, stale_s)
