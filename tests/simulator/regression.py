"""The tests' own beta, computed apart from the collector's and the simulator's code."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

Bar = TypeVar("Bar")


def beta(
    bars: Sequence[Bar],
    benchmark: Sequence[Bar],
    *,
    day: Callable[[Bar], Hashable],
    close: Callable[[Bar], float],
) -> float | None:
    """OLS slope of daily close returns on the benchmark's, aligned by day; None under two."""

    def returns(series: Sequence[Bar]) -> dict[Hashable, float]:
        return {day(b): close(b) / close(a) - 1 for a, b in itertools.pairwise(series)}

    mine, theirs = returns(bars), returns(benchmark)
    days = [d for d in mine if d in theirs]
    if len(days) < 2:
        return None
    xs, ys = [theirs[d] for d in days], [mine[d] for d in days]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
