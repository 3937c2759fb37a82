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

A tick in three steps, so that the pricing (`price`, a top-level function) can run in the
collector's worker process while the rest stays on its loop: `plan` (what the kept inputs do
not answer), `keep` (the prices, whenever they come), `figured` (the holdings with every kept
model Greek). `apply` runs the three in this process. An option whose pricing never came (the
worker crashed or was late) keeps its stated Greeks, imprecise as stated, and is priced again
at the next tick.
docs/ibkr-conventions.md, "PORTAL mode: the gateway's rounding", has the rule and its measure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from collector import greeks
from collector.greeks import Holding
from collector.revaluation import Market, ModelGreeks, model_greeks

# An option as the model reads it: its conid and its stated inputs (`_key`)
Key = tuple[int, Any]


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


def _key(holding: Holding) -> Key | None:
    """What the model reads of an option in need (None: not in need): not the option's own
    price, which moves with every quote."""
    stated = holding.greeks
    if stated is None or not _destroyed(holding):
        return None
    terms = replace(holding.terms, option_price=None) if holding.terms is not None else None
    inputs = (stated.values, stated.underlying_price, stated.errors, terms, holding.sec_type)
    return (holding.conid, inputs)


@dataclass(frozen=True)
class Pricing:
    """One option the kept inputs do not answer: what `price` needs to price it."""

    key: Key
    holding: Holding
    destroyed: frozenset[str]  # only these are priced


@dataclass(frozen=True)
class Plan:
    """One tick's holdings, each option in need with its key, and those to price."""

    accounts: Mapping[str, Sequence[Holding]]
    keys: Mapping[str, Sequence[Key | None]]  # per account, in its holdings' order
    wanted: tuple[Pricing, ...]  # once each, however many accounts hold the option


def price(wanted: Sequence[Pricing], market: Market, now: datetime) -> list[ModelGreeks | str]:
    """The model's Greeks of each option of `wanted` (or why there are none), in its order:
    what the collector's worker process runs (a top-level function, so it can be sent
    there)."""
    return [model_greeks(each.holding, market, now, each.destroyed) for each in wanted]


class GreekRecomputer:
    """Replaces destroyed Greeks by the model's, one tick's holdings at a time."""

    def __init__(self, market: Market) -> None:
        self._market = market
        # (conid, inputs) -> the model's Greeks or why there are none; only this tick's keys
        self._kept: dict[Key, ModelGreeks | str] = {}
        self.pricings = 0  # options priced so far: the look-ups the kept inputs did not answer

    def plan(self, accounts: Mapping[str, Sequence[Holding]]) -> Plan:
        """What the kept inputs do not answer of one tick's holdings. The kept results of an
        option no longer held, no longer in need or whose inputs changed are forgotten."""
        keys = {account: [_key(holding) for holding in holdings]
                for account, holdings in accounts.items()}  # fmt: skip
        seen = {key for account_keys in keys.values() for key in account_keys if key}
        self._kept = {key: model for key, model in self._kept.items() if key in seen}
        wanted: dict[Key, Pricing] = {}
        for account, holdings in accounts.items():
            for holding, key in zip(holdings, keys[account], strict=True):
                if key is not None and key not in self._kept and key not in wanted:
                    wanted[key] = Pricing(key, holding, _destroyed(holding))
        return Plan(accounts, keys, tuple(wanted.values()))

    def keep(self, wanted: Sequence[Pricing], priced: Sequence[ModelGreeks | str]) -> None:
        """The results of `price(wanted, ...)`, kept for this tick and the next ones while
        their inputs stay the same."""
        for pricing, model in zip(wanted, priced, strict=True):
            self._kept[pricing.key] = model
        self.pricings += len(wanted)

    def figured(self, plan: Plan) -> dict[str, list[Holding]]:
        """Each account's holdings with the Greeks their rounding destroyed recomputed where a
        kept result confirms them; every other holding as it was (not priceable, not priced
        yet: its Greeks stay the stated ones, imprecise)."""
        result: dict[str, list[Holding]] = {}
        for account, holdings in plan.accounts.items():
            result[account] = []
            for holding, key in zip(holdings, plan.keys[account], strict=True):
                model = None if key is None else self._kept.get(key)
                if holding.greeks is None or model is None or isinstance(model, str):
                    result[account].append(holding)
                else:
                    recomputed = greeks.with_model_greeks(
                        holding.greeks, model.values, model.errors
                    )
                    result[account].append(replace(holding, greeks=recomputed))
        return result

    def apply(
        self, accounts: Mapping[str, Sequence[Holding]], now: datetime
    ) -> dict[str, list[Holding]]:
        """Each account's holdings (one tick's) with the Greeks their rounding destroyed
        recomputed where the model confirms them, priced in this process; every other holding
        as it was. An option no longer held, or no longer in need, is forgotten."""
        plan = self.plan(accounts)
        self.keep(plan.wanted, price(plan.wanted, self._market, now))
        return self.figured(plan)
