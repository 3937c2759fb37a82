"""Greeks by expiry: an account's dollar delta, dollar gamma, theta and vega per expiry bucket,
overall and per underlying. Pure arithmetic: the day the buckets count from is an argument.

- Each option's four figures are `greeks.position_figures`' (units and conventions written
  once, docs/ibkr-conventions.md); here they are only sorted by the option's expiry.
- Days to expiry = the option's expiry date (its last trading day, `OptionTerms.expiry`) minus
  `today`, in calendar days. The collector passes the tick's date in New York
  (`EXPIRY_TIME_ZONE`): US options expire at the close there, so an evening tick in UTC still
  counts the day it is in New York.
- Buckets `BUCKETS`: 0-7, 8-30, 31-90, 91-365 and over 365 days.
- Delta-one positions (stocks, ETFs, futures, CFDs, indices) have no option expiry: their dollar
  delta is on a line of its own, `linear_dollar_delta`, so that the buckets' dollar deltas plus
  that line are the snapshot's net dollar delta. They count in no bucket's gamma, theta, vega.
- Completeness per figure, like the snapshot's: every position counts in dollar delta, every
  option (and unsupported position) in the other three. A position that cannot contribute is
  missing with a reason: `position_figures`' own, else `no_expiry` (an option without terms)
  or `expired` (an expiry before `today`, still listed). A bucket nothing contributed to is
  None, never 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from collector.greeks import AccountContext, Holding, Part, position_figures
from shared import records
from shared.records import EXPIRY_BUCKETS, EXPIRY_FIGURES, ExpiryScope

BUCKETS: Final = EXPIRY_BUCKETS  # ("0-7", "8-30", "31-90", "91-365", "366+")
FIGURES: Final = EXPIRY_FIGURES  # dollar delta, dollar gamma, theta, vega
EXPIRY_TIME_ZONE: Final = "America/New_York"
_EXPIRY_ZONE: Final = ZoneInfo(EXPIRY_TIME_ZONE)
# The last day of each bucket but the open-ended last one.
_BUCKET_ENDS: Final = (7, 30, 90, 365)


def bucket_of(days: int) -> int:
    """The index in BUCKETS of an expiry `days` calendar days away (0 or more)."""
    return next((index for index, end in enumerate(_BUCKET_ENDS) if days <= end), len(BUCKETS) - 1)


def expiry_parts(holding: Holding, context: AccountContext, today: date) -> dict[str, Part]:
    """One position's four figures (`position_figures`), or the reason each is missing: an
    option's figures become `no_expiry` or `expired` when it cannot be bucketed."""
    parts = position_figures(holding, context)
    found: dict[str, Part] = {name: parts[name] for name in FIGURES}
    if not holding.is_option:
        return found
    if holding.terms is None:
        reason = "no_expiry"
    elif holding.terms.expiry < today:
        reason = "expired"
    else:
        return found
    return {name: reason if isinstance(part, float) else part for name, part in found.items()}


class _Scope:
    """The buckets, the linear line and the completeness of one account or underlying."""

    def __init__(self) -> None:
        self.buckets: list[list[float | None]] = [[None] * len(FIGURES) for _ in BUCKETS]
        self.linear_dollar_delta: float | None = None
        self.position_count = 0
        self.option_count = 0
        self.completeness: dict[str, dict[str, Any]] = {
            name: {"contributing": 0, "missing": 0, "reasons": {}} for name in FIGURES
        }

    def add(self, holding: Holding, parts: Mapping[str, Part], today: date) -> None:
        self.position_count += 1
        self.option_count += holding.is_option
        for index, name in enumerate(FIGURES):
            part = parts[name]
            counts = self.completeness[name]
            if isinstance(part, str):
                counts["missing"] += 1
                counts["reasons"][part] = counts["reasons"].get(part, 0) + 1
                continue
            if part is None:
                continue  # not applicable: a linear position's gamma, theta, vega
            counts["contributing"] += 1
            if holding.is_option:
                assert holding.terms is not None  # parts are numbers only with an expiry
                row = self.buckets[bucket_of((holding.terms.expiry - today).days)]
                row[index] = (row[index] or 0.0) + part
            else:
                self.linear_dollar_delta = (self.linear_dollar_delta or 0.0) + part

    def result(self) -> ExpiryScope:
        return ExpiryScope(
            buckets=tuple(tuple(row) for row in self.buckets),
            linear_dollar_delta=self.linear_dollar_delta,
            position_count=self.position_count,
            option_count=self.option_count,
            completeness=self.completeness,
        )


@dataclass(frozen=True)
class ExpiryFigures:
    total: ExpiryScope
    underlyings: Mapping[str, ExpiryScope]


def by_expiry(holdings: Iterable[Holding], context: AccountContext, today: date) -> ExpiryFigures:
    """The account's figures by expiry bucket, overall and per underlying symbol."""
    total = _Scope()
    per_underlying: dict[str, _Scope] = {}
    for holding in holdings:
        if holding.quantity == 0:
            continue  # a closed position, still listed until the next day (as in `aggregate`)
        parts = expiry_parts(holding, context, today)
        total.add(holding, parts, today)
        per_underlying.setdefault(holding.symbol, _Scope()).add(holding, parts, today)
    return ExpiryFigures(
        total.result(),
        {symbol: scope.result() for symbol, scope in sorted(per_underlying.items())},
    )


def expiry_record(
    account: str,
    tick_ts: datetime,
    mode: records.Mode,
    context: AccountContext,
    figures: ExpiryFigures,
) -> records.ExpiryGreeks:
    """The spool record of one account's Greeks by expiry at one tick (the snapshot's id)."""
    return records.ExpiryGreeks(
        id=records.snapshot_id(account, tick_ts),
        ts=tick_ts,
        account=account,
        mode=mode,
        currency=context.base_currency,
        total=figures.total,
        underlyings=figures.underlyings,
    )


def expiry_day(tick_ts: datetime) -> date:
    """The date the buckets count from: the tick's date in New York (EXPIRY_TIME_ZONE)."""
    return tick_ts.astimezone(_EXPIRY_ZONE).date()
