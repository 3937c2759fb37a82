"""The one list of figures against the table's columns, the chart windows, the event lanes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from web.chart_windows import Source, Window, rollup_usable, source, step_for, window
from web.event_lanes import lane
from web.figures import Columns, charted, figures, panels

# The columns of migration 001, as information_schema lists them.
BEFORE = {
    "id": "uuid",
    "ts": "timestamp with time zone",
    "account": "text",
    "mode": "text",
    "net_delta": "double precision",
    "net_gamma": "double precision",
    "net_theta": "double precision",
    "net_vega": "double precision",
    "net_dollar_delta": "double precision",
    "position_count": "integer",
    "option_count": "integer",
    "options_with_greeks": "integer",
    "stalest_greek_age_s": "double precision",
    "underlyings": "jsonb",
    "stored_at": "timestamp with time zone",
}
# What the trader-grade migration (002) adds.
AFTER = {
    **BEFORE,
    "format_version": "smallint",
    "currency": "text",
    "net_dollar_gamma": "double precision",
    "net_beta_delta": "double precision",
    "completeness": "jsonb",
    "net_liquidation": "double precision",
    "unrealized_pnl": "double precision",
    "daily_pnl": "double precision",
}


def test_today_s_table_shows_its_five_figures_in_four_panels() -> None:
    """The columns of today's portfolio_greeks give its five known figures, grouped in their four
    panels."""
    columns = Columns(BEFORE)
    assert [f.column for f in figures(columns)] == [
        "net_dollar_delta", "net_gamma", "net_theta", "net_vega", "net_delta",
    ]  # fmt: skip
    assert {name: [f.column for f in members] for name, members in panels(columns).items()} == {
        "Dollar delta": ["net_dollar_delta"],
        "Gamma": ["net_gamma"],
        "Theta": ["net_theta"],
        "Vega": ["net_vega"],
    }


def test_columns_a_migration_adds_appear_with_no_code_change() -> None:
    """Beta-weighted delta and dollar gamma get their panels, the account's value and P&L join
    the table; none of them is named anywhere but the one list."""
    columns = Columns(AFTER)
    assert panels(columns)["Beta-weighted delta"][0].column == "net_beta_delta"
    assert [f.column for f in panels(columns)["Dollar gamma"]] == ["net_dollar_gamma"]
    assert [f.column for f in panels(columns)["Gamma"]] == ["net_gamma"]  # never one axis
    shown = [f.column for f in figures(columns)]
    assert {"net_liquidation", "unrealized_pnl", "daily_pnl"} <= set(shown)
    assert "net_beta_delta" in charted(columns)
    assert "net_liquidation" not in charted(columns)
    assert "format_version" not in shown  # a number, not a figure: /metrics exports it as is


def test_a_numeric_column_nobody_named_is_still_shown_under_its_own_name() -> None:
    """A numeric column the figure list does not know is shown last, labelled by its name, in no
    panel; a text column is not shown."""
    columns = Columns({**BEFORE, "net_rho": "double precision", "note": "text"})
    other = figures(columns)[-1]
    assert (other.column, other.label, other.unit, other.panel) == (
        "net_rho",
        "net_rho",
        None,
        None,
    )
    assert "note" not in [f.column for f in figures(columns)]
    assert "net_rho" in columns.numeric
    assert "option_count" in columns.numeric  # exported as a gauge, shown as completeness


@pytest.mark.parametrize(
    ("span_s", "step_s"),
    [
        (3600, 5),  # 3600 / 720 = 5 s: every row its own bucket
        (3601, 10),  # 3601 / 720 = 5.001 -> the next readable width
        (86_400, 120),  # 86400 / 720 = 120 s
        (5 * 86_400, 600),  # 432000 / 720 = 600 s: 720 points, not 86,400
        (30, 5),  # never below the poll interval
        (10 * 365 * 86_400, 86_400),  # capped at a day
    ],
)
def test_bucket_width_draws_at_most_720_points(span_s: float, step_s: int) -> None:
    """A chart's bucket is the narrowest readable width that keeps it to 720 points, never under the
    5 s poll, never over a day."""
    assert step_for(span_s) == step_s


def test_windows_end_now_and_today_starts_at_midnight_in_new_york() -> None:
    """Each window ends now; `today` starts at midnight in New York; an unknown window name is
    refused."""
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York (EST, UTC-5)
    assert window("1h", now).start == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert window("5d", now).start == datetime(2026, 2, 25, 15, 0, tzinfo=UTC)
    today = window("today", now)
    assert today.start == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 00:00 EST = 05:00 UTC
    assert today.step_s == 60  # 10 h = 36000 s / 720 = 50 s -> the next readable width, 60
    with pytest.raises(ValueError, match="unknown window"):
        window("1y", now)


T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # on the hour
BOTH = {"portfolio_greeks_1m", "portfolio_greeks_1h"}
MINUTES = {"portfolio_greeks_1m"}


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("start_s", "end_s", "step_s", "usable", "expected"),
    [
        # 5-s buckets: raw rows only, whatever rollups there are.
        (0, 3600, 5, BOTH, Source(None)),
        # 600-s buckets from 14:59:30 to 16:00:10: the minutes 15:00 to 16:00 rolled up, the
        # first 30 s and last 10 s raw (start rounded up, end rounded down to the minute).
        (-30, 3610, 600, BOTH, Source("portfolio_greeks_1m", 60, _at(0), _at(3600))),
        # 2-h buckets: hours; start 14:59:30 rounds up to 15:00, end 18:30 down to 18:00.
        (-30, 12_600, 7200, BOTH, Source("portfolio_greeks_1h", 3600, _at(0), _at(10_800))),
        # the same without the hourly table: its minutes (18:30 is on a minute).
        (-30, 12_600, 7200, MINUTES, Source("portfolio_greeks_1m", 60, _at(0), _at(12_600))),
        # 90-s buckets are not whole minutes: raw.
        (0, 3600, 90, BOTH, Source(None)),
        # 60-s buckets over 15:00:10 to 15:00:50: no whole minute inside, raw.
        (10, 50, 60, BOTH, Source(None)),
        # no rollup tables (before migration 004): raw.
        (0, 86_400, 600, set(), Source(None)),
    ],
)  # fmt: skip
def test_long_buckets_read_the_widest_rollup_over_its_whole_buckets(
    start_s: int, end_s: int, step_s: int, usable: set[str], expected: Source
) -> None:
    """Buckets of whole minutes or hours read the widest rollup table there is over the whole
    buckets inside the span, raw rows at its ragged ends; other widths, or no rollups, read raw
    rows."""
    assert source(Window("w", _at(start_s), _at(end_s), step_s), usable) == expected


def test_a_rollup_is_usable_only_with_last_min_and_max_of_every_charted_figure() -> None:
    """A rollup table serves a chart only when it has the last, min and max column of every figure
    charted."""
    full = frozenset({"net_theta", "net_theta_min", "net_theta_max"})
    columns = Columns(
        BEFORE, {"portfolio_greeks_1m": full, "portfolio_greeks_1h": full - {"net_theta_max"}}
    )
    assert rollup_usable(columns, "portfolio_greeks_1m", ["net_theta"])
    assert not rollup_usable(columns, "portfolio_greeks_1h", ["net_theta"])  # no max
    assert not rollup_usable(columns, "portfolio_greeks_1m", ["net_theta", "net_vega"])
    assert not rollup_usable(Columns(BEFORE), "portfolio_greeks_1m", ["net_theta"])  # no table


@pytest.mark.parametrize(
    ("event", "level", "expected"),
    [
        ("gap", "warning", "gap"),
        ("disconnected", "warning", "connection"),
        ("connected", "info", "connection"),
        ("reset_window_entered", "info", "reset window"),
        ("alert_fired", "warning", "alert"),
        ("alert_resolved", "info", "alert"),
        ("probe_failed", "warning", "other"),  # not routine: any warning is drawn
        ("market_data_budget", "info", None),  # routine: not drawn
    ],
)
def test_event_lanes(event: str, level: str, expected: str | None) -> None:
    """Each known event goes on its lane; any other warning on `other`; routine info events are not
    drawn."""
    assert lane(event, level) == expected
