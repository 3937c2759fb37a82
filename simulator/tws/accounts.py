"""What TWS reports about an account, from the model's ledger: the keys of updateAccountValue
and accountSummary, in TWS's spelling.

Money is written to the cent; keys that exist per currency come once per currency and once as
BASE (everything converted at the account's exchange rates); NetLiquidation and the other
account-wide keys carry the base currency's code, which is how a client learns it.
"""

from __future__ import annotations

from simulator.model import Ledger

# accountSummary tags that name every value of a currency group rather than one value.
_GROUP_TAGS = ("$LEDGER", "$LEDGER:ALL", "$LEDGER:USD")
# What the per-currency keys are prefixed with when the scenario's `ledger_prefix` is set.
LEDGER_KEY_PREFIX = "$LEDGER-"


def _money(amount: float) -> str:
    return f"{amount:.2f}"


def account_values(
    account: str, ledger: Ledger, *, ledger_prefix: bool = False
) -> list[tuple[str, str, str]]:
    """(key, value, currency) as updateAccountValue sends them; with `ledger_prefix` the
    per-currency keys (and their BASE rows) are written "$LEDGER-<key>"."""
    base = ledger.base
    base_code = ledger.base_currency
    values = [
        ("AccountCode", account, ""),
        ("AccountType", "INDIVIDUAL", ""),
    ]
    whole = {
        "NetLiquidation": base.net_liquidation,
        "TotalCashValue": base.cash,
        "GrossPositionValue": abs(base.stock_value) + abs(base.option_value)
        + abs(base.future_option_value),
        "StockMarketValue": base.stock_value,
        "OptionMarketValue": base.option_value,
        "FutureOptionValue": base.future_option_value,
        "UnrealizedPnL": base.unrealized_pnl,
        "RealizedPnL": 0.0,
    }  # fmt: skip
    values += [(key, _money(amount), base_code) for key, amount in whole.items()]
    prefix = LEDGER_KEY_PREFIX if ledger_prefix else ""
    for code, line in ledger.currencies.items():
        values += [(prefix + key, value, currency) for key, value, currency in [
            ("Currency", code, code),
            ("CashBalance", _money(line.cash), code),
            ("TotalCashBalance", _money(line.cash), code),
            ("NetLiquidationByCurrency", _money(line.net_liquidation), code),
            ("UnrealizedPnL", _money(line.unrealized_pnl), code),
            ("RealizedPnL", "0.00", code),
            # One unit of the currency in the base currency; BASE and the base itself are 1.
            ("ExchangeRate", repr(line.exchange_rate), code),
        ]]  # fmt: skip
    return values


def summary_tags(requested: tuple[str, ...]) -> set[str] | None:
    """The tags an accountSummary request asks for; None when it asks for every value."""
    if any(tag in _GROUP_TAGS for tag in requested):
        return None
    return set(requested)
