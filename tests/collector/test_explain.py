"""The P&L explain's arithmetic against tables worked by hand (collector/explain.py)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from collector import explain
from collector.explain import End
from collector.greeks import AccountContext, Holding, OptionGreeks, OptionTerms

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
HALF_DAY = timedelta(hours=12)
USD = AccountContext("USD", {"EUR": 1.1})


def _option(
    *,
    conid: int = 1,
    symbol: str = "SPY",
    quantity: float = 2,
    multiplier: float = 100,
    magnifier: float = 1,
    underlying: float = 100.0,
    implied_vol: float | None = 0.20,
    greeks: tuple[float, float, float, float] = (0.5, 0.02, -0.05, 0.10),
    sec_type: str = "OPT",
) -> Holding:
    delta, gamma, theta, vega = greeks
    return Holding(
        conid, symbol, sec_type, quantity, multiplier, "USD", magnifier,
        greeks=OptionGreeks(delta, gamma, theta, vega, underlying, T0),
        terms=OptionTerms("C", 100.0, date(2026, 4, 17), "american", "STK", implied_vol, 3.0),
    )  # fmt: skip


def _stock(conid: int = 2, price: float = 230.0, quantity: float = 100) -> Holding:
    return Holding(conid, "SAP", "STK", quantity, 1, "EUR", 1, price=price)


def _context(daily_pnl: float | None) -> AccountContext:
    return AccountContext("USD", {"EUR": 1.1}, daily_pnl=daily_pnl)


# An option on SPY: 2 contracts x 100, delta 0.5, gamma 0.02, theta -0.05/day, vega 0.10/pt;
# SPY 100 -> 102, IV 20 % -> 21 %, half a day: size 200, delta 0.5 x 200 x 2 = 200, gamma
# ½ x 0.02 x 200 x 2² = 8, theta -0.05 x 200 x 0.5 = -5, vega 0.10 x 200 x 1 = 20.
# A cents-quoted corn call: -4 x 5000 / 100 = -200 per cent; delta 0.4, gamma 0.01 per cent,
# theta -0.2 cents/day, vega 0.5 cents/pt; 450 -> 455 cents, IV 25 % -> 24 %, over the same day:
# delta 0.4 x -200 x 5 = -400, gamma ½ x 0.01 x -200 x 25 = -25, theta -0.2 x -200 x 0.5 = 20,
# vega 0.5 x -200 x -1 = 100.
# 100 SAP in EUR at 1.1 USD, 230 -> 232: linear 100 x 2 x 1.1 = 220.
_CORN = {"conid": 3, "symbol": "ZC", "quantity": -4, "multiplier": 5000, "magnifier": 100,
         "greeks": (0.4, 0.01, -0.2, 0.5), "sec_type": "FOP"}  # fmt: skip
_HAND = [
    (_option(), _option(underlying=102.0, implied_vol=0.21), (200.0, 8.0, -5.0, 20.0, None)),
    (
        _option(**_CORN, underlying=450.0, implied_vol=0.25),  # type: ignore[arg-type]
        _option(**_CORN, underlying=455.0, implied_vol=0.24),  # type: ignore[arg-type]
        (-400.0, -25.0, 20.0, 100.0, None),
    ),
    (_stock(), _stock(price=232.0), (None, None, None, None, 220.0)),
]


@pytest.mark.parametrize(("before", "after", "terms"), _HAND)
def test_each_term_of_a_position_equals_the_hand_worked_value(
    before: Holding, after: Holding, terms: tuple[float | None, ...]
) -> None:
    """Delta, gamma, theta, vega of an option (its multiplier, magnifier and fx applied as
    collector/greeks.py applies them), or a linear position's exact P&L, over half a day."""
    position = explain.position_explain(before, after, USD, elapsed_days=0.5)
    assert position.missing is None
    assert tuple(position.terms.values()) == pytest.approx(terms)
    assert position.explained == pytest.approx(sum(t for t in terms if t is not None))


