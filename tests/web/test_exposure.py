"""What the web program tells whom (issue 18, "Web"): each case failed on the code before it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from shared import status
from tests.fixtures.web import prepare_schema, serving

TOKEN = "SENTINEL-token-8c41f0a2d9"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except json.JSONDecodeError:
            return response.status, text


def _stale_account_and_a_firing_alert(run_dir: Path) -> None:
    """A collector whose account DU7 has been silent for an hour, an alerter with one alert."""
    now = datetime.now(UTC)
    status.publish(
        run_dir,
        "collector",
        {
            "state": "running",
            "poll_interval_s": 5,
            "gateway": {"connected": True, "in_reset_window": False},
            "accounts": {"DU7": {"last_snapshot_ts": (now - timedelta(hours=1)).isoformat()}},
        },
        now=now,
        interval_s=5,
    )
    firing = {"rule": "theta", "account": "DU7", "figure": "net_theta", "value": -2500.0}
    status.publish(run_dir, "alerter", {"state": "running", "firing": [firing]}, now=now,
                   interval_s=5)  # fmt: skip


async def test_healthz_without_the_token_says_only_healthy_or_not_and_the_failing_checks(
    web_environ: dict[str, str], database_url: str
) -> None:
    """With a token configured, /healthz answers anyone with its status code, the overall
    status and the names of the failing checks: no account, alert, figure, path or error text.
    With the token it gives bridge-status's whole body."""
    await prepare_schema(database_url)
    environ = {**web_environ, "BRIDGE_WEB_TOKEN": TOKEN}
    _stale_account_and_a_firing_alert(Path(web_environ["BRIDGE_VAR_DIR"]) / "run")
    async with serving(environ) as (_server, base):
        code, public = await _get(f"{base}/healthz")
        full_code, full = await _get(f"{base}/healthz", BEARER)
    assert code == full_code == 503
    assert public == {
        "status": "unhealthy",
        "failing": ["accounts", "replayer", "writer"],
    }
    assert "DU7" not in json.dumps(public)
    assert "account DU7" in [finding["subject"] for finding in full["findings"]]
    assert full["facts"]["heartbeats"]["collector"]["accounts"]


async def test_a_host_that_does_not_name_this_server_is_refused(
    web_environ: dict[str, str], database_url: str
) -> None:
    """DNS rebinding: a hostile page whose name now points at 127.0.0.1 sends its own name in
    Host. Loopback names, IP literals (with or without the port) and the configured names are
    served; any other name gets 421, on every path."""
    await prepare_schema(database_url)
    environ = {**web_environ, "BRIDGE_WEB_ALLOWED_HOSTS": "bridge-host.example"}
    async with serving(environ) as (server, base):
        port = server.port
        codes = {
            host: (await _get(f"{base}/api/overview", {"Host": host}))[0]
            for host in [
                f"127.0.0.1:{port}",
                "127.0.0.1",
                f"localhost:{port}",
                "LOCALHOST",
                f"[::1]:{port}",
                f"bridge-host.example:{port}",
                f"evil.example:{port}",
                "evil.example",
                "localhost.evil.example",
                "127.0.0.1.nip.io",
                "[::1",
            ]
        }
        healthz_code, healthz = await _get(f"{base}/healthz", {"Host": "evil.example"})
    assert codes == {
        f"127.0.0.1:{port}": 200,
        "127.0.0.1": 200,
        f"localhost:{port}": 200,
        "LOCALHOST": 200,
        f"[::1]:{port}": 200,
        f"bridge-host.example:{port}": 200,
        f"evil.example:{port}": 421,
        "evil.example": 421,
        "localhost.evil.example": 421,
        "127.0.0.1.nip.io": 421,
        "[::1": 421,
    }
    assert healthz_code == 421
    assert "Host" in healthz
