"""Snapshots shaped like the collector's: what the storage benchmarks feed the writer and the
replayer (format 2, two underlyings, full-precision figures, completeness per figure; about
2 kB a line)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from database import history
from database.schema import bootstrap
from shared import records

BASE = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def _completeness(contributing: int) -> dict[str, dict[str, object]]:
    return {
        name: {"contributing": contributing, "missing": 0, "reasons": {}}
        for name in records.FIGURES
    }


def snapshot(account: str, tick: int) -> bytes:
    """A format-2 snapshot as the collector writes it for an account holding options on two
    underlyings: full-precision figures, completeness per figure, account values."""
    ts = BASE + timedelta(seconds=5 * tick)

    def underlying(delta: float) -> dict[str, object]:
        return {
            "net_dollar_delta": delta * 512.3456,
            "net_dollar_gamma": 1234.56789012,
            "net_theta": -12.3456789,
            "net_vega": 45.6789012,
            "net_beta_delta": delta * 1.0987654321,
            "net_delta": delta,
            "net_gamma": 0.0123456789,
            "completeness": _completeness(3),
            "position_count": 4,
            "option_count": 3,
            "options_with_greeks": 3,
        }

    return records.encode(
        records.Snapshot(
            id=records.snapshot_id(account, ts),
            ts=ts,
            account=account,
            mode="SOCKET",
            net_delta=None,
            net_gamma=None,
            net_theta=-24.6913578,
            net_vega=91.3578024,
            net_dollar_delta=63251.3456789,
            position_count=8,
            option_count=6,
            options_with_greeks=6,
            stalest_greek_age_s=1.234567,
            underlyings={"SPY": underlying(61.728394506), "QQQ": underlying(61.728394506)},
            currency="USD",
            net_dollar_gamma=2469.13578024,
            net_beta_delta=135.802468012,
            completeness=_completeness(6),
            net_liquidation=1234567.89,
            unrealized_pnl=-2345.678901,
            daily_pnl=345.6789012,
        )
    )


def snapshots(count: int, accounts: int, first_tick: int = 0) -> list[bytes]:
    """`count` distinct rows of `accounts` accounts, one row each per 5-s tick from
    `first_tick`, made by substituting into one encoded row (encoding each is too slow for a
    million)."""
    template = snapshot("DU00000000", 0)
    old_id = str(records.snapshot_id("DU00000000", BASE)).encode()
    old_ts = BASE.isoformat(timespec="microseconds").encode()
    made = []
    for index in range(count):
        account = f"DU{index % accounts:08d}"
        ts = BASE + timedelta(seconds=5 * (first_tick + index // accounts))
        made.append(
            template.replace(old_id, str(records.snapshot_id(account, ts)).encode())
            .replace(old_ts, ts.isoformat(timespec="microseconds").encode())
            .replace(b"DU00000000", account.encode())
        )
    return made


async def prepare(url: str) -> None:
    """The schema as the bridge runs it, with the partitions of the rows' days (March 2026)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await bootstrap(conn)
        await history.apply_partition_plan(conn, history.Retention(), BASE)
