"""The alerter's saved state: what a restart reads back, from this version and the one before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerter import state as saved
from alerter.delivery import Notification
from alerter.episodes import Episode

WATCHED = datetime(2026, 11, 26, 9, 30, 5, tzinfo=UTC)


def _state() -> saved.AlerterState:
    alert = saved.Alert(
        "delta cap", "DU0001", "net_dollar_delta", "DU0001",
        Episode(past_since=WATCHED, fired_at=WATCHED, value=150.0, limit=100.0, number=2),
    )  # fmt: skip
    return saved.AlerterState(
        alerts={"delta cap|DU0001": alert},
        watched_until=WATCHED,
        seen={"DU0001": WATCHED - timedelta(seconds=5)},
    )


def test_a_saved_state_reads_back_whole() -> None:
    """The alerter's state, encoded and decoded, is the state it was."""
    assert saved.decode(saved.encode(_state())) == _state()


def test_a_state_saved_before_watched_until_existed_reads_as_never_watched() -> None:
    """A state file from the previous release has no `watched_until`: the restart replays
    nothing rather than guessing a start."""
    body = json.loads(saved.encode(_state()))
    del body["watched_until"], body["seen"]
    restored = saved.decode(json.dumps(body).encode())
    assert restored.watched_until is None
    assert restored.alerts == _state().alerts


def test_a_state_saved_before_the_marks_per_account_replays_from_watched_until() -> None:
    """A state file without `seen`: every account is replayed from `watched_until`."""
    body = json.loads(saved.encode(_state()))
    del body["seen"]
    restored = saved.decode(json.dumps(body).encode())
    assert (restored.seen, restored.watched_until) == ({}, WATCHED)


def test_a_corrupt_state_file_gives_way_to_the_previous_copy(tmp_path: Path) -> None:
    """The newest file unreadable: the state saved before it is read back (its outbox and
    firing alerts with it), the bad file is kept aside, and the next save does not make it the
    previous copy."""
    path = tmp_path / saved.STATE_NAME
    first = _state()
    first.outbox = [
        Notification("n1", ("delta cap|DU0001",), "t1", "fired", "FIRING", "b", WATCHED)
    ]
    saved.save(path, first)
    saved.save(path, saved.AlerterState(watched_until=WATCHED + timedelta(minutes=1)))
    path.write_bytes(b'{"v": 1, "alerts": {"delta cap|DU0')  # torn by a disk, say

    recalled = saved.recall(path)
    assert recalled.from_previous
    assert recalled.state == first
    assert "alerter.state unreadable" in str(recalled.problem)
    assert (tmp_path / "alerter.state.unreadable").read_bytes().startswith(b'{"v": 1')

    saved.save(path, saved.AlerterState())
    assert saved.recall(path) == saved.Recalled(saved.AlerterState())
    assert saved.load(tmp_path / "alerter.state.prev") == first


def test_a_first_start_recalls_nothing_and_says_nothing(tmp_path: Path) -> None:
    """No state file and no previous copy: a fresh start, and no problem to report."""
    assert saved.recall(tmp_path / saved.STATE_NAME) == saved.Recalled(None)


def test_a_version_1_outbox_names_its_targets_by_position() -> None:
    """The previous release kept a target's position: read as such, for the alerter to map to
    the URL at that position once at start."""
    body = json.loads(saved.encode(_state()))
    body["v"] = 1
    body["outbox"] = [
        {"id": "n1", "key": "k", "target": 1, "change": "fired", "title": "t", "body": "b",
         "due_at": WATCHED.isoformat(), "attempts": 0}
    ]  # fmt: skip
    (notification,) = saved.decode(json.dumps(body).encode()).outbox
    assert (notification.target, notification.alerts) == (f"{saved.POSITION}1", ("k",))
