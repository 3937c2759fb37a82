"""Partition maintenance rules: worked by hand, one line of date arithmetic per case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from database.partitions import (
    Partition,
    PartitionError,
    Policy,
    Width,
    from_catalog,
    partition_at,
    period_start,
    plan,
)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def day(table: str, year: int, month: int, d: int) -> Partition:
    return Partition(table, utc(year, month, d), utc(year, month, d) + timedelta(days=1))


@pytest.mark.parametrize(
    ("ts", "width", "start"),
    [
        # 2026-03-04 is a Wednesday: its day starts at midnight UTC
        (utc(2026, 3, 4, 17), Width.DAY, utc(2026, 3, 4)),
        # Wednesday 4th - 2 days = Monday 2nd
        (utc(2026, 3, 4, 17), Width.WEEK, utc(2026, 3, 2)),
        # a Monday is its own week's start
        (utc(2026, 3, 2), Width.WEEK, utc(2026, 3, 2)),
        # Sunday 8th - 6 days = Monday 2nd
        (utc(2026, 3, 8, 23), Width.WEEK, utc(2026, 3, 2)),
        (utc(2026, 3, 4, 17), Width.MONTH, utc(2026, 3, 1)),
        # 23:30 in New York on the 4th is 04:30 UTC on the 5th
        (
            datetime(2026, 3, 4, 23, 30, tzinfo=UTC) + timedelta(hours=5),
            Width.DAY,
            utc(2026, 3, 5),
        ),
    ],
)
def test_period_start(ts: datetime, width: Width, start: datetime) -> None:
    """A day starts at midnight UTC, a week on its Monday, a month on its first, hand-worked across
    time zones."""
    assert period_start(ts, width) == start


@pytest.mark.parametrize(
    ("ts", "width", "end"),
    [
        (utc(2026, 3, 4, 17), Width.DAY, utc(2026, 3, 5)),  # 4th + 1 day
        (utc(2026, 3, 4, 17), Width.WEEK, utc(2026, 3, 9)),  # Monday 2nd + 7 days
        (utc(2026, 2, 14), Width.MONTH, utc(2026, 3, 1)),  # February ends on the 28th
        (utc(2026, 12, 31, 23), Width.MONTH, utc(2027, 1, 1)),  # December into January
        (utc(2026, 12, 31, 23), Width.DAY, utc(2027, 1, 1)),
    ],
)
def test_partition_end(ts: datetime, width: Width, end: datetime) -> None:
    """A partition ends a day, a week or a month after its start, across month and year ends."""
    assert partition_at("t", ts, width).end == end


def test_partition_names_carry_their_start_date() -> None:
    """A partition's name is its table's and its start date."""
    assert partition_at("portfolio_greeks", utc(2026, 3, 4, 17), Width.WEEK).name == (
        "portfolio_greeks_p20260302"
    )


RAW = Policy("raw", Width.DAY, ahead=2, retention=timedelta(days=90))


@pytest.mark.parametrize(
    ("existing", "now", "create", "drop"),
    [
        # fresh install at noon on March 4: today plus 2 ahead = 4th, 5th, 6th
        ([], utc(2026, 3, 4, 12), [(3, 4), (3, 5), (3, 6)], []),
        # already made: nothing to do (idempotent)
        (
            [day("raw", 2026, 3, 4), day("raw", 2026, 3, 5), day("raw", 2026, 3, 6)],
            utc(2026, 3, 4, 12),
            [],
            [],
        ),
        # the next day at 00:00: only the 7th is new (5th + 2)
        (
            [day("raw", 2026, 3, 4), day("raw", 2026, 3, 5), day("raw", 2026, 3, 6)],
            utc(2026, 3, 5),
            [(3, 7)],
            [],
        ),
        # a 3-day outage after the 4th was made: the 5th..7th are filled, 8th..9th ahead
        (
            [day("raw", 2026, 3, 4)],
            utc(2026, 3, 7, 9),
            [(3, 5), (3, 6), (3, 7), (3, 8), (3, 9)],
            [],
        ),
        # other tables' partitions are not this policy's business
        (
            [day("other", 2020, 1, 1), day("raw", 2026, 3, 4), day("raw", 2026, 3, 5),
             day("raw", 2026, 3, 6)],
            utc(2026, 3, 4),
            [],
            [],
        ),
    ],
)  # fmt: skip
def test_daily_plan(
    existing: list[Partition],
    now: datetime,
    create: list[tuple[int, int]],
    drop: list[tuple[int, int]],
) -> None:
    """Daily partitions: today and those ahead are made, nothing twice, a gap after an outage
    filled, other tables' partitions left alone."""
    result = plan(RAW, existing, now)
    assert [(p.start.month, p.start.day) for p in result.create] == create
    assert [(p.start.month, p.start.day) for p in result.drop] == drop


SHORT = Policy("raw", Width.DAY, ahead=1, retention=timedelta(days=2))
MARCH_1_TO_5 = [day("raw", 2026, 3, d) for d in range(1, 6)]


