"""Builders of valid record lines for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared import records

EPOCH = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def snapshot(account: str = "DU0001", tick: int = 0, net_delta: float | None = 12.5) -> bytes:
    """The spool line of `account`'s snapshot at tick number `tick` (5 s apart)."""
    ts = EPOCH + timedelta(seconds=5 * tick)
    return records.encode(
        records.Snapshot(
            id=records.snapshot_id(account, ts),
            ts=ts,
            account=account,
            mode="SOCKET",
            net_delta=net_delta,
            net_gamma=0.25,
            net_theta=-3.5,
            net_vega=None,
            net_dollar_delta=None,
            position_count=3,
            option_count=2,
            options_with_greeks=1,
            stalest_greek_age_s=0.4,
            underlyings={"SPY": {"net_delta": net_delta}},
        )
    )


def api_log(event: str = "connected", code: int | None = None) -> bytes:
    return records.encode(
        records.new_api_log(
            ts=EPOCH, mode="SOCKET", level="info", event=event, message="test", code=code
        )
    )


def snapshots(count: int, accounts: int = 3) -> list[bytes]:
    """`count` distinct snapshot lines, cycling over `accounts` accounts tick by tick."""
    return [snapshot(f"DU{index % accounts:04d}", index // accounts) for index in range(count)]
