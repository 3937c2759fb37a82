"""What the e2e stories assert on PostgreSQL: the bridge's promise, tick by tick."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import psycopg

ACCOUNTS = ("DU1234567", "DU7654321")
TICK = timedelta(seconds=5)


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute(sql, params).fetchall()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return []  # the database or the schema is not there yet


def rows_per_tick(url: str) -> dict[datetime, int]:
    return {
        ts: count
        for ts, count in query(url, "SELECT ts, count(*) FROM portfolio_greeks GROUP BY ts")
    }


def reported_gaps(url: str) -> list[tuple[datetime, datetime]]:
    rows = query(url, "SELECT details FROM api_logs WHERE event = 'gap'")
    return [(datetime.fromisoformat(d["from"]), datetime.fromisoformat(d["to"])) for (d,) in rows]


def assert_promise_kept(
    url: str, *, accounts: int = len(ACCOUNTS), tick_s: timedelta = TICK
) -> dict[str, int]:
    """Every tick (5 s unless the test polls faster) from the first to the last has exactly one
    row per account, or lies in a gap the collector reported; no tick has more rows than
    accounts (no duplicate)."""
    counts = rows_per_tick(url)
    assert counts, "no snapshot at all"
    gaps = reported_gaps(url)
    tick, last = min(counts), max(counts)
    produced = unreported = 0
    missing: list[str] = []
    while tick <= last:
        count = counts.get(tick, 0)
        assert count <= accounts, f"{tick}: {count} rows for {accounts} accounts"
        if count == accounts:
            produced += 1
        elif not any(start <= tick <= end for start, end in gaps):
            unreported += 1
            missing.append(f"{tick:%H:%M:%S} ({count} rows)")
        tick += tick_s
    assert not missing, f"ticks neither stored nor reported as a gap: {missing}"
    return {"produced": produced, "gaps": len(gaps), "unreported": unreported}


def control(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310  # the simulator's control port on loopback
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # ditto
        return json.loads(response.read())
