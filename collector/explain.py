"""The P&L explain: how much of the gateway's own P&L change the Greeks account for, per
interval between two snapshots of an account, and the day's score. Pure arithmetic, no clock.

Per position, from the Greeks at the start of the interval and the prices and implied vols at
both ends, in the account's base currency (docs/pnl-explain.md has the formulas and sources):
- delta term = dollar delta x relative move = delta x size x (S1 - S0) x fx;
- gamma term = ½ x gamma x size x (S1 - S0)² x fx;
- theta term = theta x size x fx x elapsed calendar days (`theta_days`);
- vega term = vega x size x fx x IV change in vol points;
- a linear position (stock, ETF, future, CFD, index) is exact: size x (P1 - P0) x fx.
`size` = quantity x `greeks.money_per_point` (multiplier / magnifier) and `fx` is the gateway's
rate at the start (`AccountContext.fx`): the conventions of collector/greeks.py, not restated.
Actual = the change of the account's daily P&L; unexplained = actual - explained. A position's
own actual (SOCKET reqPnLSingle) is known only for a position in the base currency: IBKR does
not state the currency of reqPnLSingle's values, so another currency's is unknown
(`pnl_currency_unstated`), never converted on a guess (docs/pnl-explain.md, "Actual").
An interval is not scored when it carries a mark (`MARKS`); a position whose input is missing
is counted with its reason and the account's explained sum is then unknown, never partial.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final

from collector import greeks
from collector.greeks import AccountContext, Holding
from shared import records

TERMS: Final = records.EXPLAIN_TERMS  # delta, gamma, theta, vega, linear
# Why an interval is left out of the score, in the order they are looked for:
# positions_changed: a position was opened, closed or resized (a fill);
# pnl_rolled_over: the two ends fall on different UTC days, so the daily P&L restarted;
# input_missing: a position's input, or the daily P&L at either end, is unknown.
MARKS: Final = records.EXPLAIN_MARKS
# The FRTB P&L attribution test's green zone for the Spearman correlation (docs/pnl-explain.md).
GREEN_SPEARMAN: Final = 0.80
_SECONDS_PER_DAY: Final = 86400.0
_VOL_POINTS: Final = 100.0  # an implied vol of 0.25 is 25 vol points


def theta_days(elapsed_s: float) -> float:
    """The interval in the unit of IBKR's theta: calendar days (docs/ibkr-conventions.md). The
    broken-convention tests replace it to take theta per year."""
    return elapsed_s / _SECONDS_PER_DAY


@dataclass(frozen=True)
class End:
    """One end of an interval: an account's holdings and context at its snapshot's tick `at`
    (the elapsed time of theta is the time between the two ticks)."""

    at: datetime
    holdings: Sequence[Holding]
    context: AccountContext


@dataclass(frozen=True)
class PositionExplain:
    """One position's terms (base currency), or the reason they are unknown."""

    conid: int
    symbol: str
    terms: Mapping[str, float | None]  # every name of TERMS; None where it does not apply
    missing: str | None = None
    # The change of the gateway's own daily P&L of the position (SOCKET reqPnLSingle), in the
    # base currency; None where the gateway gives none (PORTAL), or where it cannot be read as
    # the base currency's (`actual_missing` says why).
    actual: float | None = None
    # records.EXPLAIN_ACTUAL_UNKNOWN's reason, when the gateway gave a P&L but no actual
    actual_missing: str | None = None

    @property
    def explained(self) -> float | None:
        if self.missing is not None:
            return None
        return sum(value for value in self.terms.values() if value is not None)


@dataclass(frozen=True)
class Explain:
    """The explain of one account over one interval."""

    start: datetime
    end: datetime
    currency: str | None
    actual: float | None  # the change of the gateway's daily P&L
    terms: Mapping[str, float | None]  # sums over the positions that have them
    explained: float | None  # None when any position's input is missing
    marks: tuple[str, ...]  # empty: scored
    missing: Mapping[str, int]  # reason -> positions (and "no_daily_pnl" for the account)
    underlyings: Mapping[str, Mapping[str, float | None]]  # symbol -> TERMS, "explained_pnl"
    positions: tuple[PositionExplain, ...] = field(default_factory=tuple)

    @property
    def unexplained(self) -> float | None:
        if self.actual is None or self.explained is None:
            return None
        return self.actual - self.explained

    @property
    def scored(self) -> bool:
        return not self.marks

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.end, self.actual, self.explained, scored=self.scored)


