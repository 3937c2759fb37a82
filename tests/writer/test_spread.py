"""How the writer spreads a batch over its connections: by account, so two transactions never
touch the same keys. Worked by hand: the groups follow crc32(account) % ways."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import pytest

from writer.writer import SPREAD_MIN_LINES, ValidLine, spread

MIXED = ["DU4", "DU0", None, "DU5", "DU1"] * 20


def _lines(accounts: Sequence[str | None]) -> list[ValidLine]:
    return [
        ValidLine(f"{index}:{account}".encode(), account) for index, account in enumerate(accounts)
    ]


def _names(accounts: Sequence[str | None], keep: tuple[str | None, ...]) -> list[str]:
    return [f"{index}:{account}" for index, account in enumerate(accounts) if account in keep]


def test_crc32_of_the_accounts_used_below() -> None:
    # The table below relies on these: DU4 and DU5 go to group 0, DU0 and DU1 to group 1.
    """The accounts of the table below fall in the groups it relies on (DU4, DU5 in group 0; DU0,
    DU1 in group 1)."""
    assert [zlib.crc32(name.encode()) % 2 for name in ("DU4", "DU5", "DU0", "DU1")] == [0, 0, 1, 1]


@pytest.mark.parametrize(
    ("accounts", "ways", "expected"),
    [
        # A small batch is not worth a second transaction: one group, order kept.
        (["DU4", "DU0", None], 2, [["0:DU4", "1:DU0", "2:None"]]),
        # One connection: one group whatever the size.
        (MIXED, 1, [_names(MIXED, ("DU4", "DU0", None, "DU5", "DU1"))]),
        # Events (no account) with the first group; each account's lines together, in order.
        (MIXED, 2, [_names(MIXED, (None, "DU4", "DU5")), _names(MIXED, ("DU0", "DU1"))]),
        # Only group-1 accounts: the empty first group is left out, not sent as an empty batch.
        (["DU0", "DU1"] * 60, 2, [_names(["DU0", "DU1"] * 60, ("DU0", "DU1"))]),
    ],
)
def test_spread(accounts: list[str | None], ways: int, expected: list[list[str]]) -> None:
    """A batch is split by account over the connections, each account's lines together and in order,
    events with the first group, no group empty; a small batch or one connection is one group."""
    groups = spread(_lines(accounts), ways)
    assert [[line.decode() for line in group] for group in groups] == expected


def test_the_threshold_is_where_a_batch_starts_to_split() -> None:
    """A batch one line short of SPREAD_MIN_LINES is one group; one of that many is split."""
    below = _lines(["DU4", "DU0"] * (SPREAD_MIN_LINES // 2 - 1) + ["DU4"])
    at = _lines(["DU4", "DU0"] * (SPREAD_MIN_LINES // 2))
    assert len(spread(below, 2)) == 1
    assert len(spread(at, 2)) == 2
