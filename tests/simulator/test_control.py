"""The control endpoint over real HTTP, and the simulator as a real program."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from ib_async import IB

from simulator.app import Simulator
from testkit.waiting import wait_until_async
from tests.fixtures.processes import Processes


@pytest.fixture
async def control(simulator: Simulator) -> AsyncIterator[Any]:
    base = f"http://127.0.0.1:{simulator.control_port}"
    async with aiohttp.ClientSession() as session:

        async def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
            async with session.request(method, base + path, **kwargs) as response:
                return response.status, await response.json()

        yield call


async def test_truth_with_scenarios_only_when_asked(control: Any, simulator: Simulator) -> None:
    """/truth?scenarios=1 adds the model's scenario grids; plain /truth has none."""
    _, plain = await control("GET", "/truth")
    assert "scenarios" not in plain
    _, body = await control("GET", "/truth", params={"scenarios": "1"})
    assert body["scenarios"] == simulator.market.scenario_truth()
    assert all(len(account["grid"]) == 60 for account in body["scenarios"].values())


async def test_truth_freeze_and_thaw(control: Any, simulator: Simulator) -> None:
    """/truth is the model's truth; freezing holds it still."""
    _, body = await control("GET", "/truth")
    assert body["frozen"] is True
    assert body["accounts"] == simulator.market.truth()
    # The default scenario's Portal writes every digit: a Portal client can reach it all.
    exact = {
        account: {key: value for key, value in figures.items() if key != "net"}
        for account, figures in body["accounts"].items()
    }
    assert body["portal"] == simulator.market.portal_truth() == exact
    assert await control("POST", "/thaw") == (200, {"frozen": False})
    assert not simulator.market.frozen
    assert await control("POST", "/freeze") == (200, {"frozen": True})


async def test_betas_are_the_regression_over_the_served_bars(control: Any) -> None:
    """/betas: per symbol, the OLS beta on the benchmark over 251 daily returns ending
    yesterday; the benchmark's own is 1."""
    status, body = await control("GET", "/betas")
    assert (status, body["benchmark"]) == (200, "SPY")
    spy = body["betas"]["SPY"]
    assert (spy["beta"], spy["sample_size"]) == (pytest.approx(1.0), 251)
    assert set(body["betas"]) == {"SPY", "SPX", "ES"}


async def test_faults_are_set_shown_and_cleared(control: Any, simulator: Simulator) -> None:
    """Setting faults changes the model's Faults; DELETE puts everything back."""
    status, shown = await control(
        "POST", "/faults", json={"market_data_error": 354, "client_ids_in_use": [10]}
    )
    assert status == 200
    assert shown == {"market_data_error": 354, "client_ids_in_use": [10]}
    assert simulator.market.faults.client_ids_in_use == {10}
    assert await control("DELETE", "/faults") == (200, {})
    assert simulator.market.faults.market_data_error is None


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/faults", {"volcano": True}, "unknown fault 'volcano'"),
        ("/faults", {"stalled": "yes"}, "stalled has the wrong type"),
        ("/faults", {"max_market_data_lines": True}, "max_market_data_lines has the wrong type"),
        ("/faults", [1, 2], "the body is not a JSON object"),
        ("/positions", {"account": "DU1234567"}, "expected account, conid and quantity"),
        ("/positions", {"account": "DU1234567", "conid": 1, "quantity": 1}, "expected account"),
    ],
)
async def test_bad_input_is_a_400_with_the_reason(
    control: Any, path: str, body: Any, reason: str
) -> None:
    """Malformed control requests are refused clearly and change nothing."""
    status, answer = await control("POST", path, json=body)
    assert status == 400
    assert answer["error"].startswith(reason)


async def test_positions_change_through_the_endpoint(control: Any, simulator: Simulator) -> None:
    """Opening a position through the endpoint shows in the model's truth."""
    before = simulator.market.truth()["DU7654321"]["net"]["position_count"]
    assert (
        await control(
            "POST", "/positions", json={"account": "DU7654321", "conid": 700002, "quantity": -1}
        )
    )[0] == 200
    assert simulator.market.truth()["DU7654321"]["net"]["position_count"] == before + 1


async def test_a_fault_through_the_endpoint_reaches_a_real_client(
    control: Any, simulator: Simulator
) -> None:
    """drop_connections disconnects an ib_async client; a reset sends 1100 then 1102."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", simulator.socket_port, clientId=3, timeout=5)
    codes: list[int] = []
    ib.errorEvent += lambda _req, code, _msg, _contract: codes.append(code)
    await control("POST", "/faults", json={"reset_s": 0.3})
    await wait_until_async(lambda: 1102 in codes, what="1102 after the reset", timeout_s=10)
    assert codes.index(1100) < codes.index(1102)
    disconnected = asyncio.ensure_future(_next(ib.disconnectedEvent))
    await asyncio.sleep(0)  # subscribe before the cause; a yield, not a timed wait
    await control("POST", "/faults", json={"drop_connections": True})
    await asyncio.wait_for(disconnected, 5)
    assert not ib.isConnected()


async def _next(event: Any) -> Any:
    return await event


def test_bad_flag_or_scenario_is_one_line_and_exit_2(tmp_path: Any) -> None:
    """A bad setting or scenario stops the program at once with one line."""
    missing = tmp_path / "nope.toml"
    for args in (["--socket-port", "x"], ["--scenario", str(missing)]):
        result = subprocess.run(
            [sys.executable, "-m", "simulator", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("ibkr-sim: ")


async def test_the_program_serves_and_exits_zero_on_sigterm(processes: Processes) -> None:
    """`python -m simulator` on ephemeral ports serves a client, then stops cleanly."""
    process = processes.start(
        "simulator", {}, "--socket-port", "0", "--portal-port", "0", "--control-port", "0"
    )
    assert process.stdout is not None
    line = await asyncio.to_thread(_serving_line, process)
    assert "simulator serving" in line
    process.send_signal(signal.SIGTERM)
    await wait_until_async(lambda: process.poll() is not None, what="exit")
    assert process.returncode == 0


def _serving_line(process: subprocess.Popen[bytes]) -> str:
    assert process.stdout is not None
    for raw in process.stdout:
        if b"simulator serving" in raw:
            return raw.decode()
    return ""


async def test_advance_moves_a_frozen_market_on(control: Any, simulator: Simulator) -> None:
    """POST /advance: the frozen time moves on by the seconds asked, prices with it; a thawed
    market, time going back and a body without seconds are refused, and change nothing."""
    before = simulator.market.now()
    spy_before = simulator.market.quote(756733).mark
    status, body = await control("POST", "/advance", json={"seconds": 30})
    assert (status, body) == (200, {"at": before + 30})
    assert simulator.market.now() == before + 30
    assert simulator.market.quote(756733).mark != spy_before
    for bad, reason in (
        ({"seconds": -1}, "time only moves forward"),
        ({"seconds": "5"}, 'expected {"seconds": a number}'),
        ({"seconds": True}, 'expected {"seconds": a number}'),
    ):
        assert await control("POST", "/advance", json=bad) == (400, {"error": reason})
    await control("POST", "/thaw")
    status, body = await control("POST", "/advance", json={"seconds": 5})
    assert (status, body) == (400, {"error": "only a frozen market's time can be advanced"})
