"""Betas: the regression, the overrides file and the daily refresh, worked by hand."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path

import pytest

from collector.betas import (
    Bar,
    BetaBook,
    BetaEstimate,
    BetasFileError,
    aligned_returns,
    beta_of,
    dimson_beta,
    lagged_returns,
    ols_beta,
    parse_betas_file,
)
from collector.settings import CollectorSettings
from shared.errors import SettingsError

DAY = date(2026, 3, 2)


def _bars(*closes: float, skip: tuple[int, ...] = ()) -> list[Bar]:
    return [Bar(DAY + timedelta(days=i), c) for i, c in enumerate(closes) if i not in skip]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # x = 0.01, -0.01 (mean 0); y = 0.02, -0.02: cov 0.0004, var 0.0002 -> 2
        ([(0.02, 0.01), (-0.02, -0.01)], 2.0),
        # y = 0.5 x + 0.001 on x = 0.02, 0, -0.02: slope 0.5 whatever the intercept
        ([(0.011, 0.02), (0.001, 0.0), (-0.009, -0.02)], 0.5),
        # y moves against x: y = -x -> -1
        ([(-0.01, 0.01), (0.03, -0.03)], -1.0),
    ],
)
def test_ols_slope(pairs: list[tuple[float, float]], expected: float) -> None:
    """The least-squares slope of hand-worked return pairs, whatever the intercept, with its sample
    size."""
    estimate = ols_beta(pairs)
    assert estimate is not None
    assert estimate.beta == pytest.approx(expected, rel=1e-12)
    assert estimate.sample_size == len(pairs)


@pytest.mark.parametrize(
    "pairs",
    [
        [],
        [(0.01, 0.02)],  # one return: no slope
        [(0.01, 0.0), (0.02, 0.0)],  # a benchmark that never moved: no variance
    ],
)
def test_no_beta_without_enough_data(pairs: list[tuple[float, float]]) -> None:
    """No returns, one return, or a benchmark that never moved give no beta (None, not 1.0)."""
    assert ols_beta(pairs) is None


def test_no_return_spans_a_day_either_series_is_missing() -> None:
    """Day 2 is a holiday of the benchmark's exchange: the returns into and out of it are
    dropped for both (before, one two-day return 1 -> 3 was paired with them)."""
    underlying = _bars(100, 110, 121, 133.1, 146.41)  # +10 % a day
    benchmark = _bars(200, 210, 999, 231.525, 243.10125, skip=(2,))  # +5 % a day, no day 2
    pairs = aligned_returns(underlying, benchmark)
    # calendar 0, 1, 2, 3, 4: 0 -> 1 (both), 1 -> 2 (no benchmark), 2 -> 3 (no benchmark),
    # 3 -> 4 (both): 110/100-1 = 0.1 with 210/200-1 = 0.05; 146.41/133.1-1 = 0.1 with
    # 243.10125/231.525-1 = 0.05
    assert pairs == [pytest.approx((0.1, 0.05)), pytest.approx((0.1, 0.05))]
    # the same when it is the underlying that is closed on day 2
    assert aligned_returns(_bars(100, 110, 121, 133.1, 146.41, skip=(2,)), _bars(
        200, 210, 220.5, 231.525, 243.10125
    )) == [pytest.approx((0.1, 0.05)), pytest.approx((0.1, 0.05))]  # fmt: skip


def test_an_underlying_in_another_currency_is_converted_at_each_days_rate() -> None:
    """EUR closes times the day's USD per EUR: the returns are the USD ones. A day without a
    rate has no converted close, so the returns around it go too."""
    underlying = _bars(100, 100, 110, 110)  # in EUR
    fx = _bars(1.00, 1.10, 1.10, 1.00)  # USD per EUR
    benchmark = _bars(50, 55, 60.5, 55)
    # converted closes 100, 110, 121, 110: returns 0.1, 0.1, -1/11;
    # benchmark 0.1, 0.1, 55/60.5-1 = -1/11
    assert aligned_returns(underlying, benchmark, fx) == [
        pytest.approx((0.1, 0.1)),
        pytest.approx((0.1, 0.1)),
        pytest.approx((-1 / 11, -1 / 11)),
    ]
    # in local currency the same series gives 0, 0.1, 0: another slope entirely
    assert aligned_returns(underlying, benchmark) == [
        pytest.approx((0.0, 0.1)),
        pytest.approx((0.1, 0.1)),
        pytest.approx((0.0, -1 / 11)),
    ]
    # no rate on day 1: converted closes 100, -, 121, 110: only 2 -> 3 remains
    assert aligned_returns(underlying, benchmark, _bars(1.0, 9, 1.1, 1.0, skip=(1,))) == [
        pytest.approx((-1 / 11, -1 / 11))
    ]
    converted = beta_of(underlying, benchmark, fx=fx, min_returns=3)
    assert converted is not None
    assert converted.beta == pytest.approx(1.0, rel=1e-12)  # USD moves equal the benchmark's


def test_beta_from_bars_and_the_benchmark_against_itself() -> None:
    """An underlying whose every return is twice the benchmark's has beta 2, the benchmark against
    itself 1; fewer common returns than asked give none."""
    benchmark = _bars(100, 101, 99, 102, 100)
    # an underlying whose every return is twice the benchmark's has beta 2
    closes = [100.0]
    for prev, cur in itertools.pairwise(benchmark):
        closes.append(closes[-1] * (1 + 2 * (cur.close / prev.close - 1)))
    doubled = beta_of(_bars(*closes), benchmark, min_returns=4)
    itself = beta_of(benchmark, benchmark, min_returns=4)
    assert doubled is not None
    assert doubled.beta == pytest.approx(2.0, rel=1e-12)
    assert doubled.sample_size == 4
    assert itself is not None
    assert itself.beta == pytest.approx(1.0, rel=1e-15)


def test_fewer_than_60_daily_returns_give_no_beta() -> None:
    """59 common returns: no beta (missing, never 1.0); 60: the regression's."""
    benchmark = _bars(*(100 + (i % 7) for i in range(61)))
    underlying = _bars(*(50 + (i % 5) for i in range(61)))
    assert beta_of(underlying[1:], benchmark) is None  # 60 bars in common: 59 returns
    estimate = beta_of(underlying, benchmark)
    assert estimate is not None
    assert estimate.sample_size == 60


