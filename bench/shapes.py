"""Snapshots shaped like the collector's: what the storage benchmarks feed the writer and the
replayer. A book is named by its underlyings per account (`BOOKS`: 2, 10 and 50); each
underlying holds options, so all of its figures are known, with values as the collector states
them (`records.kept`) and every completeness complete (the steady state). Format 3 unless a
format 2 line is asked for (the line before lean snapshots, measured beside it)."""

from __future__ import annotations

import asyncio
import functools
import random
from datetime import UTC, datetime, timedelta

import psycopg

import testkit.snapshots
from database import history
from database.schema import bootstrap
from shared import records
from testkit.postgres import store_lines

BASE = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
# Underlyings per account of the books the benchmarks name; the capacity and replay tables use
# the middle one, a trader's book of 10 underlyings.
BOOKS = (2, 10, 50)
BOOK = 10
# Symbols as long as real ones (1 to 6 letters; futures and indices among them).
_SYMBOLS = ("SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "ES", "NQ", "ZC", "ESTX50", "TSLA", "AMZN")


def symbol(index: int) -> str:
    """The book's `index`-th underlying symbol, as long as real ones."""
    base = _SYMBOLS[index % len(_SYMBOLS)]
    return base if index < len(_SYMBOLS) else f"{base}{index // len(_SYMBOLS)}"


def _complete(
    positions: int, options: int, figures: tuple[str, ...] = records.FIGURES
) -> dict[str, records.Counts]:
    return {name: records.complete_counts(name, positions, options) for name in figures}


@functools.cache  # the same line every time: a benchmark asks for its probes' template often
def snapshot(account: str, tick: int, underlyings: int = BOOK, version: int = 3) -> bytes:
    """An account holding 3 options and 1 share position on each of `underlyings` symbols, as
    the collector writes it: figures as a snapshot states them (format 3: money to the cent,
    share-equivalents to 9 significant digits; format 2: full precision, 17 significant digits
    as a sum of products comes out), completeness complete, the account's values known."""
    ts = BASE + timedelta(seconds=5 * tick)
    draw = random.Random(f"{account}|{tick}|{underlyings}")

    def figure(scale: float) -> float:
        return draw.uniform(-1.0, 1.0) * scale

    def kept(name: str, value: float) -> float | None:
        """A figure as a format-3 snapshot states it (`records.kept`), as the collector does;
        a format-2 line, from before, at full precision."""
        return records.kept(name, value) if version >= 3 else value

    book = {
        symbol(index): {
            "net_dollar_delta": figure(5e5),
            "net_dollar_gamma": figure(2e4),
            "net_theta": figure(3e3),
            "net_vega": figure(8e3),
            "net_beta_delta": figure(2e3),
            "net_delta": figure(5e3),
            "net_gamma": figure(50.0),
            # An underlying's share-equivalents have a completeness too from format 3 on:
            # complete, as the collector writes them when every position contributed.
            "completeness": _complete(
                4, 3, records.UNDERLYING_FIGURES if version >= 3 else records.FIGURES
            ),
            "position_count": 4,
            "option_count": 3,
            "options_with_greeks": 3,
        }
        for index in range(underlyings)
    }

    def total(name: str) -> float | None:
        return kept(name, sum(values[name] for values in book.values()))  # type: ignore[misc]

    stated = {
        name: {key: kept(key, value) if isinstance(value, float) else value
               for key, value in values.items()}
        for name, values in book.items()
    }  # fmt: skip

    return records.encode(
        testkit.snapshots.snapshot(
            account,
            ts,
            net_theta=total("net_theta"),
            net_vega=total("net_vega"),
            net_dollar_delta=total("net_dollar_delta"),
            position_count=4 * underlyings,
            option_count=3 * underlyings,
            options_with_greeks=3 * underlyings,
            stalest_greek_age_s=round(draw.uniform(0.0, 5.0), 3 if version >= 3 else None),
            underlyings=stated,
            version=version,
            currency="USD",
            net_dollar_gamma=total("net_dollar_gamma"),
            net_beta_delta=total("net_beta_delta"),
            completeness=_complete(4 * underlyings, 3 * underlyings),
            net_liquidation=kept("net_liquidation", draw.uniform(1e6, 1e7)),
            unrealized_pnl=kept("unrealized_pnl", figure(1e5)),
            daily_pnl=kept("daily_pnl", figure(5e4)),
        )
    )


def snapshots(
    count: int, accounts: int, first_tick: int = 0, underlyings: int = BOOK, version: int = 3
) -> list[bytes]:
    """`count` distinct rows of `accounts` accounts, one row each per 5-s tick from
    `first_tick`, made by substituting into one encoded row per account (encoding each is too
    slow for a million)."""
    old_ts = BASE.isoformat(timespec="microseconds").encode()
    templates = {}
    made = []
    for index in range(count):
        account = f"DU{index % accounts:08d}"
        if account not in templates:
            templates[account] = snapshot(account, 0, underlyings, version)
        ts = BASE + timedelta(seconds=5 * (first_tick + index // accounts))
        made.append(
            templates[account]
            .replace(str(records.snapshot_id(account, BASE)).encode(),
                     str(records.snapshot_id(account, ts)).encode())
            .replace(old_ts, ts.isoformat(timespec="microseconds").encode())
        )  # fmt: skip
    return made


async def prepare(url: str) -> None:
    """The schema as the bridge runs it, with the partitions of the rows' days (March 2026)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await bootstrap(conn)
        await history.apply_partition_plan(conn, history.Retention(), BASE)


def store(url: str, lines: list[bytes], per_transaction: int = 1_000) -> None:
    """`lines` stored through the writer's own sink, `per_transaction` lines a transaction;
    every one of them stored, or the benchmark stops."""
    for start in range(0, len(lines), per_transaction):
        batch = lines[start : start + per_transaction]
        result = asyncio.run(store_lines(url, batch))
        assert result.stored == len(batch), result
