"""`/metrics`: Prometheus families built from one observation of the bridge (no I/O here).

A custom collector over what the web program has just read: the heartbeat files, the spool,
buffer and dead letters (the same facts `bridge-status` gathers), the newest row of each account
and the event counts. Names start with `ibkr_bridge_`; a snapshot's figures follow the table's
numeric columns (`ibkr_bridge_net_dollar_delta{account="..."}`), so a column a migration adds is
exported with no code change. An unknown value (a null column, an unread heartbeat) is left out,
never exported as 0. No multiprocess mode: one process, one registry per scrape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from database.circuit_breaker import BreakerState
from shared.health import Facts, Finding, age_s, feed_conditions, judge_feed, worst
from web.figures import Columns

PREFIX = "ibkr_bridge_"

# The `event` label's values: the names the bridge's programs emit (tests/web/test_exposure.py
# checks the code against this list). The name comes from the spool, so it is any text: another
# one is counted under OTHER_EVENT, so a stray or hostile record cannot make a series per name.
KNOWN_EVENTS: frozenset[str] = frozenset(
    {
        # the collector: connection and session
        "collector_started", "collector_stopped", "connect_attempt", "reconnect_attempt",
        "connected", "disconnected", "connect_failed", "client_id_in_use", "session_required",
        "stalled", "probe_failed", "read_failed", "tick_late", "clock_stepped_back", "gap",
        "reset_window_entered", "reset_window_left",
        # the collector: IB's notices (collector/socket_source.py _NOTICES) and the portal
        "ib_error", "connectivity_lost", "connectivity_restored",
        "connectivity_restored_data_lost", "farm_broken", "farm_ok", "farm_inactive",
        "historical_data_unavailable", "market_data_budget", "market_data_fallback",
        "market_data_snapshots", "market_data_lines_exhausted", "market_data_not_subscribed",
        "market_data_partly_subscribed", "market_data_delayed", "market_data_competing_session",
        "contract_unknown", "benchmark_unknown", "bad_position", "account_data_unavailable",
        "portal_auth_state", "pacing_backoff", "pacing_resumed", "bad_quantity",
        "magnifier_unknown", "spx_unknown",
        "betas_deferred", "betas_missing", "betas_unavailable", "beta_in_local_currency",
        "scenarios_failed", "recompute_failed", "recompute_resumed",
        # the writer, the breakers, the alerter
        "spool_segment_missing", "breaker_opened", "breaker_closed",
        "alert_fired", "alert_resolved",
    }
)  # fmt: skip
OTHER_EVENT = "other"
# A closed account's newest row stays for the raw retention (90 days): its gauges are exported
# only while it has a snapshot this recent. A week outlasts a weekend and a holiday, so an
# account silent for a day still shows its stale snapshot_age_seconds (and fires its alert).
ACCOUNT_WINDOW_S = 7 * 86400.0


@dataclass(frozen=True)
class Observation:
    """Everything one scrape or one page refresh shows, read at `now`."""

    now: datetime
    facts: Facts
    findings: list[Finding]
    columns: Columns | None
    latest: list[dict[str, Any]]
    event_counts: dict[str, int] | None
    events_since: datetime | None = None  # when event_counts began: the counter's creation


class BridgeCollector(Collector):
    def __init__(self, observation: Observation) -> None:
        self.observation = observation

    def collect(self) -> Iterator[Metric]:
        yield from self._snapshots()
        yield from self._pipeline()
        yield from self._counters()
        yield from self._alerts()

    def _snapshots(self) -> Iterator[Metric]:
        seen = self.observation
        if seen.columns is None:
            return
        recent = [
            row
            for row in seen.latest
            if (row_age_s := age_s(row.get("ts"), seen.now)) is not None
            and row_age_s <= ACCOUNT_WINDOW_S
        ]
        for column in seen.columns.numeric:
            family = GaugeMetricFamily(
                PREFIX + column, f"portfolio_greeks.{column} of the newest row", labels=["account"]
            )
            for row in recent:
                value = row.get(column)
                if value is not None:
                    family.add_metric([row["account"]], float(value))
            yield family
        age = GaugeMetricFamily(
            PREFIX + "snapshot_age_seconds",
            "Seconds since the tick of the newest stored snapshot",
            labels=["account"],
        )
        for row in recent:
            seconds = age_s(row.get("ts"), seen.now)
            if seconds is not None:
                age.add_metric([row["account"]], seconds)
        yield age

    def _pipeline(self) -> Iterator[Metric]:
        seen = self.observation
        facts = seen.facts
        yield GaugeMetricFamily(
            PREFIX + "spool_lag_records",
            "Spooled records the writer has not consumed yet",
            value=facts.spool_lag_records,
        )
        lag = GaugeMetricFamily(
            PREFIX + "spool_lag_seconds",
            "Age of the oldest spooled record not consumed yet (0: none waiting)",
        )
        if facts.spool_lag_s is not None:
            lag.add_metric([], facts.spool_lag_s)
        elif not facts.spool_lag_records:
            lag.add_metric([], 0.0)
        yield lag
        yield GaugeMetricFamily(
            PREFIX + "buffer_bytes", "Bytes waiting in the buffer for the replayer",
            value=facts.buffer_bytes,
        )  # fmt: skip
        yield GaugeMetricFamily(
            PREFIX + "dead_letters", "Lines in the dead-letter file", value=facts.dead_letters
        )
        breaker = GaugeMetricFamily(
            PREFIX + "breaker_state",
            "1 for the state each process's database breaker is in",
            labels=["process", "state"],
        )
        beats = GaugeMetricFamily(
            PREFIX + "heartbeat_age_seconds",
            "Seconds since each process last published its heartbeat",
            labels=["process"],
        )
        feed = feed_conditions(facts.heartbeats, seen.now)
        for process, seconds in sorted(feed.heartbeat_age_s.items()):
            if seconds is not None:
                beats.add_metric([process], seconds)
        for process, published in sorted(feed.breakers.items()):
            if published in set(BreakerState):
                for state in BreakerState:
                    breaker.add_metric([process, str(state)], float(published == state))
        yield breaker
        yield beats
        if facts.heartbeats.get("collector") is not None:
            in_reset = feed.gateway is not None and feed.gateway.in_reset_window
            # As bridge-status judges it: a stopped or silent collector's last heartbeat still
            # says how it was connected before, which is no longer news.
            disconnected = judge_feed(feed, in_reset_window=in_reset).disconnected
            yield GaugeMetricFamily(
                PREFIX + "gateway_connected",
                "1 when the collector is running and connected to the gateway",
                value=float(disconnected.bad is False),
            )
            yield GaugeMetricFamily(
                PREFIX + "in_reset_window",
                "1 inside one of IBKR's daily reset windows",
                value=float(in_reset),
            )
        yield GaugeMetricFamily(
            PREFIX + "healthy",
            "1 when bridge-status (and /healthz) find nothing unhealthy",
            value=float(worst(seen.findings) != "unhealthy"),
        )
        yield GaugeMetricFamily(
            PREFIX + "database_up",
            "1 when the web program's last read of PostgreSQL succeeded",
            value=float(seen.facts.database_error is None),
        )

    def _counters(self) -> Iterator[Metric]:
        seen = self.observation
        writer = seen.facts.heartbeats.get("writer")
        totals = (writer.details.get("totals") if writer is not None else None) or {}
        for name, what in (
            ("stored", "Records the writer stored since it started"),
            ("buffered", "Records the writer buffered since it started (database down)"),
            ("dead_lettered", "Records the writer dead-lettered since it started"),
        ):
            family = CounterMetricFamily(
                PREFIX + f"records_{name}", what, labels=["process"]
            )  # fmt: skip
            if name in totals:
                family.add_metric(["writer"], float(totals[name]))
            yield family
        events = CounterMetricFamily(
            PREFIX + "events",
            "api_logs rows per event since the web program started (by tick)",
            labels=["event"],
        )
        created = seen.events_since.timestamp() if seen.events_since is not None else None
        for event, count in sorted(bounded_events(seen.event_counts or {}).items()):
            events.add_metric([event], float(count), created=created)
        yield events

    def _alerts(self) -> Iterator[Metric]:
        alerter = self.observation.facts.heartbeats.get("alerter")
        if alerter is None:
            return
        firing = alerter.firing or ()
        yield GaugeMetricFamily(
            PREFIX + "alerts_firing", "Alerts the alerter has firing", value=len(firing)
        )


def bounded_events(counts: Mapping[str, int]) -> dict[str, int]:
    """The counts by label value: known names as they are, every other one summed as other."""
    bounded: dict[str, int] = {}
    for event, count in counts.items():
        label = event if event in KNOWN_EVENTS else OTHER_EVENT
        bounded[label] = bounded.get(label, 0) + count
    return bounded


def exposition_registry(observation: Observation) -> CollectorRegistry:
    """A registry holding only this observation's collector (one per scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(observation))
    return registry
