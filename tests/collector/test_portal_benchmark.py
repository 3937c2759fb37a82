"""PORTAL: the beta benchmark found by symbol search is the listing on the configured exchange
in the configured currency, not the search's first hit (issue 17). The hits' choice is worked
by hand; the simulator serves a search whose first hits are other listings of SPY. SPX, whose
price turns field 7696 into benchmark shares, is found the same way when no SPX option is
held."""

from __future__ import annotations

import json
import tomllib
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from collector.benchmark_search import benchmark_candidates, benchmark_in_currency
from collector.collector import Collector
from simulator.app import Simulator
from tests.collector.portal import opened_portal_collector
from tests.collector.spooled import snapshots_at
from tests.collector.trader import assert_figures_equal, settle
from tests.fixtures.simulator import StartSimulator

SPY_ARCA = 756733
SPX_CBOE = 416904


def _hit(conid: Any, symbol: str, exchange: str, *sec_types: str) -> dict[str, Any]:
    return {
        "conid": conid,
        "symbol": symbol,
        "description": exchange,
        "companyHeader": f"{symbol} - {exchange}",
        "sections": [{"secType": sec_type} for sec_type in sec_types],
    }


@pytest.mark.parametrize(
    ("hits", "expected"),
    [
        # the gateway's order is kept among the listings on ARCA that are stocks or ETFs
        (
            [
                _hit("111", "SPY", "MEXI", "STK"),  # another exchange
                _hit("222", "SPY", "ARCA", "CFD"),  # a CFD on it
                _hit("333", "SPYG", "ARCA", "STK"),  # another symbol
                _hit("756733", "SPY", "ARCA", "STK", "OPT"),
                _hit("444", "SPY", "arca", "ETF"),  # case does not matter
            ],
            [756733, 444],
        ),
        # no description: the exchange is what follows the last " - " of the header
        ([{**_hit("5", "SPY", "", "STK"), "companyHeader": "SPDR S&P - 500 - ARCA"}], [5]),
        # malformed hits are skipped, not guessed
        ([_hit(None, "SPY", "ARCA", "STK"), _hit("6", "SPY", "ARCA"), "x"], []),
        ({"error": "no contracts"}, []),
    ],
)
def test_search_hits_on_the_configured_exchange(hits: Any, expected: list[int]) -> None:
    """The benchmark's search hits keep the stocks and ETFs of the symbol on the configured
    exchange, in the gateway's order; malformed hits are skipped."""
    assert benchmark_candidates(hits, "SPY", "ARCA") == expected


@pytest.mark.parametrize(
    ("secdefs", "currency", "expected"),
    [
        # candidates 7 then 8: 7 trades in EUR, 8 in USD -> 8 for USD, 7 for EUR
        ({"secdef": [{"conid": 7, "currency": "EUR"}, {"conid": 8, "currency": "USD"}]}, "USD", 8),
        ({"secdef": [{"conid": 7, "currency": "EUR"}, {"conid": 8, "currency": "USD"}]}, "EUR", 7),
        ({"secdef": [{"conid": 7, "currency": "MXN"}]}, "USD", None),  # 8 not described
        (None, "USD", None),
    ],
)
def test_the_first_candidate_in_the_configured_currency(
    secdefs: Any, currency: str, expected: int | None
) -> None:
    """The first candidate trading in the configured currency is the benchmark; none in it gives
    None."""
    assert benchmark_in_currency([7, 8], secdefs, currency) == expected


@pytest.fixture
def scenario_without_spy(tmp_path: Path) -> Path:
    """The default scenario with no SPY position (so the benchmark must be searched for) and
    two other listings of SPY that the search names first: Mexico in MXN, a CFD."""
    raw = tomllib.loads(resources.files("simulator.scenarios").joinpath("default.toml").read_text())
    spy_options = {o["conid"] for o in raw["options"] if o["underlying"] == SPY_ARCA}
    for entry in raw["positions"]:
        entry["holdings"] = [
            h for h in entry["holdings"] if h["conid"] not in {SPY_ARCA, *spy_options}
        ]
    raw["listings"] = [
        {"conid": 9_000_001, "symbol": "SPY", "exchange": "MEXI", "currency": "MXN"},
        {"conid": 9_000_002, "symbol": "SPY", "exchange": "ARCA", "currency": "USD",
         "sec_type": "CFD"},
    ]  # fmt: skip
    path = tmp_path / "no-spy.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture
async def searched(
    tmp_path: Path, start_simulator: StartSimulator, scenario_without_spy: Path
) -> AsyncIterator[tuple[Simulator, Collector]]:
    simulator = await start_simulator(scenario_without_spy)
    async with opened_portal_collector(simulator, tmp_path / "var") as collector:
        yield simulator, collector


