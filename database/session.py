"""Session: how every client of PostgreSQL holds its one connection.

The sink (writer, replayer), the history keeper (replayer), the web reader, the alerter and
`bridge-status` each hold a `Session`: it opens the connection when first needed (and prepares
it, once per connection), bounds every reply, translates psycopg's and the OS's errors into the
`database` package's (`errors.translate`, the only translation), drops a connection that broke,
counts outages (with their reason) against a circuit breaker when the client has one, and closes.
No client touches its breaker but through its session; several sessions may share one breaker
(the store's connections: an outage on one holds them all back).

A server can accept a connection and then never answer (hung, or a network path that drops
replies): psycopg would wait for ever. So a step must be answered within `reply_timeout_s` (the
server's own statement timeout answers first, with an error, when the server is alive); past it
the connection is hung up and the step fails at once as an outage.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg.rows import TupleRow

from database.circuit_breaker import DBCircuitBreaker
from database.errors import DatabaseError, DatabaseUnavailable, translate
from database.settings import DatabaseSettings

Connection = psycopg.AsyncConnection[TupleRow]

# After a hang-up, psycopg's pending read ends at once; this only bounds the unexpected.
_HANG_UP_GRACE_S = 5.0

_T = TypeVar("_T")


class Session:
    """One lazily opened connection, its reply bound, the translation of its errors, an
    optional breaker, and its close.

    `prepare` runs on each new connection (bounded like a step); a connection it fails on is
    closed at once. `breaker`, when given, is consulted before each step (open: the step fails
    at once with `DatabaseUnavailable`) and told of each outage, with its reason, and of each
    answer (an error the server answered with is an answer: only outages count).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[Connection]],
        *,
        reply_timeout_s: float | None = None,
        prepare: Callable[[Connection], Awaitable[None]] | None = None,
        breaker: DBCircuitBreaker | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._prepare = prepare
        self._reply_timeout_s = reply_timeout_s
        self._breaker = breaker
        self._monotonic = monotonic
        self._conn: Connection | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    def allows(self) -> bool:
        """May the database be tried now? False while the breaker is open."""
        return self._breaker is None or self._breaker.allows(self._monotonic())

    async def connect(self) -> None:
        """Open (and prepare) the connection now, if it is not open."""
        await self.run(_nothing, bounded=False)

    async def run(self, work: Callable[[Connection], Awaitable[_T]], *, bounded: bool = True) -> _T:
        """`work`'s result over the session's connection, answered within the reply timeout
        (`bounded=False`: `work` bounds its own statements, with `answered`). Errors come out
        as `DatabaseError`s; a connection that broke (or went silent) is dropped, to be opened
        again by the next step."""
        if not self.allows():
            raise DatabaseUnavailable("breaker open: the database is not tried for a while")
        try:
            conn = await self._connection()
            try:
                value = await (self.answered(conn, work(conn)) if bounded else work(conn))
            except (psycopg.Error, OSError) as exc:  # TimeoutError included: no answer
                if conn.broken or conn.closed or isinstance(exc, OSError):
                    await self.close()
                raise translate(exc) from exc
        except DatabaseError as exc:
            if self._breaker is not None:
                if isinstance(exc, DatabaseUnavailable):
                    self._breaker.failed(self._monotonic(), exc.reason)
                else:
                    self._breaker.succeeded()
            raise
        if self._breaker is not None:
            self._breaker.succeeded()
        return value

    def answered(self, conn: Connection, step: Awaitable[_T]) -> Awaitable[_T]:
        """`step` bounded by this session's reply timeout (see `answered`)."""
        return answered(conn, self._reply_timeout_s, step)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await close_quietly(conn)

    async def _connection(self) -> Connection:
        if self._conn is not None and self.connected:
            return self._conn
        self._conn = None
        try:
            conn = await self._connect()
        except (psycopg.Error, OSError) as exc:
            raise translate(exc) from exc
        if self._prepare is not None:
            try:
                await self.answered(conn, self._prepare(conn))
            except (psycopg.Error, OSError) as exc:
                # Opened but unusable: release the server's backend now, not at garbage
                # collection.
                await close_quietly(conn)
                raise translate(exc) from exc
            except BaseException:
                await close_quietly(conn)
                raise
        self._conn = conn
        return conn


def reading_session(
    database: DatabaseSettings,
    application_name: str,
    *,
    prepare: Callable[[Connection], Awaitable[None]] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Session:
    """The session of a program that only reads (the web program, the alerter): read-only on
    the server's side, bounded by the settings' reply timeout, behind its own breaker."""
    return Session(
        lambda: database.connect(application_name, read_only=True),
        reply_timeout_s=database.reply_timeout_s,
        prepare=prepare,
        breaker=DBCircuitBreaker(
            name=application_name,
            fail_max=database.breaker_fail_max,
            reset_timeout_s=database.breaker_reset_s,
        ),
        monotonic=monotonic,
    )


def ask_once(
    connect: Callable[[], Awaitable[Connection]],
    work: Callable[[Connection], Awaitable[_T]],
    *,
    reply_timeout_s: float,
) -> _T:
    """One question from a synchronous program (`bridge-status`): a session opened, asked once
    within the reply bound, and closed; its errors translated like every other session's."""

    async def once() -> _T:
        session = Session(connect, reply_timeout_s=reply_timeout_s)
        try:
            return await session.run(work)
        finally:
            await session.close()

    return asyncio.run(once())


async def _nothing(_conn: Connection) -> None:
    """The step that only opens the connection."""


async def answered(conn: Connection, timeout_s: float | None, step: Awaitable[_T]) -> _T:
    """`step`'s result, or TimeoutError (an outage) once the server has been silent for
    `timeout_s`: the connection is then hung up, so nothing waits on it any more."""
    if timeout_s is None:
        return await step
    task = asyncio.ensure_future(step)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if done:
        return task.result()
    _hang_up(conn)  # the pending read ends at once with "server closed the connection"
    done, _ = await asyncio.wait({task}, timeout=_HANG_UP_GRACE_S)
    if not done:
        task.cancel()
    elif not task.cancelled():
        task.exception()  # retrieved: its "connection closed" is this timeout's consequence
    raise TimeoutError(f"no answer from the server within {timeout_s:g} s")


def _hang_up(conn: Connection) -> None:
    """Shut the connection's socket down under psycopg, which is still waiting on it."""
    try:
        fd = conn.pgconn.socket
    except psycopg.OperationalError:
        return  # already closed
    with socket.socket(fileno=os.dup(fd)) as duplicate:
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already disconnected


async def close_quietly(conn: Connection) -> None:
    """Close `conn`, which may be broken already."""
    try:
        await conn.close()
    except (psycopg.Error, OSError):
        pass  # already broken: nothing left to release
