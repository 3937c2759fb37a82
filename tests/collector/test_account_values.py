"""The account's own numbers as each gateway writes them: base currency, rates, money, bars."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from collector.account_values import (
    from_portal,
    from_socket_values,
    portal_bars,
    portal_daily_pnl,
    portal_fx_rates,
    socket_bar_day,
)
from collector.betas import Bar

# updateAccountValue rows of a EUR account holding USD, as TWS sends them (tag, value, currency).
EUR_ACCOUNT_VALUES = [
    ("AccountCode", "U2", ""),
    ("NetLiquidation", "190929.26", "EUR"),
    ("UnrealizedPnL", "-1200.50", "EUR"),
    ("UnrealizedPnL", "300.00", "USD"),
    ("UnrealizedPnL", "-923.36", "BASE"),
    ("ExchangeRate", "1.0", "EUR"),
    ("ExchangeRate", "0.9238", "USD"),
    ("ExchangeRate", "1.0", "BASE"),
    ("Currency", "BASE", "BASE"),
]


def test_socket_values_name_the_base_and_every_rate() -> None:
    """The socket's account values of an EUR account give its base currency (NetLiquidation's), a
    rate for every currency (BASE is none), its net liquidation and its unrealized P&L from the
    BASE row."""
    money = from_socket_values(EUR_ACCOUNT_VALUES, daily_pnl=-2668.5)
    assert money.base_currency == "EUR"  # the currency NetLiquidation is written in
    assert money.fx_rates == {"EUR": 1.0, "USD": 0.9238}  # BASE is not a currency
    assert money.net_liquidation == 190929.26
    assert money.unrealized_pnl == -923.36  # the BASE row: every currency, converted
    assert money.daily_pnl == -2668.5


@pytest.mark.parametrize("prefix", ["$LEDGER-", "$LEDGER:", "$LEDGER"])
def test_ledger_prefixed_per_currency_values_read_as_the_plain_ones(prefix: str) -> None:
    """The 2026 TWS setting prefixes per-currency keys: the same account, the same money."""
    account_wide = ("AccountCode", "NetLiquidation")
    prefixed = [
        (tag if tag in account_wide else prefix + tag, value, currency)
        for tag, value, currency in EUR_ACCOUNT_VALUES
    ]
    assert [tag for tag, _, _ in prefixed].count(prefix + "ExchangeRate") == 3
    plain = from_socket_values(EUR_ACCOUNT_VALUES, daily_pnl=-2668.5)
    assert from_socket_values(prefixed, daily_pnl=-2668.5) == plain


@pytest.mark.parametrize(
    ("values", "daily", "expected"),
    [
        ([], float("nan"), (None, {}, None, None, None)),  # nothing yet: unknown, not 0
        (
            [("NetLiquidation", "100.00", "USD"), ("UnrealizedPnL", "5.00", "USD")],
            1.7976931348623157e308,  # IB's unset double
            (None, {}, 100.0, 5.0, None),
        ),
        ([("NetLiquidation", "n/a", "USD"), ("ExchangeRate", "0", "EUR")], 3.0,
         (None, {}, None, None, 3.0)),
    ],
)  # fmt: skip
def test_socket_values_unknown_stay_unknown(
    values: list[tuple[str, str, str]], daily: float, expected: tuple[object, ...]
) -> None:
    """No values yet, IB's unset double, `n/a` and a zero rate read as unknown, never as 0."""
    money = from_socket_values(values, daily)
    base = "USD" if any(tag == "NetLiquidation" for tag, _, _ in values) else None
    assert money.base_currency == base
    assert (money.fx_rates, money.net_liquidation, money.unrealized_pnl, money.daily_pnl) == (
        expected[1:]
    )


def test_portal_ledger_summary_and_pnl() -> None:
    """The Portal's ledger gives the rates, its summary the base currency, net liquidation and
    unrealized P&L (null when IB says isNull), its partitioned P&L each account's daily P&L;
    malformed replies give nothing."""
    ledger = {
        "USD": {"exchangerate": 0.9238, "currency": "USD"},
        "EUR": {"exchangerate": 1, "currency": "EUR"},
        "BASE": {"exchangerate": 1, "currency": "BASE"},
    }
    summary = {
        "netliquidation": {"amount": 190929.26, "currency": "EUR", "isNull": False},
        "unrealizedpnl": {"amount": -923.36, "currency": "EUR", "isNull": False},
    }
    assert portal_fx_rates(ledger) == {"USD": 0.9238, "EUR": 1.0}
    money = from_portal(account_currency=None, ledger=ledger, summary=summary, daily_pnl=-2.5)
    assert (money.base_currency, money.net_liquidation, money.unrealized_pnl) == (
        "EUR", 190929.26, -923.36,
    )  # fmt: skip
    assert from_portal(account_currency="USD", ledger=None, summary=[], daily_pnl=None) == (
        from_portal(account_currency="USD", ledger={}, summary={}, daily_pnl=None)
    )
    null = {"netliquidation": {"amount": 0.0, "isNull": True}}
    assert (
        from_portal(account_currency="USD", ledger={}, summary=null, daily_pnl=None).net_liquidation
        is None
    )
    partitioned = {"upnl": {"U1.Core": {"dpl": -4519.22}, "U2.Core": {"dpl": "12.5"}, "x": 3}}
    assert portal_daily_pnl(partitioned) == {"U1": -4519.22, "U2": 12.5}
    assert portal_daily_pnl({"error": "x"}) == {}


def test_portal_history_bars() -> None:
    """Portal history bars become daily closes; a bar with an unreadable time or close is skipped;
    no bars is None."""
    t = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
    reply = {"data": [{"t": t, "c": 600.0, "o": 1}, {"t": t + 86_400_000, "c": "601.5"},
                      {"t": "x", "c": 1}, {"t": t, "c": None}]}  # fmt: skip
    assert portal_bars(reply) == [Bar(date(2026, 3, 2), 600.0), Bar(date(2026, 3, 3), 601.5)]
    assert portal_bars({"data": []}) is None
    assert portal_bars(None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (date(2026, 3, 2), date(2026, 3, 2)),
        (datetime(2026, 3, 2, 16, tzinfo=UTC), date(2026, 3, 2)),
        ("20260302", None),
    ],
)
def test_socket_bar_days(raw: object, expected: date | None) -> None:
    """A socket bar's date is its day, a timestamp's UTC day; a string it cannot be is None."""
    assert socket_bar_day(raw) == expected
