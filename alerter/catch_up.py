"""The alerter's reads of PostgreSQL, and the catch-up of the snapshots its limits did not see.

Every read goes through one read-only `Session` (database/session.py: the reply bound, the
translation of errors, the breaker) and the named reads of database/reads.py. A step reads each
account's newest snapshot and whether an operator must log in (`DatabaseAnswer`; None where the
database did not answer), then the snapshots stored since the newest one the limits saw
(`unseen_ranges` says which: pure), to step through them in time order, and the explain
intervals the running day scores have not read (alerter/day_score.py).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from database import reads
from database.errors import DatabaseError
from database.session import reading_session
from database.settings import DatabaseSettings
from shared import logs

log = logging.getLogger("alerter")

# Accounts whose newest snapshot is older than this are no longer watched (closed, filtered out).
ACCOUNT_HORIZON: Final = timedelta(days=7)
# How far back the limits replay the snapshots they did not see (a restart, an outage).
CATCH_UP_MAX: Final = timedelta(days=1)

Latest = dict[str, dict[str, Any]]  # account -> its newest snapshot: "ts" and the figures


@dataclass(frozen=True)
class DatabaseAnswer:
    """What the database said in one step; None where it did not answer."""

    latest: Latest | None
    login_required: bool | None


def unseen_ranges(
    latest: Latest,
    seen: Mapping[str, datetime],
    watched_until: datetime | None,
    floor: datetime,
) -> tuple[dict[str, tuple[datetime, datetime]], bool]:
    """Per account, the range of its snapshots the limits have not seen: after the newest one
    they saw (`seen`, else `watched_until`) and before its newest (`latest`, stepped by the
    caller), never before `floor`; and whether the floor cut any range short."""
    ranges: dict[str, tuple[datetime, datetime]] = {}
    cut = False
    for account, row in latest.items():
        mark = seen.get(account, watched_until)
        if mark is None or row["ts"] <= mark:
            continue  # a first start: what came before it is history, not news
        if mark < floor:
            mark, cut = floor, True
        ranges[account] = (mark, row["ts"])
    return ranges, cut


def next_ranges(
    ranges: Mapping[str, tuple[datetime, datetime]], page: Sequence[tuple[Any, ...]]
) -> dict[str, tuple[datetime, datetime]]:
    """The ranges left after a page of (account, ts, ...) rows in time order: each account's
    starts after its last row in the page."""
    left = dict(ranges)
    for account, ts, *_ in page:
        left[account] = (ts, left[account][1])
    return left


class StoreReader:
    """The alerter's read-only session, and the last error it met (None once answering)."""

    def __init__(
        self, database: DatabaseSettings, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._session = reading_session(database, "bridge-alerter", monotonic=monotonic)
        self._last_error: str | None = None

    @property
    def last_error(self) -> str | None:
        """Why the database did not answer the last read; None while it answers."""
        return self._last_error

    async def read(self, figures: Sequence[str], *, wants_login: bool) -> DatabaseAnswer:
        """Each account's newest snapshot (its `figures`) and, if wanted, the login prompt."""
        if not self._session.allows():  # the breaker is open: the last error still stands
            return DatabaseAnswer(None, None)
        try:
            # A server that stops answering must not stop the steps: the feed's health is
            # watched without it.
            rows = await self._session.run(
                lambda conn: reads.newest_per_account(
                    conn, ("account", "ts", *figures), within=ACCOUNT_HORIZON
                )
            )
            login = await self._session.run(reads.login_required) if wants_login else False
        except DatabaseError as exc:
            self._failed(exc)
            return DatabaseAnswer(None, None)
        if self._last_error is not None:
            log.info("database answering again: limits read")
            self._last_error = None
        latest = {row["account"]: {k: v for k, v in row.items() if k != "account"} for row in rows}
        return DatabaseAnswer(latest, login)

    async def unseen(
        self, figures: Sequence[str], ranges: dict[str, tuple[datetime, datetime]]
    ) -> list[tuple[Any, ...]] | None:
        """The snapshots inside `ranges`, in time order, as (account, ts, *figures); None when
        the database does not answer (tried again at the next step). Read a page at a time
        (reads.UNSEEN_PAGE), each read bounded on its own, so a long outage's replay goes on
        past the statement timeout instead of failing at every step."""
        found: list[tuple[Any, ...]] = []
        left = dict(ranges)
        while left:
            if not self._session.allows():
                return None
            try:
                page = await self._session.run(
                    functools.partial(reads.unseen_snapshots, figures=figures, ranges=left)
                )
            except DatabaseError as exc:
                self._failed(exc)
                return None
            found += page
            if len(page) < reads.UNSEEN_PAGE:
                break
            left = next_ranges(left, page)
        return found

    async def intervals_to_score(
        self, ranges: dict[str, tuple[datetime, datetime]]
    ) -> list[tuple[Any, ...]] | None:
        """The explain intervals inside `ranges` ([since, until] per account), oldest first, as
        (account, ts, scored, actual, explained, unexplained); None when the database does not
        answer (tried again at the next step)."""
        if not self._session.allows():
            return None
        try:
            return await self._session.run(
                functools.partial(reads.intervals_to_score, ranges=ranges)
            )
        except DatabaseError as exc:
            self._failed(exc)
            return None

    async def close(self) -> None:
        await self._session.close()

    def _failed(self, exc: DatabaseError) -> None:
        message = str(exc)
        if message != self._last_error:
            log.warning(
                "database not answering: limits and login prompts not read",
                extra=logs.fields(reason=message),
            )
        self._last_error = message
