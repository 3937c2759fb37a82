"""The running day score against a plain reference: the same figures as scoring the day so far
afresh, ties at their average rank, unknown before the twelfth interval, restarted each UTC day."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerter.day_score import (
    RERANK_FROM_PENDING,
    DayScores,
    Interval,
    RunningDayScore,
    as_of_each,
)
from database.reads import EXPLAIN_MIN_SCORED

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=5)


def _reference_ranks(values: list[float]) -> list[float]:
    """Each value's 1-based rank, a tie's members all at the tie's average: counted, not sorted."""
    return [
        sum(v < value for v in values) + (sum(v == value for v in values) + 1) / 2
        for value in values
    ]


def _reference_spearman(xs: list[float], ys: list[float]) -> float | None:
    rx, ry = _reference_ranks(xs), _reference_ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def _close(found: float | None, expected: float | None) -> bool:
    """Both unknown, or equal but for the rounding of a sum taken in another order."""
    if found is None or expected is None:
        return found is expected
    return found == pytest.approx(expected, rel=1e-9, abs=1e-12)


def _feed(score: RunningDayScore, pairs: list[tuple[float, float]], start: datetime) -> None:
    for number, (actual, explained) in enumerate(pairs):
        score.add(start + number * STEP, actual, explained, actual - explained)


def test_twelve_intervals_worked_by_hand() -> None:
    """Actual 10 x k, explained the same but 20 at the 3rd and 100 at the 12th: unknown through
    the eleventh; then share 1 - (10 + 20) / 780 = 25/26, the worst 20, and the ranks of
    explained (10, 20, 20, 40, ..., 90, 100, 110, 100) tie the 2nd and 3rd at 2.5, the 10th and
    12th at 10.5, the 11th 12th."""
    pairs = [(10.0 * k, {3: 20.0, 12: 100.0}.get(k, 10.0 * k)) for k in range(1, 13)]
    score = RunningDayScore()
    _feed(score, pairs[:11], NOON)
    assert score.figures(NOON + 11 * STEP) == {
        "explain_share": None, "explain_spearman": None, "explain_worst_unexplained": None,
    }  # fmt: skip
    _feed(score, pairs[11:], NOON + 11 * STEP)
    figures = score.figures(NOON + 12 * STEP)
    assert figures["explain_share"] == pytest.approx(25 / 26, abs=1e-15)
    assert figures["explain_worst_unexplained"] == 20.0
    # Against the actual ranks k = 1..12 (mean 6.5, n x mean^2 = 507, sum of k^2 = 650): the
    # rank products sum to 650 + 0.5 x 2 - 0.5 x 3 + 0.5 x 10 + 1 x 11 - 1.5 x 12 = 647.5; the
    # explained ranks' squares to 650 + 2 x 2.5^2 - 2^2 - 3^2 + 2 x 10.5^2 - 10^2 - 12^2 + 12^2
    # - 11^2 = 649.
    covariance, spread_explained, spread_actual = 647.5 - 507, 649 - 507, 650 - 507
    assert figures["explain_spearman"] == pytest.approx(
        covariance / math.sqrt(spread_explained * spread_actual), abs=1e-15
    )


def test_a_new_utc_day_starts_afresh_and_an_older_day_is_ignored() -> None:
    """Twelve intervals up to 23:59:55, then one at midnight: the new day knows one interval
    (unknown), and the old day's figures are not the new day's; a late interval of the day
    before changes nothing."""
    score = RunningDayScore()
    midnight = datetime(2026, 3, 3, tzinfo=UTC)
    _feed(score, [(float(k), float(k)) for k in range(1, 13)], midnight - 12 * STEP)
    assert score.figures(midnight - STEP)["explain_share"] == 1.0
    assert score.figures(midnight)["explain_share"] is None  # the new day has nothing yet
    score.add(midnight, 5.0, 1.0, 4.0)
    assert (score.day, score.scored) == (midnight, 1)
    score.add(midnight - STEP, 1e6, 0.0, 1e6)
    assert score.scored == 1


def test_no_spread_of_ranks_is_no_correlation_and_no_actual_move_is_no_share() -> None:
    """Every explained the same (their ranks all tied): no correlation, as PostgreSQL's corr;
    every actual 0: no share; the worst residual still known."""
    score = RunningDayScore()
    _feed(score, [(0.0, 3.0)] * EXPLAIN_MIN_SCORED, NOON)
    assert score.figures(NOON + 12 * STEP) == {
        "explain_share": None, "explain_spearman": None, "explain_worst_unexplained": 3.0,
    }  # fmt: skip


# Mostly small integers, so that ties (within a side and across the points) are common.
_VALUE = st.integers(-3, 3).map(float) | st.integers(-3, 3).map(float) | st.floats(-1e6, 1e6)
pairs_strategy = st.lists(st.tuples(_VALUE, _VALUE), min_size=1, max_size=80)


