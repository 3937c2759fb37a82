"""What the page receives, shaped from rows read by `web/reader.py`. Pure: no I/O, no clock.

Values travel as JSON numbers (Python writes the shortest repr that reads back to the same
double), nulls as null: an unknown figure is never turned into 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.health import Finding, worst
from shared.heartbeat_files import Heartbeat
from shared.records import EXPIRY_BUCKETS, EXPIRY_FIGURES
from web.chart_windows import Window
from web.event_lanes import lane
from web.figures import AGE_COLUMN, COMPLETENESS_COLUMNS, Columns, Figure, figures, panels

Row = dict[str, Any]
_PARTS = ("min", "max", "last")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(body: Any) -> str:
    return json.dumps(body, default=_plain, separators=(",", ":"))


def describe(figure: Figure) -> dict[str, Any]:
    return {"column": figure.column, "label": figure.label, "unit": figure.unit}


def layout(columns: Columns) -> dict[str, Any]:
    """The table's figures and the chart's panels, as the page draws them."""
    return {
        "figures": [describe(figure) for figure in figures(columns)],
        "panels": [
            {"name": name, "figures": [describe(figure) for figure in members]}
            for name, members in panels(columns).items()
        ],
        "completeness": [name for name in COMPLETENESS_COLUMNS if columns.has(name)],
        "age_column": AGE_COLUMN if columns.has(AGE_COLUMN) else None,
        "has_currency": columns.has("currency"),
        "has_completeness_detail": columns.has("completeness"),
    }


def account(row: Row, now: datetime) -> Row:
    """One account's newest row, with its age at `now` and how far IBKR's beta-weighted delta
    is from ours (`beta_delta_gap`)."""
    body = {key: value for key, value in row.items() if key != "id"}
    stamp = row.get("ts")
    body["age_s"] = (now - stamp).total_seconds() if isinstance(stamp, datetime) else None
    body["beta_delta_gap"] = beta_delta_gap(row)
    return body


def beta_delta_gap(row: Row) -> dict[str, float | None] | None:
    """IBKR's beta-weighted delta (field 7696, in shares of our benchmark) less ours, in
    benchmark shares, and that as a share of ours (None when ours is 0). None when either is
    unknown (SOCKET has no 7696; SPX's price unknown): never a gap of 0. What a gap means is in
    docs/ibkr-conventions.md, "The gateway's own beta-weighted delta"."""
    theirs, ours = row.get("gateway_beta_delta_benchmark_shares"), row.get("net_beta_delta")
    if not isinstance(theirs, int | float) or not isinstance(ours, int | float):
        return None
    gap = float(theirs) - float(ours)
    return {"benchmark_shares": gap, "share_of_ours": gap / abs(ours) if ours else None}


def series(rows: Iterable[Row], names: list[str], span: Window) -> dict[str, Any]:
    """Bucketed rows -> one array per figure and aggregate, and per underlying and figure.

    The underlyings come from each bucket's last row; an underlying absent from a bucket is
    null there, so its line breaks instead of dropping to 0.
    """
    rows = _with_breaks(list(rows), timedelta(seconds=span.step_s))
    out: dict[str, Any] = {
        "window": {
            "name": span.name,
            "start": span.start.isoformat(),
            "end": span.end.isoformat(),
            "step_s": span.step_s,
        },
        "t": [row["bucket"].isoformat() for row in rows],
        "last_ts": [row["last_ts"] for row in rows],
        "rows": [row["rows"] for row in rows],
        "figures": {
            name: {part: [row.get(f"{name}__{part}") for row in rows] for part in _PARTS}
            for name in names
        },
    }
    underlyings: dict[str, dict[str, list[float | None]]] = {}
    for index, row in enumerate(rows):
        for symbol, values in sorted((row.get("underlyings") or {}).items()):
            if not isinstance(values, dict):
                continue
            for key, value in values.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                line = underlyings.setdefault(symbol, {}).setdefault(key, [None] * len(rows))
                line[index] = float(value)
    out["underlyings"] = underlyings
    return out


def _with_breaks(rows: list[Row], step: timedelta) -> list[Row]:
    """An empty bucket between two buckets that are not adjacent, so a line breaks over a hole
    in the data instead of joining across it (a missing bucket is never drawn as a flat line)."""
    out: list[Row] = []
    for row in rows:
        if out and row["bucket"] - out[-1]["bucket"] > step:
            out.append({"bucket": out[-1]["bucket"] + step, "last_ts": None, "rows": 0})
        out.append(row)
    return out


def expiry(row: Row | None) -> Row | None:
    """An `expiry_greeks` row as the page's table: per scope (the account, `total`, then each
    underlying) each figure's five buckets and the delta-one line; None before any row."""
    if row is None:
        return None

    def scope(buckets: list[list[float | None]], linear: float | None) -> Row:
        return {
            "figures": {
                name: [bucket[index] for bucket in buckets]
                for index, name in enumerate(EXPIRY_FIGURES)
            },
            "linear_dollar_delta": linear,
        }

    symbols = row["underlying_symbols"] or []
    figures = row["underlying_figures"] or []
    linear = row["underlying_linear"] or []
    return {
        "ts": row["ts"],
        "currency": row["currency"],
        "buckets": list(EXPIRY_BUCKETS),
        "total": scope(row["bucket_figures"], row["linear_dollar_delta"]),
        "underlyings": {
            symbol: scope(rows, line)
            for symbol, rows, line in zip(symbols, figures, linear, strict=True)
        },
        # Only the figures that are not complete are stored (complete: nothing missing).
        "incomplete": row["completeness"] or {},
    }


