"""Which Client Portal currency pair gives one unit of a currency in another, and its bars the
right way up. Pure: no I/O, no clock.

`/iserver/currency/pairs?currency=USD` answers `{"USD": [{"symbol": "USD.SGD", "conid":
37928772, "ccyPair": "SGD"}, ...]}`: each pair IBKR trades with that currency on one side,
named BASE.QUOTE and priced in QUOTE per BASE (docs/ibkr-conventions.md, "Betas across
currencies and calendars"). EUR in USD is EUR.USD as it stands; JPY in USD is USD.JPY inverted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.betas import Bar


@dataclass(frozen=True)
class FxPair:
    conid: int
    inverted: bool  # the pair is quoted the other way: take 1 / close


def fx_pair(reply: Any, currency: str, quote_currency: str) -> FxPair | None:
    """The pair giving one `currency` in `quote_currency`, from the answer for either side;
    the pair named CURRENCY.QUOTE first, else QUOTE.CURRENCY inverted; None if neither."""
    lists = reply.values() if isinstance(reply, dict) else []
    entries = [entry for items in lists if isinstance(items, list) for entry in items]
    found: dict[str, int] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        symbol, conid = entry.get("symbol"), str(entry.get("conid", ""))
        if isinstance(symbol, str) and conid.isdigit():
            found.setdefault(symbol.upper(), int(conid))
    direct = found.get(f"{currency.upper()}.{quote_currency.upper()}")
    if direct is not None:
        return FxPair(direct, inverted=False)
    reverse = found.get(f"{quote_currency.upper()}.{currency.upper()}")
    return FxPair(reverse, inverted=True) if reverse is not None else None


def rates(bars: list[Bar], pair: FxPair) -> list[Bar]:
    """The pair's daily closes as one unit of the currency in the quote currency."""
    if not pair.inverted:
        return bars
    return [Bar(bar.day, 1.0 / bar.close) for bar in bars if bar.close > 0]
