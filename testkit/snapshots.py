"""Snapshot records as the collector makes them, for the tests and the benchmarks: the one place
outside the collector that builds a `records.Snapshot`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared import records


def snapshot(account: str, ts: datetime, **fields: Any) -> records.Snapshot:
    """`account`'s snapshot at `ts`, its id derived as the collector derives it unless `fields`
    names one; `fields` are the record's other fields, each one not given empty (no figure
    known, nothing held)."""
    values: dict[str, Any] = {
        "id": records.snapshot_id(account, ts),
        "mode": "SOCKET",
        "net_delta": None,
        "net_gamma": None,
        "net_theta": None,
        "net_vega": None,
        "net_dollar_delta": None,
        "position_count": 0,
        "option_count": 0,
        "options_with_greeks": 0,
        "stalest_greek_age_s": None,
        **fields,
    }
    return records.Snapshot(ts=ts, account=account, **values)
