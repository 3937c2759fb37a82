"""Black-Scholes prices and Greeks, Black-76 prices and Greeks (options on futures), an
American price by binomial tree, and the deterministic paths the simulator's markets follow.

Greeks are given in IB's units: delta and gamma per unit of underlying, theta per calendar day,
vega per one point of volatility (1 %). Pure functions of their arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RATE = 0.04
_DAYS_PER_YEAR = 365.0


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _normal_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class OptionValue:
    price: float
    delta: float
    gamma: float
    theta: float  # per day
    vega: float  # per vol point


def black_scholes(
    *, spot: float, strike: float, years: float, vol: float, call: bool
) -> OptionValue:
    """European option value and Greeks (no dividends), `years` to expiry, `vol` annualised."""
    years = max(years, 1.0 / (_DAYS_PER_YEAR * 24 * 60))  # at least a minute: no division by 0
    root = math.sqrt(years)
    d1 = (math.log(spot / strike) + (RATE + 0.5 * vol * vol) * years) / (vol * root)
    d2 = d1 - vol * root
    discount = math.exp(-RATE * years)
    pdf = _normal_pdf(d1)
    if call:
        price = spot * _normal_cdf(d1) - strike * discount * _normal_cdf(d2)
        delta = _normal_cdf(d1)
        theta_year = -spot * pdf * vol / (2 * root) - RATE * strike * discount * _normal_cdf(d2)
    else:
        price = strike * discount * _normal_cdf(-d2) - spot * _normal_cdf(-d1)
        delta = _normal_cdf(d1) - 1.0
        theta_year = -spot * pdf * vol / (2 * root) + RATE * strike * discount * _normal_cdf(-d2)
    return OptionValue(
        price=price,
        delta=delta,
        gamma=pdf / (spot * vol * root),
        theta=theta_year / _DAYS_PER_YEAR,
        vega=spot * pdf * root / 100.0,
    )


def black_76_greeks(
    *, future: float, strike: float, years: float, vol: float, call: bool
) -> OptionValue:
    """A European option on a future (Black 1976) and its Greeks, the future taken as its own
    forward: the model of futures options (CME's, and the collector's), so their Greeks are not
    Black-Scholes' on the future, which would grow the future at the rate."""
    years = max(years, 1.0 / (_DAYS_PER_YEAR * 24 * 60))  # at least a minute: no division by 0
    root = math.sqrt(years)
    d1 = (math.log(future / strike) + 0.5 * vol * vol * years) / (vol * root)
    d2 = d1 - vol * root
    discount = math.exp(-RATE * years)
    sign = 1.0 if call else -1.0
    price = discount * sign * (future * _normal_cdf(sign * d1) - strike * _normal_cdf(sign * d2))
    pdf = _normal_pdf(d1)
    # Calendar time shortens T: theta = -dV/dT = rV - e^(-rT) F pdf(d1) vol / (2 sqrt T).
    theta_year = RATE * price - discount * future * pdf * vol / (2 * root)
    return OptionValue(
        price=price,
        delta=discount * sign * _normal_cdf(sign * d1),
        gamma=discount * pdf / (future * vol * root),
        theta=theta_year / _DAYS_PER_YEAR,
        vega=discount * future * pdf * root / 100.0,
    )


def black_76(*, future: float, strike: float, years: float, vol: float, call: bool) -> float:
    """A European option on a future (Black 1976): the discounted Black-Scholes of the future
    taken as its own forward."""
    if years <= 0:
        return _intrinsic(future, strike, call=call)
    root = math.sqrt(years)
    d1 = (math.log(future / strike) + 0.5 * vol * vol * years) / (vol * root)
    d2 = d1 - vol * root
    sign = 1.0 if call else -1.0
    return (
        math.exp(-RATE * years)
        * sign
        * (future * _normal_cdf(sign * d1) - strike * _normal_cdf(sign * d2))
    )


def european(*, spot: float, strike: float, years: float, vol: float, call: bool) -> float:
    """Black-Scholes' price, the intrinsic value at or past expiry."""
    if years <= 0:
        return _intrinsic(spot, strike, call=call)
    return black_scholes(spot=spot, strike=strike, years=years, vol=vol, call=call).price


def american(
    *, spot: float, strike: float, years: float, vol: float, call: bool, steps: int = 100
) -> float:
    """An American option without dividends: the binomial Black-Scholes tree with Richardson
    extrapolation (BBSR, Broadie and Detemple 1996): a Cox-Ross-Rubinstein tree whose last step
    is Black-Scholes' price, at `steps` and `steps` / 2, extrapolated (2 x fine - coarse)."""
    if years <= 0:
        return _intrinsic(spot, strike, call=call)
    fine = _binomial_black_scholes(spot, strike, years, vol, call=call, steps=steps)
    coarse = _binomial_black_scholes(spot, strike, years, vol, call=call, steps=steps // 2)
    return 2 * fine - coarse


def _binomial_black_scholes(
    spot: float, strike: float, years: float, vol: float, *, call: bool, steps: int
) -> float:
    dt = years / steps
    up = math.exp(vol * math.sqrt(dt))
    down = 1 / up
    grow = math.exp(RATE * dt)
    p_up = (grow - down) / (up - down)
    keep = 1 / grow
    last = steps - 1
    values = []
    for j in range(last + 1):  # one step before expiry: the European value for the last step
        price = spot * up**j * down ** (last - j)
        held = black_scholes(spot=price, strike=strike, years=dt, vol=vol, call=call).price
        values.append(max(held, _intrinsic(price, strike, call=call)))
    for i in range(last - 1, -1, -1):
        for j in range(i + 1):
            price = spot * up**j * down ** (i - j)
            held = keep * (p_up * values[j + 1] + (1 - p_up) * values[j])
            values[j] = max(held, _intrinsic(price, strike, call=call))
    return values[0]


def _intrinsic(price: float, strike: float, *, call: bool) -> float:
    return max(price - strike, 0.0) if call else max(strike - price, 0.0)


def path(*, start: float, seed: int, key: int, at_s: float) -> float:
    """A smooth, deterministic price path: the same (seed, key, time) always gives the same
    price, and prices move by a few tenths of a percent a minute."""
    phase = (seed * 7919 + key * 104729) % 1000 / 1000.0 * 2 * math.pi
    slow = 0.01 * math.sin(2 * math.pi * at_s / 600.0 + phase)
    fast = 0.002 * math.sin(2 * math.pi * at_s / 47.0 + 2 * phase)
    return start * (1.0 + slow + fast)
