"""The `scenario` record kind: its line round-trips, and a bad line is refused with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared import records
from shared.errors import RecordError

TS = datetime(2026, 12, 7, 15, 0, 5, tzinfo=UTC)
GRID = tuple(float(i - 30) for i in range(60))  # lowest -30.0 at index 0
COUNTS = {"contributing": 2, "missing": 0, "reasons": {}}


def _record() -> records.Scenario:
    return records.Scenario(
        id=records.scenario_id("DU1", TS),
        ts=TS,
        account="DU1",
        mode="SOCKET",
        currency="USD",
        grid=GRID,
        beta_grid=None,
        delta_gamma_10=(-5.0, 6.0),
        completeness={
            "grid": COUNTS,
            "beta_grid": {**COUNTS, "contributing": 0, "missing": 2, "reasons": {"no_beta": 2}},
        },
        underlyings={
            "AAPL": records.UnderlyingScenario(GRID, (-5.0, 6.0), {}),
            "QQQ": records.UnderlyingScenario(
                None,
                None,
                {"grid": {"contributing": 0, "missing": 1, "reasons": {"no_implied_vol": 1}}},
            ),
        },
        # The two contributing positions at the worst scenario (index 0): -40 + 10 = -30.
        worst_legs=((11, -40.0), (22, 10.0)),
    )


def _line(**changes: object) -> bytes:
    body = json.loads(records.encode(_record()))
    body.update(changes)
    return json.dumps(body).encode()


def test_a_scenario_line_round_trips() -> None:
    """Encoded and decoded, the record is the same, its worst P&L written beside the grid."""
    line = records.encode(_record())
    body = json.loads(line)
    assert (body["worst_pnl"], body["worst_scenario"]) == (-30.0, 0)
    assert (body["beta_worst_pnl"], body["beta_worst_scenario"]) == (None, None)
    assert body["underlying_grids"][1] == [None] * 60  # QQQ: nothing contributed
    assert body["underlying_completeness"] == {"QQQ": _record().underlyings["QQQ"].completeness}
    assert (body["worst_leg_conids"], body["worst_leg_pnl"]) == ([11, 22], [-40.0, 10.0])
    assert "beta_worst_leg_conids" not in body  # no beta grid: no legs
    assert records.decode(line) == _record()


def test_the_worst_legs_may_differ_from_the_worst_by_rounding_only() -> None:
    """Legs summed in another order than the grid differ in the last digits: accepted up to
    WORST_LEGS_ROUNDING of Σ |leg| (50 here: 5e-8), refused past it; a line from before the
    legs (none) is accepted without them."""
    rounded = records.decode(_line(worst_leg_pnl=[-40.0 + 1e-8, 10.0]))
    assert isinstance(rounded, records.Scenario)
    assert rounded.worst_legs == ((11, -40.0 + 1e-8), (22, 10.0))
    with pytest.raises(RecordError, match="add up to"):
        records.decode(_line(worst_leg_pnl=[-40.0 + 1e-6, 10.0]))
    body = json.loads(records.encode(_record()))
    del body["worst_leg_conids"], body["worst_leg_pnl"]
    before = records.decode(json.dumps(body).encode())
    assert isinstance(before, records.Scenario)
    assert before.worst_legs is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"grid": [1.0] * 59}, "grid is not null or a list of 60 numbers"),
        ({"grid": [*GRID[:-1], "x"]}, "grid holds something other than a finite number"),
        ({"worst_pnl": -29.0}, "worst_pnl and worst_scenario are not its grid's lowest"),
        ({"underlying_grids": [list(GRID)]}, "underlying_grids does not have one entry"),
        ({"underlying_worst_pnl": [-1.0, None]}, "AAPL: underlying_worst_pnl is not the lowest"),
        ({"underlying_symbols": ["AAPL", "AAPL"]}, "names a symbol twice"),
        ({"underlying_completeness": {"MSFT": {}}}, "names a symbol not held"),
        ({"completeness": {"vega": COUNTS}}, "'vega' is not a scenario figure's counts"),
        (
            {"completeness": {"grid": {"contributing": -1}}},
            "contributing is missing or not a count",
        ),
        ({"worst_leg_pnl": [-40.0, 9.0]}, "the legs add up to -31.0, not the worst P&L -30.0"),
        ({"worst_leg_conids": [11]}, "conids and P&Ls are not two lists of one length"),
        (  # a partial sum is not the total: every contributing position has its leg
            {"worst_leg_conids": [11], "worst_leg_pnl": [-30.0]},
            "1 legs, but 2 positions contributed to the grid",
        ),
        ({"worst_leg_conids": [11, 11]}, "a conid is named twice"),
        ({"worst_leg_pnl": [-40.0, None]}, "a P&L is not a finite number"),
        (
            {"beta_worst_leg_conids": [11], "beta_worst_leg_pnl": [0.0]},
            "beta_worst_legs: legs of a grid nothing contributed to",
        ),
        ({"mode": "FIX"}, "mode 'FIX' is not SOCKET or PORTAL"),
        ({"v": 2}, "unknown kind 'scenario'"),
    ],
)
def test_a_bad_scenario_line_is_refused_with_its_reason(
    changes: dict[str, object], reason: str
) -> None:
    """Each defect gives a RecordError that names it (the writer dead-letters the line)."""
    with pytest.raises(RecordError, match=reason.replace("(", r"\(")):
        records.decode(_line(**changes))