def test_bad_closes_are_left_out() -> None:
    """A zero or negative close is not a price: its date is not a sample, and no return spans
    it (0 -> 2 would be a two-day return)."""
    assert aligned_returns(_bars(100, 0, 110, 121), _bars(50, 51, 52, 54.6)) == [
        pytest.approx((0.1, 54.6 / 52 - 1))
    ]


def test_betas_file() -> None:
    """The betas file's `[betas]` table gives each symbol's override, quoted symbols included; an
    empty file none."""
    assert parse_betas_file("[betas]\nAAPL = 1.23\nZC = 0\n'BRK B' = 0.8\n") == {
        "AAPL": 1.23,
        "ZC": 0.0,
        "BRK B": 0.8,
    }
    assert parse_betas_file("") == {}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[betas\n", "not TOML"),
        ("[beta]\nAAPL = 1\n", "unknown table or key 'beta'"),
        ("betas = 1\n", "betas must be a table"),
        ("[betas]\nAAPL = 'high'\n", "the beta of AAPL is not a number"),
        ("[betas]\nAAPL = true\n", "the beta of AAPL is not a number"),
        ("[betas]\nAAPL = nan\n", "the beta of AAPL is not finite"),
    ],
)
def test_bad_betas_files_are_refused(text: str, reason: str) -> None:
    """A betas file that is not TOML, has another table or key, or a beta that is not a finite
    number is refused with its reason."""
    with pytest.raises(BetasFileError, match=reason):
        parse_betas_file(text)


def test_beta_book_refreshes_once_a_day_and_overrides_win() -> None:
    """Each symbol's beta is due once a day, the benchmark and the overridden ones never; a day with
    no history is recorded as missing, not 1.0."""
    book = BetaBook("SPY", {"TSLA": 2.0})
    assert book.due(["AAPL", "SPY", "TSLA", "ZC"], DAY) == ["AAPL", "ZC"]
    book.record("AAPL", DAY, BetaEstimate(1.2, 250))
    book.record("ZC", DAY, None)  # the gateway served no history: missing, not 1.0
    assert book.due(["AAPL", "ZC"], DAY) == []
    assert book.due(["AAPL", "ZC"], DAY + timedelta(days=1)) == ["AAPL", "ZC"]
    assert book.betas() == {"AAPL": 1.2, "SPY": 1.0, "TSLA": 2.0}


