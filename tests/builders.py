"""Builders of valid record lines for tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shared import records

EPOCH = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def snapshot(account: str = "DU0001", tick: int = 0, net_delta: float | None = 12.5) -> bytes:
    """The format-1 spool line of `account`'s snapshot at tick number `tick` (5 s apart): lines
    written before migration 002 must still store."""
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
            version=1,
        )
    )


def snapshot_v2(account: str = "DU0001", tick: int = 0, **changes: object) -> bytes:
    """A format-2 spool line: base currency, dollar gamma, beta delta, completeness, values."""
    ts = EPOCH + timedelta(seconds=5 * tick)
    counts = {"contributing": 2, "missing": 1, "reasons": {"no_beta": 1}}
    fields: dict[str, object] = {
        "id": records.snapshot_id(account, ts),
        "ts": ts,
        "account": account,
        "mode": "PORTAL",
        "net_delta": None,
        "net_gamma": None,
        "net_theta": -35.5,
        "net_vega": 120.25,
        "net_dollar_delta": 150_000.0,
        "position_count": 3,
        "option_count": 2,
        "options_with_greeks": 2,
        "stalest_greek_age_s": 1.5,
        "underlyings": {"SPY": {"net_delta": 300.0, "net_dollar_delta": 150_000.0}},
        "version": 2,
        "currency": "EUR",
        "net_dollar_gamma": 1_250.0,
        "net_beta_delta": 280.5,
        "completeness": {"net_beta_delta": counts},
        "net_liquidation": 1_000_000.0,
        "unrealized_pnl": -2_500.0,
        "daily_pnl": 310.0,
    }
    fields.update(changes)
    return records.encode(records.Snapshot(**fields))  # type: ignore[arg-type]


def beta(underlying: str = "AAPL", as_of: date | None = None, value: float = 1.2) -> bytes:
    as_of = as_of or EPOCH.date()
    return records.encode(
        records.Beta(
            id=records.beta_id(underlying, "SPY", as_of),
            ts=EPOCH,
            underlying=underlying,
            benchmark="SPY",
            beta=value,
            as_of=as_of,
            sample_size=250,
            source="history",
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
