"""Shaping rows for the page: holes stay holes, gaps carry their span, alerts their details."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shared.heartbeat_files import Heartbeat
from web.chart_windows import Window
from web.payload import beta_delta_gap, events, expiry, firing, legs, series

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def _bucket(offset_s: int, value: float | None) -> dict[str, object]:
    at = T0 + timedelta(seconds=offset_s)
    return {
        "bucket": at,
        "last_ts": at,
        "rows": 1,
        "net_theta__min": value,
        "net_theta__max": value,
        "net_theta__last": value,
        "underlyings": {"SPY": {"net_theta": value, "note": "text is skipped"}},
    }


def test_a_missing_bucket_breaks_the_line_instead_of_joining_across_it() -> None:
    """Buckets at 0, 5 and 20 s (5-s step): one empty bucket at 10 s, so the line breaks."""
    span = Window("1h", T0 - timedelta(hours=1), T0 + timedelta(minutes=1), 5)
    body = series([_bucket(0, 1.0), _bucket(5, 2.0), _bucket(20, 3.0)], ["net_theta"], span)
    assert body["t"] == [(T0 + timedelta(seconds=s)).isoformat() for s in (0, 5, 10, 20)]
    assert body["figures"]["net_theta"]["last"] == [1.0, 2.0, None, 3.0]
    assert body["rows"] == [1, 1, 0, 1]
    assert body["underlyings"] == {"SPY": {"net_theta": [1.0, 2.0, None, 3.0]}}


def test_events_keep_a_gap_s_span_and_drop_routine_ones_oldest_first() -> None:
    """api_logs rows become the event axis oldest first, a gap keeping its span, routine events left
    out, a breaker's opening on its lane."""
    rows = [
        {"ts": T0, "level": "warning", "event": "gap", "message": "3 ticks",
         "details": {"from": "a", "to": "b", "ticks": 3}},
        {"ts": T0 - timedelta(seconds=9), "level": "info", "event": "market_data_budget",
         "message": "routine", "details": {}},
        {"ts": T0 - timedelta(seconds=30), "level": "warning", "event": "alert_fired",
         "message": "theta", "details": {"rule": "theta floor"}},
        {"ts": T0 - timedelta(seconds=20), "level": "warning", "event": "breaker_opened",
         "message": "writer", "details": {"process": "writer"}},
    ]  # fmt: skip
    found = events(rows)
    assert [e["event"] for e in found] == ["alert_fired", "breaker_opened", "gap"]
    assert (found[2]["from"], found[2]["to"]) == ("a", "b")
    assert found[0]["details"] == {"rule": "theta floor"}


def test_firing_alerts_none_without_an_alerter_and_its_fields_with_one() -> None:
    """No alerter heartbeat: None (nothing to show); with one, each firing alert's six fields,
    anything else dropped."""
    assert firing(None) is None
    assert firing(Heartbeat.from_json({"firing": []})) == []
    item = {"rule": "r", "account": "DU1", "figure": "net_theta", "value": -3.0, "limit": -2.0,
            "since": "2026-03-02T14:00:00+00:00", "extra": "ignored"}  # fmt: skip
    assert firing(Heartbeat.from_json({"firing": [item, "not an object"]})) == [
        {key: item[key] for key in ("rule", "account", "figure", "value", "limit", "since")}
    ]


def test_an_expiry_row_becomes_each_scopes_figures_by_bucket() -> None:
    """Rows of [figure] per bucket become per figure its five buckets; unknowns stay null;
    no row, no table (None)."""
    row = {
        "ts": datetime(2026, 3, 2, 14, 30, tzinfo=UTC), "currency": "USD",
        "bucket_figures": [[1.0, 2.0, 3.0, 4.0], [None] * 4, [5.0, 6.0, 7.0, 8.0], [None] * 4,
                           [None] * 4],
        "linear_dollar_delta": 9.0, "completeness": None,
        "underlying_symbols": ["SPY"],
        "underlying_figures": [[[None] * 4, [None] * 4, [5.0, 6.0, 7.0, 8.0], [None] * 4,
                                [None] * 4]],
        "underlying_linear": [None],
    }  # fmt: skip
    table = expiry(row)
    assert table is not None
    assert table["buckets"] == ["0-7", "8-30", "31-90", "91-365", "366+"]
    assert table["total"]["figures"]["net_theta"] == [3.0, None, 7.0, None, None]
    assert table["total"]["linear_dollar_delta"] == 9.0
    assert table["underlyings"]["SPY"]["figures"]["net_vega"] == [None, None, 8.0, None, None]
    assert table["underlyings"]["SPY"]["linear_dollar_delta"] is None
    assert table["incomplete"] == {}
    assert expiry(None) is None


def test_legs_leave_out_the_account_and_write_dates_as_text() -> None:
    """The page needs neither the account nor the mode; an expiry date travels as ISO text."""
    rows = [{"account": "DU1", "mode": "SOCKET", "conid": 7, "expiry": date(2026, 4, 11)}]
    assert legs(rows) == [{"conid": 7, "expiry": "2026-04-11"}]


def test_the_beta_delta_gap_is_ibkrs_less_ours_in_benchmark_shares_or_unknown() -> None:
    """104 against our 100: +4 shares, 4 % of ours (of its size when ours is short); a row
    without IBKR's figure (SOCKET, SPX's price unknown) or without ours has no gap, never 0."""
    row = {"net_beta_delta": 100.0, "gateway_beta_delta_benchmark_shares": 104.0}
    assert beta_delta_gap(row) == {"benchmark_shares": 4.0, "share_of_ours": 0.04}
    short = {"net_beta_delta": -50.0, "gateway_beta_delta_benchmark_shares": -49.0}
    assert beta_delta_gap(short) == {"benchmark_shares": 1.0, "share_of_ours": 0.02}
    assert beta_delta_gap({"net_beta_delta": 0.0, "gateway_beta_delta_benchmark_shares": 1.0}) == {
        "benchmark_shares": 1.0,
        "share_of_ours": None,
    }
    assert (
        beta_delta_gap({"net_beta_delta": 100.0, "gateway_beta_delta_benchmark_shares": None})
        is None
    )
    assert (
        beta_delta_gap({"net_beta_delta": None, "gateway_beta_delta_benchmark_shares": 1.0}) is None
    )
    assert beta_delta_gap({"net_beta_delta": 100.0}) is None
