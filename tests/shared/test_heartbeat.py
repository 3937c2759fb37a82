"""The typed heartbeat: written and read back through `shared.heartbeat_files`, the file's body
the same JSON every reader (bridge-status, /healthz, the alerter) has always read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from shared import heartbeat_files

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_a_collector_heartbeat_round_trips_through_its_file(tmp_path: Path) -> None:
    """Every typed field comes back as written; the file holds the published key names."""
    beat = heartbeat_files.Heartbeat(
        process="collector",
        at=NOW,
        interval_s=5.0,
        state="running",
        pid=42,
        gateway=heartbeat_files.Gateway(
            connected=False, in_reset_window=True, last_error={"code": 1100, "message": "lost"}
        ),
        accounts={"DU1": NOW, "DU2": None},
        details={"mode": "SOCKET", "spool": {"dropped": 3}},
    )
    heartbeat_files.publish(tmp_path, beat)
    assert heartbeat_files.read(tmp_path, "collector") == beat
    body = json.loads((tmp_path / "collector.json").read_text())
    assert body["heartbeat"] == "2026-11-24T15:00:00+00:00"
    assert body["gateway"] == {
        "connected": False,
        "in_reset_window": True,
        "last_error": {"code": 1100, "message": "lost"},
    }
    assert body["accounts"] == {
        "DU1": {"last_snapshot_ts": "2026-11-24T15:00:00+00:00"},
        "DU2": {"last_snapshot_ts": None},
    }
    assert (body["mode"], body["spool"]) == ("SOCKET", {"dropped": 3})


def test_a_writer_heartbeat_carries_its_breaker_and_troubles(tmp_path: Path) -> None:
    """The breaker, its last error and the troubles are typed; the rest stays as published."""
    beat = heartbeat_files.Heartbeat(
        process="writer",
        at=NOW,
        interval_s=1.0,
        state="running",
        breaker="open",
        last_db_error="connection refused",
        troubles={"spool": "cannot read the spool"},
        details={"buffer_full": True},
    )
    heartbeat_files.publish(tmp_path, beat)
    read = heartbeat_files.read(tmp_path, "writer")
    assert read is not None
    assert (read.breaker, read.last_db_error, read.troubles) == (
        "open",
        "connection refused",
        {"spool": "cannot read the spool"},
    )
    assert read.details == {"buffer_full": True}
    assert read.gateway is None


def test_a_body_of_the_wrong_shape_reads_as_absent_fields() -> None:
    """An unreadable stamp, a gateway that is not an object: absent, never an exception."""
    beat = heartbeat_files.Heartbeat.from_json(
        {"process": "collector", "heartbeat": "yesterday", "gateway": "up", "interval_s": "1"}
    )
    assert (beat.at, beat.gateway, beat.interval_s, beat.state) == (None, None, 1.0, "?")


def test_no_file_reads_as_none(tmp_path: Path) -> None:
    """A process that never started here has no heartbeat."""
    assert heartbeat_files.read(tmp_path, "replayer") is None


def test_the_alerters_firing_alerts_are_typed_and_a_stray_item_is_left_out(tmp_path: Path) -> None:
    """The alerter's alerts firing come back as written; an item that is not an alert object is
    left out when read, and a process that publishes none has None (not an empty list)."""
    alert = {"rule": "theta floor", "account": "DU1", "value": -2500.0}
    heartbeat_files.publish(
        tmp_path,
        heartbeat_files.Heartbeat(
            "alerter", at=NOW, interval_s=5.0, state="running", firing=(alert,)
        ),
    )
    read = heartbeat_files.read(tmp_path, "alerter")
    assert read is not None
    assert read.firing == (alert,)
    stray = heartbeat_files.Heartbeat.from_json({"process": "alerter", "firing": [alert, "x", 3]})
    assert stray.firing == (alert,)
    assert heartbeat_files.Heartbeat.from_json({"process": "writer"}).firing is None
