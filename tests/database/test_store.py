"""The store both processes share: the sink behind the breaker, against a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from database.circuit_breaker import BreakerState
from database.errors import SchemaError
from database.settings import DatabaseSettings
from database.store import DatabaseStore, NotStored
from testkit.postgres import PostgresServer
from testkit.waiting import wait_until
from tests import builders
from tests.fixtures.pipeline import backends, stored_ids


def _settings(database_url: str, tmp_path: Path) -> DatabaseSettings:
    return DatabaseSettings.from_environ(
        {"DATABASE_URL": database_url, "BRIDGE_BREAKER_FAIL_MAX": "2"}, var_dir=tmp_path
    )


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[DatabaseStore]:
    store = DatabaseStore("test", _settings(database_url, tmp_path), application_name="test")
    yield store
    await store.close()


def _stage_error_on_insert(database_url: str, sqlstate: str) -> None:
    """A real server error on every insert into portfolio_greeks, raised by a trigger."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION staged_failure() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN RAISE EXCEPTION 'staged {sqlstate}' USING ERRCODE = '{sqlstate}'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER staged_failure BEFORE INSERT ON portfolio_greeks"
            " FOR EACH STATEMENT EXECUTE FUNCTION staged_failure()"
        )


async def test_a_connection_whose_bootstrap_fails_is_closed(
    database_url: str, tmp_path: Path
) -> None:
    """A server that accepts the connection but refuses the schema bootstrap (here: read-only
    transactions) must not be left holding a backend per attempt."""

    async def read_only() -> psycopg.AsyncConnection[tuple[object, ...]]:
        return await psycopg.AsyncConnection.connect(
            database_url,
            autocommit=True,
            application_name="read-only-bootstrap",
            options="-c default_transaction_read_only=on",
        )

    store = DatabaseStore(
        "test", _settings(database_url, tmp_path), application_name="unused", connect=read_only
    )
    failures = []
    for _ in range(3):
        with pytest.raises(SchemaError) as failure:
            await store.ensure_schema()
        failures.append(failure)  # keeps each traceback (and whatever it holds) alive
    assert all(f.value.sqlstate == "25006" for f in failures)
    wait_until(
        lambda: backends(database_url, "read-only-bootstrap") == 0,
        what="the refused connections to be closed",
    )
    await store.close()


async def test_conflicts_past_their_retries_are_not_stored_and_not_an_outage(
    store: DatabaseStore, database_url: str
) -> None:
    """A serialization failure on every try: the lines come back unstored, for the caller to
    keep, and the breaker stays closed (the server answered)."""
    await store.ensure_schema()
    _stage_error_on_insert(database_url, "40001")
    lines = builders.snapshots(4)
    for _ in range(3):  # more than the breaker's fail_max of 2
        result = await store.store(lines)
        assert not isinstance(result, NotStored)
        assert [line for line, _ in result.unstored] == lines
        assert (result.stored, result.rejected) == (0, [])
    assert store.view.breaker is BreakerState.CLOSED
    assert (store.view.last_error or "").startswith("40001: staged 40001")
    assert stored_ids(database_url) == []


async def test_an_outage_opens_the_breaker_and_a_success_heals_the_view(
    store: DatabaseStore, database_url: str, postgres_server: PostgresServer
) -> None:
    """Outages count against the breaker, its state and last error are public; once the
    database answers again, the next call stores and clears the error."""
    first = await store.store(builders.snapshots(1))
    assert not isinstance(first, NotStored)
    postgres_server.stop()
    for _ in range(2):
        result = await store.store(builders.snapshots(3)[1:])
        assert isinstance(result, NotStored)
    assert store.view.breaker is BreakerState.OPEN
    assert store.view.last_error is not None
    refused = await store.store(builders.snapshots(3)[1:])
    assert isinstance(refused, NotStored)
    assert refused.reason.startswith("breaker open")
    postgres_server.start()
    wait_until(store.allows, what="the breaker's reset timeout", timeout_s=10)
    stored = await store.store(builders.snapshots(3)[1:])
    assert not isinstance(stored, NotStored)
    assert stored.stored == 2
    healed = store.view
    assert (healed.breaker, healed.last_error) == (BreakerState.CLOSED, None)
    assert len(stored_ids(database_url)) == 3


async def test_groups_spread_over_two_connections_are_all_stored(
    database_url: str, tmp_path: Path
) -> None:
    """Two groups, two connections at once: every line stored once, both backends used."""
    store = DatabaseStore(
        "test", _settings(database_url, tmp_path), application_name="spread", connections=2
    )
    lines = builders.snapshots(12, accounts=4)
    try:
        result = await store.store_spread([lines[:6], lines[6:]])
        assert not isinstance(result, NotStored)
        assert (result.stored, result.duplicates, result.unstored) == (12, 0, [])
        assert backends(database_url, "spread") == 2
        again = await store.store_spread([lines[6:], lines[:6]])
        assert not isinstance(again, NotStored)
        assert (again.stored, again.duplicates) == (0, 12)
    finally:
        await store.close()
    assert len(stored_ids(database_url)) == 12


async def test_a_group_whose_connection_fails_comes_back_unstored(
    database_url: str, tmp_path: Path
) -> None:
    """The second connection cannot be opened (nothing listens on its port): the first group
    is stored, the second comes back in `unstored` with the reason, for the caller to keep;
    with both failing, nothing is stored at all."""
    opened = 0

    async def second_fails() -> psycopg.AsyncConnection[tuple[object, ...]]:
        nonlocal opened
        opened += 1
        url = database_url if opened == 1 else "postgresql://x@127.0.0.1:1/none"
        return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=2)

    def two_connections() -> DatabaseStore:
        settings = _settings(database_url, tmp_path)
        return DatabaseStore(
            "test", settings, application_name="unused", connections=2, connect=second_fails
        )

    store = two_connections()
    lines = builders.snapshots(6)
    try:
        await store.ensure_schema()  # connection 0 is the working one
        result = await store.store_spread([lines[:2], lines[2:]])
    finally:
        await store.close()
    assert not isinstance(result, NotStored)
    assert result.stored == 2
    assert [line for line, _ in result.unstored] == lines[2:]
    assert all(reason for _, reason in result.unstored)
    assert len(stored_ids(database_url)) == 2

    opened = 1  # every connection now fails
    down = two_connections()
    nothing = await down.store_spread([lines[:2], lines[2:]])
    await down.close()
    assert isinstance(nothing, NotStored)


async def test_more_groups_than_connections_is_a_bug(store: DatabaseStore) -> None:
    """Spreading a batch over more groups than the store has connections is refused loudly."""
    with pytest.raises(ValueError, match="2 groups for 1 connections"):
        await store.store_spread([[builders.snapshot()], [builders.snapshot("DU0002")]])