def test_an_account_interval_sums_its_positions_and_compares_with_its_daily_pnl() -> None:
    """Explained 223 - 305 + 220 = 138 of an actual 1000 -> 1500; per underlying each sum;
    half a day of elapsed time from the two snapshots' times."""
    start = End(T0, [before for before, _, _ in _HAND], _context(1000.0))
    end = End(T0 + HALF_DAY, [after for _, after, _ in _HAND], _context(1500.0))
    interval = explain.explain(start, end)
    assert interval.marks == ()
    assert interval.actual == 500.0
    assert interval.explained == pytest.approx(138.0)
    assert interval.unexplained == pytest.approx(500.0 - 138.0)
    assert interval.terms == pytest.approx(
        {
            "delta_pnl": -200.0,
            "gamma_pnl": -17.0,
            "theta_pnl": 15.0,
            "vega_pnl": 120.0,
            "linear_pnl": 220.0,
        }
    )
    assert interval.underlyings["ZC"]["explained_pnl"] == pytest.approx(-305.0)
    assert interval.underlyings["SAP"]["linear_pnl"] == pytest.approx(220.0)


def test_theta_is_per_calendar_day_of_the_interval() -> None:
    """Five seconds of a theta of -10 a day (the one position above): -10 x 5 / 86,400."""
    start = End(T0, [_option()], _context(0.0))
    end = End(T0 + timedelta(seconds=5), [_option()], _context(0.0))
    assert explain.explain(start, end).terms["theta_pnl"] == pytest.approx(-10.0 * 5 / 86400)


@pytest.mark.parametrize(
    ("after", "end_at", "daily_pnl", "marks", "missing"),
    [
        # a fill: one more contract
        (
            [_option(quantity=3), _stock()],
            T0 + timedelta(seconds=5),
            10.0,
            ("positions_changed",),
            {},
        ),
        # a closed position (quantity 0, still listed) is a change too
        (
            [_option(quantity=0), _stock()],
            T0 + timedelta(seconds=5),
            10.0,
            ("positions_changed",),
            {},
        ),
        # past midnight UTC: the daily P&L restarted
        (
            [_option(), _stock()],
            datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC),
            10.0,
            ("pnl_rolled_over",),
            {},
        ),
        # no implied vol at the end: the vega term cannot be known
        (
            [_option(implied_vol=None), _stock()],
            T0 + timedelta(seconds=5),
            10.0,
            ("input_missing",),
            {"no_implied_vol": 1},
        ),
        # no price for the stock at the end, and no daily P&L
        (
            [_option(), _stock(price=-1.0)],
            T0 + timedelta(seconds=5),
            None,
            ("input_missing",),
            {"no_price": 1, "no_daily_pnl": 1},
        ),
    ],
)
def test_an_interval_is_marked_with_each_reason_it_cannot_be_scored(
    after: list[Holding],
    end_at: datetime,
    daily_pnl: float | None,
    marks: tuple[str, ...],
    missing: dict[str, int],
) -> None:
    """Each mark names its reason; with an input missing, the explained sum is unknown (never a
    partial total) and the missing inputs are counted by reason."""
    start = End(T0, [_option(), _stock()], _context(0.0))
    interval = explain.explain(start, End(end_at, after, _context(daily_pnl)))
    assert interval.marks == marks
    assert interval.missing == missing
    assert not interval.scored
    if missing:
        assert interval.explained is None
        assert interval.unexplained is None


def test_positions_are_missing_with_greeks_conventions_reasons() -> None:
    """An unknown magnifier, rate or Greek is a reason, never a guess of 1 or 0."""
    context = AccountContext("USD", {})
    cases = {
        "no_magnifier": (_option(magnifier=None), _option()),  # type: ignore[arg-type]
        "no_greek": (_option(greeks=(0.5, None, -0.05, 0.1)), _option()),  # type: ignore[arg-type]
        "no_fx_rate": (_stock(), _stock()),
    }
    for reason, (before, after) in cases.items():
        assert explain.position_explain(before, after, context, 1.0).missing == reason


def _interval(
    minute: int, actual: float | None, explained: float | None, *marks: str
) -> explain.Outcome:
    end = T0 + timedelta(minutes=minute)
    return explain.Explain(
        start=end - timedelta(seconds=5), end=end, currency="USD", actual=actual,
        terms={}, explained=explained, marks=marks, missing={}, underlyings={},
    ).outcome  # fmt: skip


