"""The account's own numbers as each gateway reports them: pure parsers, no I/O.

Base currency, exchange rates, net liquidation, unrealized and daily P&L, and daily bars, from
the socket API's account values and P&L, and from the Client Portal's accounts, ledger, summary,
partitioned P&L and history. Anything missing or malformed is None (unknown), never 0.
Sources: docs/protocol.md ("Account values", "Client Portal account endpoints").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from collector.betas import Bar
from collector.greeks import known
from collector.portal_values import parse_number

# The socket API's pseudo-currency for values already summed in the base currency.
BASE: str = "BASE"
# A TWS setting (TWS API 10.47, May 2026; on by default for new users) prefixes the keys of
# per-currency account values with this: "$LEDGER-CashBalance" for "CashBalance"
# (docs/ibkr-conventions.md gives the source; the other separators are accepted too).
LEDGER_PREFIX: str = "$LEDGER"


def account_key(tag: str) -> str:
    """An account value's key without the `$LEDGER` prefix, so both forms match: "ExchangeRate",
    "$LEDGER-ExchangeRate", "$LEDGER:ExchangeRate" and "$LEDGERExchangeRate" -> "ExchangeRate"."""
    if not tag.startswith(LEDGER_PREFIX):
        return tag
    rest = tag[len(LEDGER_PREFIX) :]
    return rest[1:] if rest[:1] in ("-", ":") else rest


@dataclass(frozen=True)
class AccountMoney:
    """What the figures need from the account itself (all but the betas)."""

    base_currency: str | None = None
    fx_rates: Mapping[str, float] = field(default_factory=dict)
    net_liquidation: float | None = None
    unrealized_pnl: float | None = None
    daily_pnl: float | None = None


def _number(raw: Any) -> float | None:
    if isinstance(raw, str):
        try:
            return known(float(raw))
        except ValueError:
            return None
    return known(raw) if isinstance(raw, int | float) else None


def from_socket_values(
    values: Iterable[tuple[str, str, str]], daily_pnl: float | None
) -> AccountMoney:
    """(tag, value, currency) of updateAccountValue / accountUpdateMulti, and reqPnL's daily.

    Keys are read with or without the `$LEDGER` prefix. The base currency is the currency
    NetLiquidation is reported in; `ExchangeRate` rows give
    each currency's rate to it; UnrealizedPnL is taken from its BASE row (the sum over
    currencies, converted), else from the row in the base currency."""
    rows = [(account_key(tag), value, currency) for tag, value, currency in values]
    base = next(
        (cur for tag, _, cur in rows if tag == "NetLiquidation" and cur and cur != BASE), None
    )
    fx = {
        currency: rate
        for tag, value, currency in rows
        if tag == "ExchangeRate" and currency and currency != BASE
        for rate in [_number(value)]
        if rate is not None and rate > 0
    }

    def value_of(tag: str, currencies: tuple[str | None, ...]) -> float | None:
        for wanted in currencies:
            for name, value, currency in rows:
                if name == tag and currency == wanted:
                    return _number(value)
        return None

    return AccountMoney(
        base_currency=base,
        fx_rates=fx,
        net_liquidation=value_of("NetLiquidation", (base,)),
        unrealized_pnl=value_of("UnrealizedPnL", (BASE, base)),
        daily_pnl=known(daily_pnl),
    )


def portal_fx_rates(ledger: Any) -> dict[str, float]:
    """`/portfolio/{acct}/ledger`: {currency: {"exchangerate": rate, ...}, "BASE": {...}}."""
    if not isinstance(ledger, dict):
        return {}
    rates: dict[str, float] = {}
    for currency, entry in ledger.items():
        if currency == BASE or not isinstance(entry, dict):
            continue
        rate = parse_number(entry.get("exchangerate"))
        if rate is not None and rate > 0:
            rates[str(currency)] = rate
    return rates


def _summary_amount(summary: Mapping[str, Any], key: str) -> tuple[float | None, str | None]:
    entry = summary.get(key)
    if not isinstance(entry, dict) or entry.get("isNull"):
        return None, None
    amount = parse_number(entry.get("amount"))
    if amount is None:
        amount = parse_number(entry.get("value"))
    currency = entry.get("currency")
    return amount, currency if isinstance(currency, str) and currency else None


def from_portal(
    *, account_currency: str | None, ledger: Any, summary: Any, daily_pnl: float | None
) -> AccountMoney:
    """The base currency from `/portfolio/accounts` (else the summary's netliquidation), rates
    from the ledger, net liquidation and unrealized P&L from `/portfolio/{acct}/summary`."""
    summary = summary if isinstance(summary, dict) else {}
    net_liquidation, summary_currency = _summary_amount(summary, "netliquidation")
    unrealized, _ = _summary_amount(summary, "unrealizedpnl")
    return AccountMoney(
        base_currency=account_currency or summary_currency,
        fx_rates=portal_fx_rates(ledger),
        net_liquidation=net_liquidation,
        unrealized_pnl=unrealized,
        daily_pnl=known(daily_pnl),
    )


def portal_daily_pnl(partitioned: Any) -> dict[str, float]:
    """`/iserver/account/pnl/partitioned`: {"upnl": {"U123.Core": {"dpl": ...}}} -> account: dpl."""
    upnl = partitioned.get("upnl") if isinstance(partitioned, dict) else None
    found: dict[str, float] = {}
    for key, entry in upnl.items() if isinstance(upnl, dict) else []:
        if not isinstance(entry, dict):
            continue
        account, _, segment = str(key).partition(".")
        daily = parse_number(entry.get("dpl"))
        if daily is not None and segment in ("", "Core"):
            found[account] = daily
    return found


def portal_bars(history: Any) -> list[Bar] | None:
    """`/iserver/marketdata/history`: {"data": [{"t": ms, "c": close, ...}]} -> daily bars, or
    None when the gateway served none. Bar dates are UTC days of `t`."""
    data = history.get("data") if isinstance(history, dict) else None
    if not isinstance(data, list):
        return None
    bars = []
    for item in data:
        if not isinstance(item, dict):
            continue
        stamp, close = item.get("t"), parse_number(item.get("c"))
        if isinstance(stamp, int) and not isinstance(stamp, bool) and close is not None:
            bars.append(Bar(datetime.fromtimestamp(stamp / 1000, UTC).date(), close))
    return bars or None


def socket_bar_day(raw: Any) -> date | None:
    """BarData.date of a daily bar: ib_async gives a date (formatDate 1) or a datetime."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    return None