@pytest.mark.parametrize(
    ("now", "drop", "create"),
    [
        # cutoff March 4 00:00 - 2 days = March 2 00:00: the 1st ends at it, dropped
        (utc(2026, 3, 4), ["raw_p20260301"], []),
        # cutoff March 2 06:00: the 2nd ends March 3, after it, kept
        (utc(2026, 3, 4, 6), ["raw_p20260301"], []),
        # cutoff March 3 00:00: the 1st and 2nd go; March 5 + 1 ahead = the 6th is new
        (utc(2026, 3, 5), ["raw_p20260301", "raw_p20260302"], ["raw_p20260306"]),
        # cutoff March 1 00:00: nothing ended by then
        (utc(2026, 3, 3), [], []),
    ],
)
def test_retention(now: datetime, drop: list[str], create: list[str]) -> None:
    """A partition is dropped once it ends at or before now minus the retention, never earlier."""
    result = plan(SHORT, MARCH_1_TO_5, now)
    assert [p.name for p in result.drop] == drop
    assert [p.name for p in result.create] == create


def test_a_gap_between_kept_partitions_is_filled() -> None:
    """Kept March 4, now June 2: March 5 to June 1 is 27 + 30 + 31 + 1 = 89 days, then the
    2nd to the 4th of June (today and 2 ahead) make 92."""
    result = plan(RAW, [day("raw", 2026, 3, 4)], utc(2026, 6, 2))
    assert len(result.create) == 92
    assert result.create[0].name == "raw_p20260305"
    assert result.create[-1].name == "raw_p20260604"


def test_drop_keeps_every_row_inside_retention() -> None:
    """Retention 90 days at June 2 12:00: the cutoff is March 4 12:00, so the March 4
    partition (rows up to March 5) stays although half of it is older than the cutoff."""
    existing = [day("raw", 2026, 3, 3), day("raw", 2026, 3, 4)]
    result = plan(RAW, existing, utc(2026, 6, 2, 12))
    assert [p.name for p in result.drop] == ["raw_p20260303"]


@pytest.mark.parametrize(
    ("policy", "now", "create"),
    [
        # weeks, 1 ahead, Wednesday March 4: this week (Mon 2nd) and next (Mon 9th)
        (Policy("w", Width.WEEK, 1, None), utc(2026, 3, 4), ["w_p20260302", "w_p20260309"]),
        # months, 1 ahead, December 31: December and January of the next year
        (
            Policy("m", Width.MONTH, 1, timedelta(days=730)),
            utc(2026, 12, 31),
            ["m_p20261201", "m_p20270101"],
        ),
        # no partition ahead: only the current one
        (Policy("d", Width.DAY, 0, None), utc(2026, 3, 4, 23), ["d_p20260304"]),
    ],
)
def test_widths_and_horizons(policy: Policy, now: datetime, create: list[str]) -> None:
    """Weekly and monthly policies make the current period and those ahead; none ahead makes the
    current one only."""
    assert [p.name for p in plan(policy, [], now).create] == create


def test_kept_forever_never_drops() -> None:
    """A policy without retention drops nothing, however old."""
    policy = Policy("h", Width.MONTH, 1, None)
    old = partition_at("h", utc(2001, 1, 1), Width.MONTH)
    assert plan(policy, [old], utc(2026, 3, 4)).drop == []


@pytest.mark.parametrize(
    ("bound", "start", "end"),
    [
        (
            "FOR VALUES FROM ('2026-03-02 00:00:00+00') TO ('2026-03-03 00:00:00+00')",
            utc(2026, 3, 2),
            utc(2026, 3, 3),
        ),
        # a session in New York prints the same instant with its offset
        (
            "FOR VALUES FROM ('2026-03-01 19:00:00-05') TO ('2026-03-02 19:00:00-05')",
            utc(2026, 3, 2),
            utc(2026, 3, 3),
        ),
    ],
)
def test_bounds_from_the_catalog(bound: str, start: datetime, end: datetime) -> None:
    """A partition's bounds are read back from PostgreSQL's catalog text, whatever time zone the
    session printed them in."""
    assert from_catalog("raw", bound) == Partition("raw", start, end)


@pytest.mark.parametrize("bound", ["DEFAULT", "FOR VALUES IN ('a')", "FOR VALUES FROM (x) TO (y)"])
def test_bounds_that_are_not_ranges_are_refused(bound: str) -> None:
    """A default partition, a list partition or unreadable bounds are refused, not guessed."""
    with pytest.raises(PartitionError):
        from_catalog("raw", bound)


@pytest.mark.parametrize(
    ("stray", "create"),
    [
        # a row of Feb 20 12:00 waits in the default partition: its day is made (Feb 20 + 90
        # days = May 21, after March 4: inside retention), besides today and 2 ahead
        (
            [utc(2026, 2, 20, 12)],
            ["raw_p20260220", "raw_p20260304", "raw_p20260305", "raw_p20260306"],
        ),
        # a row of 2025: past retention (its day ended a year before now - 90 days): left alone
        ([utc(2025, 1, 1)], ["raw_p20260304", "raw_p20260305", "raw_p20260306"]),
        # two rows of one day make one partition
        (
            [utc(2026, 3, 4, 1), utc(2026, 3, 4, 2)],
            ["raw_p20260304", "raw_p20260305", "raw_p20260306"],
        ),
    ],
)  # fmt: skip
def test_rows_without_a_partition_get_theirs_inside_retention(
    stray: list[datetime], create: list[str]
) -> None:
    """Rows waiting in the default partition get their day made when it is inside retention, once
    per day; older ones are left alone."""
    assert [p.name for p in plan(RAW, [], utc(2026, 3, 4, 12), stray).create] == create
