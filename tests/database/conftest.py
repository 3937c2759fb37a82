"""Fixtures of the database package's tests: a sink on the session's real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from database.sink import RecordSink


@pytest.fixture
async def sink(database_url: str) -> AsyncIterator[RecordSink]:
    """A `RecordSink` on the test database, without a breaker; closed after the test."""

    async def connect() -> psycopg.AsyncConnection[tuple[object, ...]]:
        return await psycopg.AsyncConnection.connect(database_url, autocommit=True)

    sink = RecordSink(connect)
    yield sink
    await sink.close()
