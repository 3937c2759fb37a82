"""The journal alone, on real files: an alert event is held in the state until the spool has
it, and the state comes back after a restart without the alerts of rules gone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from alerter.episodes import Episode
from alerter.journal import SPOOL_LOCK, Journal
from alerter.state import Alert
from alerter.transitions import Transition
from shared.spool import list_segments
from tests.fixtures.pipeline import RefusingSpool

T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


def _fired() -> Transition:
    episode = Episode(past_since=T0, fired_at=T0, number=1, value=130.0, limit=100.0)
    return Transition(Alert("delta cap", "DU0001", "net_dollar_delta", "DU0001", episode),
                      "fired", T0, T0, T0)  # fmt: skip


def _journal(tmp_path: Path) -> tuple[Journal, RefusingSpool]:
    spool = RefusingSpool(
        tmp_path / "alerter-spool", segment_max_bytes=1 << 20, lock_name=SPOOL_LOCK
    )
    return Journal(tmp_path / "run", spool, mode="SOCKET"), spool


def _spooled(tmp_path: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for segment in list_segments(tmp_path / "alerter-spool")
        for line in segment.path.read_text().splitlines()
    ]


def test_an_event_refused_by_the_spool_is_held_and_appended_later(tmp_path: Path) -> None:
    """The spool refuses: the event stays in the state (and in the saved file); once the spool
    takes it, it is appended once and no longer held."""
    (tmp_path / "run").mkdir()
    journal, spool = _journal(tmp_path)
    assert journal.open({"delta cap"}) is None  # nothing saved before
    journal.record([_fired()])
    journal.flush(T0)
    assert journal.held_events == 1
    journal.save(())
    saved_state = json.loads((tmp_path / "run/alerter.state").read_text())
    assert len(saved_state["unspooled"]) == 1
    spool.refusing = False
    journal.flush(T0)
    assert journal.held_events == 0
    [event] = _spooled(tmp_path)
    assert (event["event"], event["level"]) == ("alert_fired", "warning")
    journal.close()


def test_a_restart_recalls_the_state_without_the_alerts_of_rules_gone(tmp_path: Path) -> None:
    """Saved with two alerts, reopened with one of their rules left in the file: that one is
    recalled, the other forgotten, and the watch mark is what the file says."""
    (tmp_path / "run").mkdir()
    journal, _spool = _journal(tmp_path)
    journal.open({"delta cap", "gamma cap"})
    fired = _fired().alert
    journal.state.alerts = {
        "delta cap|DU0001": fired,
        "gamma cap|DU0001": Alert("gamma cap", "DU0001", "net_gamma", "DU0001", fired.episode),
    }
    journal.state.watched_until = T0
    journal.save(())
    assert journal.saved_watch == T0
    journal.close()

    restarted, _spool = _journal(tmp_path)
    recalled = restarted.open({"delta cap"})
    assert recalled is not None
    assert list(restarted.state.alerts) == ["delta cap|DU0001"]
    assert restarted.saved_watch == T0
    restarted.close()