def explain(start: End, end: End) -> Explain:
    """The explain of one account from `start` to `end` (the next snapshot)."""
    before = _open(start.holdings)
    after = _open(end.holdings)
    elapsed_days = theta_days((end.at - start.at).total_seconds())
    positions = tuple(
        position_explain(holding, after[conid], start.context, elapsed_days)
        for conid, holding in sorted(before.items())
        if conid in after
    )
    missing: dict[str, int] = {}
    for position in positions:
        if position.missing is not None:
            missing[position.missing] = missing.get(position.missing, 0) + 1
    actual = _change(start.context.daily_pnl, end.context.daily_pnl)
    if actual is None:
        missing["no_daily_pnl"] = 1
    marks = []
    if {c: h.quantity for c, h in before.items()} != {c: h.quantity for c, h in after.items()}:
        marks.append("positions_changed")
    if start.at.astimezone(UTC).date() != end.at.astimezone(UTC).date():
        marks.append("pnl_rolled_over")
    if missing:
        marks.append("input_missing")
    terms = _sum_terms(positions)
    underlyings: dict[str, dict[str, float | None]] = {}
    for symbol in sorted({position.symbol for position in positions}):
        mine = [position for position in positions if position.symbol == symbol]
        underlyings[symbol] = {**_sum_terms(mine), "explained_pnl": _explained(mine)}
    return Explain(
        start=start.at,
        end=end.at,
        currency=start.context.base_currency,
        actual=actual,
        terms=terms,
        explained=_explained(positions),
        marks=tuple(marks),
        missing=missing,
        underlyings=underlyings,
        positions=positions,
    )


def position_explain(
    start: Holding, end: Holding, context: AccountContext, elapsed_days: float
) -> PositionExplain:
    """One position's terms over the interval (the first missing input's reason otherwise),
    and the gateway's own P&L of it where it gives one."""
    fx = context.fx(start.currency)
    actual, actual_missing = position_actual(start, end, context)
    return replace(
        _terms(start, end, fx, elapsed_days), actual=actual, actual_missing=actual_missing
    )


def position_actual(
    start: Holding, end: Holding, context: AccountContext
) -> tuple[float | None, str | None]:
    """The change of the gateway's own daily P&L of a position over the interval, in the base
    currency, or None and why. reqPnLSingle's values come in a currency IBKR does not state
    (docs/pnl-explain.md, "Actual"): for a position in the base currency either reading is the
    base currency; for one in another currency the change could be in either, so it is
    unknown (`pnl_currency_unstated`). None without a reason: the gateway gave no P&L."""
    change = _change(start.daily_pnl, end.daily_pnl)
    if change is None:
        return None, None
    if context.base_currency is None or not start.currency:
        return None, "no_fx_rate"
    if start.currency != context.base_currency:
        return None, "pnl_currency_unstated"
    return change, None


def _terms(start: Holding, end: Holding, fx: float | None, elapsed_days: float) -> PositionExplain:
    terms: dict[str, float | None] = dict.fromkeys(TERMS)
    reason = _unknown_contract(start, fx)
    if reason is not None:
        return PositionExplain(start.conid, start.symbol, terms, reason)
    assert start.quantity is not None  # for mypy: _unknown_contract checked all three
    assert start.multiplier is not None
    assert start.magnifier is not None
    assert fx is not None
    size = start.quantity * greeks.money_per_point(start.multiplier, start.magnifier) * fx
    if start.is_option:
        return _option_explain(start, end, size, elapsed_days)
    move = _move(start.price, end.price)
    if move is None:
        reason = start.price_reason or end.price_reason or "no_price"
        return PositionExplain(start.conid, start.symbol, terms, reason)
    return PositionExplain(start.conid, start.symbol, {**terms, "linear_pnl": size * move})


def _unknown_contract(holding: Holding, fx: float | None) -> str | None:
    """The first of what every position needs that is unknown, in collector/greeks.py's order."""
    checks = (
        (holding.sec_type not in greeks.OPTION_TYPES | greeks.LINEAR_TYPES, "unsupported_type"),
        (holding.quantity is None, "no_quantity"),
        (holding.multiplier is None, "no_multiplier"),
        (holding.magnifier is None, "no_magnifier"),
        (fx is None, "no_fx_rate"),
    )
    return next((reason for failed, reason in checks if failed), None)


def _option_explain(
    start: Holding, end: Holding, size: float, elapsed_days: float
) -> PositionExplain:
    terms: dict[str, float | None] = dict.fromkeys(TERMS)

    def missing(reason: str) -> PositionExplain:
        return PositionExplain(start.conid, start.symbol, terms, reason)

    if start.greeks is None or end.greeks is None:
        return missing("no_greek")
    delta, gamma, theta, vega = start.greeks.values
    if delta is None or gamma is None or theta is None or vega is None:
        return missing("no_greek")
    move = _move(start.greeks.underlying_price, end.greeks.underlying_price)
    if move is None:
        return missing(start.price_reason or end.price_reason or "no_price")
    vol_before, vol_after = _implied_vol(start), _implied_vol(end)
    if vol_before is None or vol_after is None:
        return missing("no_implied_vol")
    return PositionExplain(
        start.conid,
        start.symbol,
        {
            **terms,
            "delta_pnl": delta * size * move,
            "gamma_pnl": 0.5 * gamma * size * move * move,
            "theta_pnl": theta * size * elapsed_days,
            "vega_pnl": vega * size * (vol_after - vol_before) * _VOL_POINTS,
        },
    )


def _implied_vol(holding: Holding) -> float | None:
    return None if holding.terms is None else greeks.known(holding.terms.implied_vol)


def _open(holdings: Iterable[Holding]) -> dict[int, Holding]:
    """The positions held (a closed one, quantity 0, is still listed by the gateway)."""
    return {holding.conid: holding for holding in holdings if holding.quantity != 0}


