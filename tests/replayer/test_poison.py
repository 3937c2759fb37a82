"""Poison that looks like an outage: the server's errors classed by what they mean, against a
real PostgreSQL. A record's fault is dead-lettered alone, a batch too large is split, and
nothing that is not an outage keeps the buffer's claim pinned."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from database.circuit_breaker import BreakerState
from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared.buffer import read_lines
from shared.spool import SpoolAppender
from tests import builders
from tests.fixtures.pipeline import append, stored_ids
from writer.settings import WriterSettings
from writer.writer import Writer


def _settings(environ: dict[str, str], **overrides: str) -> ReplayerSettings:
    return ReplayerSettings.from_environ({**environ, **overrides})


@pytest.fixture
async def replayer(pipeline_environ: dict[str, str]) -> AsyncIterator[Replayer]:
    replayer = Replayer(_settings(pipeline_environ, BRIDGE_REPLAY_CHUNK_RECORDS="20"))
    yield replayer
    await replayer.close()


def _oversize_account(line: bytes) -> bytes:
    """The same record with a 3 KB account that does not compress: its index row is too big
    for a btree (at most 2,704 bytes), so the server answers 54000, program limit exceeded."""
    body = json.loads(line)
    body["account"] = os.urandom(1500).hex()
    return json.dumps(body).encode() + b"\n"


def _dead_letters(environ: dict[str, str]) -> list[dict[str, str]]:
    path = Path(environ["BRIDGE_VAR_DIR"]) / "deadletter.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def _ids(lines: list[bytes]) -> list[str]:
    return [json.loads(line)["id"] for line in lines]


def _create_trigger(database_url: str, body: str, *, level: str = "ROW") -> None:
    """A real server-side behaviour on inserts into portfolio_greeks, staged by a trigger."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION staged() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN {body} RETURN NEW; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER staged BEFORE INSERT ON portfolio_greeks"
            f" FOR EACH {level} EXECUTE FUNCTION staged()"
        )


