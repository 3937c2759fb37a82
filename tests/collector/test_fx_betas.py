"""Betas of underlyings in another currency than the benchmark's, in PORTAL mode: the pair
found with /iserver/currency/pairs (tables by hand), its bars converting the underlying's
before the regression; the simulator's `fx_bars` and `closed_days` serve the case."""

from __future__ import annotations

import json
import tomllib
from collections.abc import AsyncIterator
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from collector.betas import Bar
from collector.collector import Collector
from collector.fx_pairs import FxPair, fx_pair, rates
from simulator.app import Simulator
from tests.collector.portal import opened_portal_collector
from tests.collector.spooled import event_names, snapshots_at
from tests.collector.trader import settle
from tests.fixtures.simulator import StartSimulator

USD_PAIRS = {
    "USD": [
        {"symbol": "USD.SGD", "conid": 37928772, "ccyPair": "SGD"},
        {"symbol": "EUR.USD", "conid": 12087792, "ccyPair": "EUR"},
        {"symbol": "USD.JPY", "conid": 15016062, "ccyPair": "JPY"},
    ]
}


@pytest.mark.parametrize(
    ("reply", "currency", "expected"),
    [
        (USD_PAIRS, "EUR", FxPair(12087792, inverted=False)),  # EUR.USD: USD per EUR
        (USD_PAIRS, "JPY", FxPair(15016062, inverted=True)),  # USD.JPY: JPY per USD
        (USD_PAIRS, "CHF", None),  # not among the pairs
        ({"USD": [{"symbol": "EUR.USD", "conid": None}, "x"]}, "EUR", None),  # malformed
        ([], "EUR", None),
    ],
)
def test_the_pair_that_gives_a_currency_in_usd(
    reply: Any, currency: str, expected: FxPair | None
) -> None:
    """The pair quoting a currency against USD is found, inverted when USD is its base; one not
    listed or malformed gives None."""
    assert fx_pair(reply, currency, "USD") == expected


def test_an_inverted_pair_gives_one_over_its_closes() -> None:
    """An inverted pair's rates are one over its closes, a zero close left out; a direct pair's are
    its closes."""
    day = date(2026, 3, 2)
    usd_jpy = [Bar(day, 150.0), Bar(day, 0.0)]  # 150 JPY per USD; a zero close is no price
    assert rates(usd_jpy, FxPair(1, inverted=True)) == [Bar(day, 1 / 150)]
    assert rates(usd_jpy, FxPair(1, inverted=False)) == usd_jpy


SAP = 14204


@pytest.fixture
def eur_scenario(tmp_path: Path) -> Path:
    """The default scenario plus SAP in EUR (held by DU1234567) with bars in EUR and five
    IBIS holidays, and EUR.USD following SPY by 0.3 (as in tests/collector/test_socket_inputs.py,
    `_with_a_eur_stock`)."""
    raw = tomllib.loads(resources.files("simulator.scenarios").joinpath("default.toml").read_text())
    raw["underlyings"] += [
        {"conid": 12087792, "symbol": "EUR", "sec_type": "CASH", "exchange": "IDEALPRO",
         "primary_exchange": "IDEALPRO", "spot": 1.0825, "vol": 0.08, "currency": "USD",
         "beta": 0.3, "idiosyncratic_vol": 0.08},
        {"conid": SAP, "symbol": "SAP", "sec_type": "STK", "exchange": "SMART",
         "primary_exchange": "IBIS", "spot": 200.0, "vol": 0.25, "currency": "EUR",
         "beta": 1.1, "idiosyncratic_vol": 0.15, "closed_days": [5, 40, 41, 120, 200],
         "fx_bars": True},
    ]  # fmt: skip
    raw["positions"][0]["holdings"].append({"conid": SAP, "quantity": 100})
    raw["exchange_rates"] = {"USD": {"EUR": 1.0825}}
    path = tmp_path / "eur.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture
async def portal(
    tmp_path: Path, start_simulator: StartSimulator, eur_scenario: Path
) -> AsyncIterator[tuple[Simulator, Collector]]:
    simulator = await start_simulator(eur_scenario)
    async with opened_portal_collector(simulator, tmp_path / "var") as collector:
        yield simulator, collector


async def test_a_eur_underlying_is_regressed_in_usd_in_portal_mode(
    portal: tuple[Simulator, Collector],
) -> None:
    """SAP's EUR bars are converted with EUR.USD's (found with /iserver/currency/pairs): its
    beta is the truth's (1.247), not the EUR regression's (0.966 over the same days)."""
    simulator, collector = portal
    truth_beta = simulator.market.beta("SAP")
    assert truth_beta is not None
    assert await collector.connect_once()
    last = await settle(collector, simulator.market.truth, 10)
    assert collector.betas.betas()["SAP"] == pytest.approx(truth_beta, rel=2e-3)
    record = snapshots_at(collector, last)["DU1234567"]["underlyings"]["SAP"]
    expected = simulator.market.truth()["DU1234567"]["underlyings"]["SAP"]
    assert record["net_beta_delta"] == pytest.approx(expected["net_beta_delta"], rel=2e-3)
    assert "beta_in_local_currency" not in event_names(collector)


async def test_the_truth_states_the_sample_of_a_eur_underlying(
    portal: tuple[Simulator, Collector],
) -> None:
    """/betas' sample for SAP is the days both traded, as the day before (251 weekday returns
    less the 9 into or out of its 5 holidays, two of them adjacent), as the collector counts."""
    simulator, _ = portal
    assert simulator.market.betas()["SAP"]["sample_size"] == 251 - 9