def test_ties_met_one_point_at_a_time_move_half_a_place() -> None:
    """Twelve points ranked at once, then five more asked after each (ranked one by one), each
    joining or making a tie on both sides: every answer equals the reference."""
    pairs = [(float(k % 4), float(k % 3)) for k in range(12)]
    score = RunningDayScore()
    _feed(score, pairs, NOON)
    assert score.spearman() == pytest.approx(
        _reference_spearman([e for _, e in pairs], [a for a, _ in pairs]), abs=1e-12
    )
    for actual, explained in [(1.0, 2.0), (1.0, 2.0), (9.0, -1.0), (0.0, 0.0), (9.0, 5.0)]:
        pairs.append((actual, explained))
        score.add(NOON + len(pairs) * STEP, actual, explained, actual - explained)
        expected = _reference_spearman([e for _, e in pairs], [a for a, _ in pairs])
        assert score.spearman() == pytest.approx(expected, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(pairs=pairs_strategy, asked_every=st.integers(1, 2 * RERANK_FROM_PENDING))
def test_the_running_score_equals_the_day_scored_afresh(
    pairs: list[tuple[float, float]], asked_every: int
) -> None:
    """Fed one interval at a time and asked every few (so pending points are ranked one by one
    and afresh), each answer equals the reference over the prefix: small integers make ties."""
    score = RunningDayScore()
    for number, (actual, explained) in enumerate(pairs, start=1):
        ts = NOON + number * STEP
        score.add(ts, actual, explained, actual - explained)
        if number % asked_every and number != len(pairs):
            continue
        figures = score.figures(ts)
        prefix = pairs[:number]
        if number < EXPLAIN_MIN_SCORED:
            assert set(figures.values()) == {None}
            continue
        total_actual = sum(abs(a) for a, _ in prefix)
        residuals = [abs(a - e) for a, e in prefix]
        share = None if total_actual == 0 else 1 - sum(residuals) / total_actual
        expected = _reference_spearman([e for _, e in prefix], [a for a, _ in prefix])
        assert figures["explain_worst_unexplained"] == max(residuals)
        assert _close(figures["explain_share"], share)
        assert _close(figures["explain_spearman"], expected)


def test_day_scores_read_after_the_last_interval_and_from_the_day_after_a_forget() -> None:
    """The first read starts at the first snapshot's UTC day; the next after the last interval
    read, scored or marked (a microsecond on, timestamptz's resolution); after `forget`, at the
    day again; an account no longer judged is dropped."""
    scores = DayScores()
    day = datetime(2026, 3, 2, tzinfo=UTC)
    assert scores.to_read({"A": (NOON, NOON + STEP)}) == {"A": (day, NOON + STEP)}
    answers = as_of_each(
        scores,
        [("A", NOON), ("A", NOON + STEP)],
        [("A", NOON - STEP, True, 1.0, 1.0, 0.0), ("A", NOON + STEP, False, None, None, None)],
    )
    assert [a["explain_share"] for a in answers] == [None, None]  # one interval: too few
    after = NOON + STEP + timedelta(microseconds=1)
    assert scores.to_read({"A": (NOON + 2 * STEP, NOON + 3 * STEP)}) == {
        "A": (after, NOON + 3 * STEP)
    }
    scores.forget()
    assert scores.to_read({"A": (NOON + 2 * STEP, NOON + 3 * STEP)}) == {
        "A": (day, NOON + 3 * STEP)
    }
    as_of_each(scores, [("A", NOON)], [("A", NOON, True, 1.0, 1.0, 0.0)])
    assert scores.accounts == {"A"}
    scores.to_read({"B": (NOON, NOON)})
    assert scores.accounts == frozenset()


def test_each_snapshot_sees_only_the_intervals_up_to_it() -> None:
    """Fourteen intervals 5 s apart, the 6th marked (a fill far off), snapshots at the 12th and
    13th: eleven scored (unknown), then twelve (known, the fill left out); the 14th, after the
    last snapshot, waits (not fed)."""
    scores = DayScores()
    intervals: list[Interval] = [("A", NOON + k * STEP, True, 10.0, 5.0, 5.0) for k in range(1, 15)]
    intervals[5] = ("A", NOON + 6 * STEP, False, None, None, None)
    answers = as_of_each(scores, [("A", NOON + 12 * STEP), ("A", NOON + 13 * STEP)], intervals)
    assert [a["explain_share"] for a in answers] == [None, 0.5]
    assert scores.to_read({"A": (NOON, NOON)})["A"][0] == NOON + 13 * STEP + timedelta(
        microseconds=1
    )


def test_an_account_read_without_intervals_is_carried_and_read_from_the_same_start() -> None:
    """A day read with no interval yet (an account without an explain): carried from then on,
    its next read from the same start, the day's; its figures unknown."""
    scores = DayScores()
    day = datetime(2026, 3, 2, tzinfo=UTC)
    ranges = scores.to_read({"A": (NOON, NOON)})
    scores.read(ranges)
    assert scores.accounts == {"A"}
    assert scores.to_read({"A": (NOON + STEP, NOON + STEP)}) == {"A": (day, NOON + STEP)}
    assert set(scores.figures("A", NOON).values()) == {None}