def legs(rows: Iterable[Row]) -> list[Row]:
    """`position_legs` rows as the page's list, dates as ISO text."""
    return [
        {
            key: value.isoformat() if isinstance(value, date) else value
            for key, value in row.items()
            if key not in ("account", "mode")
        }
        for row in rows
    ]


def events(rows: Iterable[Row]) -> list[Row]:
    """api_logs rows for the event axis, oldest first.

    A gap carries the span it reports (`from`, `to`), drawn as a band rather than a point.
    """
    found = []
    for row in rows:
        where = lane(row["event"], row["level"])
        if where is None:
            continue
        details = row.get("details") or {}
        item = {
            "ts": row["ts"],
            "lane": where,
            "event": row["event"],
            "level": row["level"],
            "message": row["message"],
        }
        if row["event"] == "gap" and "from" in details and "to" in details:
            item["from"], item["to"] = details["from"], details["to"]
        if row["event"].startswith("alert_"):
            item["details"] = details
        found.append(item)
    found.sort(key=lambda item: item["ts"])
    return found


def firing(alerter: Heartbeat | None) -> list[Row] | None:
    """The alerter's firing alerts from its heartbeat; None when there is no alerter here."""
    if alerter is None:
        return None
    keys = ("rule", "account", "figure", "value", "limit", "since")
    return [{key: item.get(key) for key in keys} for item in alerter.firing or ()]


def public_health(findings: Iterable[Finding]) -> Row:
    """What `/healthz` tells a caller without the token: the overall status and the names of
    the failing checks, never a message (account ids, figures, paths, error texts are in them).
    A per-account check is named `accounts`, so no account id leaks through its name."""
    failing = {
        "accounts" if finding.subject.startswith("account ") else finding.subject
        for finding in findings
        if finding.level == "unhealthy"
    }
    return {"status": worst(list(findings)), "failing": sorted(failing)}


# The scenario grid's axes (docs/scenarios.md): element (day x 3 + vol shift) x 10 + move.
SCENARIO_MOVES_PCT = (-20, -10, -5, -2, -1, 1, 2, 5, 10, 20)
SCENARIO_VOL_SHIFTS_PTS = (-5, 0, 5)
SCENARIO_DAYS = (0, 1)
# The moves of `delta_gamma_10`, in its order.
DELTA_GAMMA_MOVES_PCT = (-10, 10)


def scenario_index(move_pct: int, vol_shift_pts: int, day: int) -> int:
    """The 0-based element of a grid for one scenario."""
    return (
        day * len(SCENARIO_VOL_SHIFTS_PTS) + SCENARIO_VOL_SHIFTS_PTS.index(vol_shift_pts)
    ) * len(SCENARIO_MOVES_PCT) + SCENARIO_MOVES_PCT.index(move_pct)


def _signed(value: int) -> str:
    return f"{value}" if value < 0 else f"+{value}"


def scenario_words(index: int) -> str:
    """A grid element in words: "-10 %, +5 vol pts, +1 day"."""
    day, rest = divmod(index, len(SCENARIO_MOVES_PCT) * len(SCENARIO_VOL_SHIFTS_PTS))
    shift, move = divmod(rest, len(SCENARIO_MOVES_PCT))
    vol_pts = SCENARIO_VOL_SHIFTS_PTS[shift]
    vol = "vol unchanged" if vol_pts == 0 else f"{_signed(vol_pts)} vol pts"
    when = "today" if SCENARIO_DAYS[day] == 0 else f"+{SCENARIO_DAYS[day]} day"
    return f"{_signed(SCENARIO_MOVES_PCT[move])} %, {vol}, {when}"


