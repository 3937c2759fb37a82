"""The Session every database client holds: lazy connect, translated errors, the breaker and
close, against the real PostgreSQL (behind the proxy where connections are counted)."""

from __future__ import annotations

from collections.abc import Awaitable

import psycopg
import pytest

from database.circuit_breaker import BreakerState, DBCircuitBreaker
from database.errors import DatabaseUnavailable, SchemaError
from database.session import Connection, Session
from tests.fixtures.proxy import TcpProxy, proxy_url


def _session(url: str, breaker: DBCircuitBreaker | None = None) -> Session:
    return Session(
        lambda: psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=2),
        reply_timeout_s=5.0,
        breaker=breaker,
        monotonic=lambda: 0.0,  # the breaker's reset timeout never passes in these tests
    )


async def _one(conn: Connection) -> int:
    row = await (await conn.execute("SELECT 1")).fetchone()
    assert row is not None
    return int(row[0])


async def test_connects_at_the_first_step_only_and_keeps_its_connection(
    db_proxy: TcpProxy, database_url: str
) -> None:
    """Nothing is opened before the first step; two steps share one connection; close lets go."""
    session = _session(proxy_url(database_url, db_proxy))
    assert (session.connected, db_proxy.accepted) == (False, 0)
    assert await session.run(_one) == 1
    assert await session.run(_one) == 1
    assert (session.connected, db_proxy.accepted) == (True, 1)
    await session.close()
    assert session.connected is False


async def test_a_refused_statement_is_a_schema_error_and_keeps_the_connection(
    db_proxy: TcpProxy, database_url: str
) -> None:
    """A statement the server refuses comes out translated (SchemaError, with its SQLSTATE);
    the server answered, so the connection stays and the breaker does not count it."""
    breaker = DBCircuitBreaker(name="test", fail_max=1)
    session = _session(proxy_url(database_url, db_proxy), breaker)

    async def missing(conn: Connection) -> None:
        await conn.execute("SELECT * FROM no_such_table")

    with pytest.raises(SchemaError) as refused:
        await session.run(missing)
    assert refused.value.sqlstate == "42P01"
    assert session.connected
    assert breaker.state is BreakerState.CLOSED
    assert await session.run(_one) == 1
    assert db_proxy.accepted == 1
    await session.close()


async def test_an_open_breaker_refuses_without_trying_the_server(
    db_proxy: TcpProxy, database_url: str
) -> None:
    """An outage opens the breaker (fail_max 1); the next step fails at once as an outage,
    without a connection attempt."""
    url = proxy_url(database_url, db_proxy)
    db_proxy.close()  # nothing listens any more: every connection is refused
    attempts: list[str] = []

    def connect() -> Awaitable[Connection]:
        attempts.append(url)
        return psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=2)

    breaker = DBCircuitBreaker(name="test", fail_max=1)
    session = Session(connect, reply_timeout_s=5.0, breaker=breaker, monotonic=lambda: 0.0)
    with pytest.raises(DatabaseUnavailable):
        await session.run(_one)
    assert breaker.state is BreakerState.OPEN
    assert session.allows() is False
    with pytest.raises(DatabaseUnavailable, match="breaker open"):
        await session.run(_one)
    assert len(attempts) == 1
    await session.close()


async def test_sessions_sharing_a_breaker_are_held_back_together(
    db_proxy: TcpProxy, database_url: str
) -> None:
    """Two sessions on one breaker (the store's connections): an outage met by one opens it
    with its reason, and the other then fails at once, without a connection attempt."""
    url = proxy_url(database_url, db_proxy)
    db_proxy.close()  # nothing listens any more: every connection is refused
    breaker = DBCircuitBreaker(name="test", fail_max=1)
    first, second = _session(url, breaker), _session(url, breaker)
    with pytest.raises(DatabaseUnavailable) as outage:
        await first.run(_one)
    assert (breaker.state, breaker.last_failure) == (BreakerState.OPEN, outage.value.reason)
    assert second.allows() is False
    with pytest.raises(DatabaseUnavailable, match="breaker open"):
        await second.run(_one)
    assert db_proxy.accepted == 0
    await first.close()
    await second.close()


async def test_an_answered_error_closes_a_half_open_breaker(
    db_proxy: TcpProxy, database_url: str
) -> None:
    """The breaker's trial call meets an error the server answered with (a missing table):
    the server is up, so the breaker closes and forgets the outage's reason."""
    now = [0.0]
    breaker = DBCircuitBreaker(name="test", fail_max=1, reset_timeout_s=1.0)
    session = Session(
        lambda: psycopg.AsyncConnection.connect(
            proxy_url(database_url, db_proxy), autocommit=True, connect_timeout=2
        ),
        reply_timeout_s=5.0,
        breaker=breaker,
        monotonic=lambda: now[0],
    )
    breaker.failed(0.0, "staged outage")
    now[0] = 2.0  # past the reset timeout: the next step is the trial

    async def missing(conn: Connection) -> None:
        await conn.execute("SELECT * FROM no_such_table")

    with pytest.raises(SchemaError):
        await session.run(missing)
    assert (breaker.state, breaker.last_failure) == (BreakerState.CLOSED, None)
    await session.close()
