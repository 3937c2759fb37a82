"""The alerter: watches the stored snapshots, the heartbeats and the pipeline's files, and notifies.

One step (`step`) observes, reads every rule, moves each alert's episode, and for each firing
or resolution records an `alert_fired` / `alert_resolved` event in the alerter's own spool
(which the writer stores in `api_logs` like every other event); it saves the state and queues
one notification per target for all of its changes (`digest`: a storm is one request per
service). Deliveries run beside the steps, one at a time per target, so a target that is down
delays nothing else. The state file makes all of it survive a restart.

Order within a step, for crashes: an event gets a random id and is saved in the state (with the
change it reports) before it is appended to the spool, and it stays in the state until the
spool has it. An alerter killed between the two, or whose spool refuses the append, appends it
again later under the same id, and PostgreSQL keeps it once; a state file lost or a rule
re-added never gives a new event the id of an old one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from alerter import state as saved
from alerter.checks import (
    WATCHED_PROCESSES,
    Check,
    FeedFacts,
    health_checks,
    limit_checks,
    watch_dead_letters,
)
from alerter.delivery import Notification, Outbox, combine
from alerter.episodes import Change, step
from alerter.rules import ALL_ACCOUNTS
from alerter.settings import AlerterSettings
from database.errors import DatabaseError, translate
from database.sink import answered
from shared import logs, records, status
from shared.buffer import Buffer
from shared.deadletter import DeadLetters
from shared.health import feed_conditions
from shared.reset_window import active_window
from shared.service import pause
from shared.spool import SpoolAppender
from shared.troubles import Troubles

log = logging.getLogger("alerter")

SPOOL_LOCK: Final = "alerter.lock"
_SEGMENT_MAX_BYTES: Final = 1 << 20
# At a stop, deliveries in flight get this long to finish (well inside supervisord's 15 s); the
# rest stay in the outbox and are sent after the next start.
_CLOSE_GRACE_S: Final = 5.0
# Accounts whose newest snapshot is older than this are no longer watched (closed, filtered out).
_ACCOUNT_HORIZON: Final = "7 days"
# How far back the limits replay the snapshots they did not see (a restart, an outage).
CATCH_UP_MAX: Final = timedelta(days=1)
# How long the limits wait for the writer's buffer to be stored (the replayer drains it every
# BRIDGE_REPLAY_INTERVAL_S, 60 s by default); past it they go on without those snapshots.
LIMITS_WAIT_MAX: Final = timedelta(minutes=5)
WATCH_SAVE_EVERY: Final = timedelta(minutes=1)
# Why the limits see snapshots late, as a late notification says it.
NOT_RUNNING: Final = "while the alerter was not running"
NOT_ANSWERING: Final = "while the database was not answering"
IN_THE_BUFFER: Final = "while the snapshots waited in the writer's buffer"

# The newest snapshot of each account, by a loose index scan over (account, ts DESC): one index
# probe per account, however long the table.
_LATEST = """
WITH RECURSIVE accounts(account) AS (
    SELECT min(account) FROM portfolio_greeks
  UNION ALL
    SELECT (SELECT min(account) FROM portfolio_greeks p WHERE p.account > a.account)
    FROM accounts a WHERE a.account IS NOT NULL
)
SELECT latest.account, latest.ts{figures}
FROM accounts a CROSS JOIN LATERAL (
    SELECT * FROM portfolio_greeks p WHERE p.account = a.account ORDER BY p.ts DESC LIMIT 1
) latest
WHERE latest.ts > now() - interval '{horizon}'
"""
# Each account's snapshots in its own range (since, until), in time order; the floor (the
# earliest since) prunes the day partitions before the plan is made.
_UNSEEN = """
SELECT p.account, p.ts{figures}
FROM unnest(%(accounts)s::text[], %(since)s::timestamptz[], %(until)s::timestamptz[])
    AS unseen(account, since, until)
JOIN portfolio_greeks p
    ON p.account = unseen.account AND p.ts > unseen.since AND p.ts < unseen.until
WHERE p.ts > %(floor)s
ORDER BY p.ts, p.account
"""
# A login prompt newer than the last connection means an operator must log in.
_LOGIN = """
SELECT EXISTS (
    SELECT 1 FROM api_logs WHERE event = 'session_required' AND ts > coalesce(
        (SELECT max(ts) FROM api_logs WHERE event = 'connected'), '-infinity')
)
"""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def alerter_spool(settings: AlerterSettings) -> SpoolAppender:
    """The alerter's own spool (not opened)."""
    return SpoolAppender(
        settings.paths.alerter_spool_dir,
        segment_max_bytes=_SEGMENT_MAX_BYTES,
        lock_name=SPOOL_LOCK,
    )


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


