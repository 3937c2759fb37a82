"""The alerter's memory across restarts: every alert's episode, the dead letters seen, the outbox.

Kept in `run/alerter.state` as JSON, replaced atomically (temp + fsync + rename + fsync of the
directory), so a crash leaves the old or the new state, never half of one; the state it replaces
is kept as `alerter.state.prev`, read when the newest one cannot be (a disk that corrupted it,
a hand edit gone wrong), so undelivered notifications and firing alerts survive. A restarted alerter
therefore knows which alerts are firing since when and which notifications were delivered: it
does not notify an episode again, and it sends what was still waiting; and up to when it watched
the snapshots, so it can replay those stored while it was not running.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from alerter.checks import DeadLetterWatch
from alerter.delivery import Notification
from alerter.episodes import Episode
from alerter.errors import AlerterError
from shared.durable import atomic_replace

STATE_NAME: Final = "alerter.state"
PREVIOUS_SUFFIX: Final = ".prev"
# An unreadable state file is moved aside under this suffix (for a post-mortem), never reused.
UNREADABLE_SUFFIX: Final = ".unreadable"
_VERSION: Final = 2
# Version 1 named a notification's target by its position in BRIDGE_ALERT_URLS; read as
# POSITION + the number, which the alerter maps to the target at that position once, at start.
_READABLE: Final = (1, _VERSION)
POSITION: Final = "position "


@dataclass(frozen=True)
class Alert:
    """One rule for one subject (an account or a process) and its episode."""

    rule: str
    subject: str
    figure: str
    account: str | None
    episode: Episode = field(default_factory=Episode)

    def view(self) -> dict[str, Any]:
        """How a firing alert is published (heartbeat, bridge-status, the web page)."""
        return {
            "rule": self.rule,
            "account": self.account,
            "subject": self.subject,
            "figure": self.figure,
            "value": self.episode.value,
            "limit": self.episode.limit,
            "since": stamp(self.episode.past_since),
            "fired_at": stamp(self.episode.fired_at),
        }


@dataclass
class AlerterState:
    alerts: dict[str, Alert] = field(default_factory=dict)
    dead_letters: DeadLetterWatch = field(default_factory=DeadLetterWatch)
    outbox: list[Notification] = field(default_factory=list)
    # The last step whose snapshots the limits have seen: a restarted alerter replays the
    # stored snapshots after it (None: never ran, nothing to replay).
    watched_until: datetime | None = None
    # Per account, the newest snapshot the limits have seen; after it, the ones they have not
    # (an account not here yet: those after watched_until).
    seen: dict[str, datetime] = field(default_factory=dict)
    # The alert events recorded but not known to be in the spool yet (encoded lines). They are
    # saved with the state that says they happened and appended again after a restart: their
    # ids are random, so a line appended twice is stored once, and a lost state never makes a
    # new event look like an old one.
    unspooled: list[str] = field(default_factory=list)


def stamp(value: datetime | None) -> str | None:
    """A time as saved and published: ISO 8601, or None."""
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def encode(state: AlerterState) -> bytes:
    body = {
        "v": _VERSION,
        "alerts": {
            key: {**asdict(alert), "episode": _times_out(asdict(alert.episode))}
            for key, alert in state.alerts.items()
        },
        "dead_letters": _times_out(asdict(state.dead_letters)),
        "outbox": [_times_out(asdict(notification)) for notification in state.outbox],
        "watched_until": stamp(state.watched_until),
        "seen": {account: ts.isoformat() for account, ts in state.seen.items()},
        "unspooled": state.unspooled,
    }
    return json.dumps(body, sort_keys=True, indent=1).encode()


def _times_out(body: dict[str, Any]) -> dict[str, Any]:
    return {key: stamp(v) if isinstance(v, datetime) else v for key, v in body.items()}


def decode(data: bytes) -> AlerterState:
    try:
        body = json.loads(data)
        if body.get("v") not in _READABLE:
            raise AlerterError(f"unknown state version {body.get('v')!r}")
        alerts = {}
        for key, raw in body["alerts"].items():
            episode = raw.pop("episode")
            for name in ("past_since", "fired_at", "last_notified"):
                episode[name] = _time(episode.get(name))
            alerts[key] = Alert(**raw, episode=Episode(**episode))
        letters = body["dead_letters"]
        letters["grew_at"] = _time(letters.get("grew_at"))
        outbox = []
        for raw in body["outbox"]:
            raw["due_at"] = _time(raw["due_at"])
            raw["queued_at"] = _time(raw.get("queued_at"))
            if isinstance(raw["target"], int):
                raw["target"] = f"{POSITION}{raw['target']}"
            # Version 1 named the one alert a notification reported.
            raw["alerts"] = tuple(raw["alerts"]) if "alerts" in raw else (raw.pop("key"),)
            outbox.append(Notification(**raw))
        # Absent from older state files.
        watched_until = _time(body.get("watched_until"))
        seen = {account: datetime.fromisoformat(ts) for account, ts in body.get("seen", {}).items()}
        unspooled = [str(line) for line in body.get("unspooled", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AlerterError(f"unreadable alerter state: {exc}") from None
    return AlerterState(alerts, DeadLetterWatch(**letters), outbox, watched_until, seen, unspooled)


def load(path: Path) -> AlerterState | None:
    """The saved state, or None when there is none yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return decode(data)


def _suffixed(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


@dataclass(frozen=True)
class Recalled:
    """What a start reads back: the state (None: start afresh), and when the newest file could
    not be used, why (`problem`) and whether the previous copy stood in for it."""

    state: AlerterState | None
    problem: str | None = None
    from_previous: bool = False


def recall(path: Path) -> Recalled:
    """The newest saved state; if it is unreadable (then moved aside) or gone, the previous copy."""
    problem = None
    try:
        current = load(path)
    except (AlerterError, OSError) as exc:
        problem = f"{path.name} unreadable ({exc}), kept as {path.name}{UNREADABLE_SUFFIX}"
        # Moved aside, so that the next save does not keep it as the previous copy.
        with contextlib.suppress(OSError):
            os.replace(path, _suffixed(path, UNREADABLE_SUFFIX))
    else:
        if current is not None:
            return Recalled(current)
    try:
        previous = load(_suffixed(path, PREVIOUS_SUFFIX))
    except (AlerterError, OSError) as exc:
        missing = problem or f"{path.name} is missing"
        return Recalled(None, f"{missing}; its previous copy is unreadable too ({exc})")
    if previous is None:
        return Recalled(None, problem)
    return Recalled(previous, problem or f"{path.name} is missing", from_previous=True)


def save(path: Path, state: AlerterState) -> None:
    """Replace the state, keeping the one it replaces as the previous copy (a hard link: the
    newest file is never missing, whatever the moment of a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = _suffixed(path, PREVIOUS_SUFFIX)
    if path.exists():
        previous.unlink(missing_ok=True)
        os.link(path, previous)
    atomic_replace(path, encode(state))
