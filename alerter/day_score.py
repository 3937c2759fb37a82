"""The P&L explain's score of one account's UTC day so far, carried from one snapshot to the next.

The limits `explain_share`, `explain_spearman` and `explain_worst_unexplained` judge each
snapshot by the day's scored intervals ending at or before it (docs/pnl-explain.md, "As alert
limits"). Scoring the day afresh at every snapshot is quadratic over a day; `RunningDayScore` is
fed each scored interval once instead, and answers the three figures as of now: the same
definitions as the SQL (database/reads.py `EXPLAIN_FIGURES`, the view `pnl_explain_daily`):
ranks tied at their average, nothing (None) before `EXPLAIN_MIN_SCORED` intervals, no
correlation without a spread of ranks on either side. `DayScores` keeps one per account and says
which intervals the alerter must read next.

Pure: intervals and times come in, figures come out; no clock, no database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from database.reads import EXPLAIN_FIGURES, EXPLAIN_MIN_SCORED

# Pending points are ranked one by one (each O(n), vectorised) below this many, and the whole
# day ranked afresh (one sort, O(n log n)) from it: a rebuild after a restart feeds a day at once.
RERANK_FROM_PENDING: Final = 16
# timestamptz counts microseconds: the first instant after a stored interval's end.
_AFTER: Final = timedelta(microseconds=1)

# The figures before the day has enough scored intervals: unknown, never firing nor resolving.
UNKNOWN: Final[Mapping[str, float | None]] = dict.fromkeys(EXPLAIN_FIGURES)

Ranks = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]


def utc_day(ts: datetime) -> datetime:
    """The start of `ts`'s UTC day (date_trunc('day', ts, 'UTC'))."""
    return datetime.combine(ts.astimezone(UTC).date(), time(), UTC)


class RunningDayScore:
    """One account's scored intervals of one UTC day, fed in any order within the day; a
    later day's interval starts the day afresh, an earlier day's is ignored.

    Ranks are kept doubled (2 x the average rank: whole numbers even for ties) per point, in
    the order fed, and brought up to date only when the correlation is asked: a day fed without
    a limit on it is never ranked."""

    def __init__(self) -> None:
        self._start(None)

    def _start(self, day: datetime | None) -> None:
        self._day = day
        self._actual: list[float] = []
        self._explained: list[float] = []
        self._abs_actual_sum = 0.0
        self._abs_unexplained_sum = 0.0
        self._worst_unexplained: float | None = None
        self._ranked_explained: Values = np.empty(0)
        self._ranked_actual: Values = np.empty(0)
        self._explained_ranks2: Ranks = np.empty(0, dtype=np.int64)
        self._actual_ranks2: Ranks = np.empty(0, dtype=np.int64)

    @property
    def day(self) -> datetime | None:
        """The start of the UTC day scored; None before the first interval."""
        return self._day

    @property
    def scored(self) -> int:
        """How many scored intervals of the day were fed."""
        return len(self._actual)

    def add(self, ts: datetime, actual: float, explained: float, unexplained: float) -> None:
        """One scored interval ending at `ts` (its `unexplained` as stored: actual - explained)."""
        day = utc_day(ts)
        if self._day is not None and day < self._day:
            return
        if day != self._day:
            self._start(day)
        self._actual.append(actual)
        self._explained.append(explained)
        residual = abs(unexplained)
        self._abs_actual_sum += abs(actual)
        self._abs_unexplained_sum += residual
        if self._worst_unexplained is None or residual > self._worst_unexplained:
            self._worst_unexplained = residual

    def figures(self, as_of: datetime) -> dict[str, float | None]:
        """The three limit figures as of `as_of`, by name (database/reads.py EXPLAIN_FIGURES),
        over what was fed: all None before EXPLAIN_MIN_SCORED intervals of `as_of`'s day."""
        if self._day != utc_day(as_of) or self.scored < EXPLAIN_MIN_SCORED:
            return dict(UNKNOWN)
        return {
            "explain_share": self.share(),
            "explain_spearman": self.spearman(),
            "explain_worst_unexplained": self._worst_unexplained,
        }

    def share(self) -> float | None:
        """1 - sum |unexplained| / sum |actual|; None while no actual P&L moved."""
        if self._abs_actual_sum == 0:
            return None
        return 1 - self._abs_unexplained_sum / self._abs_actual_sum

    def spearman(self) -> float | None:
        """Pearson's correlation of the average ranks of explained against actual; None under
        three points or when either side's ranks are all tied (PostgreSQL's corr is NULL)."""
        n = self.scored
        if n < 3:
            return None
        self._rank()
        # With doubled ranks the mean is n + 1 and every sum an exact integer, below 4n^3: within
        # int64 up to 1.3 million intervals a day (one every 65 ms).
        centre = n * (n + 1) ** 2
        explained, actual = self._explained_ranks2, self._actual_ranks2
        covariance = int(np.dot(explained, actual)) - centre
        explained_spread = int(np.dot(explained, explained)) - centre
        actual_spread = int(np.dot(actual, actual)) - centre
        if explained_spread == 0 or actual_spread == 0:
            return None
        return covariance / math.sqrt(explained_spread * actual_spread)

    def _rank(self) -> None:
        done, n = len(self._explained_ranks2), self.scored
        if n - done >= RERANK_FROM_PENDING or done == 0:
            self._ranked_explained = np.array(self._explained, dtype=np.float64)
            self._ranked_actual = np.array(self._actual, dtype=np.float64)
            self._explained_ranks2 = _doubled_ranks(self._ranked_explained)
            self._actual_ranks2 = _doubled_ranks(self._ranked_actual)
            return
        for index in range(done, n):
            self._ranked_explained, self._explained_ranks2 = _insert(
                self._ranked_explained, self._explained_ranks2, self._explained[index]
            )
            self._ranked_actual, self._actual_ranks2 = _insert(
                self._ranked_actual, self._actual_ranks2, self._actual[index]
            )