def _move(before: float | None, after: float | None) -> float | None:
    start, end = greeks.known_price(before), greeks.known_price(after)
    return None if start is None or end is None else end - start


def _change(before: float | None, after: float | None) -> float | None:
    start, end = greeks.known(before), greeks.known(after)
    return None if start is None or end is None else end - start


def _sum_terms(positions: Iterable[PositionExplain]) -> dict[str, float | None]:
    sums: dict[str, float | None] = dict.fromkeys(TERMS)
    for position in positions:
        for name, value in position.terms.items():
            if value is not None:
                sums[name] = (sums[name] or 0.0) + value
    return sums


def _explained(positions: Sequence[PositionExplain]) -> float | None:
    """The sum of every position's terms; None if any is missing (never a partial total)."""
    total = 0.0
    for position in positions:
        value = position.explained
        if value is None:
            return None
        total += value
    return total


def record(account: str, mode: records.Mode, interval: Explain) -> records.PnlExplain:
    """The spool record of one account's interval; `ts` is its end, the later snapshot's."""
    return records.PnlExplain(
        id=records.explain_id(account, interval.end),
        ts=interval.end,
        account=account,
        mode=mode,
        start_ts=interval.start,
        currency=interval.currency,
        actual_pnl=interval.actual,
        explained_pnl=interval.explained,
        terms=interval.terms,
        marks=interval.marks,
        missing=interval.missing,
        underlying_symbols=tuple(interval.underlyings),
        underlying_rows=tuple(
            tuple(row[name] for name in records.EXPLAIN_ROW)
            for row in interval.underlyings.values()
        ),
        position_conids=tuple(position.conid for position in interval.positions),
        position_rows=tuple(
            (*(position.terms[name] for name in TERMS), position.explained, position.actual)
            for position in interval.positions
        ),
        position_missing=tuple(position.missing for position in interval.positions),
        position_actual_missing=tuple(position.actual_missing for position in interval.positions),
    )


# The day's score -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the score needs of one interval, from an `Explain` or a stored record."""

    end: datetime
    actual: float | None
    explained: float | None
    scored: bool

    @classmethod
    def of_record(cls, record: records.PnlExplain) -> Outcome:
        return cls(record.ts, record.actual_pnl, record.explained_pnl, scored=not record.marks)


@dataclass(frozen=True)
class DayScore:
    """How well one day's scored intervals of an account were explained."""

    scored: int
    not_scored: int
    # 1 - Σ|unexplained| / Σ|actual|: 1 when every interval is explained exactly; negative when
    # the explain is further from the truth than saying nothing. None without a scored change.
    explained_share: float | None
    spearman: float | None  # of explained against actual; None below 3 intervals or no spread
    worst_unexplained: float | None  # the largest |unexplained| of one interval
    worst_at: datetime | None  # the end of that interval

    def passes(self, *, min_explained_share: float, min_spearman: float = GREEN_SPEARMAN) -> bool:
        """Both figures known and at or above their limits."""
        return (
            self.explained_share is not None
            and self.spearman is not None
            and self.explained_share >= min_explained_share
            and self.spearman >= min_spearman
        )


def day_score(intervals: Iterable[Outcome]) -> DayScore:
    """The score of one account's intervals of one day; marked ones are only counted."""
    scored: list[tuple[datetime, float, float]] = []
    not_scored = 0
    for interval in intervals:
        if interval.scored and interval.actual is not None and interval.explained is not None:
            scored.append((interval.end, interval.actual, interval.explained))
        else:
            not_scored += 1
    total_actual = sum(abs(actual) for _, actual, _ in scored)
    residuals = [(abs(actual - explained), end) for end, actual, explained in scored]
    worst = max(residuals, default=None)
    return DayScore(
        scored=len(scored),
        not_scored=not_scored,
        explained_share=(
            1.0 - sum(r for r, _ in residuals) / total_actual if total_actual > 0 else None
        ),
        spearman=spearman([e for _, _, e in scored], [a for _, a, _ in scored]),
        worst_unexplained=None if worst is None else worst[0],
        worst_at=None if worst is None else worst[1],
    )


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation: Pearson's over the ranks, ties given their average rank.
    None for fewer than 3 pairs or when either side has no spread."""
    if len(xs) != len(ys):
        raise ValueError("spearman needs pairs")
    if len(xs) < 3:
        return None
    return _pearson(_ranks(xs), _ranks(ys))


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda index: values[index])
    ranks = [0.0] * len(values)
    position = 0
    while position < len(order):
        tied = position
        while tied + 1 < len(order) and values[order[tied + 1]] == values[order[position]]:
            tied += 1
        average = (position + tied) / 2 + 1
        for index in order[position : tied + 1]:
            ranks[index] = average
        position = tied + 1
    return ranks


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var_x = sum((x - mean_x) ** 2 for x in xs)
    var_y = sum((y - mean_y) ** 2 for y in ys)
    if var_x == 0 or var_y == 0:
        return None
    return cov / math.sqrt(var_x * var_y)
