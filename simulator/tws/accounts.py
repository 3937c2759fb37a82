"""What TWS reports about an account, derived from the model's positions and quotes.

Pure arithmetic: a position's market price and value, and the account values (the keys of
updateAccountValue and accountSummary). The simulated accounts hold no cash and never trade.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulator.model import Position, Quote

# accountSummary tags that name every value of a currency group rather than one value.
_GROUP_TAGS = ("$LEDGER", "$LEDGER:ALL", "$LEDGER:USD")


@dataclass(frozen=True)
class Valuation:
    market_price: float
    market_value: float
    unrealized_pnl: float


def valuation(item: Position, quote: Quote) -> Valuation:
    """Mark, else last, else mid; with none of them the position is worth its cost."""
    multiplier = item.instrument.multiplier
    price = quote.mark if quote.mark is not None else quote.last
    if price is None and quote.bid is not None and quote.ask is not None:
        price = (quote.bid + quote.ask) / 2
    if price is None:
        price = item.avg_cost / multiplier
    market_value = item.quantity * multiplier * price
    return Valuation(price, market_value, market_value - item.quantity * item.avg_cost)


def account_values(
    account: str, positions: list[Position], quote: Callable[[int], Quote]
) -> list[tuple[str, str, str]]:
    """(key, value, currency) as updateAccountValue sends them, in TWS's spelling."""
    values = [valuation(item, quote(item.instrument.conid)) for item in positions]
    by_type: dict[str, float] = {}
    for item, value in zip(positions, values, strict=True):
        by_type[item.instrument.sec_type] = by_type.get(item.instrument.sec_type, 0.0) + (
            value.market_value
        )
    net = sum(value.market_value for value in values)
    unrealized = sum(value.unrealized_pnl for value in values)
    gross = sum(abs(value.market_value) for value in values)
    money = {
        "NetLiquidation": net,
        "TotalCashValue": 0.0,
        "GrossPositionValue": gross,
        "StockMarketValue": by_type.get("STK", 0.0),
        "OptionMarketValue": by_type.get("OPT", 0.0),
        "FutureOptionValue": by_type.get("FOP", 0.0),
        "UnrealizedPnL": unrealized,
        "RealizedPnL": 0.0,
    }
    return [
        ("AccountCode", account, ""),
        ("AccountType", "INDIVIDUAL", ""),
        ("Currency", "USD", "USD"),
        *((key, f"{amount:.2f}", "USD") for key, amount in money.items()),
    ]


def summary_tags(requested: tuple[str, ...]) -> set[str] | None:
    """The tags an accountSummary request asks for; None when it asks for every value."""
    if any(tag in _GROUP_TAGS for tag in requested):
        return None
    return set(requested)