def _doubled_ranks(values: Values) -> Ranks:
    """2 x each value's rank, ties at their average: 2 x (the values below) + the tie + 1."""
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts
    return (2 * below + counts + 1).astype(np.int64)[group]


def _insert(values: Values, ranks2: Ranks, value: float) -> tuple[Values, Ranks]:
    """`value` appended, and every doubled rank moved: +2 above it, +1 for its ties (their
    average rank moves half a place); its own is 2 x (those below) + its old ties + 2."""
    above, tied = values > value, values == value
    moved = ranks2 + 2 * above + tied
    below = len(values) - int(np.count_nonzero(above)) - int(np.count_nonzero(tied))
    own = 2 * below + int(np.count_nonzero(tied)) + 2
    return np.append(values, value), np.append(moved, np.int64(own))


# One stored interval as read: (account, ts, scored, actual, explained, unexplained); the P&L
# None where it is marked (not scored).
Interval = tuple[str, datetime, bool, float | None, float | None, float | None]


class DayScores:
    """Each account's `RunningDayScore`, and how far its stored intervals were read."""

    def __init__(self) -> None:
        self._scores: dict[str, RunningDayScore] = {}
        self._read_until: dict[str, datetime] = {}

    @property
    def accounts(self) -> frozenset[str]:
        """The accounts whose day was read (from its start, or after its last interval)."""
        return frozenset(self._read_until)

    def forget(self) -> None:
        """Drop every account's score: the stored intervals may have changed behind the last
        read (the writer's buffer stored late), so each is rebuilt from its day."""
        self._scores.clear()
        self._read_until.clear()

    def to_read(
        self, snapshots: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, tuple[datetime, datetime]]:
        """Per account, given its first and last snapshot to judge, the range [from, until] of
        intervals to read: after the last one read, else (a first read, a day begun since) from
        the start of the first snapshot's day. Accounts not judged are dropped."""
        for account in set(self._read_until) - set(snapshots):
            self._scores.pop(account, None)
            del self._read_until[account]
        ranges: dict[str, tuple[datetime, datetime]] = {}
        for account, (first, last) in snapshots.items():
            start = utc_day(first)
            read_until = self._read_until.get(account)
            if read_until is not None and read_until >= start:
                start = read_until + _AFTER
            ranges[account] = (start, last)
        return ranges

    def read(self, ranges: Mapping[str, tuple[datetime, datetime]]) -> None:
        """The intervals of `ranges` (from `to_read`) were read: an account with none yet is
        carried all the same, its next read starting where this one did."""
        for account, (start, _until) in ranges.items():
            self._read_until.setdefault(account, start - _AFTER)

    def feed(self, interval: Interval) -> None:
        """One stored interval, read in its account's time order: scored, it joins the day's
        score; marked, it is only passed (the next read starts after it)."""
        account, ts, scored, actual, explained, unexplained = interval
        if scored and actual is not None and explained is not None and unexplained is not None:
            score = self._scores.setdefault(account, RunningDayScore())
            score.add(ts, actual, explained, unexplained)
        self._read_until[account] = max(ts, self._read_until.get(account, ts))

    def figures(self, account: str, as_of: datetime) -> dict[str, float | None]:
        """`account`'s figures as of `as_of`, over the intervals fed so far."""
        score = self._scores.get(account)
        return dict(UNKNOWN) if score is None else score.figures(as_of)


def as_of_each(
    scores: DayScores, snapshots: Iterable[tuple[str, datetime]], intervals: Iterable[Interval]
) -> list[dict[str, float | None]]:
    """The figures as of each snapshot (account, ts), in the order given (each account's in
    time order), each after feeding its account's intervals (in time order) that end at or
    before it."""
    waiting: dict[str, list[Interval]] = {}
    for interval in intervals:
        waiting.setdefault(interval[0], []).append(interval)
    fed = dict.fromkeys(waiting, 0)
    answers = []
    for account, as_of in snapshots:
        queue = waiting.get(account, [])
        position = fed.get(account, 0)
        while position < len(queue) and queue[position][1] <= as_of:
            scores.feed(queue[position])
            position += 1
        fed[account] = position
        answers.append(scores.figures(account, as_of))
    return answers
