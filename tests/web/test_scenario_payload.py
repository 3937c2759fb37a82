"""The scenario grid as the page receives it (web/payload.py `scenarios`), worked by hand:
which element is which scenario, the profile's points, the worst loss in words and by
underlying, and a grid that left positions out marked, never passed off as a total."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from web.payload import scenario_index, scenario_words, scenarios

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
WHOLE = {"contributing": 3, "missing": 0, "reasons": {}}
PARTIAL = {"contributing": 2, "missing": 1, "reasons": {"no_implied_vol": 1}}


@pytest.mark.parametrize(
    ("index", "move_pct", "vol_shift_pts", "day", "words"),
    [
        (0, -20, -5, 0, "-20 %, -5 vol pts, today"),
        (9, 20, -5, 0, "+20 %, -5 vol pts, today"),
        (11, -10, 0, 0, "-10 %, vol unchanged, today"),
        (18, 10, 0, 0, "+10 %, vol unchanged, today"),
        (25, 1, 5, 0, "+1 %, +5 vol pts, today"),
        (51, -10, 5, 1, "-10 %, +5 vol pts, +1 day"),  # (1 x 3 + 2) x 10 + 1
        (59, 20, 5, 1, "+20 %, +5 vol pts, +1 day"),
    ],
)
def test_each_grid_element_is_named_by_its_move_vol_shift_and_day(
    index: int, move_pct: int, vol_shift_pts: int, day: int, words: str
) -> None:
    """Element (day x 3 + vol shift) x 10 + move, as docs/scenarios.md lays the grid out."""
    assert scenario_index(move_pct, vol_shift_pts, day) == index
    assert scenario_words(index) == words


def _row(ts: datetime, grid: list[float], **changes: Any) -> dict[str, Any]:
    """A scenario_pnl row as database/reads.py returns it; the worst as the collector stores it."""
    worst = min(range(60), key=grid.__getitem__)
    beta = [2 * value for value in grid]
    row = {
        "ts": ts,
        "currency": "USD",
        "grid": grid,
        "worst_pnl": grid[worst],
        "worst_scenario": worst,
        "beta_grid": beta,
        "beta_worst_pnl": beta[worst],
        "beta_worst_scenario": worst,
        "delta_gamma_10": [-950.0, 1_050.0],
        "completeness": {"grid": WHOLE, "beta_grid": WHOLE, "delta_gamma": WHOLE},
        "underlying_symbols": [],
        "underlying_grids": [],
        "underlying_completeness": None,
    }
    return row | changes


def test_the_profile_now_and_an_hour_ago_and_the_delta_gamma_beside_the_revaluation() -> None:
    """A grid whose element i is 100 x (i - 30): today at IV unchanged (elements 10-19) the
    profile is -2,000 ... -1,100; -5 points (0-9) -3,000 ... -2,100; the -10 % and +10 % cells
    (11 and 18) -1,900 and -1,200 beside delta-gamma's -950 and 1,050; the worst, element 0,
    -3,000 at "-20 %, -5 vol pts, today". An hour ago: the same shifted by 1,000."""
    grid = [100.0 * (i - 30) for i in range(60)]
    earlier = [value + 1_000.0 for value in grid]
    worst_rows = [
        {"ts": NOW - timedelta(minutes=1), "worst_pnl": -2_000.0, "beta_worst_pnl": None},
        {"ts": NOW, "worst_pnl": -3_000.0, "beta_worst_pnl": -6_000.0},
    ]
    body = scenarios(_row(NOW, grid), _row(NOW - timedelta(hours=1), earlier), worst_rows)
    own = body["now"]["views"]["own"]
    assert body["moves_pct"] == [-20, -10, -5, -2, -1, 1, 2, 5, 10, 20]
    assert own["lines"]["0"] == [100.0 * (i - 30) for i in range(10, 20)]
    assert own["lines"]["-5"] == [100.0 * (i - 30) for i in range(0, 10)]
    assert own["lines"]["5"] == [100.0 * (i - 30) for i in range(20, 30)]
    assert own["complete"] is True
    assert body["now"]["views"]["beta"]["lines"]["0"][0] == -4_000.0  # 2 x -2,000
    assert body["hour_ago"]["views"]["own"]["lines"]["0"][0] == -1_000.0
    assert body["hour_ago"]["ts"] == NOW - timedelta(hours=1)
    assert body["delta_gamma"] == {
        "moves_pct": [-10, 10],
        "approximation": [-950.0, 1_050.0],
        "revaluation": [-1_900.0, -1_200.0],
        "complete": True,
    }
    assert body["worst"] == {
        "pnl": -3_000.0, "scenario": 0, "words": "-20 %, -5 vol pts, today", "complete": True,
    }  # fmt: skip
    assert body["beta_worst"]["pnl"] == -6_000.0
    assert body["worst_over_time"] == {
        "t": [NOW - timedelta(minutes=1), NOW],
        "worst_pnl": [-2_000.0, -3_000.0],
        "beta_worst_pnl": [None, -6_000.0],  # unknown stays null
    }


def test_the_worst_loss_by_underlying_largest_loss_first_the_unknown_last() -> None:
    """The worst scenario is element 51 (-10 %, +5 vol pts, +1 day): -900 in all, of which
    AAPL -1,000, MSFT +300, QQQ -200, SPY unknown (no grid); sorted -1,000, -200, +300, then
    SPY. QQQ left a position out: marked, as is the account's grid and its worst loss."""
    grid = [0.0] * 60
    grid[51] = -900.0

    def one(value: float) -> list[float]:
        cells = [0.0] * 60
        cells[51] = value
        return cells

    row = _row(
        NOW,
        grid,
        completeness={"grid": PARTIAL, "beta_grid": WHOLE, "delta_gamma": WHOLE},
        underlying_symbols=["AAPL", "MSFT", "QQQ", "SPY"],
        underlying_grids=[one(-1_000.0), one(300.0), one(-200.0), [None] * 60],
        underlying_completeness={"QQQ": {"grid": PARTIAL}},
    )
    body = scenarios(row, None, [])
    assert body["worst"] == {
        "pnl": -900.0, "scenario": 51, "words": "-10 %, +5 vol pts, +1 day", "complete": False,
    }  # fmt: skip
    assert body["now"]["views"]["own"]["complete"] is False
    assert body["now"]["views"]["own"]["completeness"] == PARTIAL
    assert body["hour_ago"] is None
    assert body["worst_by_underlying"] == [
        {"symbol": "AAPL", "pnl": -1_000.0, "complete": True},
        {"symbol": "QQQ", "pnl": -200.0, "complete": False},
        {"symbol": "MSFT", "pnl": 300.0, "complete": True},
        {"symbol": "SPY", "pnl": None, "complete": True},
    ]


