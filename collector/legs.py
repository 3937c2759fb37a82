"""The legs behind the totals: each position's inputs and what it adds to each figure, as one
row of `position_legs`. Pure: the results are `greeks.position_figures`' (written once), the
inputs the holding's as the gateway gave them.

A leg's `missing_reason` is the first reason among its dollar delta, dollar gamma, theta and
vega (in that order) that is missing; None when every figure it counts in is known. A closed
position (quantity 0, listed until the next day) has no leg, as it has no part in the totals.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from collector.greeks import AccountContext, Holding, position_figures
from shared import records

# The figures a leg's results are, in the order its missing reason is looked for.
_RESULTS = ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega")


def leg_of(holding: Holding, context: AccountContext) -> records.Leg:
    """One position's leg."""
    parts = position_figures(holding, context)
    chosen = [parts[figure] for figure in _RESULTS]
    dollar_delta, dollar_gamma, net_theta, net_vega = (
        part if isinstance(part, float) else None for part in chosen
    )
    reason = next((part for part in chosen if isinstance(part, str)), None)
    greeks, terms = holding.greeks, holding.terms
    return records.Leg(
        conid=holding.conid,
        symbol=holding.symbol,
        sec_type=holding.sec_type,
        quantity=holding.quantity,
        multiplier=holding.multiplier,
        magnifier=holding.magnifier,
        price=holding.price,
        underlying_price=greeks.underlying_price if greeks is not None else None,
        implied_vol=terms.implied_vol if terms is not None else None,
        strike=terms.strike if terms is not None else None,
        expiry=terms.expiry if terms is not None else None,
        option_right=terms.right if terms is not None else None,
        delta=greeks.delta if greeks is not None else None,
        gamma=greeks.gamma if greeks is not None else None,
        theta=greeks.theta if greeks is not None else None,
        vega=greeks.vega if greeks is not None else None,
        dollar_delta=dollar_delta,
        dollar_gamma=dollar_gamma,
        net_theta=net_theta,
        net_vega=net_vega,
        missing_reason=reason,
    )


def legs_record(
    account: str,
    tick_ts: datetime,
    mode: records.Mode,
    holdings: Iterable[Holding],
    context: AccountContext,
) -> records.Legs:
    """The spool record of one account's legs at one tick (the snapshot's id)."""
    return records.Legs(
        id=records.snapshot_id(account, tick_ts),
        ts=tick_ts,
        account=account,
        mode=mode,
        currency=context.base_currency,
        legs=tuple(leg_of(holding, context) for holding in holdings if holding.quantity != 0),
    )
