"""One step's changes as one message per target: named one by one, counted in a storm, and the
late episodes of one alert summed up in one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerter.episodes import Change, Episode
from alerter.state import Alert
from alerter.transitions import Transition, digest

T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


def _change(
    rule: str, account: str, change: Change, at_s: float = 0, late: str | None = None
) -> Transition:
    at = T0 + timedelta(seconds=at_s)
    value = 150.0 if change == "fired" else 50.0
    episode = Episode(past_since=at, fired_at=at, value=value, limit=100.0, number=1)
    alert = Alert(rule, account, "net_theta", account, episode)
    return Transition(alert, change, at, at, at, late)


def test_one_change_is_said_as_before() -> None:
    """A single change: its own title, its description as the body."""
    message = digest([_change("cap", "DU0001", "fired")])
    assert (message.title, message.change, message.alerts) == (
        "FIRING: cap (DU0001)", "fired", ("cap|DU0001",),
    )  # fmt: skip
    assert message.body.startswith("cap: net_theta of DU0001 is 150, limit 100")


def test_a_few_changes_are_named_one_by_one() -> None:
    """Two alerts in one step: both in the title, one line each; a warning while one fires."""
    message = digest([_change("cap", "DU0001", "fired"), _change("floor", "DU0002", "resolved")])
    assert message.title == "FIRING: cap (DU0001); RESOLVED: floor (DU0002)"
    assert message.body.splitlines() == [
        "FIRING: cap: net_theta of DU0001 is 150, limit 100, past it since 2026-03-03 14:00:00 UTC",
        "RESOLVED: floor: net_theta of DU0002 is back at 50, limit 100, past it since 2026-03-03"
        " 14:00:00 UTC",
    ]
    assert message.change == "fired"


def test_a_storm_of_sixty_accounts_is_one_message_naming_every_alert() -> None:
    """60 accounts past 5 limits in one step: one message, counted in its title, each alert on
    a line of its own."""
    changes = [
        _change(f"limit {rule}", f"DU{account:04d}", "fired")
        for rule in range(5)
        for account in range(60)
    ]
    message = digest(changes)
    assert message.title == "300 alerts: 300 FIRING, 0 RESOLVED"
    lines = message.body.splitlines()
    assert len(lines) == len(message.alerts) == 300
    assert "limit 4: net_theta of DU0059 is 150" in lines[-1]


def test_late_episodes_of_one_alert_are_summed_up_in_one_line() -> None:
    """A value hovering at a limit with for_s = 0, replayed after a restart: 40 episodes of one
    alert are one line (how many, between when, the first and the last change), not 80."""
    late = "while the alerter was not running"
    changes = [
        _change("cap", "DU0001", "fired" if index % 2 == 0 else "resolved", 5 * index, late)
        for index in range(80)
    ]
    message = digest(changes)
    assert message.title == "RESOLVED: cap (DU0001), 40 episodes"
    (line,) = message.body.splitlines()
    assert line.startswith(
        "RESOLVED: cap (DU0001), 40 episodes between 2026-03-03 14:00:00 and 14:06:35 UTC;"
        " first: cap: net_theta of DU0001 is 150"
    )
    assert line.endswith(f"is back at 50, limit 100, past it since 2026-03-03 14:06:35 UTC (at "
                         f"2026-03-03 14:06:35 UTC, {late})")  # fmt: skip
    assert (message.change, message.alerts) == ("resolved", ("cap|DU0001",))