async def test_the_searched_benchmark_is_spy_on_arca_in_usd(
    searched: tuple[Simulator, Collector],
) -> None:
    """SPY is not held: the search's first hits are SPY in Mexico (MXN) and an SPY CFD, which
    have no price and no bars; the benchmark taken is SPY on ARCA in USD, so ES has its beta
    and every figure, beta delta included, equals the truth."""
    simulator, collector = searched
    assert await collector.connect_once()
    last = await settle(collector, simulator.market.truth, 10)
    truth = simulator.market.truth()
    records = snapshots_at(collector, last)
    assert (
        records["DU1234567"]["underlyings"]["ES"]["completeness"]["net_beta_delta"]["reasons"] == {}
    )
    assert "ES" in collector.betas.betas()
    for account, record in records.items():
        assert_figures_equal(record, truth[account], rel=1e-9)


@pytest.fixture
def eur_benchmark_scenario(tmp_path: Path) -> Path:
    """The default scenario measured against EXSA (iShares STOXX Europe 600 on IBIS, in EUR),
    held by nobody: accounts in USD, EUR at 1.0825, each with some EUR cash (so that its ledger
    gives the EUR rate)."""
    raw = tomllib.loads(resources.files("simulator.scenarios").joinpath("default.toml").read_text())
    raw["underlyings"].append(
        {"conid": 9_100_000, "symbol": "EXSA", "sec_type": "STK", "exchange": "SMART",
         "primary_exchange": "IBIS", "spot": 50.0, "vol": 0.15, "currency": "EUR"}
    )  # fmt: skip
    raw["benchmark"] = "EXSA"
    raw["exchange_rates"] = {"USD": {"EUR": 1.0825}}
    for cash in raw["cash"].values():
        cash["EUR"] = 1000.0
    path = tmp_path / "exsa.json"
    path.write_text(json.dumps(raw))
    return path


async def test_a_benchmark_in_euros_is_priced_in_euros(
    tmp_path: Path, start_simulator: StartSimulator, eur_benchmark_scenario: Path
) -> None:
    """With EXSA on IBIS in EUR configured, the benchmark's price is converted from EUR (it was
    taken as USD: beta delta 1.0825 times too large) and every figure equals the truth."""
    simulator = await start_simulator(eur_benchmark_scenario)
    async with opened_portal_collector(
        simulator,
        tmp_path / "var",
        BRIDGE_BETA_BENCHMARK="EXSA",
        BRIDGE_BETA_BENCHMARK_EXCHANGE="ibis",
        BRIDGE_BETA_BENCHMARK_CURRENCY="eur",
    ) as collector:
        assert await collector.connect_once()
        last = await settle(collector, simulator.market.truth, 10)
        truth = simulator.market.truth()
        for account, record in snapshots_at(collector, last).items():
            assert_figures_equal(record, truth[account], rel=1e-9)


@pytest.fixture
def scenario_without_spx_options(tmp_path: Path) -> Path:
    """The default scenario with no SPX option held (SPX still listed, as an index on CBOE),
    and an SPX CFD the search names first."""
    raw = tomllib.loads(resources.files("simulator.scenarios").joinpath("default.toml").read_text())
    spx_options = {o["conid"] for o in raw["options"] if o["underlying"] == SPX_CBOE}
    for entry in raw["positions"]:
        entry["holdings"] = [h for h in entry["holdings"] if h["conid"] not in spx_options]
    raw["listings"] = [
        {"conid": 9_000_003, "symbol": "SPX", "exchange": "CBOE", "currency": "USD",
         "sec_type": "CFD"},
    ]  # fmt: skip
    path = tmp_path / "no-spx-options.json"
    path.write_text(json.dumps(raw))
    return path


async def test_spx_is_searched_when_no_spx_option_is_held(
    tmp_path: Path, start_simulator: StartSimulator, scenario_without_spx_options: Path
) -> None:
    """No SPX option held, frozen: the index is found by the search (not the CFD it names
    first), so each account's gateway beta delta is also in benchmark shares, 7696's SPX units
    x SPX's price / SPY's (both as the Portal writes them, to the cent: 1e-4)."""
    simulator = await start_simulator(scenario_without_spx_options)
    market = simulator.market
    market.freeze()  # the marks read below are the ones the snapshots saw
    async with opened_portal_collector(simulator, tmp_path / "var") as collector:
        assert await collector.connect_once()
        last = await settle(collector, market.truth, 10)
        records = snapshots_at(collector, last)
    spx, spy = market.quote(SPX_CBOE).mark, market.quote(SPY_ARCA).mark
    assert spx is not None
    assert spy is not None
    assert records
    for account, record in records.items():
        assert record["gateway_beta_delta"] is not None, account
        assert record["gateway_beta_delta_benchmark_shares"] == pytest.approx(
            record["gateway_beta_delta"] * spx / spy, rel=1e-4
        ), account
