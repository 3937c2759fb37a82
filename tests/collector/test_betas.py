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
    assert ols_beta(pairs) is None


def test_returns_are_aligned_by_date() -> None:
    """Only common dates count; returns run between consecutive common dates."""
    underlying = _bars(100, 110, 121, 133.1)  # +10 % a day
    benchmark = _bars(200, 210, 999, 231.525, skip=(2,))  # day 2 missing: 200, 210, -, 231.525
    pairs = aligned_returns(underlying, benchmark)
    # common days 0, 1, 3: underlying 110/100-1 = 0.1, 133.1/110-1 = 0.21;
    # benchmark 210/200-1 = 0.05, 231.525/210-1 = 0.1025
    assert pairs == [pytest.approx((0.1, 0.05)), pytest.approx((0.21, 0.1025))]


def test_beta_from_bars_and_the_benchmark_against_itself() -> None:
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
    """A zero or negative close is not a price: its date is not a sample."""
    assert aligned_returns(_bars(100, 0, 110), _bars(50, 51, 52)) == [
        pytest.approx((0.1, 52 / 50 - 1))
    ]


def test_betas_file() -> None:
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
    with pytest.raises(BetasFileError, match=reason):
        parse_betas_file(text)


def test_beta_book_refreshes_once_a_day_and_overrides_win() -> None:
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
