"""The collector: every 5 s, each account's net Greeks from the gateway into the spool.

Two tasks share one source. The *keeper* owns the connection: it connects, reconnects on the
5/10/20 s schedule, probes for stalls, and reports reset windows entered and left. The *ticker*
runs the drift-free schedule: at each tick it reads the holdings and appends one snapshot per
account, and the P&L explain of the interval since the account's previous snapshot (it keeps
that snapshot's holdings; collector/explain.py); every BRIDGE_SCENARIO_INTERVAL_S it also
revalues them under the scenario grid in a worker process, and appends one `scenario` record per
account when done. In PORTAL mode the Greeks the gateway's rounding destroyed are recomputed
before the snapshot, in a worker process of their own (collector/recompute_worker.py): QuantLib
never runs on the event loop. A tick that produced nothing (disconnected, too slow, the process
down) is never invented: when snapshots resume, the ticks in between are reported as one `gap`
event.
`tick_once()` is the finite step tests await.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

from collector import explain
from collector.backoff import ReconnectBackoff
from collector.betas import MIN_RETURNS, Bar, BetaBook, beta_of
from collector.errors import (
    ClientIdInUse,
    CollectorError,
    GatewayPacing,
    GatewayStalled,
    GatewayUnavailable,
    SessionRequired,
)
from collector.events import Dropped, EventLog, SpoolWriter
from collector.expiry import by_expiry, expiry_day, expiry_record
from collector.greeks import (
    LINEAR_TYPES,
    OPTION_TYPES,
    AccountContext,
    Holding,
    aggregate,
    snapshot,
)
from collector.legs import legs_record
from collector.recompute_worker import Recomputed, RecomputeInWorker
from collector.revaluation import Market, account_lines
from collector.schedule import Schedule, next_tick
from collector.settings import CollectorSettings
from collector.source import AccountView, GreeksSource
from collector.worker import Worker
from shared import heartbeat_files, logs, records
from shared.durable import atomic_replace
from shared.reset_window import ResetWindow, active_window
from shared.service import pause
from shared.spool import SpoolAppender
from shared.troubles import Troubles

log = logging.getLogger("collector")

STATE_NAME = "collector.state"
# After a failed history request, betas are asked for again this much later.
_BETA_RETRY: Final = timedelta(minutes=5)
# While the benchmark's contract is being looked up, betas are tried again this much later.
_BENCHMARK_WAIT: Final = timedelta(seconds=30)
# The keeper looks at the connection this often; a stall probe runs every stall_probe_s.
_WATCH_S = 1.0
# A tick is late when its work takes this share of the interval: the gateway's read, then the
# recomputed Greeks within what is left of it.
_TICK_BUDGET_SHARE = 0.8


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TickReport:
    index: int
    snapshots: int
    spooled: bool


class Collector:
    def __init__(
        self,
        settings: CollectorSettings,
        *,
        source: GreeksSource | None = None,
        clock: Callable[[], datetime] = _utc_now,
        recompute_worker: Worker | None = None,
    ) -> None:
        self.settings = settings
        self.schedule = Schedule(settings.poll_interval_s)
        self._clock = clock
        self._spool = SpoolAppender(
            settings.paths.spool_dir, segment_max_bytes=settings.segment_max_bytes
        )
        self.spool_writer = SpoolWriter(self._spool, max_held_records=settings.held_max_records)
        self.events = EventLog(
            settings.mode, self.spool_writer, clock=clock, in_reset_window=self.in_reset_window
        )
        self.spool_writer.on_dropped = self._report_dropped
        self.source = source or _make_source(settings, self.events, clock)
        self._state_path = settings.paths.run_dir / STATE_NAME
        self.last_produced: int | None = None
        self.last_snapshot_at: dict[str, datetime] = {}
        self.backoff = ReconnectBackoff(settings.reconnect_delays_s)
        self._was_connected = False
        self._window: ResetWindow | None = None
        self._clock_behind = False
        self._legs_window: int | None = None  # the BRIDGE_LEGS_INTERVAL_S window last stored
        self._expiry_window: int | None = None  # the BRIDGE_EXPIRY_INTERVAL_S window last stored
        self.betas = BetaBook(settings.beta_benchmark, settings.beta_overrides)
        self._beta_refresh: asyncio.Task[None] | None = None
        self._overrides_recorded: date | None = None
        self._beta_retry_at: datetime | None = None
        self._benchmark_unknown_said: date | None = None
        self._benchmark_bars: tuple[date, list[Bar]] | None = None  # the day's, kept
        self.troubles = Troubles(log)  # retried failures (the heartbeat), reported once each
        self._market = Market(
            rate=settings.risk_free_rate_pct / 100,
            dividend_yield=settings.dividend_yield_pct / 100,
        )
        # PORTAL: the Greeks its rounding destroys, recomputed in a worker process (the
        # socket's are exact: never)
        self._recompute = RecomputeInWorker(self._market, recompute_worker)
        self._recompute_failing = False  # said once per episode of failed recomputes
        self._revaluation: asyncio.Task[None] | None = None
        self._grid_worker = Worker("scenario grid")  # started with the first grid
        self.scenarios_skipped = 0  # grids due while the previous one was still being computed
        # Each account's holdings at its latest snapshot: the start of the next explain.
        self._explain_start: dict[str, explain.End] = {}

    def in_reset_window(self, now: datetime) -> bool:
        return active_window(self.settings.reset_windows, now) is not None

    # Lifecycle -------------------------------------------------------------------------------

    def open(self) -> None:
        """Take the spool (a new segment) and recall the last tick produced before a restart."""
        self._spool.open(now_us=time.time_ns() // 1000)
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.last_produced = int(json.loads(self._state_path.read_text())["last_tick"])
        except (FileNotFoundError, KeyError, ValueError):
            self.last_produced = None

    async def close(self) -> None:
        if self._revaluation is not None:
            self._revaluation.cancel()  # a grid not finished is not stored
            with contextlib.suppress(asyncio.CancelledError):
                await self._revaluation
        self._grid_worker.close()
        self._recompute.close()
        if self._beta_refresh is not None:
            self._beta_refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beta_refresh
        await self.source.disconnect()
        self._spool.close()

    # The connection --------------------------------------------------------------------------

    async def connect_once(self) -> bool:
        """One connection attempt, reported; True when connected."""
        attempt = self.backoff.attempts + 1
        self.events.emit(
            "info",
            "reconnect_attempt" if attempt > 1 or self._was_connected else "connect_attempt",
            f"connecting to the gateway (attempt {attempt})",
            details={"attempt": attempt},
        )
        try:
            await self.source.connect()
        except ClientIdInUse as exc:
            self.events.emit(
                "error",
                "client_id_in_use",
                f"{exc}: retrying with the same id (another application must release it)",
                code=326,
            )
            return False
        except SessionRequired as exc:
            self.events.emit(
                "error",
                "session_required",
                f"{exc} (an operator must log in; retrying)",
                expected_in_reset=True,
            )
            return False
        except CollectorError as exc:
            self.events.emit(
                "warning",
                "connect_failed",
                str(exc),
                code=exc.code,
                expected_in_reset=True,
            )
            return False
        self.backoff.reset()
        self._was_connected = True
        self.events.emit("info", "connected", f"connected in {self.settings.mode} mode")
        return True

    async def keep_connected(self, stop: asyncio.Event) -> None:
        next_probe = time.monotonic() + self.settings.stall_probe_s
        connected_before = False
        while not stop.is_set():
            self._watch_reset_window()
            if not self.source.connected:
                if connected_before:
                    self.events.emit(
                        "warning", "disconnected", "the gateway connection closed",
                        expected_in_reset=True,
                    )  # fmt: skip
                connected_before = False
                if not await self.connect_once():
                    await pause(stop, self.backoff.next_delay_s())
                    continue
                connected_before = True
                next_probe = time.monotonic() + self.settings.stall_probe_s
            elif time.monotonic() >= next_probe:
                next_probe = time.monotonic() + self.settings.stall_probe_s
                await self._probe()
                connected_before = self.source.connected
            await pause(stop, _WATCH_S)

    async def _probe(self) -> None:
        try:
            await self.source.probe()
        except GatewayStalled as exc:
            self.events.emit(
                "error", "stalled", f"{exc}: forcing a reconnect", expected_in_reset=True
            )
            await self.source.disconnect()
        except CollectorError as exc:
            self.events.emit("warning", "probe_failed", str(exc), expected_in_reset=True)
            await self.source.disconnect()

    def _watch_reset_window(self) -> None:
        window = active_window(self.settings.reset_windows, self._clock())
        if window == self._window:
            return
        if window is not None:
            self.events.emit(
                "info", "reset_window_entered", f"inside IBKR's daily reset window {window}"
            )
        else:
            self.events.emit("info", "reset_window_left", f"left the reset window {self._window}")
        self._window = window

    # Ticks -----------------------------------------------------------------------------------

    async def tick_once(self, index: int) -> TickReport:
        """Read the holdings and spool one snapshot per account for tick `index`."""
        tick_ts = self.schedule.at(index)
        started_s = time.monotonic()
        start_late_ms = (self._clock() - tick_ts).total_seconds() * 1000
        if not self.source.connected:
            return TickReport(index, 0, spooled=True)
        now = self._clock()
        try:
            holdings = await asyncio.wait_for(
                self.source.read(now), _TICK_BUDGET_SHARE * self.settings.poll_interval_s
            )
        except TimeoutError:
            self.events.emit("warning", "tick_late", f"tick {tick_ts:%H:%M:%S} took too long")
            return TickReport(index, 0, spooled=True)
        except GatewayUnavailable as exc:
            self.events.emit("warning", "read_failed", str(exc), expected_in_reset=True)
            return TickReport(index, 0, spooled=True)
        except GatewayPacing:  # the source reports a penalty once; its ticks become a gap
            return TickReport(index, 0, spooled=True)
        self._report_gap(index)
        lines = []
        explains = []  # written after the tick's other lines
        betas = self.betas.betas()
        # The legs at the first tick of each BRIDGE_LEGS_INTERVAL_S window, the Greeks by expiry
        # at the first of each BRIDGE_EXPIRY_INTERVAL_S window (all ticks when the window is no
        # longer than the poll interval): both change slowly, and at every tick they would cost
        # several times the snapshot's own storage (docs/benchmarks.md, "Storage budget").
        legs_window = math.floor(tick_ts.timestamp() / self.settings.legs_interval_s)
        legs_due = legs_window != self._legs_window
        self._legs_window = legs_window
        expiry_window = math.floor(tick_ts.timestamp() / self.settings.expiry_interval_s)
        expiry_due = expiry_window != self._expiry_window
        self._expiry_window = expiry_window
        # The figures' holdings: the Greeks the gateway's rounding destroyed recomputed, in
        # the worker while the loop serves the rest, within what the read left of the tick.
        budget_s = started_s + _TICK_BUDGET_SHARE * self.settings.poll_interval_s
        recomputed = await self._recompute.figured(
            {account: view.holdings for account, view in holdings.items()},
            now,
            timeout_s=max(0.0, budget_s - time.monotonic()),
        )
        self._report_recompute(tick_ts, recomputed)
        figured = recomputed.accounts
        for account, view in sorted(holdings.items()):
            figures, interval = self._account_lines(
                account, view, figured[account], tick_ts, now=now, betas=betas,
                legs_due=legs_due, expiry_due=expiry_due,
            )  # fmt: skip
            lines += figures
            if interval is not None:
                explains.append(interval)
        snapshots = len(holdings)
        lines += self._beta_records(holdings, now)
        self._start_revaluation(index, tick_ts, holdings, now)
        spooled = self.spool_writer.write(lines)
        if explains:  # written apart: a tick's snapshots never wait on its explains' room
            self.spool_writer.write(explains)
        self.last_produced = index
        lag_ms = (self._clock() - tick_ts).total_seconds() * 1000
        log.debug(
            "tick",
            extra=logs.fields(
                index=index,
                snapshots=snapshots,
                start_late_ms=f"{start_late_ms:.1f}",
                lag_ms=f"{lag_ms:.1f}",
            ),
        )
        if spooled:
            # Only a tick on disk counts: held in memory, it is lost if the process dies, and
            # the gap reported after the restart must cover it.
            try:
                atomic_replace(self._state_path, json.dumps({"last_tick": index}).encode())
            except OSError as exc:
                # Only the gap report after a restart depends on it; the snapshots are spooled.
                log.warning("cannot save the last tick", extra=logs.fields(reason=exc.strerror))
        return TickReport(index, snapshots, spooled)

    def _account_lines(
        self,
        account: str,
        view: AccountView,
        figured: Sequence[Holding],
        tick_ts: datetime,
        *,
        now: datetime,
        betas: dict[str, float],
        legs_due: bool,
        expiry_due: bool,
    ) -> tuple[list[bytes], bytes | None]:
        """One account's lines of a tick: its snapshot (from `figured`: its holdings with the
        Greeks the gateway's rounding destroyed recomputed) and, when due, its Greeks by expiry
        and its legs; and apart, the explain of the interval since its previous snapshot (None
        for its first). All but the snapshot read the gateway's Greeks as stated."""
        context = _context(view, betas)
        record = snapshot(
            account, tick_ts, self.settings.mode, context, aggregate(figured, context, now)
        )
        lines = [records.encode(record)]
        end = explain.End(tick_ts, tuple(view.holdings), context)
        start = self._explain_start.get(account)
        interval = (
            None
            if start is None
            else records.encode(
                explain.record(account, self.settings.mode, explain.explain(start, end))
            )
        )
        self._explain_start[account] = end
        self.last_snapshot_at[account] = tick_ts
        if expiry_due:
            by_bucket = by_expiry(view.holdings, context, expiry_day(tick_ts))
            expiry = expiry_record(account, tick_ts, self.settings.mode, context, by_bucket)
            lines.append(records.encode(expiry))
        if legs_due:
            legs = legs_record(account, tick_ts, self.settings.mode, view.holdings, context)
            if legs.legs:  # an account without positions has no leg to store
                lines.append(records.encode(legs))
        return lines, interval

    def _start_revaluation(
        self, index: int, tick_ts: datetime, views: dict[str, AccountView], now: datetime
    ) -> None:
        """Every BRIDGE_SCENARIO_INTERVAL_S (ticks whose index it divides): revalue the tick's
        holdings in the worker process, and spool one `scenario` record per account when done.
        A process, not a thread nor steps on the loop: both made ticks late by tens of ms on a
        busy machine (docs/scenarios.md). A grid due while the last is still being computed is
        skipped and counted, never queued."""
        interval_s = self.settings.scenario_interval_s
        if interval_s <= 0 or index % max(1, round(interval_s / self.schedule.interval_s)):
            return
        if self._revaluation is not None and not self._revaluation.done():
            self.scenarios_skipped += 1
            return
        inputs = [(account, list(view.holdings), _context(view, self.betas.betas()))
                  for account, view in sorted(views.items())]  # fmt: skip

        async def run() -> None:
            try:
                job = self._grid_worker.start(
                    account_lines, inputs, tick_ts, self.settings.mode, self._market, now
                )
                lines = await job.result()
            except Exception as exc:  # a defect (or a dead worker) must not stop the ticks
                self.events.emit(
                    "error", "scenarios_failed",
                    f"the scenario grid of tick {tick_ts:%H:%M:%S} failed: {exc!r}",
                )  # fmt: skip
                return
            self.spool_writer.write(lines)

        self._revaluation = asyncio.create_task(run())

    def _report_recompute(self, tick_ts: datetime, recomputed: Recomputed) -> None:
        """A tick whose options in need went unpriced: one `recompute_failed` event when it
        starts (each is counted in the heartbeat), one `recompute_resumed` when a tick is whole
        again."""
        if recomputed.failure is not None and not self._recompute_failing:
            self.events.emit(
                "error", "recompute_failed",
                f"tick {tick_ts:%H:%M:%S}: {recomputed.unpriced} options' Greeks the rounding"
                f" destroyed were not recomputed ({recomputed.failure}); they stay as the"
                " gateway rounded them, imprecise",
                details={"unpriced": recomputed.unpriced, "reason": recomputed.failure},
            )  # fmt: skip
        elif recomputed.failure is None and self._recompute_failing:
            self.events.emit(
                "info", "recompute_resumed",
                f"tick {tick_ts:%H:%M:%S}: the Greeks the rounding destroyed are recomputed"
                " again",
            )  # fmt: skip
        self._recompute_failing = recomputed.failure is not None

    @property
    def recompute_failures(self) -> dict[str, int]:
        """Ticks whose recomputed Greeks went unpriced, by kind (collector/recompute_worker.py)."""
        return self._recompute.failures

    async def scenarios_settled(self) -> None:
        """Wait for the scenario grid being computed, if any, to be spooled."""
        if self._revaluation is not None:
            await asyncio.shield(self._revaluation)

    def _report_dropped(self, dropped: Dropped) -> None:
        """Records the full disk made us drop from memory: one `gap` event, with their ticks."""
        details: dict[str, object] = {
            "reason": "spool_unwritable",
            "dropped_snapshots": dropped.snapshots,
            "dropped_events": dropped.events,
            "dropped_figures": dropped.figures,
        }
        span = ""
        if dropped.first_tick is not None and dropped.last_tick is not None:
            details.update({"from": dropped.first_tick, "to": dropped.last_tick})
            span = f", ticks {dropped.first_tick} to {dropped.last_tick}"
        self.events.emit(
            "error",
            "gap",
            f"{dropped.snapshots} snapshots, {dropped.figures} lines of their Greeks by expiry,"
            f" legs and P&L explain, and {dropped.events} events dropped while the spool could"
            f" not be written (memory bound reached){span}",
            details=details,
        )

    def next_tick(self, candidate: int) -> int:
        """The tick to produce next: `candidate`, or the one after the last tick produced (kept
        across restarts) when the clock stepped back, so no tick, and no snapshot id, is
        produced twice; the step is reported once."""
        plan = next_tick(
            self.schedule,
            candidate=candidate,
            last_produced=self.last_produced,
            now=self._clock(),
        )
        if plan.clock_behind_s > 0 and not self._clock_behind:
            assert self.last_produced is not None  # only then can the clock be behind it
            last, resume = self.schedule.at(self.last_produced), self.schedule.at(plan.index)
            self.events.emit(
                "warning",
                "clock_stepped_back",
                f"the clock reads {plan.clock_behind_s:.3f} s before the last tick produced "
                f"({last:%Y-%m-%d %H:%M:%S} UTC): no snapshot until {resume:%H:%M:%S} UTC, "
                "so no tick is produced twice",
                details={
                    "last_tick": last.isoformat(),
                    "next_tick": resume.isoformat(),
                    "behind_s": plan.clock_behind_s,
                },
            )
        self._clock_behind = plan.clock_behind_s > 0
        return plan.index

    def _beta_records(self, views: dict[str, AccountView], now: datetime) -> list[bytes]:
        """Start the day's regressions when due (in the background: a year of bars per
        underlying takes longer than a tick), and spool the overrides once a day."""
        today = now.astimezone(UTC).date()
        lines = []
        if self.betas.overrides and self._overrides_recorded != today:
            self._overrides_recorded = today
            lines = [
                records.encode(
                    _beta_record(
                        symbol,
                        self.betas.benchmark,
                        beta=beta,
                        sample_size=None,
                        source="file",
                        now=now,
                    )
                )
                for symbol, beta in sorted(self.betas.overrides.items())
            ]
        symbols = {
            holding.symbol
            for view in views.values()
            for holding in view.holdings
            if holding.quantity != 0 and holding.sec_type in OPTION_TYPES | LINEAR_TYPES
        }
        currencies = {
            holding.symbol: holding.currency
            for view in views.values()
            for holding in view.holdings
            if holding.currency
        }
        benchmark_currency = next(
            (view.benchmark_currency for view in views.values()),
            self.settings.beta_benchmark_currency,
        )
        due = self.betas.due(symbols, today)
        idle = self._beta_refresh is None or self._beta_refresh.done()
        if due and idle and (self._beta_retry_at is None or now >= self._beta_retry_at):
            self._beta_refresh = asyncio.create_task(
                self.refresh_betas(
                    due, now, currencies=currencies, benchmark_currency=benchmark_currency
                )
            )
        return lines

    async def refresh_betas(
        self,
        symbols: list[str],
        now: datetime,
        *,
        currencies: Mapping[str, str] | None = None,
        benchmark_currency: str | None = None,
    ) -> None:
        """Regress each symbol on the benchmark over the gateway's daily bars; spool each beta
        found as a `beta` record. A symbol without bars is missing for the day (never 1.0).
        A symbol in another currency than the benchmark's is converted at the pair's daily
        closes when the gateway serves them; else it is regressed in its own currency and the
        `beta_in_local_currency` event says so."""
        today = now.astimezone(UTC).date()
        benchmark = self.betas.benchmark
        cached = self._benchmark_bars
        try:
            if cached is None or cached[0] != today:
                answer = await self.source.history([benchmark])
                if answer.get(benchmark) is None:
                    self._no_benchmark_bars(benchmark in answer, symbols, today, now)
                    return
                cached = self._benchmark_bars = (today, answer[benchmark] or [])
            bars = await self.source.history(symbols)
            rates = await self._rates(symbols, currencies or {}, benchmark_currency)
        except CollectorError as exc:
            self._beta_retry_at = now + _BETA_RETRY
            self.events.emit(
                "warning", "betas_deferred",
                f"betas not refreshed: {exc}; next try in {_BETA_RETRY.total_seconds():.0f} s",
            )  # fmt: skip
            return
        benchmark_bars = cached[1]
        lines = []
        without = []
        for symbol in symbols:
            if symbol not in bars:
                continue  # the source does not know its contract yet: next tick
            own = bars[symbol]
            currency = (currencies or {}).get(symbol)
            fx = rates.get(currency) if currency else None
            estimate = (
                beta_of(own, benchmark_bars, fx=fx, lagged=self.settings.beta_lagged)
                if own is not None
                else None
            )
            self.betas.record(symbol, today, estimate)
            if estimate is None:
                without.append(symbol)
                continue
            lines.append(
                records.encode(
                    _beta_record(
                        symbol,
                        benchmark,
                        beta=estimate.beta,
                        sample_size=estimate.sample_size,
                        source="history",
                        now=now,
                    )
                )
            )
        if without:
            self.events.emit(
                "info", "betas_missing",
                f"no beta for {', '.join(without)} (no bars, or fewer than {MIN_RETURNS} daily "
                "returns in common with the benchmark): left out of net_beta_delta",
                details={"symbols": without},
            )  # fmt: skip
        if lines:
            self.spool_writer.write(lines)

    async def _rates(
        self, symbols: list[str], currencies: Mapping[str, str], benchmark_currency: str | None
    ) -> dict[str, list[Bar]]:
        """The daily rate of each symbol's currency in the benchmark's, where the gateway has
        it; the currencies it has none for are said once per refresh."""
        wanted = sorted(
            {currencies[s] for s in symbols if s in currencies} - {benchmark_currency or ""}
        )
        if not benchmark_currency or not wanted:
            return {}
        rates: dict[str, list[Bar]] = {}
        for currency in wanted:
            found = await self.source.fx_history(currency, benchmark_currency)
            if found is not None:
                rates[currency] = found
        local = [s for s in symbols if currencies.get(s) in set(wanted) - set(rates)]
        if local:
            self.events.emit(
                "warning", "beta_in_local_currency",
                f"no daily {'/'.join(sorted(set(wanted) - set(rates)))}.{benchmark_currency}"
                f" rates from the gateway: the betas of {', '.join(sorted(local))} are regressed"
                " in their own currency (biased by the rate's co-movement with the benchmark)",
                details={"symbols": sorted(local)},
            )  # fmt: skip
        return rates

    def _no_benchmark_bars(
        self, answered: bool, symbols: list[str], today: date, now: datetime
    ) -> None:
        """Without the benchmark's bars no beta can be regressed: if the gateway answered
        without bars, none today; if it does not know the contract yet, try again later."""
        benchmark = self.betas.benchmark
        if answered:
            for symbol in symbols:
                self.betas.record(symbol, today, None)
            self.events.emit(
                "warning", "betas_unavailable",
                f"the gateway serves no daily bars of the benchmark {benchmark}: no betas today",
            )  # fmt: skip
        else:  # looked up by the source meanwhile; said once a day
            self._beta_retry_at = now + _BENCHMARK_WAIT
            if self._benchmark_unknown_said != today:
                self._benchmark_unknown_said = today
                self.events.emit(
                    "warning", "betas_deferred",
                    f"the benchmark {benchmark}'s contract is not known yet: betas wait for it",
                )  # fmt: skip

    def _report_gap(self, index: int) -> None:
        missed = self.schedule.missed(self.last_produced, index)
        if not missed:
            return
        first, last = self.schedule.at(missed[0]), self.schedule.at(missed[-1])
        self.events.emit(
            "warning",
            "gap",
            f"{len(missed)} ticks without snapshots, {first:%Y-%m-%d %H:%M:%S} to "
            f"{last:%H:%M:%S} UTC (not invented)",
            expected_in_reset=True,
            details={"from": first.isoformat(), "to": last.isoformat(), "ticks": len(missed)},
            # Re-emitted after a crash, the same gap must be stored once: derive its id.
            derived_id=records.event_id("gap", first.isoformat(), last.isoformat()),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop`; the tick in progress finishes first."""
        self.open()
        self._settings_event()
        keeper = asyncio.create_task(self.keep_connected(stop))
        index = self.next_tick(self.schedule.next_index(self._clock()))
        try:
            while not stop.is_set():
                delay_s = (self.schedule.at(index) - self._clock()).total_seconds()
                await pause(stop, max(0.0, delay_s))
                if stop.is_set():
                    break
                # A slow tick never shifts the schedule: skip to the current tick; the ticks
                # passed over become part of the next gap report.
                index = max(index, self.schedule.index_at_or_before(self._clock()))
                await self.tick_once(index)
                self._publish_status("running")
                index = self.next_tick(index + 1)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            self.events.emit("info", "collector_stopped", "collector stopped")
            self._publish_status("stopped")
            await self.close()

    def _settings_event(self) -> None:
        settings = self.settings
        target = (
            f"{settings.host}:{settings.port} client id {settings.client_id}"
            if settings.mode == "SOCKET"
            else logs.redact(settings.portal_url)
        )
        self.events.emit(
            "info",
            "collector_started",
            f"collector started in {settings.mode} mode against {target}",
            details={"poll_interval_s": settings.poll_interval_s},
        )

    def _publish_status(self, state: str) -> None:
        now = self._clock()
        beat = heartbeat_files.Heartbeat(
            process="collector",
            at=now,
            interval_s=self.settings.poll_interval_s,
            state=state,
            gateway=heartbeat_files.Gateway(
                connected=self.source.connected,
                in_reset_window=self.in_reset_window(now),
                last_error=self.events.last_error,
            ),
            accounts=dict(self.last_snapshot_at),
            details={
                "mode": self.settings.mode,
                "poll_interval_s": self.settings.poll_interval_s,
                # Grids due while the last was still being computed (docs/scenarios.md).
                "scenarios": {
                    "interval_s": self.settings.scenario_interval_s,
                    "skipped": self.scenarios_skipped,
                },
                # Ticks whose recomputed Greeks went unpriced, by kind (docs/collector.md).
                "recompute": {
                    "pricings": self._recompute.pricings,
                    "failures": self._recompute.failures,
                },
                "spool": {
                    "pending_in_memory": self.spool_writer.pending,
                    "held_max_records": self.settings.held_max_records,
                    "dropped": self.spool_writer.dropped,
                    "error": self.spool_writer.last_error,
                },
            },
        )
        heartbeat_files.publish_reporting(self.troubles, self.settings.paths.run_dir, beat)


def _context(view: AccountView, betas: dict[str, float]) -> AccountContext:
    money = view.money
    return AccountContext(
        base_currency=money.base_currency,
        fx_rates=money.fx_rates,
        betas=betas,
        benchmark_price=view.benchmark_price,
        benchmark_currency=view.benchmark_currency,
        benchmark_price_error=view.benchmark_price_error,
        spx_price=view.spx_price,
        net_liquidation=money.net_liquidation,
        unrealized_pnl=money.unrealized_pnl,
        daily_pnl=money.daily_pnl,
    )


def _beta_record(
    symbol: str,
    benchmark: str,
    *,
    beta: float,
    sample_size: int | None,
    source: Literal["history", "file"],
    now: datetime,
) -> records.Beta:
    as_of = now.astimezone(UTC).date()
    return records.Beta(
        id=records.beta_id(symbol, benchmark, as_of),
        ts=now,
        underlying=symbol,
        benchmark=benchmark,
        beta=beta,
        as_of=as_of,
        sample_size=sample_size,
        source=source,
    )


def _make_source(
    settings: CollectorSettings, events: EventLog, clock: Callable[[], datetime]
) -> GreeksSource:
    if settings.mode == "SOCKET":
        from collector.socket_source import SocketSource  # noqa: PLC0415  # only the mode in use

        return SocketSource(settings, events, clock)
    from collector.portal_source import PortalSource  # noqa: PLC0415

    return PortalSource(settings, events, clock)