def test_a_betas_file_that_is_not_betas_stops_the_collector_naming_it(tmp_path: Path) -> None:
    """A bad overrides file is a settings error: the variable, the file and the reason."""
    path = tmp_path / "betas.toml"
    path.write_text("[betas]\nAAPL = 'high'\n")
    with pytest.raises(SettingsError) as raised:
        CollectorSettings.from_environ({"BRIDGE_BETAS_FILE": str(path)})
    assert raised.value.variable == "BRIDGE_BETAS_FILE"
    assert "the beta of AAPL is not a number" in str(raised.value)
    path.write_text("[betas]\nAAPL = 1.5\n")
    settings = CollectorSettings.from_environ(
        {"BRIDGE_BETAS_FILE": str(path), "BRIDGE_BETA_BENCHMARK": "qqq"}
    )
    assert (settings.beta_overrides, settings.beta_benchmark) == ({"AAPL": 1.5}, "QQQ")
    assert (settings.beta_benchmark_exchange, settings.beta_benchmark_currency) == ("ARCA", "USD")
    settings = CollectorSettings.from_environ(
        {"BRIDGE_BETA_BENCHMARK_EXCHANGE": " ibis ", "BRIDGE_BETA_BENCHMARK_CURRENCY": "eur"}
    )
    assert (settings.beta_benchmark_exchange, settings.beta_benchmark_currency) == ("IBIS", "EUR")


def test_lagged_returns_chain_only_consecutive_steps() -> None:
    """Each row is (its return, the benchmark's, the benchmark's the step before); the step
    before must end the day this one starts: day 3 is missing for the benchmark, so the
    returns 2 -> 3 and 3 -> 4 are gone and 4 -> 5 has no aligned step before it."""
    underlying = _bars(100, 110, 121, 133.1, 146.41, 161.051)  # +10 % a day
    benchmark = _bars(200, 210, 199.5, 999, 209.475, 230.4225, skip=(3,))
    # benchmark returns: 0 -> 1 +5 %, 1 -> 2 -5 %, (2 -> 4 spans the gap: none), 4 -> 5 +10 %
    assert lagged_returns(underlying, benchmark) == [pytest.approx((0.1, -0.05, 0.05))]


def test_dimson_beta_sums_the_same_day_and_previous_day_slopes() -> None:
    """y = 0.3 x + 0.7 x(day before), exactly: the same-day slope alone is about 0.3 (the
    previous day's x is not correlated with today's here), Dimson's is 0.3 + 0.7 = 1."""
    xs = [0.01, -0.02, 0.015, 0.005, -0.01, 0.02, -0.005, 0.0, 0.012, -0.018]
    rows = [(0.3 * x + 0.7 * before, x, before) for before, x in itertools.pairwise(xs)]
    estimate = dimson_beta(rows)
    assert estimate is not None
    assert estimate.beta == pytest.approx(1.0, rel=1e-9)
    assert estimate.sample_size == len(xs) - 1


@pytest.mark.parametrize(
    "rows",
    [
        [(0.01, 0.01, 0.02), (0.02, 0.02, 0.04)],  # two rows: a plane needs three
        [(0.01, 0.01, 0.02), (0.02, 0.02, 0.04), (0.0, -0.01, -0.02)],  # lag = 2 x: collinear
    ],
)
def test_no_dimson_beta_without_enough_independent_data(
    rows: list[tuple[float, float, float]],
) -> None:
    """Too few rows, or a previous-day return that is a multiple of the same-day one."""
    assert dimson_beta(rows) is None


def test_the_lagged_beta_of_bars_wants_60_rows_too() -> None:
    """beta_of(lagged=True) applies the same minimum sample, to the lagged rows."""
    closes = [100 * (1.01 + 0.001 * (i % 3)) ** i for i in range(61)]
    bench = [200 * (1.005 + 0.002 * (i % 2)) ** i for i in range(61)]
    assert beta_of(_bars(*closes), _bars(*bench), lagged=True) is None  # 59 rows
