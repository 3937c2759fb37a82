"""An option's terms (right, strike, expiry, exercise style, implied vol, price) from what a
gateway states, read the same way for both sources: pure, no I/O.

Nothing is guessed: a right that is not C or P, a strike that is not a positive number or an
expiry that is not a whole date (a contract month is not one) leaves the terms unknown (None);
an exercise style the rule below does not settle is None. The rule and its public sources are
in docs/ibkr-conventions.md, "Exercise style".
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final, Literal

from collector.greeks import OPTION_TYPES, OptionTerms, known, known_price

Exercise = Literal["american", "european"]

# Every option on a stock or an ETF listed in the US is American (OCC's equity options
# specifications); IBKR gives ETFs the secType STK, so both read the same.
_AMERICAN_UNDERLYINGS: Final = frozenset({"STK", "ETF"})
# Index options by the index's symbol: the cash-settled ones of Cboe and Nasdaq are European,
# OEX is the American exception (Cboe's and Nasdaq's product specifications). Any other index
# is left unknown.
_INDEX_STYLES: Final[dict[str, Exercise]] = {
    "SPX": "european",
    "XSP": "european",
    "NDX": "european",
    "XND": "european",
    "RUT": "european",
    "MRUT": "european",
    "VIX": "european",
    "DJX": "european",
    "XEO": "european",
    "OEX": "american",
}
_WHOLE_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})(\b|\s|$)")


def parse_expiry(raw: object) -> date | None:
    """'20250117' or '20250117 16:00 US/Eastern' -> 2025-01-17; a month ('202501'), '', None
    or anything else -> None."""
    if not isinstance(raw, str):
        return None
    match = _WHOLE_DATE.match(raw.strip())
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def parse_right(raw: object) -> Literal["C", "P"] | None:
    """'C', 'CALL', 'P', 'PUT' (any case) -> 'C' or 'P'; anything else -> None."""
    text = raw.strip().upper() if isinstance(raw, str) else ""
    if text in ("C", "CALL"):
        return "C"
    if text in ("P", "PUT"):
        return "P"
    return None


def underlying_type_of(sec_type: str, stated: str | None) -> str | None:
    """The underlying's secType: a futures option's is FUT by definition; otherwise what the
    gateway stated (None when it did not)."""
    if sec_type == "FOP":
        return "FUT"
    return stated or None


def exercise_style(sec_type: str, underlying_sec_type: str | None, symbol: str) -> Exercise | None:
    """American for options on stocks and ETFs, by symbol for index options, None for
    futures options (CME lists both styles on one future: quarterly ES options are American,
    its weeklies European, and neither gateway says which) and for anything else."""
    if sec_type != "OPT" or underlying_sec_type is None:
        return None
    if underlying_sec_type in _AMERICAN_UNDERLYINGS:
        return "american"
    if underlying_sec_type == "IND":
        return _INDEX_STYLES.get(symbol.upper())
    return None


def option_terms(
    *,
    sec_type: str,
    symbol: str,
    right: object,
    strike: object,
    expiry: object,
    underlying_sec_type: str | None,
    implied_vol: float | None,
    option_price: float | None,
    implied_vol_error: float = 0.0,
) -> OptionTerms | None:
    """The terms of one option; None for a non-option or when right, strike or expiry is
    unknown. `implied_vol` is annualised (0.25 for 25 %); zero or less is unknown;
    `implied_vol_error` what the gateway's rounding leaves of it, annualised."""
    if sec_type not in OPTION_TYPES:
        return None
    side = parse_right(right)
    day = parse_expiry(expiry)
    price_of_strike = _strike(strike)
    if side is None or day is None or price_of_strike is None:
        return None
    vol = known(implied_vol)
    underlying = underlying_type_of(sec_type, underlying_sec_type)
    return OptionTerms(
        right=side,
        strike=price_of_strike,
        expiry=day,
        exercise=exercise_style(sec_type, underlying, symbol),
        underlying_sec_type=underlying,
        implied_vol=vol if vol is not None and vol > 0 else None,
        option_price=known_price(option_price),
        implied_vol_error=implied_vol_error,
    )


def _strike(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        number = known(float(raw))  # type: ignore[arg-type]  # str or number; others fail
    except (TypeError, ValueError):
        return None
    return number if number is not None and number > 0 else None
