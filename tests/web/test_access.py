"""Who gets in: `python -m web` as supervisord runs it, bound beyond loopback, a sentinel token."""

from __future__ import annotations

import signal
import subprocess
import sys

import aiohttp
import pytest

from testkit.waiting import wait_until
from tests.fixtures.processes import Processes
from tests.fixtures.supervisor import free_port
from tests.fixtures.web import answers

SENTINEL = "SENTINEL-token-8c41f0a2d9"


def test_a_non_loopback_bind_without_a_token_refuses_to_start() -> None:
    """Bound to 0.0.0.0 with no BRIDGE_WEB_TOKEN, `python -m web` refuses to start, with one line
    saying why."""
    result = subprocess.run(
        [sys.executable, "-m", "web"],
        env={"PATH": "/usr/bin:/bin", "BRIDGE_WEB_HOST": "0.0.0.0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "bridge-web: BRIDGE_WEB_TOKEN: required when BRIDGE_WEB_HOST (0.0.0.0) is not a"
        " loopback address"
    ]


@pytest.mark.slow
async def test_every_path_but_healthz_needs_the_token_and_it_is_never_logged(
    web_environ: dict[str, str], processes: Processes
) -> None:
    """On a non-loopback bind every path but /healthz refuses a caller without the token or with a
    wrong one and serves one with it; the token appears in no log line, even at DEBUG."""
    port = free_port()
    environ = {
        **web_environ,
        "BRIDGE_WEB_HOST": "0.0.0.0",
        "BRIDGE_WEB_PORT": str(port),
        "BRIDGE_WEB_TOKEN": SENTINEL,
        "BRIDGE_LOG_LEVEL": "DEBUG",
    }
    web = processes.start("web", environ)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{base}/healthz") or web.poll() is not None, what="the web port")
    bearer = {"Authorization": f"Bearer {SENTINEL}"}
    wrong = {"Authorization": "Bearer not-the-token-at-all"}
    # unsafe=True: aiohttp's jar otherwise refuses cookies from an IP address; browsers keep them.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        codes = {}
        for name, path, headers in [
            ("healthz", "/healthz", {}),
            ("page", "/", {}),
            ("metrics", "/metrics", {}),
            ("overview wrong token", "/api/overview", wrong),
            ("scenarios", "/api/scenarios?account=DU1", {}),
            ("explain positions", "/api/explain/positions?account=DU1&ts=2026-12-07T15:00Z", {}),
            ("scenarios wrong token", "/api/scenarios?account=DU1", wrong),
            ("plotly", "/static/plotly.min.js", {}),
            ("overview", "/api/overview", bearer),
            ("scenarios with token", "/api/scenarios?account=DU1", bearer),
            ("scenarios with token, bad account", "/api/scenarios?account=DU%201", bearer),
            ("metrics with token", "/metrics", bearer),
        ]:
            async with session.get(base + path, headers=headers) as response:
                codes[name] = response.status
        async with session.post(
            f"{base}/login", data={"token": SENTINEL}, allow_redirects=False
        ) as response:
            codes["login"] = response.status
        async with session.get(f"{base}/") as response:  # the session cookie, no header
            codes["page after login"] = response.status
    assert codes == {
        "healthz": 503,  # nothing runs here: unhealthy, but answered without a token
        "page": 401,
        "metrics": 401,
        "overview wrong token": 401,
        "scenarios": 401,
        "explain positions": 401,
        "scenarios wrong token": 401,
        "plotly": 401,
        "overview": 200,
        "scenarios with token": 200,
        "scenarios with token, bad account": 400,
        "metrics with token": 200,
        "login": 303,
        "page after login": 200,
    }
    web.send_signal(signal.SIGTERM)
    output, _ = web.communicate(timeout=30)
    assert web.returncode == 0
    assert b"serving" in output
    assert SENTINEL.encode() not in output