def _complete(completeness: Row | None, figure: str) -> bool | None:
    """Did every position contribute to `figure`? None: the row does not say."""
    counts = (completeness or {}).get(figure)
    if not isinstance(counts, dict) or counts.get("missing") is None:
        return None
    return bool(counts["missing"] == 0)


def _profile(row: Row | None) -> Row | None:
    """One scenario row as the risk profile: per way of moving (own, beta), the P&L against
    the move today for each vol shift, with the grid's completeness beside it."""
    if row is None:
        return None
    completeness = row["completeness"] or {}
    views = {}
    for view, column, figure in (("own", "grid", "grid"), ("beta", "beta_grid", "beta_grid")):
        grid = row[column]
        views[view] = {
            "lines": None
            if grid is None
            else {
                str(vol): [grid[scenario_index(move, vol, 0)] for move in SCENARIO_MOVES_PCT]
                for vol in SCENARIO_VOL_SHIFTS_PTS
            },
            "complete": _complete(completeness, figure),
            "completeness": completeness.get(figure),
        }
    return {"ts": row["ts"], "currency": row["currency"], "views": views}


def _worst(row: Row, pnl_column: str, index_column: str, figure: str) -> Row | None:
    pnl, index = row[pnl_column], row[index_column]
    if pnl is None or index is None:
        return None
    return {
        "pnl": pnl,
        "scenario": index,
        "words": scenario_words(index),
        # The lowest of a grid that left positions out is no account's worst loss.
        "complete": _complete(row["completeness"], figure),
    }


def _by_underlying(row: Row, index: int) -> list[Row]:
    """Each underlying's P&L in the scenario `index`, the largest loss first, the unknown
    last: which underlying the worst loss comes from."""
    partial = row["underlying_completeness"] or {}
    found = [
        {
            "symbol": symbol,
            "pnl": None if grid is None else grid[index],
            "complete": _complete(partial.get(symbol), "grid") is not False,
        }
        for symbol, grid in zip(
            row["underlying_symbols"] or [], row["underlying_grids"] or [], strict=True
        )
    ]
    found.sort(key=lambda item: (item["pnl"] is None, item["pnl"] or 0.0, item["symbol"]))
    return found


def scenarios(newest: Row | None, hour_ago: Row | None, worst_rows: Iterable[Row]) -> Row:
    """What the page draws of `scenario_pnl`: the risk profile now and an hour ago, the
    delta-gamma approximation at ±10 % beside the full revaluation, the worst loss in words and
    by underlying, and the worst loss over time. Unknown stays null; a grid that left
    positions out says so (`complete` false) and is never shown as the account's total."""
    rows = list(worst_rows)
    body: Row = {
        "moves_pct": list(SCENARIO_MOVES_PCT),
        "vol_shifts_pts": list(SCENARIO_VOL_SHIFTS_PTS),
        "now": _profile(newest),
        "hour_ago": _profile(hour_ago),
        "delta_gamma": None,
        "worst": None,
        "beta_worst": None,
        "worst_by_underlying": [],
        "worst_over_time": {
            "t": [row["ts"] for row in rows],
            "worst_pnl": [row["worst_pnl"] for row in rows],
            "beta_worst_pnl": [row["beta_worst_pnl"] for row in rows],
        },
    }
    if newest is None:
        return body
    grid, approximation = newest["grid"], newest["delta_gamma_10"]
    body["delta_gamma"] = {
        "moves_pct": list(DELTA_GAMMA_MOVES_PCT),
        "approximation": approximation,
        "revaluation": None
        if grid is None
        else [grid[scenario_index(move, 0, 0)] for move in DELTA_GAMMA_MOVES_PCT],
        "complete": _complete(newest["completeness"], "delta_gamma"),
    }
    body["worst"] = _worst(newest, "worst_pnl", "worst_scenario", "grid")
    body["beta_worst"] = _worst(newest, "beta_worst_pnl", "beta_worst_scenario", "beta_grid")
    if body["worst"] is not None:
        body["worst_by_underlying"] = _by_underlying(newest, body["worst"]["scenario"])
    return body
