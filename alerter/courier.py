"""The courier: sends the outbox's notifications, beside the steps, and keeps what it could not.

A step queues one notification per target for all of its changes (`queue`: a storm is one
request per service). Deliveries run as tasks, one at a time per target, so a target that is
down delays nothing else; a target's next notification leaves as soon as the previous one is
settled, without waiting for a step. The waits run on the steady clock the alerter gives
(`steady_now`): a retry due in 30 s is due in 30 s whatever the wall clock does. What was
delivered is told back (`on_delivered`), and once no delivery is in flight the alerter is asked
to save (`on_settled`): once per burst, not once per delivery.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Final

from alerter import state as saved
from alerter.delivery import Notification, Outbox, Target, combine
from alerter.transitions import Transition, digest
from shared import logs

log = logging.getLogger("alerter")

# At a stop, deliveries in flight get this long to finish (well inside supervisord's 15 s); the
# rest stay in the outbox and are sent after the next start.
_CLOSE_GRACE_S: Final = 5.0


class Courier:
    def __init__(
        self,
        targets: Iterable[Target],
        *,
        retry_delays_s: tuple[float, ...],
        give_up_s: float,
        clock: Callable[[], datetime],
        steady_now: Callable[[], datetime],
        on_delivered: Callable[[tuple[str, ...], datetime], None],
        on_settled: Callable[[], None],
    ) -> None:
        self._order = tuple(targets)  # as configured: a saved position names one of them
        self._targets = {target.key: target for target in self._order}
        self._retry_delays_s = retry_delays_s
        self._give_up_s = give_up_s
        self._clock = clock
        self._steady_now = steady_now
        self._on_delivered = on_delivered
        self._on_settled = on_settled
        self._outbox = Outbox()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._unsaved = False  # deliveries settled since the last save
        self._closing = False

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    @property
    def unsaved(self) -> bool:
        """Deliveries settled since the alerter last saved (`saved`)."""
        return self._unsaved

    def saved(self) -> None:
        self._unsaved = False

    def restore(self, pending: list[Notification]) -> None:
        """The outbox saved before a restart: the notifications whose target is still
        configured; the others are dropped, said in the log (by count: the URL is gone, and a
        secret anyway)."""
        kept, dropped = [], 0
        for notification in pending:
            key = notification.target
            if key.startswith(saved.POSITION):  # a state saved by the previous release
                index = int(key.removeprefix(saved.POSITION))
                key = self._order[index].key if index < len(self._order) else ""
            if key in self._targets:
                kept.append(replace(notification, target=key))
            else:
                dropped += 1
        if dropped:
            log.warning(
                "notifications for a URL no longer in BRIDGE_ALERT_URLS dropped",
                extra=logs.fields(dropped=dropped),
            )
        self._outbox = Outbox(kept)

    def queue(self, transitions: list[Transition], now: datetime) -> None:
        """One notification per target for all of one step's changes, due at `now` (steady)."""
        message = digest(transitions)
        for target in self._order:
            self._outbox.add(
                Notification(
                    id=str(uuid.uuid4()),
                    alerts=message.alerts,
                    target=target.key,
                    change=message.change,
                    title=message.title,
                    body=message.body,
                    due_at=now,
                    queued_at=now,
                )
            )

    def dispatch(self) -> None:
        """Start a delivery for each target whose next notification is due and not under way."""
        now = self._steady_now()
        for head in self._outbox.due(now, busy=self._in_flight):
            self._in_flight[head.id] = asyncio.get_running_loop().create_task(
                self._deliver(self._outbox.batch(head, now))
            )

    async def close(self) -> None:
        """Let deliveries in flight finish (briefly); the others wait in the outbox."""
        self._closing = True
        in_flight = list(self._in_flight.values())
        if in_flight:
            _, unfinished = await asyncio.wait(in_flight, timeout=_CLOSE_GRACE_S)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _deliver(self, batch: list[Notification]) -> None:
        """One request to one target: its first waiting notification and those due behind it.
        A failure counts against the first only (the others wait behind it, in order)."""
        notification = batch[0]
        title, body, change = combine(batch)
        try:
            # Every key in the outbox is a configured target's (restore() drops the others).
            target = self._targets[notification.target]
            try:
                accepted = await target.send(title, body, change)
                reason = "refused or unreachable"
            except Exception as exc:  # any plugin failure is one failed attempt
                accepted, reason = False, type(exc).__name__
            now, steady = self._clock(), self._steady_now()
            if accepted:
                for sent in batch:
                    self._outbox.delivered(sent.id)
                    self._on_delivered(sent.alerts, now)
                log.info("notification delivered", extra=logs.fields(
                    target=target.label, title=title, notifications=len(batch),
                    attempts=notification.attempts + 1))  # fmt: skip
            else:
                retry = self._outbox.failed(
                    notification.id, steady, self._retry_delays_s,
                    give_up_s=self._give_up_s, jitter=random.random(),  # noqa: S311  # not a secret
                )  # fmt: skip
                if retry is None:
                    log.error("notification not delivered: given up", extra=logs.fields(
                        target=target.label, title=title, reason=reason,
                        attempts=notification.attempts + 1,
                        queued_at=saved.stamp(notification.queued_at)))  # fmt: skip
                else:
                    log.warning("notification not delivered: will retry", extra=logs.fields(
                        target=target.label, title=title, reason=reason,
                        attempts=retry.attempts,
                        retry_in_s=round((retry.due_at - steady).total_seconds(), 1)))  # fmt: skip
            # Saved once the deliveries under way have all finished, not once per delivery: a
            # storm would rewrite and fsync the whole state hundreds of times. A crash before
            # the save sends the notification again: at least once, as ever.
            self._unsaved = True
        finally:
            self._in_flight.pop(notification.id, None)
        if not self._closing:
            self.dispatch()  # the target's next notification, if due, without waiting a step
            if not self._in_flight and self._unsaved:
                self._on_settled()  # a restart right after must not notify again what was sent