async def test_an_oversize_account_is_dead_lettered_by_the_replayer_and_the_rest_stored(
    replayer: Replayer, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """Ten good lines and one whose account is too long for its index: the first drain stores
    the ten and dead-letters the one; the second finds nothing left (nothing pinned)."""
    good = builders.snapshots(10)
    poison = _oversize_account(builders.snapshot("DU9999", 1))
    replayer.buffer.append([*good[:6], poison, *good[6:]])
    first = await replayer.drain_once()
    second = await replayer.drain_once()
    assert (first.stored, first.dead_lettered, first.interrupted) == (10, 1, False)
    assert (second.stored, second.dead_lettered, second.files_finished) == (0, 0, 0)
    assert replayer.store.view.breaker is BreakerState.CLOSED
    assert sorted(stored_ids(database_url)) == sorted(_ids(good))
    (letter,) = _dead_letters(pipeline_environ)
    assert letter["reason"].startswith("rejected by PostgreSQL: 54000")
    assert letter["line"].encode() + b"\n" == poison
    assert not replayer.buffer.draining_path.exists()


async def test_an_oversize_account_is_dead_lettered_by_the_writer_without_buffering(
    spool: SpoolAppender, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """The writer sees the same 54000 as the record's fault, not an outage: nothing is
    buffered and the breaker stays closed."""
    writer = Writer(WriterSettings.from_environ(pipeline_environ))
    good = builders.snapshots(10)
    poison = _oversize_account(builders.snapshot("DU9999", 1))
    append(spool, [*good[:3], poison, *good[3:]])
    try:
        report = await writer.drain_once()
    finally:
        await writer.close()
    assert (report.stored, report.dead_lettered, report.buffered) == (10, 1, 0)
    assert writer.store.view.breaker is BreakerState.CLOSED
    assert sorted(stored_ids(database_url)) == sorted(_ids(good))
    assert not Path(pipeline_environ["BRIDGE_BUFFER_PATH"]).exists()


@pytest.mark.timeout(180)
async def test_a_chunk_past_the_statement_timeout_is_split_and_everything_stored(
    pipeline_environ: dict[str, str], database_url: str
) -> None:
    """With a 1-s statement timeout and every row costing 1 ms on the server, a chunk of 1,500
    lines runs past the timeout (57014): it is split until the halves pass, all is stored."""
    replayer = Replayer(
        _settings(
            pipeline_environ,
            BRIDGE_DB_STATEMENT_TIMEOUT_S="1",
            BRIDGE_REPLAY_CHUNK_RECORDS="1500",
            BRIDGE_REPLAY_CONNECTIONS="1",
        )
    )
    try:
        await replayer.store.ensure_schema()
        _create_trigger(database_url, "PERFORM pg_sleep(0.001);")
        lines = builders.snapshots(1500, accounts=5)
        replayer.buffer.append(lines)
        report = await replayer.drain_once()
    finally:
        await replayer.close()
    assert (report.stored, report.dead_lettered, report.interrupted) == (1500, 0, False)
    assert report.splits >= 1
    assert replayer.store.view.breaker is BreakerState.CLOSED
    assert len(stored_ids(database_url)) == 1500


async def test_a_chunk_failing_while_the_server_is_up_never_pins_the_buffer(
    replayer: Replayer, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """Lines the server keeps failing without an outage (a serialization failure on every
    retry) are isolated and put back at the end of the buffer: their neighbours are stored,
    the claim finishes, a later outage's records are stored on the next drain, and the stuck
    lines are kept, not lost."""
    await replayer.store.ensure_schema()
    _create_trigger(
        database_url,
        "IF NEW.account = 'STUCK' THEN RAISE EXCEPTION 'staged' USING ERRCODE = '40001'; END IF;",
    )
    stuck = [builders.snapshot("STUCK", tick) for tick in range(3)]
    first_outage = builders.snapshots(40)
    replayer.buffer.append([*first_outage[:25], *stuck, *first_outage[25:]])
    first = await replayer.drain_once()
    assert (first.stored, first.requeued, first.files_finished) == (40, 3, 1)
    assert not replayer.buffer.draining_path.exists()

    later_outage = [builders.snapshot("DU-LATER", tick) for tick in range(5)]
    replayer.buffer.append(later_outage)
    second = await replayer.drain_once()
    assert (second.stored, second.requeued) == (5, 3)
    assert sorted(stored_ids(database_url)) == sorted(_ids(first_outage + later_outage))
    assert replayer.buffer.path.read_bytes() == b"".join(stuck)
    assert replayer.store.view.breaker is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("sizes", "max_lines", "max_bytes", "chunks"),
    [
        # 4 lines of 10 bytes: 25 bytes hold 2 lines (20), the third would make 30.
        pytest.param([10, 10, 10, 10], 100, 25, [2, 2], id="bytes-bound"),
        pytest.param([10, 10, 10, 10], 3, 1000, [3, 1], id="lines-bound"),
        # A 50-byte line over a 25-byte bound is a chunk of its own, never split or lost.
        pytest.param([10, 50, 10], 100, 25, [1, 1, 1], id="long-line-alone"),
        # 10 + 10 = 20 <= 20 fits exactly; the third starts the next chunk.
        pytest.param([10, 10, 10], 100, 20, [2, 1], id="exact-fit"),
    ],
)
def test_a_replay_chunk_is_bounded_by_bytes_as_well_as_lines(
    tmp_path: Path, sizes: list[int], max_lines: int, max_bytes: int, chunks: list[int]
) -> None:
    """Chunks take whole lines, at most `max_lines` and `max_bytes`, and end offsets add up."""
    lines = [b"x" * (size - 1) + b"\n" for size in sizes]
    path = tmp_path / "buffer"
    path.write_bytes(b"".join(lines))
    read = list(read_lines(path, 0, max_lines=max_lines, max_bytes=max_bytes))
    assert [len(chunk) for chunk, _ in read] == chunks
    assert [line for chunk, _ in read for line in chunk] == lines
    assert read[-1][1] == sum(sizes)
