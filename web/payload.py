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
    """One account's newest row, with its age at `now`."""
    body = {key: value for key, value in row.items() if key != "id"}
    stamp = row.get("ts")
    body["age_s"] = (now - stamp).total_seconds() if isinstance(stamp, datetime) else None
    return body


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
