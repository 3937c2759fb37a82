"""The alerter's saved state: what a restart reads back, from this version and the one before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from alerter import state as saved
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
