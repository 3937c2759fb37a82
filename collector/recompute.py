"""The Greeks the gateway's rounding destroys, recomputed by the revaluation's model, once per
change of their inputs.

The Client Portal writes Greeks to three decimals: an index option's gamma reads "0.000", a
gamma of "0.022" is known to 2.3 %. For an option with such a Greek (`greeks.
destroyed_by_rounding`: its rounding exceeds 1 % of it), the Greeks are priced from its own
terms (implied vol, strike, expiry, exercise) and its underlying's price with
`revaluation.model_greeks` (the scenario grid's models: QD+ American, Black-76, European), and
`greeks.with_model_greeks` takes each destroyed one the model confirms (within the stated
value's rounding). The socket's Greeks are exact (no error): never recomputed, unchanged.

Kept per option: the inputs last priced and their result, so an option whose gateway values
did not change costs a dictionary look-up. The time to expiry is the one of the tick that first
saw those inputs: a frozen quote's Greeks are the model's at that time, like the gateway's.
docs/ibkr-conventions.md, "PORTAL mode: the gateway's rounding", has the rule and its measure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from collector import greeks
from collector.greeks import Holding
from collector.revaluation import Market, ModelGreeks, model_greeks


def _destroyed(holding: Holding) -> frozenset[str]:
    """The names of the Greeks of an option its rounding destroyed."""
    stated = holding.greeks
    if not holding.is_option or stated is None:
        return frozenset()
    return frozenset(
        name
        for name, value, error in zip(greeks.GREEKS, stated.values, stated.errors, strict=False)
        if greeks.destroyed_by_rounding(value, error)
    )


class GreekRecomputer:
    """Replaces destroyed Greeks by the model's, one tick's holdings at a time."""

    def __init__(self, market: Market) -> None:
        self._market = market
        # conid -> (the inputs last priced, the model's Greeks or why there are none)
        self._priced: dict[int, tuple[Any, ModelGreeks | str]] = {}
        self.pricings = 0  # options priced so far: the look-ups the kept inputs did not answer

    def apply(
        self, accounts: Mapping[str, Sequence[Holding]], now: datetime
    ) -> dict[str, list[Holding]]:
        """Each account's holdings (one tick's) with the Greeks their rounding destroyed
        recomputed where the model confirms them; every other holding as it was. An option no
        longer held, or no longer in need, is forgotten."""
        result: dict[str, list[Holding]] = {}
        seen = set()
        for account, holdings in accounts.items():
            result[account] = []
            for holding in holdings:
                stated = holding.greeks
                destroyed = _destroyed(holding)
                model = None
                if stated is not None and destroyed:
                    seen.add(holding.conid)
                    model = self._model(holding, destroyed, now)
                if stated is None or model is None or isinstance(model, str):
                    # Not in need, or not priceable (its Greeks stay the stated ones, imprecise)
                    result[account].append(holding)
                else:
                    recomputed = greeks.with_model_greeks(stated, model.values, model.errors)
                    result[account].append(replace(holding, greeks=recomputed))
        for conid in set(self._priced) - seen:
            del self._priced[conid]
        return result

    def _model(
        self, holding: Holding, destroyed: frozenset[str], now: datetime
    ) -> ModelGreeks | str:
        """The model's Greeks of the `destroyed` ones (only those are priced), kept while the
        option's stated inputs stay the same."""
        stated = holding.greeks
        assert stated is not None  # `destroyed` is not empty
        # What the model reads: not the option's own price, which moves with every quote.
        terms = replace(holding.terms, option_price=None) if holding.terms is not None else None
        inputs = (stated.values, stated.underlying_price, stated.errors, terms, holding.sec_type)
        previous = self._priced.get(holding.conid)
        if previous is not None and previous[0] == inputs:
            return previous[1]
        model = model_greeks(holding, self._market, now, destroyed)
        self.pricings += 1
        self._priced[holding.conid] = (inputs, model)
        return model
