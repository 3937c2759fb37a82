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
    assert records.decode(line) == _record()


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