def test_the_day_score_of_a_hand_worked_day() -> None:
    """|unexplained| 2, 5, 0, 10 of Σ|actual| 100 -> share 0.83; ranks of explained 2, 1, 3.5,
    3.5 (a tie) against 2, 1, 3, 4 -> Spearman 3 / sqrt(10); the worst is 10 at the 4th; the
    fill is counted, not scored (it would wreck the share)."""
    day = [
        _interval(1, 10.0, 8.0),
        _interval(2, -20.0, -25.0),
        _interval(3, 30.0, 30.0),
        _interval(4, 40.0, 30.0),
        _interval(5, 1000.0, 0.0, "positions_changed"),
    ]
    score = explain.day_score(day)
    assert (score.scored, score.not_scored) == (4, 1)
    assert score.explained_share == pytest.approx(0.83)
    assert score.spearman == pytest.approx(3 / math.sqrt(10))
    assert (score.worst_unexplained, score.worst_at) == (10.0, T0 + timedelta(minutes=4))
    assert score.passes(min_explained_share=0.8)
    assert not score.passes(min_explained_share=0.9)
    assert not score.passes(min_explained_share=0.8, min_spearman=0.95)


def test_a_day_without_enough_scored_intervals_has_no_correlation() -> None:
    """Two intervals, or no spread, give no Spearman (not 0, not 1); nothing scored, no share."""
    assert explain.day_score([_interval(1, 1.0, 1.0), _interval(2, 2.0, 2.0)]).spearman is None
    flat = [_interval(m, 5.0, float(m)) for m in range(1, 5)]
    assert explain.day_score(flat).spearman is None
    empty = explain.day_score([_interval(1, None, None, "input_missing")])
    assert (empty.scored, empty.explained_share, empty.worst_at) == (0, None, None)
    assert not empty.passes(min_explained_share=0.0)


def test_a_record_carries_every_sum_row_and_mark() -> None:
    """The spool record of an interval: per underlying and per position, terms then their sum."""
    start = End(T0, [before for before, _, _ in _HAND], _context(1000.0))
    end = End(T0 + HALF_DAY, [after for _, after, _ in _HAND], _context(1500.0))
    record = explain.record("U1", "SOCKET", explain.explain(start, end))
    assert (record.ts, record.start_ts, record.actual_pnl) == (end.at, T0, 500.0)
    assert record.underlying_symbols == ("SAP", "SPY", "ZC")
    assert record.position_conids == (1, 2, 3)
    assert record.position_rows[1] == pytest.approx((None, None, None, None, 220.0, 220.0, None))
    assert record.underlying_rows[1] == pytest.approx((200.0, 8.0, -5.0, 20.0, None, 223.0))


def test_a_positions_own_pnl_change_is_its_actual_when_it_is_in_the_base_currency() -> None:
    """SPY in a USD account: the gateway's daily P&L of it 40 -> 65 is an actual of 25, whatever
    currency reqPnLSingle reports in (both readings are USD); a position the gateway gives no
    P&L of has no actual and no reason."""
    before, after = _option(), _option(underlying=102.0, implied_vol=0.21)
    position = explain.position_explain(
        replace(before, daily_pnl=40.0), replace(after, daily_pnl=65.0), USD, elapsed_days=0.5
    )
    assert (position.actual, position.actual_missing) == (25.0, None)
    assert position.explained == pytest.approx(223.0)
    quiet = explain.position_explain(before, after, USD, elapsed_days=0.5)
    assert (quiet.actual, quiet.actual_missing) == (None, None)


def test_a_positions_own_pnl_in_another_currency_is_unknown_not_converted() -> None:
    """SAP in EUR in a USD account: the gateway's daily P&L of it 100 -> 130 could be 30 EUR (33
    USD) or 30 USD: IBKR does not say which, so its actual is unknown and says why, beside its
    explained 220 (it used to be taken as EUR and converted: 33). Unknown base currency: no
    rate to tell."""
    before, after = (
        replace(_stock(), daily_pnl=100.0),
        replace(_stock(price=232.0), daily_pnl=130.0),
    )
    position = explain.position_explain(before, after, USD, elapsed_days=0.5)
    assert (position.actual, position.actual_missing) == (None, "pnl_currency_unstated")
    assert position.explained == pytest.approx(220.0)
    unknown_base = AccountContext(None, {"EUR": 1.1})
    blind = explain.position_explain(before, after, unknown_base, elapsed_days=0.5)
    assert (blind.actual, blind.actual_missing) == (None, "no_fx_rate")
