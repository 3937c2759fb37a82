"""Partition maintenance as pure rules: which time partitions to create ahead and which to drop.

No I/O and no clock: `now` and the partitions that exist are arguments, and the answer is a
plan the replayer applies with `CREATE TABLE … PARTITION OF` and `DROP TABLE`. Bounds are in
UTC. A partition is dropped only when every row it can hold is past the table's retention
(its upper bound is at or before `now - retention`), so a drop never takes a row still kept.
Creation fills every missing period from the oldest partition that exists (or the current
period) up to `ahead` periods past the current one, so the days of a long database outage get
their partitions back when rows buffered during it are replayed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from shared.errors import BridgeError


class Width(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks: Monday 00:00 UTC
    MONTH = "month"


class PartitionError(BridgeError):
    """A partition name or bound that does not follow the scheme."""


@dataclass(frozen=True, order=True)
class Partition:
    table: str
    start: datetime
    end: datetime

    @property
    def name(self) -> str:
        return f"{self.table}_p{self.start:%Y%m%d}"


@dataclass(frozen=True)
class Policy:
    """How one partitioned table is kept: period width, periods made ahead, retention."""

    table: str
    width: Width
    ahead: int
    retention: timedelta | None  # None: kept forever
    storage: str = ""  # storage parameters of each new partition, e.g. "toast_tuple_target=128"
    column: str = "ts"  # the partition key


@dataclass(frozen=True)
class Plan:
    create: list[Partition]
    drop: list[Partition]


def period_start(ts: datetime, width: Width) -> datetime:
    """The start of the period holding `ts` (UTC midnight, Monday, or the 1st)."""
    if ts.tzinfo is None:
        raise PartitionError("a time without a time zone")
    day = ts.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if width is Width.DAY:
        return day
    if width is Width.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(start: datetime, width: Width) -> datetime:
    if width is Width.DAY:
        return start + timedelta(days=1)
    if width is Width.WEEK:
        return start + timedelta(days=7)
    if start.month == 12:  # December rolls into the next year
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def partition_at(table: str, ts: datetime, width: Width) -> Partition:
    start = period_start(ts, width)
    return Partition(table, start, next_period(start, width))


def partitions_between(
    table: str, first: datetime, last: datetime, width: Width
) -> list[Partition]:
    """Every partition from the one holding `first` to the one holding `last`, both included."""
    found = []
    start = period_start(first, width)
    while start <= last:
        end = next_period(start, width)
        found.append(Partition(table, start, end))
        start = end
    return found


def plan(
    policy: Policy,
    existing: Iterable[Partition],
    now: datetime,
    stray: Iterable[datetime] = (),
) -> Plan:
    """What to create and what to drop so `policy` holds at `now`.

    `stray` are times of rows that found no partition (they wait in the table's default
    partition): the partitions holding them are created too, when inside retention, so the
    maintenance can move them in. Rows past retention stay where they are.
    """
    mine = sorted(partition for partition in existing if partition.table == policy.table)
    current = partition_at(policy.table, now, policy.width)
    horizon = current.start
    for _ in range(policy.ahead):
        horizon = next_period(horizon, policy.width)
    drop = []
    if policy.retention is not None:
        cutoff = now - policy.retention
        drop = [partition for partition in mine if partition.end <= cutoff]
    kept = [partition for partition in mine if partition not in drop]
    first = kept[0].start if kept and kept[0].start < current.start else current.start
    starts = {partition.start for partition in kept}
    wanted = set(partitions_between(policy.table, first, horizon, policy.width))
    wanted |= {partition_at(policy.table, ts, policy.width) for ts in stray}
    create = sorted(
        partition
        for partition in wanted
        if partition.start not in starts and not _overlaps(partition, kept)
    )
    if policy.retention is not None:
        create = [partition for partition in create if partition.end > now - policy.retention]
    return Plan(create=create, drop=drop)


def _overlaps(partition: Partition, others: Sequence[Partition]) -> bool:
    return any(other.start < partition.end and partition.start < other.end for other in others)


def parse_bound(text: str) -> datetime:
    """A bound as PostgreSQL prints it in `pg_get_expr(relpartbound)` for timestamptz, in UTC.

    The replayer's session runs with `TimeZone = 'UTC'`, so bounds read `'2026-03-02 00:00:00+00'`.
    """
    try:
        value = datetime.fromisoformat(text.strip().strip("'"))
    except ValueError:
        raise PartitionError(f"not a partition bound: {text!r}") from None
    if value.tzinfo is None:
        raise PartitionError(f"a partition bound without a time zone: {text!r}")
    return value.astimezone(UTC)


_BOUNDS = re.compile(r"^FOR VALUES FROM \((?P<start>[^)]*)\) TO \((?P<end>[^)]*)\)$")


def from_catalog(table: str, bound_expression: str) -> Partition:
    """A partition from its parent's name and `pg_get_expr(relpartbound, oid)`."""
    match = _BOUNDS.match(bound_expression.strip())
    if match is None:
        raise PartitionError(f"{table}: not a range bound: {bound_expression!r}")
    return Partition(table, parse_bound(match.group("start")), parse_bound(match.group("end")))
