"""Client Portal values, parsed defensively: strings in, floats or None out, never a guess.

The snapshot endpoint returns nearly every field as a string; its last price (31) may carry a
prefix ("C": yesterday's close, "H": halted), which says the price is not a live one and is kept
beside it (docs/ibkr-conventions.md, "Prices that are not live"); thousands separators
("1,300"), a K/M/B suffix ("10.2K") or a percent sign; the first answer for a conid has no
fields at all. Garbage becomes None (unknown), never 0. Greeks are rounded strings ("-2.000"):
the socket API's -2 "not computed" marker does not exist here, so a theta of -2.000 is a theta
(docs/protocol.md, "Client Portal values"). What a rounded value can be off by is read from the
string itself: half a unit of its last stated decimal (`rounding_error`; docs/ibkr-conventions.md,
"PORTAL mode: the gateway's rounding").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from collector.greeks import known, known_price

# Field ids of /iserver/marketdata/snapshot (IBKR "Market Data Fields").
LAST: Final = "31"
BID: Final = "84"
ASK: Final = "86"
MARK: Final = "7635"
DELTA: Final = "7308"
GAMMA: Final = "7309"
THETA: Final = "7310"
VEGA: Final = "7311"
IMPLIED_VOL: Final = "7633"
# "SPX Delta": the gateway's own beta-weighted delta per unit, "Delta x dollar adjusted beta,
# where adjusted beta is adjusted by the ratio of the close price" (docs/ibkr-conventions.md).
SPX_DELTA: Final = "7696"
SNAPSHOT_FIELDS: Final = (
    LAST, BID, ASK, MARK, DELTA, GAMMA, THETA, VEGA, IMPLIED_VOL, SPX_DELTA,
)  # fmt: skip
# Market data availability, sent with every answer that has values ("RpB", "DPB", "ZBd"): its
# first character says real-time (R), delayed (D), frozen (Z), frozen delayed (Y) or not
# subscribed (N) (IBKR "Market Data Fields"; docs/ibkr-conventions.md).
MARKET_DATA_AVAILABILITY: Final = "6509"
_NOT_LIVE_BY_CODE: Final = {"D": "delayed", "Z": "frozen", "Y": "delayed_frozen"}

_SUFFIX: Final = {"K": 1e3, "M": 1e6, "B": 1e9}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_conid(raw: Any) -> int | None:
    """A contract id as the gateway may send it: 265598, "265598" or 265598.0 -> 265598; None
    for anything else ("", "n/a", "12a", 0, -5, true): an unreadable id is never guessed."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        raw = int(raw.strip())
    return raw if isinstance(raw, int) and raw > 0 else None


