"""Builders of valid record lines for tests: fixed formats and figures a test can name
(snapshots through `testkit.snapshots`, as the benchmarks build theirs)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shared import records
from testkit.snapshots import snapshot as testkit_snapshot

EPOCH = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def snapshot(account: str = "DU0001", tick: int = 0, net_delta: float | None = 12.5) -> bytes:
    """The format-1 spool line of `account`'s snapshot at tick number `tick` (5 s apart): lines
    written before migration 002 must still store."""
    ts = EPOCH + timedelta(seconds=5 * tick)
    return records.encode(
        testkit_snapshot(
            account,
            ts,
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
    when, whose = fields.pop("ts"), fields.pop("account")
    assert isinstance(when, datetime)
    assert isinstance(whose, str)
    return records.encode(testkit_snapshot(whose, when, **fields))


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


def _counts(contributing: int, missing: int = 0, **reasons: int) -> dict[str, object]:
    return {"contributing": contributing, "missing": missing, "reasons": reasons}


def trader_snapshot(account: str = "DU0001", tick: int = 0) -> records.Snapshot:
    """A snapshot as the collector makes it, in full: SPY complete (3 options, 1 share line),
    ZC with one option lacking Greeks and no beta, an unsupported warrant at account level."""
    ts = EPOCH + timedelta(seconds=5 * tick)
    spy = {
        "net_dollar_delta": 51_234.567890123456,
        "net_dollar_gamma": 1_234.5678901234567,
        "net_theta": -123.45678901234567,
        "net_vega": 456.78901234567891,
        "net_beta_delta": 101.23456789012345,
        "net_delta": 98.765432109876543,
        "net_gamma": 0.012345678901234567,
        "completeness": {
            name: records.complete_counts(name, 4, 3) for name in records.UNDERLYING_COMPLETENESS
        },
        "position_count": 4,
        "option_count": 3,
        "options_with_greeks": 3,
    }
    zc = {
        "net_dollar_delta": 9_000.125,
        "net_dollar_gamma": 12.5,
        "net_theta": -7.25,
        "net_vega": 30.0,
        "net_beta_delta": None,
        "net_delta": 2.0,
        "net_gamma": 0.5,
        "completeness": {
            "net_dollar_delta": _counts(1, 1, no_greek=1),
            "net_dollar_gamma": _counts(1, 1, no_greek=1),
            "net_theta": _counts(1, 1, no_greek=1),
            "net_vega": _counts(1, 1, no_greek=1),
            "net_beta_delta": _counts(0, 2, no_beta=1, no_greek=1),
            "net_delta": _counts(1, 1, no_greek=1),
            "net_gamma": _counts(1, 1, no_greek=1),
        },
        "position_count": 2,
        "option_count": 2,
        "options_with_greeks": 1,
    }
    return testkit_snapshot(
        account,
        ts,
        mode="PORTAL",
        net_theta=-130.70678901234567,
        net_vega=486.78901234567891,
        net_dollar_delta=60_234.692890123456,
        position_count=7,
        option_count=5,
        options_with_greeks=4,
        stalest_greek_age_s=2.5,
        underlyings={"SPY": spy, "ZC": zc},
        currency="USD",
        net_dollar_gamma=1_247.0678901234567,
        net_beta_delta=101.23456789012345,
        completeness={
            "net_dollar_delta": _counts(5, 2, no_greek=1, unsupported_type=1),
            "net_dollar_gamma": _counts(4, 2, no_greek=1, unsupported_type=1),
            "net_theta": _counts(4, 2, no_greek=1, unsupported_type=1),
            "net_vega": _counts(4, 2, no_greek=1, unsupported_type=1),
            "net_beta_delta": _counts(3, 4, no_beta=1, no_greek=1, unsupported_type=1),
        },
        net_liquidation=2_500_000.0,
        unrealized_pnl=None,
        daily_pnl=-1_250.5,
    )


# Greeks by expiry and legs: an account with an AAPL weekly call and a 40-day put
# and 100 AAPL shares (complete), and an SPY option without an expiry (missing everywhere).
_NONE_ROW = (None, None, None, None)


COMPLETE = {
    "net_dollar_delta": _counts(3),
    "net_dollar_gamma": _counts(2),
    "net_theta": _counts(2),
    "net_vega": _counts(2),
}
AAPL = records.ExpiryScope(
    buckets=((20_000.0, 3_200.0, -40.0, 20.0), _NONE_ROW, (6_000.0, -800.0, 5.0, -20.0),
             _NONE_ROW, _NONE_ROW),
    linear_dollar_delta=20_000.0, position_count=3, option_count=2, completeness=COMPLETE,
)  # fmt: skip
SPY = records.ExpiryScope(
    buckets=(_NONE_ROW, _NONE_ROW, _NONE_ROW, _NONE_ROW, _NONE_ROW),
    linear_dollar_delta=None, position_count=1, option_count=1,
    completeness={
        "net_dollar_delta": _counts(0, 1, no_expiry=1),
        "net_dollar_gamma": _counts(0, 1, no_expiry=1),
        "net_theta": _counts(0, 1, no_expiry=1),
        "net_vega": _counts(0, 1, no_expiry=1),
    },
)  # fmt: skip
TOTAL = records.ExpiryScope(
    buckets=AAPL.buckets, linear_dollar_delta=20_000.0, position_count=4, option_count=3,
    completeness={
        "net_dollar_delta": _counts(3, 1, no_expiry=1),
        "net_dollar_gamma": _counts(2, 1, no_expiry=1),
        "net_theta": _counts(2, 1, no_expiry=1),
        "net_vega": _counts(2, 1, no_expiry=1),
    },
)  # fmt: skip
EXPIRY = records.ExpiryGreeks(
    records.snapshot_id("DU1", EPOCH),
    EPOCH,
    "DU1",
    "SOCKET",
    "USD",
    TOTAL,
    {"AAPL": AAPL, "SPY": SPY},
)
PUT = records.Leg(
    2, "AAPL", "OPT", -1.0, 100.0, 1.0, 3.1, 200.0, 0.25, 200.0, date(2026, 4, 11), "P",
    -0.3, 0.02, -0.05, 0.2, 6_000.0, -800.0, 5.0, -20.0, None,
)  # fmt: skip
STOCK = records.Leg(
    4, "AAPL", "STK", 100.0, 1.0, 1.0, None, None, None, None, None, None,
    None, None, None, None, None, None, None, None, "no_price",
)  # fmt: skip
LEGS = records.Legs(records.snapshot_id("DU1", EPOCH), EPOCH, "DU1", "PORTAL", "USD", (PUT, STOCK))


def pnl_explain(
    account: str = "DU0001",
    tick: int = 1,
    *,
    actual: float | None = 130.0,
    explained: float | None = 118.0,
    marks: tuple[str, ...] = (),
) -> records.PnlExplain:
    """The explain of the interval ending at tick `tick` (5 s after the one before): an option
    and a future on ES, each term its own number; a marked one may lack its sums."""
    end = EPOCH + timedelta(seconds=5 * tick)
    rows = ((100.0, 4.0, -2.0, 1.0, None, 103.0, 110.0), (None, None, None, None, 15.0, 15.0, 20.0))
    return records.PnlExplain(
        id=records.explain_id(account, end),
        ts=end,
        account=account,
        mode="SOCKET",
        start_ts=end - timedelta(seconds=5),
        currency="USD",
        actual_pnl=actual,
        explained_pnl=explained,
        terms=dict(zip(records.EXPLAIN_TERMS, (100.0, 4.0, -2.0, 1.0, 15.0), strict=True)),
        marks=marks,
        missing={"no_implied_vol": 1} if "input_missing" in marks else {},
        underlying_symbols=("ES",),
        underlying_rows=((100.0, 4.0, -2.0, 1.0, 15.0, 118.0),),
        position_conids=(716002, 495512563),
        position_rows=rows,
        position_missing=(None, None),
    )
