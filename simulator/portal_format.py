"""How the Client Portal gateway writes values: numbers as strings, sizes with thousands
separators ("1,300"), volumes with a K/M suffix ("10.2K"), strikes without a needless ".0",
contract descriptions like "SPY    JAN2025 440 C [SPY   250117C00440000 100]".

Prices and Greeks come two ways: `exact` (every digit, so sums can be compared with /truth to
1e-9) or `as_gateway` (rounded as recorded, with the last price's "C"/"H" prefixes)."""

from __future__ import annotations

from datetime import datetime

from simulator import rounding
from simulator.model import Instrument

_DERIVATIVES = ("OPT", "FOP")
_RIGHTS = {"C": "Call", "P": "Put"}


def price(value: float | None) -> str | None:
    """A price or a Greek as a string. The real gateway rounds ("168.42", "0.271"); repr keeps
    every digit of the model's float, so a client's sums can equal the model's truth to 1e-9."""
    return None if value is None else repr(float(value))


def rounded_price(value: float | None) -> str | None:
    """A price as the gateway writes it: to the cent, in the quoted units ("168.42")."""
    return None if value is None else rounding.price(value)


def rounded_greek(value: float | None) -> str | None:
    """A Greek as the gateway writes it: three decimals ("0.271", "-2.000", "0.000")."""
    return None if value is None else rounding.greek(value)


def size(value: float | None) -> str | None:
    """A bid/ask/last size: a whole number with thousands separators ("1,300")."""
    return None if value is None else f"{round(value):,}"


def volume(value: float | None) -> str | None:
    """A day's volume: three significant digits with a K or M suffix past 1,000 ("10.2K")."""
    if value is None:
        return None
    for scale, suffix in ((1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{round(value)}"


def strike(value: float | None) -> str:
    """A strike as positions and secdef carry it: "440", "187.5"; "0" when there is none."""
    if value is None:
        return "0"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def multiplier(value: float) -> int | float:
    """A multiplier as a JSON number, whole when it is whole (100, not 100.0)."""
    return int(value) if float(value).is_integer() else value


def contract_multiplier(item: Instrument) -> int | float | None:
    """The contract's multiplier (contract info, secdef): none for stock."""
    return None if item.sec_type == "STK" else multiplier(item.multiplier)


def position_multiplier(item: Instrument) -> int | float | None:
    """The multiplier positions carry: the contract's, except none for stock and for the
    contracts whose positions the scenario serves without one (as the real gateway sometimes
    does: the client must look it up in secdef or contract info)."""
    return contract_multiplier(item) if item.portal_multiplier else None


def _expiry(item: Instrument) -> datetime | None:
    return None if item.expiry is None else datetime.strptime(item.expiry, "%Y%m%d")


def contract_description(item: Instrument) -> str:
    """`contractDesc` of a position: the symbol for stock, month and year for a future, and for
    an option the month, strike and right with the local symbol and multiplier in brackets."""
    expires = _expiry(item)
    if expires is None:
        return item.symbol
    month = expires.strftime("%b%Y").upper()
    if item.sec_type not in _DERIVATIVES:
        return f"{item.symbol} {month}"
    return (
        f"{item.symbol:<6} {month} {strike(item.strike)} {item.right} "
        f"[{item.local_symbol} {multiplier(item.multiplier)}]"
    )


def full_name(item: Instrument) -> str:
    """`fullName` of a position: "SPY Jan17'25 440 Call"; the symbol for anything else."""
    expires = _expiry(item)
    if expires is None or item.sec_type not in _DERIVATIVES or item.right is None:
        return item.symbol
    return f"{item.symbol} {expires:%b%d'%y} {strike(item.strike)} {_RIGHTS[item.right]}"


def contract_text(item: Instrument) -> str | None:
    """`text` of contract info: "MAR 15 '24 187.5 Call" for an option, else None."""
    expires = _expiry(item)
    if expires is None or item.right is None:
        return None
    return f"{expires:%b %d '%y}".upper() + f" {strike(item.strike)} {_RIGHTS[item.right]}"