def parse_number(raw: Any) -> float | None:
    """'1,300' -> 1300.0, '10.2K' -> 10200.0, '45%' -> 45.0, 'N/A' -> None, 'C168.42' -> None
    (only the last price has a prefix: `parse_last`)."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        return known(raw)
    if not isinstance(raw, str):
        return None
    stated = _stated_number(raw.strip().replace(",", ""))
    return None if stated is None else known(float(stated[0]) * stated[1])


# Field 31's prefixes: the value is not a live price (IBKR "Market Data Fields": the last price
# "may be prefixed with C or H"), and the reason a position priced by it is missing.
LAST_PREFIXES: Final = {"C": "prior_close", "H": "halted"}


def rounding_error(raw: Any) -> float:
    """How far the number a gateway string states can be from the value it rounded: half a unit
    of its last stated decimal. '0.271' -> 0.0005, '0.000' -> 0.0005, '-2' -> 0.5, '168.42' ->
    0.005, 'C168.42' -> 0.005, '1,300' -> 0.5, '10.2K' -> 50.0, '45.10%' -> 0.005. A JSON number,
    or anything `parse_number` cannot read, states no decimals: 0.0 (nothing is known to be
    rounded; an unreadable value is unknown, not imprecise)."""
    if not isinstance(raw, str):
        return 0.0
    text = raw.strip().replace(",", "")
    stated = _stated_number(text[1:] if text[:1] in LAST_PREFIXES else text)
    if stated is None:
        return 0.0
    text, scale = stated
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2]) - (int(exponent) if exponent else 0)
    return 0.5 * 10.0**-decimals * scale


def _stated_number(text: str) -> tuple[str, float] | None:
    """A gateway number without its commas: its digits as written and the scale of its suffix
    ('10.2K' -> ('10.2', 1000.0), '45.10%' -> ('45.10', 1.0)); None when it is no number."""
    scale = 1.0
    if text[-1:].upper() in _SUFFIX:
        scale = _SUFFIX[text[-1].upper()]
        text = text[:-1]
    text = text.removesuffix("%")
    return (text, scale) if _NUMBER.match(text) else None


def parse_market_data(raw: Any) -> frozenset[str]:
    """Field 6509: 'DpB' -> {'delayed'}, 'ZBd' -> {'frozen'}, 'YP' -> {'delayed_frozen'};
    real-time, not subscribed (no values to flag), absent or unreadable -> nothing."""
    code = raw.strip()[:1] if isinstance(raw, str) else ""
    kind = _NOT_LIVE_BY_CODE.get(code)
    return frozenset({kind}) if kind else frozenset()


def parse_last(raw: Any) -> tuple[float | None, str | None]:
    """Field 31: 'C168.42' -> (168.42, 'C'), '168.42' -> (168.42, None), 'N/A' -> (None, None)."""
    prefix = raw.strip()[:1] if isinstance(raw, str) else ""
    if prefix in LAST_PREFIXES:
        return known_price(parse_number(raw.strip()[1:])), prefix
    return known_price(parse_number(raw)), None


@dataclass(frozen=True)
class PortalQuote:
    """One conid's snapshot, parsed; `has_values` is False for the empty pre-flight answer."""

    conid: int
    has_values: bool
    last: float | None
    bid: float | None
    ask: float | None
    mark: float | None
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    implied_vol: float | None
    updated_ms: int | None
    last_prefix: str | None = None  # "C" or "H": the last is not a live price
    # What each value can be off by from the gateway's rounding (`rounding_error`):
    # (delta, gamma, theta, vega) and (last, bid, ask, mark).
    greek_errors: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    price_errors: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    market_data: frozenset[str] = frozenset()  # `parse_market_data` of its 6509
    spx_delta: float | None = None  # 7696
    implied_vol_error: float = 0.0  # 7633's rounding (`rounding_error`), in percent like it

    @property
    def price(self) -> float | None:
        """Mark, else the bid/ask midpoint, else an unprefixed last: the price a dollar delta
        is valued at. A prior close or a halted last is no live price: None (`price_reason`)."""
        if self.mark is not None:
            return self.mark
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last if self.last_prefix is None else None

    @property
    def price_error(self) -> float:
        """What `price` can be off by from rounding: its source's, the larger of bid's and
        ask's for a midpoint."""
        last, bid, ask, mark = self.price_errors
        if self.mark is not None:
            return mark
        if self.bid is not None and self.ask is not None:
            return max(bid, ask)
        return last

    @property
    def price_reason(self) -> str | None:
        """Why `price` is None: `prior_close` or `halted` when only a prefixed last came, else
        None (the figures then say `no_price`)."""
        if self.price is None and self.last is not None and self.last_prefix is not None:
            return LAST_PREFIXES[self.last_prefix]
        return None


def parse_snapshot_item(item: Mapping[str, Any]) -> PortalQuote | None:
    """One element of the snapshot array; None when it does not even name a conid."""
    conid = parse_conid(item.get("conid"))
    if conid is None:
        return None
    updated = item.get("_updated")
    last, last_prefix = parse_last(item.get(LAST))
    return PortalQuote(
        conid=conid,
        has_values=any(field in item for field in SNAPSHOT_FIELDS),
        last=last,
        bid=known_price(parse_number(item.get(BID))),
        ask=known_price(parse_number(item.get(ASK))),
        mark=known_price(parse_number(item.get(MARK))),
        delta=parse_number(item.get(DELTA)),
        gamma=parse_number(item.get(GAMMA)),
        theta=parse_number(item.get(THETA)),
        vega=parse_number(item.get(VEGA)),
        implied_vol=parse_number(item.get(IMPLIED_VOL)),
        updated_ms=updated if isinstance(updated, int) and not isinstance(updated, bool) else None,
        last_prefix=last_prefix,
        greek_errors=(
            rounding_error(item.get(DELTA)),
            rounding_error(item.get(GAMMA)),
            rounding_error(item.get(THETA)),
            rounding_error(item.get(VEGA)),
        ),
        market_data=parse_market_data(item.get(MARKET_DATA_AVAILABILITY)),
        spx_delta=parse_number(item.get(SPX_DELTA)),
        implied_vol_error=rounding_error(item.get(IMPLIED_VOL)),
        price_errors=(
            rounding_error(item.get(LAST)),
            rounding_error(item.get(BID)),
            rounding_error(item.get(ASK)),
            rounding_error(item.get(MARK)),
        ),
    )
