"""Net Greeks of one account from its holdings: pure arithmetic, `now` passed in.

Conventions (what a trader reads in `portfolio_greeks`):
- net_delta is in share-equivalents: sum of quantity x multiplier x delta over options, plus
  quantity x multiplier for stocks and futures (their delta is exactly 1 per unit).
- net_gamma, net_theta, net_vega use the same footing: quantity x multiplier x Greek, so theta is
  the account's dollars per day and vega its dollars per vol point.
- net_dollar_delta is share-equivalent delta x the underlying's price.
- Unknown is null, never 0. An option without Greeks (or without a known multiplier) contributes
  nothing and is counted out of `option_count`. A net value is null when no holding contributed a
  known value to it. Stock and futures deltas are known, so an account of stock only has a
  net_delta and null gamma, theta and vega: "no option reported a gamma", not "gamma is 0".
- The gateways' sentinels are unknowns: NaN, infinities, IB's unset double (1.797e308) and the
  -1/-2 "not computed" markers of the socket API (ib_async 2.1.0 passes theta and vega of -2
  through as numbers: `vega if vega != -2 else vega` in `wrapper.tickOptionComputation`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared import records

OPTION_TYPES: Final = frozenset({"OPT", "FOP"})
LINEAR_TYPES: Final = frozenset({"STK", "FUT", "ETF"})
# Any magnitude this large is a sentinel (IB's UNSET_DOUBLE is sys.float_info.max), not a price.
_UNSET_ABOVE: Final = 1e300
# The socket API's "not computed" markers: -2 for delta, gamma, vega, theta; -1 for IV and prices.
_NOT_COMPUTED_GREEK: Final = -2.0
_NOT_COMPUTED_PRICE: Final = -1.0


def known(value: float | None) -> float | None:
    """A finite, non-sentinel number, or None."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    if not math.isfinite(number) or abs(number) >= _UNSET_ABOVE:
        return None
    return number


def known_greek(value: float | None) -> float | None:
    number = known(value)
    return None if number == _NOT_COMPUTED_GREEK else number


def known_price(value: float | None) -> float | None:
    """Prices of -1 (IB's empty price) or below are unknown; 0 is a price only for nothing."""
    number = known(value)
    return None if number is None or number <= _NOT_COMPUTED_PRICE or number == 0 else number


def parse_multiplier(raw: str | float | None) -> float | None:
    """'100', 100, '' , None, '0' -> 100.0 or None (a multiplier of 0 is unknown, not zero)."""
    if raw is None or raw == "":
        return None
    try:
        number = known(float(raw))
    except (TypeError, ValueError):
        return None
    return number if number is not None and number > 0 else None


@dataclass(frozen=True)
class OptionGreeks:
    """The latest model Greeks of one option, per unit of underlying, as received."""

    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    underlying_price: float | None
    received_at: datetime

    @classmethod
    def cleaned(
        cls,
        *,
        delta: float | None,
        gamma: float | None,
        theta: float | None,
        vega: float | None,
        underlying_price: float | None,
        received_at: datetime,
    ) -> OptionGreeks:
        return cls(
            known_greek(delta),
            known_greek(gamma),
            known_greek(theta),
            known_greek(vega),
            known_price(underlying_price),
            received_at,
        )


@dataclass(frozen=True)
class Holding:
    """One position of one account, with what is known about it right now."""

    conid: int
    symbol: str  # the underlying's symbol: the per-underlying breakdown is keyed by it
    sec_type: str
    quantity: float
    multiplier: float | None
    price: float | None = None  # the instrument's own price (stocks and futures)
    greeks: OptionGreeks | None = None

    @property
    def is_option(self) -> bool:
        return self.sec_type in OPTION_TYPES


class _Sums:
    """Running sums where None means "nothing known yet" and stays None until a value arrives."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = dict.fromkeys(records.GREEK_FIELDS)
        self.option_count = 0
        self.options_with_greeks = 0
        self.position_count = 0

    def add(self, field_name: str, value: float | None) -> None:
        if value is not None:
            self.values[field_name] = (self.values[field_name] or 0.0) + value

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.values,
            "position_count": self.position_count,
            "option_count": self.option_count,
            "options_with_greeks": self.options_with_greeks,
        }


@dataclass(frozen=True)
class AccountGreeks:
    net: Mapping[str, Any]
    underlyings: Mapping[str, Mapping[str, Any]]
    stalest_greek_age_s: float | None


def aggregate(holdings: Iterable[Holding], now: datetime) -> AccountGreeks:
    total = _Sums()
    per_underlying: dict[str, _Sums] = {}
    oldest: datetime | None = None
    for holding in holdings:
        sums = per_underlying.setdefault(holding.symbol, _Sums())
        contributed = _contribute(holding, (total, sums))
        if contributed and holding.greeks is not None:
            received = holding.greeks.received_at
            oldest = received if oldest is None or received < oldest else oldest
    stalest = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
    return AccountGreeks(
        total.as_dict(),
        {symbol: sums.as_dict() for symbol, sums in sorted(per_underlying.items())},
        stalest,
    )


def _contribute(holding: Holding, targets: Sequence[_Sums]) -> bool:
    """Add one holding to every target; True when it contributed Greeks of an option."""
    if holding.quantity == 0:
        return False  # a closed position, still listed by the gateway until the next day
    for sums in targets:
        sums.position_count += 1
        sums.option_count += holding.is_option
    if holding.multiplier is None:
        return False
    size = holding.quantity * holding.multiplier
    if holding.sec_type in LINEAR_TYPES:
        for sums in targets:
            sums.add("net_delta", size)
            price = known_price(holding.price)
            sums.add("net_dollar_delta", size * price if price is not None else None)
        return False
    greeks = holding.greeks
    if not holding.is_option or greeks is None or greeks.delta is None:
        return False
    for sums in targets:
        sums.options_with_greeks += 1
        sums.add("net_delta", size * greeks.delta)
        for name, value in (
            ("net_gamma", greeks.gamma),
            ("net_theta", greeks.theta),
            ("net_vega", greeks.vega),
        ):
            sums.add(name, size * value if value is not None else None)
        if greeks.underlying_price is not None:
            sums.add("net_dollar_delta", size * greeks.delta * greeks.underlying_price)
    return True


def snapshot(
    account: str, tick_ts: datetime, mode: records.Mode, greeks: AccountGreeks
) -> records.Snapshot:
    """The spool record of one account at one tick."""
    net = greeks.net
    return records.Snapshot(
        id=records.snapshot_id(account, tick_ts),
        ts=tick_ts,
        account=account,
        mode=mode,
        net_delta=net["net_delta"],
        net_gamma=net["net_gamma"],
        net_theta=net["net_theta"],
        net_vega=net["net_vega"],
        net_dollar_delta=net["net_dollar_delta"],
        position_count=net["position_count"],
        option_count=net["option_count"],
        options_with_greeks=net["options_with_greeks"],
        stalest_greek_age_s=greeks.stalest_greek_age_s,
        underlyings=greeks.underlyings,
    )