@dataclass(frozen=True)
class Stored:
    """What the database said in one step; None where it did not answer."""

    latest: dict[str, dict[str, Any]] | None
    login_required: bool | None


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
        self._state_path = paths.run_dir / saved.STATE_NAME
        self._spool = spool or alerter_spool(settings)
        self._buffer = Buffer(paths.buffer_path)
        self._dead_letters = DeadLetters(paths.dead_letter_path)
        self._db: psycopg.AsyncConnection[TupleRow] | None = None
        self._db_error: str | None = None
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._unsaved_deliveries = False  # deliveries finished since the last save
        self._closing = False
        self.started_at = clock()
        self.state = saved.AlerterState()
        # Set when the limits could not see every snapshot (a restart, an outage, a buffer):
        # the snapshots they then step through are reported late.
        self._late_because: str | None = None
        self._waiting_since: datetime | None = None  # the limits, for the buffered snapshots
        self._wait_given_up = False
        self._accounts_checked = False  # the limits' accounts against those stored, once
        self._saved_watch: datetime | None = None  # watched_until as last saved
        self.outbox = Outbox()
        self._targets = {target.key: target for target in settings.targets}
        self.troubles = Troubles(log)  # retried failures (the heartbeat), reported once each
        for target in settings.targets:
            logs.hide(target.url.reveal())
            logs.hide_url_password(target.url.reveal())

    # Lifecycle -------------------------------------------------------------------------------

    def open(self) -> None:
        """Take the alerter's spool and recall the state saved before a restart."""
        self._spool.open(now_us=time.time_ns() // 1000)
        recalled = saved.recall(self._state_path)
        loaded = recalled.state
        if recalled.from_previous:
            log.error(
                "alerter state unreadable: the previous copy used (alerts and notifications as"
                " of the save before the last; delete both files to start afresh)",
                extra=logs.fields(reason=recalled.problem),
            )
        elif recalled.problem is not None:
            log.error(
                "alerter state unreadable: starting afresh",
                extra=logs.fields(reason=recalled.problem),
            )
        if loaded is not None:
            names = self.settings.rules.names()
            for key, alert in list(loaded.alerts.items()):
                if alert.rule not in names:
                    log.info(
                        "rule no longer in the file (or off): alert forgotten",
                        extra=logs.fields(rule=alert.rule, subject=alert.subject),
                    )
                    del loaded.alerts[key]
            self.state = loaded
            self.outbox = Outbox(self._deliverable(loaded.outbox))
            self._saved_watch = loaded.watched_until
            if loaded.watched_until is not None:
                self._late_because = NOT_RUNNING

    def _deliverable(self, outbox: list[Notification]) -> list[Notification]:
        """The saved notifications whose target is still configured; the others are dropped,
        said in the log (by count: the URL is gone, and a secret anyway)."""
        targets = self.settings.targets
        kept, dropped = [], 0
        for notification in outbox:
            key = notification.target
            if key.startswith(saved.POSITION):  # a state saved by the previous release
                index = int(key.removeprefix(saved.POSITION))
                key = targets[index].key if index < len(targets) else ""
            if key in self._targets:
                kept.append(replace(notification, target=key))
            else:
                dropped += 1
        if dropped:
            log.warning(
                "notifications for a URL no longer in BRIDGE_ALERT_URLS dropped",
                extra=logs.fields(dropped=dropped),
            )
        return kept

    async def close(self) -> None:
        """Let deliveries in flight finish (briefly), keep the others for the next start."""
        self._closing = True
        in_flight = list(self._in_flight.values())
        if in_flight:
            _, unfinished = await asyncio.wait(in_flight, timeout=_CLOSE_GRACE_S)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        # Events the spool refused so far get one more try; those it still refuses stay in the
        # saved state, appended at the next start.
        self._flush_spool(self._clock())
        self._save()
        if self._db is not None:
            await self._db.close()
        self._spool.close()

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
        stored = await self._query_database()
        buffered_bytes = self._buffer.stats().pending_bytes
        if stored.latest and not self._accounts_checked:
            self._warn_unmatched_accounts(stored.latest)
        transitions: list[Transition] = []
        dirty = False
        latest, unseeing = stored.latest, NOT_ANSWERING
        if latest is not None and self._limits_wait(now, buffered_bytes):
            latest, unseeing = None, IN_THE_BUFFER
        if latest is not None:
            unseen = await self._unseen(latest, now)
            if unseen is None:
                latest = None
            else:
                transitions, dirty = unseen
        if latest is None and self.state.watched_until is not None:
            # Snapshots this step could not see are stepped through, late, once it can.
            self._late_because = self._late_because or unseeing
        checks = self._checks(now, stored, latest, buffered_bytes)
        changes, changed = self._apply(checks, now, tick=tick)
        transitions += changes
        dirty = dirty or changed
        if latest is not None:
            self._late_because = None
            # Accounts past the horizon (closed, filtered out) leave `latest`, and their marks.
            seen = self.state.seen
            self.state.seen = {
                account: max(row["ts"], seen.get(account, row["ts"]))
                for account, row in latest.items()
            }
            self.state.watched_until = now
            # Saved with any change, at a stop, and at least every WATCH_SAVE_EVERY, so that a
            # restart replays from close to where this run stopped watching.
            on_disk = self._saved_watch
            dirty = dirty or on_disk is None or now - on_disk >= WATCH_SAVE_EVERY
        if transitions:
            self._record(transitions)
            self._queue(transitions, self._steady_now())
        # The events reach the disk with the state that says they happened, then the spool.
        if dirty or transitions or self._unsaved_deliveries:
            self._save()
        self._flush_spool(now)
        self._dispatch()
        self._publish("running")
        return transitions

    def _warn_unmatched_accounts(self, latest: dict[str, dict[str, Any]]) -> None:
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

    def _limits_wait(self, now: datetime, buffered_bytes: int) -> bool:
        """Whether the limits wait this step for the snapshots in the writer's buffer."""
        if buffered_bytes == 0:
            if self._waiting_since is not None:
                log.info(
                    "the buffered snapshots are stored: limits watched again",
                    extra=logs.fields(waited_s=(now - self._waiting_since).total_seconds()),
                )
            self._waiting_since = None
            self._wait_given_up = False
            return False
        if self._waiting_since is None:
            self._waiting_since = now
            log.info(
                "snapshots wait in the writer's buffer: the limits wait until they are stored",
                extra=logs.fields(buffered_bytes=buffered_bytes),
            )
        if now - self._waiting_since < LIMITS_WAIT_MAX:
            return True
        if not self._wait_given_up:
            self._wait_given_up = True
            log.warning(
                "the writer's buffer has not drained: limits watched without its snapshots",
                extra=logs.fields(
                    buffered_bytes=buffered_bytes,
                    waited_s=(now - self._waiting_since).total_seconds(),
                ),
            )
        return False

    def _apply(
        self,
        checks: list[Check],
        now: datetime,
        *,
        tick: float | None = None,
        late_because: str | None = None,
    ) -> tuple[list[Transition], bool]:
        """Move each check's episode to `now` (`tick` on the steady clock; None: a snapshot's
        own time): the changes, and whether any state changed."""
        transitions: list[Transition] = []
        dirty = False
        for check in checks:
            alert = self.state.alerts.get(check.key) or saved.Alert(
                check.rule, check.subject, check.figure, check.account
            )
            episode, change = step(
                alert.episode, check.reading, now=now, for_s=check.for_s, tick=tick
            )
            dirty = dirty or replace(episode, value=None) != replace(alert.episode, value=None)
            self.state.alerts[check.key] = replace(alert, episode=episode)
            if change is not None:
                previous = alert.episode if change == "resolved" else episode
                transitions.append(Transition(
                    replace(alert, episode=episode), change, previous.past_since,
                    previous.fired_at, now, late_because,
                ))  # fmt: skip
        return transitions, dirty

    def _checks(
        self,
        now: datetime,
        stored: Stored,
        latest: dict[str, dict[str, Any]] | None,
        buffered_bytes: int,
    ) -> list[Check]:
        """The feed's health from `stored` and the files; the limits on `latest` unless None."""
        rules = self.settings.rules
        heartbeats = status.read_all(self.settings.paths.run_dir, WATCHED_PROCESSES)
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
        self, latest: dict[str, dict[str, Any]], now: datetime
    ) -> tuple[list[Transition], bool] | None:
        """Step the limits through each account's snapshots after the newest one they saw and
        before its newest (stepped at `now` by the caller), in time order, each at its own time:
        the changes, and whether any state changed. None when the database does not answer
        (tried again at the next step)."""
        rules = self.settings.rules
        if not rules.limits or self._db is None:
            return [], False
        floor = now - CATCH_UP_MAX
        accounts, since, until = [], [], []
        skipped = False
        for account, row in latest.items():
            mark = self.state.seen.get(account, self.state.watched_until)
            if mark is None or row["ts"] <= mark:
                continue  # a first start: what came before it is history, not news
            if mark < floor:
                mark, skipped = floor, True
            accounts.append(account)
            since.append(mark)
            until.append(row["ts"])
        if not accounts:
            return [], False
        if skipped:
            log.warning(
                "the limits missed more than they replay: older snapshots skipped",
                extra=logs.fields(replayed_from=floor.isoformat()),
            )
        columns = sql.SQL("").join(
            sql.SQL(", p.{}").format(sql.Identifier(figure)) for figure in rules.figures
        )
        params = {"accounts": accounts, "since": since, "until": until, "floor": min(since)}

        async def read(conn: psycopg.AsyncConnection[TupleRow]) -> list[TupleRow]:
            cursor = await conn.execute(sql.SQL(_UNSEEN).format(figures=columns), params)
            return await cursor.fetchall()

        try:
            rows = await answered(self._db, self.settings.database.reply_timeout_s, read(self._db))
        except (psycopg.Error, OSError) as exc:  # TimeoutError included: no answer
            await self._database_failed(translate(exc))
            return None
        late_because = self._late_because
        transitions: list[Transition] = []
        dirty = False
        for account, ts, *values in rows:
            snapshot = {account: dict(zip(rules.figures, values, strict=True))}
            changes, changed = self._apply(
                limit_checks(rules.limits, snapshot), ts, late_because=late_because
            )
            transitions += changes
            dirty = dirty or changed
        if late_because and rows:
            log.info(
                "replayed the snapshots the limits had not seen",
                extra=logs.fields(
                    since=min(since).isoformat(), snapshots=len(rows), changes=len(transitions),
                    why=late_because,
                ),
            )  # fmt: skip
        return transitions, dirty

    # The database (read-only) ----------------------------------------------------------------

    async def _query_database(self) -> Stored:
        rules = self.settings.rules
        wants_login = rules.health.login_required_s is not None
        try:
            if self._db is None or self._db.closed:
                self._db = await self.settings.database.connect("bridge-alerter", read_only=True)
            # A server that stops answering must not stop the steps: the feed's health is
            # watched without it.
            reply_s = self.settings.database.reply_timeout_s
            latest = await answered(self._db, reply_s, self._latest(self._db, rules.figures))
            login = (
                await answered(self._db, reply_s, self._login_required(self._db))
                if wants_login
                else False
            )
        except (psycopg.Error, OSError) as exc:  # TimeoutError included: no answer
            await self._database_failed(translate(exc))
            return Stored(None, None)
        except DatabaseError as exc:
            await self._database_failed(exc)
            return Stored(None, None)
        if self._db_error is not None:
            log.info("database answering again: limits read")
            self._db_error = None
        return Stored(latest, login)

    async def _latest(
        self, conn: psycopg.AsyncConnection[TupleRow], figures: tuple[str, ...]
    ) -> dict[str, dict[str, Any]]:
        columns = sql.SQL("").join(
            sql.SQL(", latest.{}").format(sql.Identifier(figure)) for figure in figures
        )
        query = sql.SQL(_LATEST).format(figures=columns, horizon=sql.SQL(_ACCOUNT_HORIZON))
        rows = await (await conn.execute(query)).fetchall()
        return {row[0]: {"ts": row[1], **dict(zip(figures, row[2:], strict=True))} for row in rows}

    async def _login_required(self, conn: psycopg.AsyncConnection[TupleRow]) -> bool:
        row = await (await conn.execute(_LOGIN)).fetchone()
        return bool(row and row[0])

    async def _database_failed(self, exc: DatabaseError) -> None:
        message = str(exc)
        if message != self._db_error:
            log.warning(
                "database not answering: limits and login prompts not read",
                extra=logs.fields(reason=message),
            )
        self._db_error = message
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    # Recording -------------------------------------------------------------------------------

    def _record(self, transitions: list[Transition]) -> None:
        for transition in transitions:
            alert, change = transition.alert, transition.change
            text = transition.describe()
            level: records.Level = "warning" if change == "fired" else "info"
            log.log(
                logging.WARNING if change == "fired" else logging.INFO,
                text,
                extra=logs.fields(event=f"alert_{change}", rule=alert.rule, subject=alert.subject),
            )
            event = f"alert_{change}"
            record = records.new_api_log(
                ts=transition.at,
                mode=self.settings.mode,
                level=level,
                event=event,
                message=text,
                details=transition.details(),
            )
            self.state.unspooled.append(records.encode(record).decode())

    def _flush_spool(self, now: datetime) -> None:
        unspooled = self.state.unspooled
        if not unspooled:
            return
        try:
            self._spool.append(
                [line.encode() for line in unspooled], now_us=int(now.timestamp() * 1_000_000)
            )
        except OSError as exc:
            log.error(
                "cannot append to the alerter's spool: events held in its state",
                extra=logs.fields(reason=exc.strerror or exc, held=len(unspooled)),
            )
            return
        # The saved state may still list them until its next save: appended again after a
        # crash, they are stored once (same ids).
        unspooled.clear()

    def _save(self) -> None:
        self._unsaved_deliveries = False
        self.state.outbox = list(self.outbox.pending)
        try:
            saved.save(self._state_path, self.state)
        except OSError as exc:
            log.error("cannot save the alerter's state", extra=logs.fields(reason=exc.strerror))
        else:
            self._saved_watch = self.state.watched_until

    # Delivery --------------------------------------------------------------------------------

    def _tick(self) -> float:
        return self._tick_base + self._monotonic()

    def _steady_now(self) -> datetime:
        """The monotonic clock as a time, for the outbox's waits (a retry due in 30 s is due in
        30 s, whatever the wall clock does meanwhile)."""
        return datetime.fromtimestamp(self._tick(), UTC)

    def _queue(self, transitions: list[Transition], now: datetime) -> None:
        """One notification per target for all of one step's changes, due at `now` (steady)."""
        message = digest(transitions)
        for target in self.settings.targets:
            self.outbox.add(
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

    def _dispatch(self) -> None:
        now = self._steady_now()
        for head in self.outbox.due(now, busy=self._in_flight):
            self._in_flight[head.id] = asyncio.get_running_loop().create_task(
                self._deliver(self.outbox.batch(head, now))
            )

    async def _deliver(self, batch: list[Notification]) -> None:
        """One request to one target: its first waiting notification and those due behind it.
        A failure counts against the first only (the others wait behind it, in order)."""
        notification = batch[0]
        title, body, change = combine(batch)
        try:
            # Every key in the outbox is a configured target's (open() drops the others).
            target = self._targets[notification.target]
            try:
                accepted = await target.send(title, body, change)
                reason = "refused or unreachable"
            except Exception as exc:  # any plugin failure is one failed attempt
                accepted, reason = False, type(exc).__name__
            now, steady = self._clock(), self._steady_now()
            if accepted:
                for sent in batch:
                    self.outbox.delivered(sent.id)
                    for key in sent.alerts:
                        if key in self.state.alerts:
                            alert = self.state.alerts[key]
                            self.state.alerts[key] = replace(
                                alert, episode=replace(alert.episode, last_notified=now)
                            )
                log.info("notification delivered", extra=logs.fields(
                    target=target.label, title=title, notifications=len(batch),
                    attempts=notification.attempts + 1))  # fmt: skip
            else:
                settings = self.settings
                retry = self.outbox.failed(
                    notification.id, steady, settings.retry_delays_s,
                    give_up_s=settings.give_up_s, jitter=random.random(),  # noqa: S311  # not a secret
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
            self._unsaved_deliveries = True
        finally:
            self._in_flight.pop(notification.id, None)
        if not self._closing:
            self._dispatch()  # the target's next notification, if due, without waiting a step
            if not self._in_flight and self._unsaved_deliveries:
                self._save()  # a restart right after must not notify again what was delivered

    # The heartbeat ---------------------------------------------------------------------------

    @property
    def held_events(self) -> int:
        """Events recorded but not in the spool yet (it refused them): kept in the state."""
        return len(self.state.unspooled)

    @property
    def limits_waiting_since(self) -> datetime | None:
        """Since when the limits wait for the snapshots in the writer's buffer; None: they don't."""
        return self._waiting_since

    def firing(self) -> list[dict[str, Any]]:
        """The alerts firing now, as published in the heartbeat."""
        return [alert.view() for alert in self.state.alerts.values() if alert.episode.firing]

    def _publish(self, state: str) -> None:
        beat = status.Heartbeat(
            process="alerter",
            at=self._clock(),
            interval_s=self.settings.interval_s,
            state=state,
            last_db_error=self._db_error,
            firing=tuple(self.firing()),
            details={
                "undelivered": len(self.outbox.pending),
                "targets": len(self.settings.targets),
                "limits_waiting_since": saved.stamp(self._waiting_since),
            },
        )
        status.publish_reporting(self.troubles, self.settings.paths.run_dir, beat)


def _number(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.6g}"
