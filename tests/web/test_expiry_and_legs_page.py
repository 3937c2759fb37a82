"""The selected account's Greeks by expiry and its legs, in headless Chromium over
`python -m web`: the table shows each scope's figures by bucket, the legs sort by any figure."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Browser

from shared import records
from testkit.postgres import store_lines
from tests import builders
from tests.fixtures.processes import Processes
from tests.fixtures.web import insert_snapshots, open_page, prepare_schema, snapshot_row

ACCOUNT = "DU0000001"


async def _store(url: str, lines: list[bytes]) -> None:
    assert (await store_lines(url, lines)).rejected == []


def _cells(page: Any, selector: str) -> list[str]:
    return [cell.text_content() or "" for cell in page.query_selector_all(selector)]


def test_expiry_table_and_sortable_legs(
    browser: Browser, web_environ: dict[str, str], database_url: str, processes: Processes
) -> None:
    """The account's newest expiry row: AAPL's theta -40 in 0-7 d and 5 in 31-90 d, its
    delta-one 20,000, SPY's buckets all unknown (—, not 0); charted by bucket per underlying
    for the figure chosen. The newest legs (not the older
    ones): sorted by dollar delta, descending then ascending on a second click, the unknown
    last both times."""
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(minutes=1)

    def at(ts: datetime) -> dict[str, Any]:
        return {"id": records.snapshot_id(ACCOUNT, ts), "ts": ts, "account": ACCOUNT}

    call = replace(builders.PUT, conid=1, option_right="C", dollar_delta=20_000.0)
    legs = (builders.PUT, builders.STOCK, call)
    lines = [
        records.encode(replace(builders.EXPIRY, **at(now))),
        records.encode(replace(builders.LEGS, **at(now), legs=legs)),
        records.encode(replace(builders.LEGS, **at(old), legs=(replace(call, conid=99),))),
    ]
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, prepare_schema(database_url)).result()
        pool.submit(asyncio.run, _store(database_url, lines)).result()
    insert_snapshots(database_url, [snapshot_row(ACCOUNT, now)])

    page = open_page(processes, browser, web_environ)
    page.wait_for_function("() => document.querySelectorAll('#legs tbody tr[data-conid]').length")
    theta = '#expiry tr[data-scope="AAPL"][data-figure="net_theta"]'
    aapl_theta = [
        page.text_content(f'{theta} td[data-bucket="{bucket}"]') for bucket in ("0-7", "31-90")
    ]
    aapl_linear = page.text_content(
        '#expiry tr[data-scope="AAPL"][data-figure="net_dollar_delta"] td[data-bucket="delta-one"]'
    )
    spy = _cells(page, '#expiry tr[data-scope="SPY"] td[data-bucket]')
    gamma_bars = page.evaluate(
        "() => document.getElementById('expiry-chart').data.map((t) => [t.meta, t.y])"
    )
    page.select_option("#expiry-figure", "net_theta")
    page.wait_for_function("() => document.getElementById('expiry-chart').data[0].y[0] === -40")
    descending = [
        row.get_attribute("data-conid") for row in page.query_selector_all("#legs tbody tr")
    ]
    page.click('#legs th[data-column="dollar_delta"]')
    ascending = [
        row.get_attribute("data-conid") for row in page.query_selector_all("#legs tbody tr")
    ]
    sorted_by = page.get_attribute('#legs th[data-column="dollar_delta"]', "aria-sort")
    page.close()
    assert aapl_theta == ["-40.0", "5.000"]
    assert aapl_linear == "20,000"
    assert set(spy) == {"—"}
    # Dollar gamma by bucket, one stacked bar per underlying: AAPL 3,200 (0-7) and -800
    # (31-90), SPY none anywhere (null: no bar, not a bar of 0).
    assert gamma_bars == [
        ["AAPL", [3200.0, None, -800.0, None, None]],
        ["SPY", [None, None, None, None, None]],
    ]
    assert descending == ["1", "2", "4"]  # 20,000, then 6,000, the stock's unknown last
    assert ascending == ["2", "1", "4"]
    assert sorted_by == "ascending"
