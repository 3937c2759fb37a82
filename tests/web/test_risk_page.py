"""The scenario grid on the page, in headless Chromium over `python -m web`: the risk profile
now and an hour ago (own moves and beta-weighted), the worst loss in words and over time, and
the drill-downs to the legs: from the worst loss to its underlyings, from an explained interval
to its positions. Every row is a record the sink stored in PostgreSQL."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from playwright.sync_api import Browser, Page

from database.sink import RecordSink
from shared import records
from testkit.waiting import wait_until
from tests import builders
from tests.fixtures.processes import Processes
from tests.fixtures.supervisor import free_port
from tests.fixtures.web import answers, insert_snapshots, prepare_schema, snapshot_row

ACCOUNT = "DU0000016"
_VALUE = "(td) => td.dataset.value"
_TEXT = "(td) => td.textContent"


async def _store(url: str, lines: list[bytes]) -> None:
    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    sink = RecordSink(connect)
    try:
        assert (await sink.store(lines)).rejected == []
    finally:
        await sink.close()


def _traces(page: Page, chart: str) -> dict[str, Any]:
    """Each trace's y values by its `meta`, as Plotly holds them on the chart's element."""
    traces: dict[str, Any] = page.evaluate(
        f"""() => Object.fromEntries(document.getElementById('{chart}').data
            .map((t) => [t.meta, t.y]))"""
    )
    return traces


def _lines(now: datetime) -> list[bytes]:
    """Grids 64, 57 and 1 min ago and now (the newest has a QQQ without implied vols); an
    explained interval ending now with its two positions, one of which has its leg stored at
    the same tick, the other an own P&L in a currency IBKR does not state (no actual)."""
    # 57, not 58 or 59: the chart's hour ends at the page's real now, a minute or two after
    # `now` on a loaded machine, and the grid must still be inside it.
    stamps = [now - timedelta(minutes=m) for m in (64, 57, 1)]
    grids = [builders.scenario(ACCOUNT, ts, shift=-100.0 * k) for k, ts in enumerate(stamps)]
    grids.append(builders.scenario(ACCOUNT, now, shift=-300.0, missing=2))
    explain = builders.pnl_explain(ACCOUNT)
    option, future = explain.position_rows
    explain = replace(
        explain, id=records.explain_id(ACCOUNT, now), ts=now, start_ts=now - timedelta(seconds=5),
        position_rows=(option, (*future[:-1], None)),
        position_actual_missing=(None, "pnl_currency_unstated"),
    )  # fmt: skip
    es_option = replace(builders.PUT, conid=716002, symbol="ES", sec_type="FOP")
    spy = replace(builders.PUT, conid=7, symbol="SPY")
    legs = replace(
        builders.LEGS, id=records.snapshot_id(ACCOUNT, now), ts=now, account=ACCOUNT,
        legs=(es_option, spy, builders.STOCK),
    )  # fmt: skip
    return [
        *(records.encode(grid) for grid in grids),
        records.encode(explain),
        records.encode(legs),
    ]


def test_the_risk_profile_the_worst_loss_and_the_drill_downs_to_the_legs(
    browser: Browser, web_environ: dict[str, str], database_url: str, processes: Processes
) -> None:
    """builders.scenario: today at IV unchanged the grid is 100 x (m - 4) + shift at move m.
    Now (shift -300): -700 ... +200; an hour ago is the grid 57 min before (shift -100; 64
    min is farther): -500 ... +400; the delta-gamma crosses at -10 and +10 %; beta-weighted,
    twice each. The worst, element 0, is -1,700 at "-20 %, -5 vol pts, today", marked
    partial (QQQ left 2 options out); over the hour -1,500, -1,600, -1,700. By underlying:
    SPY -1,275, AAPL -425, QQQ unknown last; clicking SPY marks its legs. Clicking the
    explain bar lists the interval's positions, the larger explained first, the one with a
    leg named, the one whose own P&L's currency is unstated without an actual, saying why;
    clicking it marks that leg."""
    now = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, prepare_schema(database_url)).result()
        pool.submit(asyncio.run, _store(database_url, _lines(now))).result()
    insert_snapshots(database_url, [snapshot_row(ACCOUNT, now)])

    port = free_port()
    processes.start("web", {**web_environ, "BRIDGE_WEB_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    wait_until(lambda: answers(base + "/healthz"), what="the web program")
    page.goto(base + "/")
    page.wait_for_function(
        "() => (document.getElementById('profile-chart').data || []).some((t) => t.meta === 'now')"
    )
    own = _traces(page, "profile-chart")
    words = page.text_content("#worst-words") or ""
    words_complete = page.get_attribute("#worst-words", "data-complete")
    profile_complete = page.get_attribute("#profile-note", "data-complete")
    worst_over_time = _traces(page, "worst-chart")
    by_underlying = [
        (row.get_attribute("data-symbol"), row.eval_on_selector("td[data-value]", _VALUE))
        for row in page.query_selector_all("#worst-underlyings tbody tr")
    ]
    page.click('#worst-underlyings tr[data-symbol="SPY"]')
    linked_by_symbol = [
        row.get_attribute("data-conid") for row in page.query_selector_all("#legs tr.linked")
    ]
    page.select_option("#profile-view", "beta")
    page.wait_for_function(
        "() => document.getElementById('worst-chart').data[0].meta === 'beta_worst_pnl'"
    )
    beta = _traces(page, "profile-chart")
    beta_words = page.text_content("#worst-words") or ""

    # The explain chart's only interval: a real click on its bar lists its positions.
    page.wait_for_function("() => (document.getElementById('explain-chart').data || []).length > 0")
    bar = page.locator("#explain-chart g.trace.bars g.point path").first.bounding_box()
    assert bar is not None
    page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
    page.wait_for_function(
        "() => document.querySelectorAll('#explain-positions tbody tr').length === 2"
    )
    positions = [
        (row.get_attribute("data-conid"), row.eval_on_selector('td[data-column="symbol"]', _TEXT))
        for row in page.query_selector_all("#explain-positions tbody tr")
    ]
    actuals = [
        (
            row.eval_on_selector('td[data-column="actual_pnl"]', _TEXT),
            row.eval_on_selector('td[data-column="actual_missing"]', _TEXT),
        )
        for row in page.query_selector_all("#explain-positions tbody tr")
    ]
    page.click('#explain-positions tr[data-conid="716002"]')
    linked_by_conid = [
        row.get_attribute("data-conid") for row in page.query_selector_all("#legs tr.linked")
    ]
    page.close()

    assert own["now"] == [-700.0, -600.0, -500.0, -400.0, -300.0, -200.0, -100.0, 0.0, 100.0, 200.0]
    assert own["hour_ago"] == [-500.0 + 100.0 * m for m in range(10)]
    assert own["now_vol-5"][0] == -1_700.0  # element 0
    assert own["now_vol+5"][0] == 300.0  # element 20
    assert own["delta_gamma"] == [-360.0, 440.0]
    assert "-1,700* USD at -20 %, -5 vol pts, today" in words
    assert (words_complete, profile_complete) == ("partial", "partial")
    assert worst_over_time["worst_pnl"] == [-1_500.0, -1_600.0, -1_700.0]
    assert by_underlying == [("SPY", "-1275"), ("AAPL", "-425"), ("QQQ", "null")]
    assert linked_by_symbol == ["7"]
    assert beta["now"] == [2.0 * value for value in own["now"]]
    assert "delta_gamma" not in beta  # the approximation is of own moves
    assert "-3,400* USD at -20 %, -5 vol pts, today" in beta_words
    assert positions == [("716002", "ES"), ("495512563", "—")]  # explained 103, then 15
    assert actuals == [("110.0", "—"), ("—", "pnl_currency_unstated")]
    assert linked_by_conid == ["716002"]
