"""What one step changed, and what it says: the transitions of the alerts' episodes, and the one
message (`digest`) a step's transitions make for each target.

Pure: `apply` moves each check's episode in the alerts it is given and returns the changes; no
clock, no file, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from alerter import state as saved
from alerter.checks import Check
from alerter.episodes import Change, step

# Why the limits see snapshots late, as a late notification says it.
NOT_RUNNING: Final = "while the alerter was not running"
NOT_ANSWERING: Final = "while the database was not answering"
IN_THE_BUFFER: Final = "while the snapshots waited in the writer's buffer"


@dataclass(frozen=True)
class Transition:
    """A change made by one step: the alert after it, which change, when its episode began
    (past the limit since) and fired, and when it happened; `late_because` says why it is
    reported after the fact (found by stepping through snapshots the limits could not see then:
    the alerter was not running, the database not answering, the snapshots in the buffer)."""

    alert: saved.Alert
    change: Change
    since: datetime | None
    fired_at: datetime | None
    at: datetime
    late_because: str | None = None

    @property
    def late(self) -> bool:
        return self.late_because is not None

    def details(self) -> dict[str, Any]:
        """The api_logs row's details."""
        alert = self.alert
        return {
            "rule": alert.rule,
            "account": alert.account,
            "subject": alert.subject,
            "figure": alert.figure,
            "value": alert.episode.value,
            "limit": alert.episode.limit,
            "since": saved.stamp(self.since),
            "fired_at": saved.stamp(self.fired_at),
            "episode": alert.episode.number,
            "late": self.late,
        }

    def describe(self) -> str:
        """One line for the notification, the log and the api_logs row."""
        alert, episode = self.alert, self.alert.episode
        what = alert.figure if alert.account is None else f"{alert.figure} of {alert.account}"
        since = f"{self.since:%Y-%m-%d %H:%M:%S} UTC" if self.since else "an unknown time"
        value, limit = _number(episode.value), _number(episode.limit)
        late = (
            f" (at {self.at:%Y-%m-%d %H:%M:%S} UTC, {self.late_because})"
            if self.late_because
            else ""
        )
        if self.change == "fired":
            return f"{alert.rule}: {what} is {value}, limit {limit}, past it since {since}{late}"
        return (
            f"{alert.rule}: {what} is back at {value}, limit {limit}, past it since {since}{late}"
        )


@dataclass(frozen=True)
class Message:
    """What one step's changes say to a target: one notification, however many alerts."""

    title: str
    body: str
    change: Change  # "fired" when any alert it reports is firing at its end
    alerts: tuple[str, ...]


# Beyond this many alerts a digest's title counts them instead of naming each.
_TITLE_NAMES: Final = 3


def digest(transitions: list[Transition]) -> Message:
    """One message for one step's changes (in order). Each alert gets one line; an alert that
    changed several times in the step (late episodes replayed after a restart or an outage)
    gets one summary line: how many episodes, between when, the first and the last change."""
    groups: dict[str, list[Transition]] = {}
    for transition in transitions:
        alert = transition.alert
        groups.setdefault(f"{alert.rule}|{alert.subject}", []).append(transition)
    names, lines = [], []
    for changes in groups.values():
        first, last = changes[0], changes[-1]
        state = "FIRING" if last.change == "fired" else "RESOLVED"
        name = f"{state}: {last.alert.rule} ({last.alert.subject})"
        if len(changes) == 1:
            lines.append(f"{state}: {last.describe()}")
        else:
            episodes = sum(t.change == "fired" for t in changes) or 1
            name += f", {episodes} episode{'s' if episodes > 1 else ''}"
            lines.append(
                f"{name} between {first.at:%Y-%m-%d %H:%M:%S} and {last.at:%H:%M:%S} UTC;"
                f" first: {first.describe()}; last: {last.describe()}"
            )
        names.append(name)
    fired = sum(name.startswith("FIRING") for name in names)
    change: Change = "fired" if fired else "resolved"
    if len(transitions) == 1:
        return Message(names[0], transitions[0].describe(), change, tuple(groups))
    title = (
        "; ".join(names)
        if len(names) <= _TITLE_NAMES
        else f"{len(names)} alerts: {fired} FIRING, {len(names) - fired} RESOLVED"
    )
    return Message(title, "\n".join(lines), change, tuple(groups))


def apply(
    alerts: dict[str, saved.Alert],
    checks: list[Check],
    now: datetime,
    *,
    tick: float | None = None,
    late_because: str | None = None,
) -> tuple[list[Transition], bool]:
    """Move each check's episode in `alerts` to `now` (`tick` on the steady clock; None: a
    snapshot's own time): the changes, and whether any alert changed (a value alone does not)."""
    transitions: list[Transition] = []
    dirty = False
    for check in checks:
        alert = alerts.get(check.key) or saved.Alert(
            check.rule, check.subject, check.figure, check.account
        )
        episode, change = step(alert.episode, check.reading, now=now, for_s=check.for_s, tick=tick)
        dirty = dirty or replace(episode, value=None) != replace(alert.episode, value=None)
        alerts[check.key] = replace(alert, episode=episode)
        if change is not None:
            previous = alert.episode if change == "resolved" else episode
            transitions.append(Transition(
                replace(alert, episode=episode), change, previous.past_since,
                previous.fired_at, now, late_because,
            ))  # fmt: skip
    return transitions, dirty


def _number(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.6g}"
