"""Notifications through Apprise: one target per URL, each notification retried on its own.

The URLs (`BRIDGE_ALERT_URLS`) are secrets: a target is named by its position and scheme only
("target 2 (json)"), its URL is kept in a `Secret`, and Apprise's own log lines, which may quote
a URL, are not passed on. A queued notification names its target by `key`, a slow salted hash of
the URL: stable when the list is reordered or shortened between restarts, and no cheap way for
a reader of the state file to check a guessed password. A failed delivery is retried after the
delays of `BRIDGE_ALERT_RETRY_DELAYS_S` (the last repeating) until it succeeds. A target gets
its notifications one at a time, in order (a resolution never arrives before its firing, and a
storm reaches a service as a queue, not as hundreds of requests at once); nothing waits for
another target's. What waited for a target (it was down) goes as one request when it is due,
not one request each.

The outbox is bookkeeping only (pure: `now` is an argument); the alerter keeps it in its state
file, so a notification not yet delivered is still sent after a restart, and one delivered is
not sent again.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

import apprise

from alerter.episodes import Change
from alerter.errors import TargetError
from shared.settings import Secret

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,30})://")
_NOTIFY_TYPES: Final = {"fired": apprise.NotifyType.WARNING, "resolved": apprise.NotifyType.SUCCESS}
# The target key's hash: PBKDF2 makes each guess of a URL's secret cost this many rounds (a few
# tens of ms, once per URL at start); 8 bytes tell a handful of URLs apart.
_KEY_SALT: Final = b"ibkr-bridge alert target"
_KEY_ROUNDS: Final = 100_000
_KEY_BYTES: Final = 8


def _silence_apprise() -> None:
    # Apprise logs through its own logger, sometimes with the URL it failed on; our lines say
    # what failed without it.
    apprise_log = logging.getLogger("apprise")
    apprise_log.propagate = False
    if not apprise_log.handlers:
        apprise_log.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Target:
    """Where notifications go: one Apprise URL, never shown."""

    label: str
    url: Secret
    key: str  # what the outbox keeps: target_key(url), never the URL

    async def send(self, title: str, body: str, change: Change) -> bool:
        """One delivery attempt; True when the service accepted it."""
        _silence_apprise()
        notifier = apprise.Apprise()
        notifier.add(self.url.reveal())
        result = await notifier.async_notify(
            body=body, title=title, notify_type=_NOTIFY_TYPES[change]
        )
        return bool(result)


def target_key(url: str) -> str:
    """A stable name for a URL that does not reveal it (see _KEY_ROUNDS)."""
    digest = hashlib.pbkdf2_hmac("sha256", url.encode(), _KEY_SALT, _KEY_ROUNDS, _KEY_BYTES)
    return digest.hex()


def parse_targets(text: str | None) -> tuple[Target, ...]:
    """The targets of `BRIDGE_ALERT_URLS` (URLs separated by spaces); TargetError names a bad
    one by its position and scheme, never by its URL."""
    _silence_apprise()
    targets = []
    for number, url in enumerate((text or "").split(), start=1):
        match = _SCHEME.match(url)
        label = f"target {number} ({match.group(1).lower() if match else 'no scheme'})"
        if match is None or apprise.Apprise.instantiate(url) is None:
            raise TargetError(f"{label} is not a URL Apprise can use")
        targets.append(Target(label, Secret(url), target_key(url)))
    return tuple(targets)


@dataclass(frozen=True)
class Notification:
    """One message for one target, waiting to be delivered."""

    id: str
    alerts: tuple[str, ...]  # the alerts it reports (one step's changes: a digest of them)
    target: str  # the target's key (Target.key)
    change: Change  # "fired" when it reports any alert firing (the service's warning style)
    title: str
    body: str
    due_at: datetime
    attempts: int = 0
    queued_at: datetime | None = None  # None in older state files: counted from the next failure


# At most this many waiting notifications are sent to a target as one request; a combined
# request's title names them up to _TITLES_NAMED.
BATCH_MAX: Final = 20
_TITLES_NAMED: Final = 3
# Each retry delay is spread by up to this share either way, so that the notifications of an
# outage do not all come back to a service in the same second.
JITTER_SHARE: Final = 0.1


def retry_at(
    attempts: int, now: datetime, delays_s: Sequence[float], *, jitter: float = 0.5
) -> datetime:
    """When to try again after `attempts` failed attempts: the delays in turn, the last one
    repeating, each moved by `jitter` (0 to 1, a random draw; 0.5 leaves it as it is)."""
    delay_s = delays_s[min(attempts, len(delays_s)) - 1]
    return now + timedelta(seconds=delay_s * (1 + JITTER_SHARE * (2 * jitter - 1)))


class Outbox:
    """The notifications not delivered yet, oldest first."""

    def __init__(self, pending: Iterable[Notification] = ()) -> None:
        self._pending = list(pending)

    @property
    def pending(self) -> tuple[Notification, ...]:
        return tuple(self._pending)

    def add(self, notification: Notification) -> None:
        self._pending.append(notification)

    def due(self, now: datetime, busy: Iterable[str] = ()) -> list[Notification]:
        """The first notification of each target, when it is due and not in flight."""
        in_flight = set(busy)
        heads: dict[str, Notification] = {}
        for notification in self._pending:
            heads.setdefault(notification.target, notification)
        return [n for n in heads.values() if n.due_at <= now and n.id not in in_flight]

    def batch(self, head: Notification, now: datetime) -> list[Notification]:
        """`head` (a target's first, from `due`) and those queued behind it for the same
        target that are due too, in order: sent as one (`combine`)."""
        behind = [
            n
            for n in self._pending
            if n.target == head.target and n.id != head.id and n.due_at <= now
        ]
        return [head, *behind][:BATCH_MAX]

    def delivered(self, notification_id: str) -> None:
        self._pending = [n for n in self._pending if n.id != notification_id]

    def failed(
        self,
        notification_id: str,
        now: datetime,
        delays_s: Sequence[float],
        *,
        give_up_s: float,
        jitter: float = 0.5,
    ) -> Notification | None:
        """Count the failed attempt and schedule the next one: the updated notification, or
        None when it has been tried for `give_up_s` since it was queued (then dropped)."""
        for index, notification in enumerate(self._pending):
            if notification.id == notification_id:
                queued_at = notification.queued_at or now
                if (now - queued_at).total_seconds() >= give_up_s:
                    del self._pending[index]
                    return None
                attempts = notification.attempts + 1
                updated = replace(
                    notification,
                    attempts=attempts,
                    due_at=retry_at(attempts, now, delays_s, jitter=jitter),
                    queued_at=queued_at,
                )
                self._pending[index] = updated
                return updated
        raise KeyError(notification_id)


def combine(batch: Sequence[Notification]) -> tuple[str, str, Change]:
    """The title, body and kind of one request carrying `batch` (one notification: itself)."""
    if len(batch) == 1:
        return batch[0].title, batch[0].body, batch[0].change
    titles = [notification.title for notification in batch]
    title = f"{len(batch)} notifications held back" + (
        ": " + "; ".join(titles) if len(batch) <= _TITLES_NAMED else ""
    )
    body = "\n\n".join(f"{n.title}\n{n.body}" for n in batch)
    change: Change = "fired" if any(n.change == "fired" for n in batch) else "resolved"
    return title, body, change
