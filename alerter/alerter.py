"""The alerter: watches the stored snapshots, the heartbeats and the pipeline's files, and notifies.

`Alerter` holds the lifecycle (open, run, close), the step and the heartbeat; its parts are read
and tested alone:

- `catch_up.StoreReader`: the reads of PostgreSQL through the read seam, and which snapshots the
  limits have not seen yet (`unseen_ranges`);
- `buffer_wait.BufferWait`: whether the limits wait for the snapshots in the writer's buffer;
- `day_score.DayScores`: each account's P&L explain score of the day so far, carried from one
  snapshot to the next (pure);
- `checks` and `transitions.apply`: what each rule reads now, and how the episodes move (pure);
- `journal.Journal`: the state file and the spool of alert events (persistence, crash order);
- `courier.Courier`: the outbox's deliveries, beside the steps.

One step observes, reads every rule, moves each alert's episode, records each firing or
resolution as an event, saves the state and queues one notification per target for all of its
changes (`transitions.digest`: a storm is one request per service). The state file makes all of
it survive a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from alerter.buffer_wait import BufferWait
from alerter.catch_up import CATCH_UP_MAX, DatabaseAnswer, Latest, StoreReader, unseen_ranges
from alerter.checks import (
    WATCHED_PROCESSES,
    Check,
    FeedFacts,
    health_checks,
    limit_checks,
    watch_dead_letters,
)
from alerter.courier import Courier
from alerter.day_score import DayScores, as_of_each
from alerter.delivery import Outbox
from alerter.journal import Journal, alerter_spool
from alerter.rules import ALL_ACCOUNTS
from alerter.settings import AlerterSettings
from alerter.state import AlerterState, stamp
from alerter.transitions import (
    IN_THE_BUFFER,
    NOT_ANSWERING,
    NOT_RUNNING,
    Transition,
    apply,
)
from database.reads import EXPLAIN_FIGURES
from shared import heartbeat_files, logs
from shared.buffer import Buffer
from shared.deadletter import DeadLetters
from shared.health import feed_conditions
from shared.reset_window import active_window
from shared.service import pause
from shared.spool import SpoolAppender
from shared.troubles import Troubles

log = logging.getLogger("alerter")

WATCH_SAVE_EVERY: Final = timedelta(minutes=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Alerter:
    def __init__(
        self,
        settings: AlerterSettings,
        *,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        spool: SpoolAppender | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._monotonic = monotonic
        # Durations (for_s) run on the monotonic clock, counted from the wall clock at start: a
        # tick is comparable with a snapshot's time (replayed snapshots step at their own), and
        # with the ticks saved by an earlier run, while a step of the wall clock moves no tick.
        self._tick_base = clock().timestamp() - monotonic()
        paths = settings.paths
        self._journal = Journal(paths.run_dir, spool or alerter_spool(settings), mode=settings.mode)
        self._store = StoreReader(settings.database, monotonic=monotonic)
        self._courier = Courier(
            settings.targets,
            retry_delays_s=settings.retry_delays_s,
            give_up_s=settings.give_up_s,
            clock=clock,
            steady_now=self._steady_now,
            on_delivered=self._notified,
            on_settled=self._save,
        )
        self._buffer = Buffer(paths.buffer_path)
        self._dead_letters = DeadLetters(paths.dead_letter_path)
        self._buffer_wait = BufferWait()
        # The explain figures are carried per account (`DayScores`), the others read per
        # snapshot from the database.
        self._stored_figures = tuple(f for f in settings.rules.figures if f not in EXPLAIN_FIGURES)
        self._explain_figures = tuple(f for f in settings.rules.figures if f in EXPLAIN_FIGURES)
        self._day_scores = DayScores()
        self._buffer_held = False  # the writer's buffer held lines at the previous step
        self.started_at = clock()
        # Set when the limits could not see every snapshot (a restart, an outage, a buffer):
        # the snapshots they then step through are reported late.
        self._late_because: str | None = None
        self._accounts_checked = False  # the limits' accounts against those stored, once
        self.troubles = Troubles(log)  # retried failures (the heartbeat), reported once each
        for target in settings.targets:
            logs.hide(target.url.reveal())
            logs.hide_url_password(target.url.reveal())

    @property
    def state(self) -> AlerterState:
        """Every alert's episode, the marks of what the limits saw, the events held."""
        return self._journal.state

    @property
    def outbox(self) -> Outbox:
        """The notifications not delivered yet."""
        return self._courier.outbox

    # Lifecycle -------------------------------------------------------------------------------

    def open(self) -> None:
        """Take the alerter's spool and recall the state saved before a restart."""
        loaded = self._journal.open(self.settings.rules.names())
        if loaded is not None:
            self._courier.restore(loaded.outbox)
            if loaded.watched_until is not None:
                self._late_because = NOT_RUNNING

    async def close(self) -> None:
        """Let deliveries in flight finish (briefly), keep the others for the next start."""
        await self._courier.close()
        # Events the spool refused so far get one more try; those it still refuses stay in the
        # saved state, appended at the next start.
        self._journal.flush(self._clock())
        self._save()
        await self._store.close()
        self._journal.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Step every `interval_s` until `stop` is set."""
        self.open()
        rules = self.settings.rules
        log.info(
            "alerter started",
            extra=logs.fields(
                limits=len(rules.limits),
                targets=len(self.settings.targets),
                rules_file=self.settings.rules_file,
                firing=sum(alert.episode.firing for alert in self.state.alerts.values()),
                undelivered=len(self.outbox.pending),
            ),
        )
        if not self.settings.targets:
            log.warning("BRIDGE_ALERT_URLS is empty: alerts are recorded, not sent")
        try:
            while not stop.is_set():
                await self.step()
                await pause(stop, self.settings.interval_s)
        finally:
            self._publish("stopped")
            await self.close()
            log.info("alerter stopped")

    # One step --------------------------------------------------------------------------------

    async def step(self) -> list[Transition]:
        """Observe, read every rule, record and queue what changed; returns the changes.

        The limits see every stored snapshot once, in time order: first each account's
        snapshots after the newest one they saw before (a restart, an outage, or two snapshots
        in one interval), each at its own time, then the newest one at `now`. While the
        writer's buffer holds snapshots, which the replayer stores later than newer ones, the
        limits wait for them (at most `LIMITS_WAIT_MAX`), so that they too are seen in order.
        """
        now, tick = self._clock(), self._tick()
        rules = self.settings.rules
        stored = await self._store.read(
            self._stored_figures, wants_login=rules.health.login_required_s is not None
        )
        buffered_bytes = self._buffer.stats().pending_bytes
        if self._late_because or (self._buffer_held and not buffered_bytes):
            # Intervals may have been stored behind the ones the day scores read: by the
            # replayer, from the writer's buffer, while the limits were blind (an outage, the
            # wait for the buffer) or after they went on without it. Each day is read again
            # from its start when they see again, and once the buffer has drained.
            self._day_scores.forget()
        self._buffer_held = buffered_bytes > 0
        if stored.latest and not self._accounts_checked:
            self._warn_unmatched_accounts(stored.latest)
        transitions: list[Transition] = []
        dirty = False
        latest, blind_because = stored.latest, NOT_ANSWERING
        if latest is not None and self._buffer_wait.waits(now, buffered_bytes):
            latest, blind_because = None, IN_THE_BUFFER
        if latest is not None:
            unseen = await self._unseen(latest, now)
            if unseen is None:
                latest = None
            else:
                transitions, dirty, latest = unseen
        state = self.state
        if latest is None and state.watched_until is not None:
            # Snapshots this step could not see are stepped through, late, once it can.
            self._late_because = self._late_because or blind_because
        checks = self._checks(now, stored, latest, buffered_bytes)
        changes, changed = apply(state.alerts, checks, now, tick=tick)
        transitions += changes
        dirty = dirty or changed
        if latest is not None:
            self._late_because = None
            # Accounts past the horizon (closed, filtered out) leave `latest`, and their marks.
            seen = state.seen
            state.seen = {
                account: max(row["ts"], seen.get(account, row["ts"]))
                for account, row in latest.items()
            }
            state.watched_until = now
            # Saved with any change, at a stop, and at least every WATCH_SAVE_EVERY, so that a
            # restart replays from close to where this run stopped watching.
            on_disk = self._journal.saved_watch
            dirty = dirty or on_disk is None or now - on_disk >= WATCH_SAVE_EVERY
        if transitions:
            self._journal.record(transitions)
            self._courier.queue(transitions, self._steady_now())
        # The events reach the disk with the state that says they happened, then the spool.
        if dirty or transitions or self._courier.unsaved:
            self._save()
        self._journal.flush(now)
        self._courier.dispatch()
        self._publish("running")
        return transitions

    def _warn_unmatched_accounts(self, latest: Latest) -> None:
        """Once, at the first step that sees accounts: each limit on one account the bridge
        stores no snapshot of (a mistyped id matches nothing, silently otherwise)."""
        self._accounts_checked = True
        for rule in self.settings.rules.limits:
            if rule.account != ALL_ACCOUNTS and rule.account not in latest:
                log.warning(
                    "a limit's account has no snapshot stored in the last 7 days: the limit"
                    " matches nothing (a mistyped account id?)",
                    extra=logs.fields(rule=rule.name, account=rule.account),
                )

    def _checks(
        self,
        now: datetime,
        stored: DatabaseAnswer,
        latest: dict[str, dict[str, Any]] | None,
        buffered_bytes: int,
    ) -> list[Check]:
        """The feed's health from `stored` and the files; the limits on `latest` unless None."""
        rules = self.settings.rules
        heartbeats = heartbeat_files.read_all(self.settings.paths.run_dir, WATCHED_PROCESSES)
        stored_snapshots = {account: row["ts"] for account, row in (stored.latest or {}).items()}
        facts = FeedFacts(
            feed=feed_conditions(heartbeats, now, stored_snapshots=stored_snapshots),
            login_required=stored.login_required,
            buffer_bytes=buffered_bytes,
            in_reset_window=active_window(self.settings.reset_windows, now) is not None,
            started_at=self.started_at,
        )
        letters = self.state.dead_letters
        if rules.health.dead_letter_quiet_s is not None:
            letters, letters_reading = watch_dead_letters(
                letters, self._dead_letters.count(), now=now,
                quiet_s=rules.health.dead_letter_quiet_s,
            )  # fmt: skip
            self.state.dead_letters = letters
        else:
            letters_reading = None
        checks = health_checks(rules.health, facts, now=now, dead_letters=letters_reading)
        if latest is not None:
            checks += limit_checks(rules.limits, latest)
        return checks

    # Snapshots the limits have not seen ------------------------------------------------------

    async def _unseen(
        self, latest: Latest, now: datetime
    ) -> tuple[list[Transition], bool, Latest] | None:
        """Step the limits through each account's snapshots after the newest one they saw and
        before its newest (stepped at `now` by the caller), in time order, each at its own time:
        the changes, whether any state changed, and `latest` with the explain figures as of each
        newest snapshot. None when the database does not answer (tried again at the next
        step)."""
        rules = self.settings.rules
        if not rules.limits:
            return [], False, latest
        floor = now - CATCH_UP_MAX
        ranges, cut = unseen_ranges(latest, self.state.seen, self.state.watched_until, floor)
        if cut:
            log.warning(
                "the limits missed more than they replay: older snapshots skipped",
                extra=logs.fields(replayed_from=floor.isoformat()),
            )
        rows = await self._store.unseen(self._stored_figures, ranges) if ranges else []
        if rows is None:
            return None
        # Each snapshot replayed, then each account's newest: per account in time order.
        snapshots = [
            (account, ts, dict(zip(self._stored_figures, values, strict=True)))
            for account, ts, *values in rows
        ]
        snapshots += [(account, row["ts"], dict(row)) for account, row in latest.items()]
        if self._explain_figures:
            figured = await self._explain_as_of([(account, ts) for account, ts, _ in snapshots])
            if figured is None:
                return None
            for (_account, _ts, values), figures in zip(snapshots, figured, strict=True):
                values.update(figures)
        late_because = self._late_because
        transitions: list[Transition] = []
        dirty = False
        for account, ts, values in snapshots[: len(rows)]:
            changes, changed = apply(
                self.state.alerts, limit_checks(rules.limits, {account: values}), ts,
                late_because=late_because,
            )  # fmt: skip
            transitions += changes
            dirty = dirty or changed
        if late_because and rows:
            since = min(start for start, _end in ranges.values())
            log.info(
                "replayed the snapshots the limits had not seen",
                extra=logs.fields(
                    since=since.isoformat(), snapshots=len(rows), changes=len(transitions),
                    why=late_because,
                ),
            )  # fmt: skip
        newest = {account: values for account, _ts, values in snapshots[len(rows) :]}
        return transitions, dirty, newest

    async def _explain_as_of(
        self, snapshots: list[tuple[str, datetime]]
    ) -> list[dict[str, float | None]] | None:
        """The explain figures as of each snapshot (account, ts; per account in time order),
        from the intervals each account's day score has not read yet. None when the database
        does not answer."""
        spans: dict[str, tuple[datetime, datetime]] = {}
        positions: dict[str, list[int]] = {}
        for index, (account, ts) in enumerate(snapshots):
            spans[account] = (spans.get(account, (ts, ts))[0], ts)
            positions.setdefault(account, []).append(index)
        ranges = self._day_scores.to_read(spans)
        carried = self._day_scores.accounts
        # The new intervals of the days carried in one read; a day read from its start (a
        # restart, a rebuild) an account at a time, so no step holds every account's day at once.
        groups = [{a: span for a, span in ranges.items() if a in carried}]
        groups += [{account: span} for account, span in ranges.items() if account not in carried]
        answers: dict[int, dict[str, float | None]] = {}
        for group in groups:
            intervals = await self._store.intervals_to_score(group) if group else []
            if intervals is None:
                return None
            self._day_scores.read(group)
            chosen = [index for account in group for index in positions[account]]
            figured = as_of_each(self._day_scores, [snapshots[i] for i in chosen], intervals)
            answers |= dict(zip(chosen, figured, strict=True))
        return [answers[index] for index in range(len(snapshots))]

    # Persistence and delivery ----------------------------------------------------------------

    def _save(self) -> None:
        self._courier.saved()
        self._journal.save(self.outbox.pending)

    def _notified(self, alerts: tuple[str, ...], now: datetime) -> None:
        """A notification reporting `alerts` was delivered at `now`."""
        for key in alerts:
            alert = self.state.alerts.get(key)
            if alert is not None:
                self.state.alerts[key] = replace(
                    alert, episode=replace(alert.episode, last_notified=now)
                )

    def _tick(self) -> float:
        return self._tick_base + self._monotonic()

    def _steady_now(self) -> datetime:
        """The monotonic clock as a time, for the outbox's waits (a retry due in 30 s is due in
        30 s, whatever the wall clock does meanwhile)."""
        return datetime.fromtimestamp(self._tick(), UTC)

    # The heartbeat ---------------------------------------------------------------------------

    @property
    def held_events(self) -> int:
        """Events recorded but not in the spool yet (it refused them): kept in the state."""
        return self._journal.held_events

    @property
    def limits_waiting_since(self) -> datetime | None:
        """Since when the limits wait for the snapshots in the writer's buffer; None: they don't."""
        return self._buffer_wait.since

    def firing(self) -> list[dict[str, Any]]:
        """The alerts firing now, as published in the heartbeat."""
        return [alert.view() for alert in self.state.alerts.values() if alert.episode.firing]

    def _publish(self, state: str) -> None:
        beat = heartbeat_files.Heartbeat(
            process="alerter",
            at=self._clock(),
            interval_s=self.settings.interval_s,
            state=state,
            last_db_error=self._store.last_error,
            firing=tuple(self.firing()),
            details={
                "undelivered": len(self.outbox.pending),
                "targets": len(self.settings.targets),
                "limits_waiting_since": stamp(self._buffer_wait.since),
            },
        )
        heartbeat_files.publish_reporting(self.troubles, self.settings.paths.run_dir, beat)
