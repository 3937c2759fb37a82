"""The page in headless Chromium over `python -m web`: 60 accounts stay usable; a figure shows
its precision and whether its inputs were live."""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser

from shared import records
from testkit.postgres import store_lines
from testkit.waiting import wait_until
from tests import builders
from tests.fixtures.processes import Processes
from tests.fixtures.supervisor import free_port
from tests.fixtures.web import answers, insert_snapshots, open_page, prepare_schema, snapshot_row


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


def test_a_figure_shows_its_rounding_bound_imprecision_and_delayed_inputs(
    browser: Browser, web_environ: dict[str, str], database_url: str, processes: Processes
) -> None:
    """A PORTAL snapshot stored by the writer's sink whose dollar gamma carries a rounding bound
    over 1 % of it (imprecise) and whose dollar delta had delayed inputs: the gamma cell reads
    "± 2,500", marked imprecise, and says how many of its Greeks were recomputed and how many
    the model disagreed with; the delta cell is marked delayed, naming the kind; the gateway's
    own beta delta is shown beside ours."""
    plain = builders.trader_snapshot("DU0000001")
    assert plain.completeness is not None
    gamma_counts = {
        **plain.completeness["net_dollar_gamma"],
        "rounding_bound": 2500.0,
        "recomputed": 2,
        "model_disagrees": 1,
    }
    delta_counts = {**plain.completeness["net_dollar_delta"], "market_data": {"delayed": 2}}
    completeness = {
        **plain.completeness,
        "net_dollar_gamma": {**gamma_counts, "imprecise": True},
        "net_dollar_delta": delta_counts,
    }
    now = datetime.now(UTC).replace(microsecond=0)
    snapshot = dataclasses.replace(
        plain,
        ts=now,
        id=records.snapshot_id("DU0000001", now),
        mode="PORTAL",
        completeness=completeness,
        gateway_beta_delta=-12.5,
    )

    async def store() -> None:
        await prepare_schema(database_url)
        assert (await store_lines(database_url, [records.encode(snapshot)])).stored == 1

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, store()).result()
    page = open_page(processes, browser, web_environ)
    page.wait_for_function("() => Number(document.body.dataset.updates || 0) >= 1")
    row = '#accounts td[data-account="DU0000001"]'
    gamma = page.query_selector(f'{row}[data-figure="net_dollar_gamma"]')
    delta = page.query_selector(f'{row}[data-figure="net_dollar_delta"]')
    theirs = page.query_selector('#detail td[data-figure="gateway_beta_delta"]')
    assert gamma is not None
    assert delta is not None
    assert theirs is not None
    gamma_text, gamma_class = gamma.inner_text(), str(gamma.get_attribute("class"))
    shown = (gamma.get_attribute("data-bound"), delta.get_attribute("data-market-data"))
    recomputed, gamma_title = gamma.get_attribute("data-recomputed"), gamma.get_attribute("title")
    delta_class, their_value = str(delta.get_attribute("class")), theirs.get_attribute("data-value")
    page.close()
    assert "±2,500" in gamma_text.replace(" ", "")
    assert "imprecise" in gamma_class
    assert shown == ("2500", "delayed")
    assert recomputed == "2"
    assert "2 Greeks recomputed by the model, 1 kept as rounded" in str(gamma_title)
    assert "delayed" in delta_class
    assert their_value == "-12.5"


def test_ibkrs_beta_delta_is_set_against_ours_in_benchmark_shares(
    browser: Browser, web_environ: dict[str, str], database_url: str, processes: Processes
) -> None:
    """A PORTAL snapshot whose gateway beta delta is 10.4 SPX units, 104 benchmark shares,
    against our 100: the selected account's card says IBKR - ours is +4 shares, +4 % of ours.
    A SOCKET snapshot (no 7696) reads the gap as unknown, never 0."""
    now = datetime.now(UTC).replace(microsecond=0)
    portal = dataclasses.replace(
        builders.trader_snapshot("DU0000001"),
        ts=now,
        id=records.snapshot_id("DU0000001", now),
        mode="PORTAL",
        net_beta_delta=100.0,
        gateway_beta_delta=10.4,
        gateway_beta_delta_benchmark_shares=104.0,
    )
    socket = dataclasses.replace(
        builders.trader_snapshot("DU0000002"),
        ts=now,
        id=records.snapshot_id("DU0000002", now),
        mode="SOCKET",
        net_beta_delta=100.0,
    )

    async def store() -> None:
        await prepare_schema(database_url)
        lines = [records.encode(portal), records.encode(socket)]
        assert (await store_lines(database_url, lines)).stored == 2

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, store()).result()
    page = open_page(processes, browser, web_environ)
    page.wait_for_function("() => Number(document.body.dataset.updates || 0) >= 1")
    page.select_option("#account", "DU0000001")
    gap = '#detail td[data-figure="beta_delta_gap"]'
    page.wait_for_function(
        f"() => document.querySelector('{gap}')?.dataset.value !== undefined"
        " && document.querySelector('#detail caption').textContent.startsWith('DU0000001')"
    )
    portal_gap = page.eval_on_selector(
        gap, "(td) => [td.dataset.value, td.dataset.share, td.textContent]"
    )
    page.select_option("#account", "DU0000002")
    page.wait_for_function(
        "() => document.querySelector('#detail caption').textContent.startsWith('DU0000002')"
    )
    socket_gap = page.eval_on_selector(gap, "(td) => [td.dataset.value, td.textContent]")
    page.close()
    assert portal_gap == ["4", "0.04", "+4.000 (+4.0 % of ours)"]
    assert socket_gap == ["null", "—"]
