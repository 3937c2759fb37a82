"""The P&L explain on the page, in headless Chromium over `python -m web`: the stored intervals
of the selected account as stacked terms against the actual P&L, and the day's score."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
from playwright.sync_api import Browser

from shared import records
from testkit.postgres import store_lines
from tests import builders
from tests.fixtures.processes import Processes
from tests.fixtures.web import insert_snapshots, open_page, prepare_schema, snapshot_row

ACCOUNT = "DU0000007"
# (actual, explained) of four scored intervals a minute apart, and one fill (not scored).
_INTERVALS = [(10.0, 8.0), (-20.0, -25.0), (30.0, 30.0), (40.0, 30.0), (1000.0, 0.0)]


def _explains(now: datetime) -> list[bytes]:
    lines = []
    for k, (actual, explained) in enumerate(_INTERVALS):
        end = now - timedelta(minutes=len(_INTERVALS) - k)
        marks = ("positions_changed",) if k == len(_INTERVALS) - 1 else ()
        record = builders.pnl_explain(ACCOUNT, actual=actual, explained=explained, marks=marks)
        terms = dict(zip(records.EXPLAIN_TERMS, (explained, 0.0, 0.0, 0.0, 0.0), strict=True))
        lines.append(
            records.encode(
                replace(
                    record,
                    id=records.explain_id(ACCOUNT, end),
                    ts=end,
                    start_ts=end - timedelta(seconds=5),
                    terms=terms,
                )
            )
        )
    return lines


async def _store(url: str, lines: list[bytes]) -> None:
    assert (await store_lines(url, lines)).rejected == []


def test_the_explain_chart_stacks_the_terms_against_the_actual_pnl(
    browser: Browser, web_environ: dict[str, str], database_url: str, processes: Processes
) -> None:
    """The selected account's last hour: one bar per term and interval, the actual P&L as a
    line, the fill left out (null); the day's score as the view computes it."""
    now = datetime.now(UTC).replace(second=30, microsecond=0)
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, prepare_schema(database_url)).result()
        pool.submit(asyncio.run, _store(database_url, _explains(now))).result()
    insert_snapshots(database_url, [snapshot_row(ACCOUNT, now - timedelta(seconds=5))])
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT explained_share, spearman FROM pnl_explain_daily WHERE account = %s"
            " ORDER BY day DESC LIMIT 1",
            (ACCOUNT,),
        ).fetchone()
    assert row is not None

    page = open_page(processes, browser, web_environ)
    page.wait_for_function("() => Number(document.body.dataset.updates || 0) >= 1")
    page.select_option("#account", ACCOUNT)
    page.wait_for_function(
        """() => (document.getElementById('explain-chart').data || [])
            .some((t) => t.meta === 'actual_pnl' && t.y.length === 5)"""
    )
    traces = page.evaluate(
        """() => Object.fromEntries(document.getElementById('explain-chart').data
            .map((t) => [t.meta, t.y]))"""
    )
    score = page.text_content("#explain-score") or ""
    page.close()
    assert traces["actual_pnl"] == [actual for actual, _ in _INTERVALS[:4]] + [None]
    assert traces["delta_pnl"] == [explained for _, explained in _INTERVALS[:4]] + [None]
    assert set(traces) == {*records.EXPLAIN_TERMS, "actual_pnl"}
    assert "4 intervals scored, 1 not" in score
    # 1 - 17 / 100 and 3 / sqrt(10), as the view computes them and the page writes them
    assert f"explained share {row[0]:.3f}, Spearman {row[1]:.3f}" in score
    assert (round(row[0], 3), round(row[1], 3)) == (0.83, 0.949)
