"""The precision a snapshot states its figures to (`records.kept`), as the tolerance of the
tests that compare them with the simulator's truth: money within half a cent (or, from $10M
up, 9 significant digits), share-equivalents to 9 significant digits."""

from __future__ import annotations

from typing import Any

import pytest

from shared import records

# Half a unit in the 9th significant digit, relative: what rounding to 9 digits can move.
STATED_REL = 0.5 * 10.0 ** (1 - records.SIGNIFICANT_DIGITS)
HALF_CENT = 0.005
_SHARE_EQUIVALENTS = frozenset({"net_beta_delta", "net_delta", "net_gamma", "gateway_beta_delta"})


def statement_error(name: str, value: float) -> float:
    """How far stating figure `name` as `value` can have moved it from the figure computed:
    half a cent of money (from $10M up, half a unit in its 9th significant digit), half a unit in
    the 9th significant digit of a share-equivalent. A figure's `rounding_bound` is what the
    gateway's rounding can move the computed figure by; the stored one is within both."""
    relative = STATED_REL * abs(value)
    return relative if name in _SHARE_EQUIVALENTS else max(HALF_CENT, relative)


def stated(name: str, expected: float, *, rel: float = 1e-9, abs_: float = 0.0) -> Any:
    """`expected` as figure `name` of a snapshot can be stated: within `rel` (or `abs_`) of
    it, widened to the stated precision, never narrowed."""
    money = name not in _SHARE_EQUIVALENTS
    # Money is rounded to the cent after the arithmetic: half a cent, plus the `rel` by which the
    # unrounded value may differ from `expected` (24631.2050000001 states .21, the truth's
    # 24631.2049999999 .20).
    half_cent = HALF_CENT + rel * abs(expected) if money else 0.0
    return pytest.approx(expected, rel=max(rel, STATED_REL), abs=max(abs_, half_cent))
