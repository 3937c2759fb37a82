"""Client Portal values, parsed defensively: strings in, floats or None out, never a guess.

The snapshot endpoint returns nearly every field as a string, sometimes with a prefix ("C" for
yesterday's close, "H" for halted), thousands separators ("1,300"), a K/M/B suffix ("10.2K") or a
percent sign; the first answer for a conid has no fields at all. Garbage becomes None (unknown),
never 0. Greeks are rounded strings ("-2.000"): the socket API's -2 "not computed" marker does
not exist here, so a theta of -2.000 is a theta (docs/protocol.md, "Client Portal values").
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
SNAPSHOT_FIELDS: Final = (LAST, BID, ASK, MARK, DELTA, GAMMA, THETA, VEGA, IMPLIED_VOL)

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
    """'C168.42' -> 168.42, '1,300' -> 1300.0, '10.2K' -> 10200.0, '45%' -> 45.0, 'N/A' -> None."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        return known(raw)
    if not isinstance(raw, str):
        return None
    text = raw.strip().replace(",", "")
    if text[:1] in ("C", "H"):
        text = text[1:]
    scale = 1.0
    if text[-1:].upper() in _SUFFIX:
        scale = _SUFFIX[text[-1].upper()]
        text = text[:-1]
    text = text.removesuffix("%")
    if not _NUMBER.match(text):
        return None
    return known(float(text) * scale)


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

    @property
    def price(self) -> float | None:
        """Mark, else the bid/ask midpoint, else last: the price a dollar delta is valued at."""
        if self.mark is not None:
            return self.mark
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last


def parse_snapshot_item(item: Mapping[str, Any]) -> PortalQuote | None:
    """One element of the snapshot array; None when it does not even name a conid."""
    conid = parse_conid(item.get("conid"))
    if conid is None:
        return None
    updated = item.get("_updated")
    return PortalQuote(
        conid=conid,
        has_values=any(field in item for field in SNAPSHOT_FIELDS),
        last=known_price(parse_number(item.get(LAST))),
        bid=known_price(parse_number(item.get(BID))),
        ask=known_price(parse_number(item.get(ASK))),
        mark=known_price(parse_number(item.get(MARK))),
        delta=parse_number(item.get(DELTA)),
        gamma=parse_number(item.get(GAMMA)),
        theta=parse_number(item.get(THETA)),
        vega=parse_number(item.get(VEGA)),
        implied_vol=parse_number(item.get(IMPLIED_VOL)),
        updated_ms=updated if isinstance(updated, int) and not isinstance(updated, bool) else None,
    )
