"""The alerter's parts alone, with plain values for the clock: the buffer wait, which snapshots
the limits have not seen, and how checks move the alerts' episodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerter.buffer_wait import LIMITS_WAIT_MAX, BufferWait
from alerter.catch_up import next_ranges, unseen_ranges
from alerter.checks import Check
from alerter.episodes import threshold
from alerter.state import Alert
from alerter.transitions import NOT_ANSWERING, apply

T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_the_limits_wait_for_the_buffer_until_it_drains() -> None:
    """Lines in the buffer: the limits wait, since the first step that saw them; an empty
    buffer ends the wait."""
    wait = BufferWait()
    assert wait.waits(T0, 0) is False
    assert wait.since is None
    assert wait.waits(T0, 500) is True
    assert wait.waits(T0 + 10 * SECOND, 800) is True
    assert wait.since == T0
    assert wait.waits(T0 + 20 * SECOND, 0) is False
    assert wait.since is None


def test_the_limits_stop_waiting_past_the_longest_wait_and_wait_again_after_a_drain() -> None:
    """A buffer that does not drain is waited for `LIMITS_WAIT_MAX` only; once it drains, the
    next lines are waited for afresh."""
    wait = BufferWait()
    assert wait.waits(T0, 500) is True
    assert wait.waits(T0 + LIMITS_WAIT_MAX - SECOND, 500) is True
    assert wait.waits(T0 + LIMITS_WAIT_MAX, 500) is False
    assert wait.waits(T0 + 2 * LIMITS_WAIT_MAX, 500) is False
    assert wait.waits(T0 + 3 * LIMITS_WAIT_MAX, 0) is False
    assert wait.waits(T0 + 4 * LIMITS_WAIT_MAX, 500) is True
    assert wait.since == T0 + 4 * LIMITS_WAIT_MAX


def test_unseen_ranges_run_from_each_accounts_mark_to_its_newest_snapshot() -> None:
    """An account's own mark, else the last watched step; nothing for an account already seen
    up to its newest, nor on a first start (no mark at all)."""
    latest = {
        "DU0001": {"ts": T0 + 60 * SECOND},
        "DU0002": {"ts": T0 + 30 * SECOND},
        "DU0003": {"ts": T0 + 10 * SECOND},
    }
    seen = {"DU0001": T0 + 20 * SECOND, "DU0003": T0 + 10 * SECOND}
    ranges, cut = unseen_ranges(latest, seen, T0, floor=T0 - timedelta(days=1))
    assert ranges == {
        "DU0001": (T0 + 20 * SECOND, T0 + 60 * SECOND),
        "DU0002": (T0, T0 + 30 * SECOND),
    }
    assert cut is False
    assert unseen_ranges(latest, {}, None, floor=T0) == ({}, False)


def test_unseen_ranges_never_reach_before_the_floor() -> None:
    """A mark older than the floor (an alerter down for days) is replayed from the floor, and
    says so."""
    latest = {"DU0001": {"ts": T0}}
    ranges, cut = unseen_ranges(latest, {}, T0 - timedelta(days=3), floor=T0 - timedelta(days=1))
    assert ranges == {"DU0001": (T0 - timedelta(days=1), T0)}
    assert cut is True


def _delta_cap(value: float) -> Check:
    return Check(
        "delta cap", "DU0001", "net_dollar_delta", threshold(value, below=None, above=100.0),
        for_s=0.0, account="DU0001",
    )  # fmt: skip


def test_apply_moves_the_alerts_and_reports_each_change_at_its_time() -> None:
    """Past the limit fires, back inside resolves, each a transition at the time given (late
    ones say why); a value that changes nothing else leaves the alerts unchanged."""
    alerts: dict[str, Alert] = {}
    fired, dirty = apply(alerts, [_delta_cap(130.0)], T0, late_because=NOT_ANSWERING)
    assert [(t.change, t.at, t.late_because, t.alert.episode.value) for t in fired] == [
        ("fired", T0, NOT_ANSWERING, 130.0)
    ]
    assert dirty is True
    assert alerts["delta cap|DU0001"].episode.firing
    still, dirty = apply(alerts, [_delta_cap(140.0)], T0 + SECOND)
    assert (still, dirty) == ([], False)
    resolved, dirty = apply(alerts, [_delta_cap(50.0)], T0 + 2 * SECOND)
    assert [(t.change, t.since, t.fired_at) for t in resolved] == [("resolved", T0, T0)]
    assert dirty is True
    assert not alerts["delta cap|DU0001"].episode.firing


def test_the_next_page_of_the_catch_up_starts_after_each_accounts_last_row() -> None:
    """A page cut at DU0001's 30 s: DU0001 goes on after it, DU0002 after its 20 s, DU0003 (not
    reached) from where it was."""
    ranges = {account: (T0, T0 + 90 * SECOND) for account in ("DU0001", "DU0002", "DU0003")}
    page = [("DU0001", T0 + 10 * SECOND, 1.0), ("DU0002", T0 + 20 * SECOND, 2.0),
            ("DU0001", T0 + 30 * SECOND, 3.0)]  # fmt: skip
    assert next_ranges(ranges, page) == {
        "DU0001": (T0 + 30 * SECOND, T0 + 90 * SECOND),
        "DU0002": (T0 + 20 * SECOND, T0 + 90 * SECOND),
        "DU0003": (T0, T0 + 90 * SECOND),
    }