def test_no_grid_yet_and_a_grid_nothing_contributed_to_are_null_not_zero() -> None:
    """Before any row: every part null or empty. A row whose grids are NULL (no position
    contributed): no lines, no revaluation, no worst, never a profile of zeros."""
    empty = scenarios(None, None, [])
    assert (empty["now"], empty["worst"], empty["delta_gamma"]) == (None, None, None)
    assert empty["worst_over_time"] == {"t": [], "worst_pnl": [], "beta_worst_pnl": []}
    none = {"contributing": 0, "missing": 2, "reasons": {"no_implied_vol": 2}}
    row = _row(NOW, [0.0] * 60) | {
        "grid": None, "worst_pnl": None, "worst_scenario": None, "beta_grid": None,
        "beta_worst_pnl": None, "beta_worst_scenario": None, "delta_gamma_10": None,
        "completeness": {"grid": none, "beta_grid": none, "delta_gamma": none},
    }  # fmt: skip
    body = scenarios(row, None, [])
    assert body["now"]["views"]["own"] == {"lines": None, "complete": False, "completeness": none}
    assert body["delta_gamma"] == {
        "moves_pct": [-10, 10], "approximation": None, "revaluation": None, "complete": False,
    }  # fmt: skip
    assert (body["worst"], body["beta_worst"], body["worst_by_underlying"]) == (None, None, [])
