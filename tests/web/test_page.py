"""The page in headless Chromium over `python -m web`: 60 accounts stay usable."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser

from testkit.waiting import wait_until
from tests.fixtures.processes import Processes
from tests.fixtures.supervisor import free_port
from tests.fixtures.web import answers, insert_snapshots, prepare_schema, snapshot_row


def test_sixty_accounts_one_selector_one_chart(
    browser: Browser, web_environ: dict[str, str], database_url: str, processes: Processes
) -> None:
    """60 accounts: 60 rows and a selector of 60; choosing one redraws the one chart for it,
    from its own rows (its dollar delta is its number times 1000); 5 days come in 600-s buckets."""
    now = datetime.now(UTC).replace(microsecond=0)
    # Playwright's loop runs in this thread: the schema is made from another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, prepare_schema(database_url)).result()
    accounts = [f"DU{k:07d}" for k in range(1, 61)]
    insert_snapshots(
        database_url,
        [
            snapshot_row(account, now - timedelta(seconds=5 * tick), net_dollar_delta=k * 1000.0)
            for k, account in enumerate(accounts, start=1)
            for tick in range(3)
        ],
    )

    port = free_port()
    processes.start("web", {**web_environ, "BRIDGE_WEB_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    # What the Content-Security-Policy refuses, Chromium reports on the console.
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    wait_until(lambda: answers(base + "/healthz"), what="the web program")
    page.goto(base + "/")
    page.wait_for_function("() => Number(document.body.dataset.updates || 0) >= 1")
    options = len(page.query_selector_all("#account option"))
    rows = len(page.query_selector_all("#accounts tbody tr"))
    page.select_option("#account", "DU0000042")
    page.wait_for_function(
        """() => {
            const line = (document.getElementById('chart').data || [])
                .find((t) => t.meta === 'net_dollar_delta');
            return line && line.y.includes(42000);
        }"""
    )
    values = page.evaluate(
        """() => document.getElementById('chart').data
            .find((t) => t.meta === 'net_dollar_delta').y.filter((v) => v !== null)"""
    )
    page.click('#windows button[data-window="5d"]')
    page.wait_for_function(
        "() => document.getElementById('chart-note').textContent.includes('buckets of 600 s')"
    )
    page.close()
    assert refused == []
    assert (options, rows) == (60, 60)
    assert values == [42000.0, 42000.0, 42000.0]
