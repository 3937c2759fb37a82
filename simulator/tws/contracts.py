"""Which of the model's instruments a request's contract describes, by IB's matching rules.

A conid decides alone; otherwise every field the client filled in must agree. An expiry of six
digits is a contract month, SMART routes to any venue and "CALL"/"PUT" mean "C"/"P".
"""

from __future__ import annotations

from simulator.model import Instrument, Market
from simulator.tws.requests import ContractSpec

_RIGHTS = {"CALL": "C", "PUT": "P"}
_ANY_VENUE = ("", "SMART")


def _agrees(spec: ContractSpec, instrument: Instrument) -> bool:
    expiry = spec.last_trade_date_or_contract_month
    right = _RIGHTS.get(spec.right.upper(), spec.right.upper())
    return (
        (not spec.sec_type or spec.sec_type == instrument.sec_type)
        and (not expiry or (instrument.expiry or "").startswith(expiry))
        and (spec.strike is None or spec.strike == instrument.strike)
        and (not right or right == instrument.right)
        and (not spec.multiplier or float(spec.multiplier) == instrument.multiplier)
        and (
            spec.exchange in _ANY_VENUE
            or spec.exchange in (instrument.exchange, instrument.primary_exchange)
        )
        and (not spec.currency or spec.currency == instrument.currency)
        and (not spec.local_symbol or spec.local_symbol == instrument.local_symbol)
        and (not spec.trading_class or spec.trading_class == instrument.trading_class)
    )


def match_instruments(market: Market, spec: ContractSpec) -> list[Instrument]:
    """Every instrument the contract can mean: one is a match, several are ambiguous."""
    if spec.conid:
        instrument = market.instrument(spec.conid)
        if instrument is None or (spec.sec_type and spec.sec_type != instrument.sec_type):
            return []
        return [instrument]
    if not spec.symbol and not spec.local_symbol:
        return []
    try:
        float(spec.multiplier or 0)
    except ValueError:
        return []
    candidates = market.find_instruments(
        symbol=spec.symbol or None, local_symbol=spec.local_symbol or None
    )
    return [instrument for instrument in candidates if _agrees(spec, instrument)]
