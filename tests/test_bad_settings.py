"""Every process refuses a bad setting the same way: one line naming the variable, exit non-zero."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "variable", "value", "message"),
    [
        ("writer", "BRIDGE_WRITER_POLL_S", "fast", "'fast' is not a number of seconds"),
        ("writer", "BRIDGE_WRITER_BATCH_MAX", "0", "0 is outside 1..100000"),
        ("writer", "DATABASE_URL", "mysql://root:hunter2@db/x", "'mysql://root:***@db/x' is not"),
        ("replayer", "BRIDGE_REPLAY_INTERVAL_S", "-5", "-5 is outside"),
        ("replayer", "BRIDGE_REPLAY_CHUNK_MAX_BYTES", "100", "100 is outside"),
        ("replayer", "BRIDGE_BREAKER_FAIL_MAX", "many", "'many' is not a whole number"),
        ("replayer", "BRIDGE_RETENTION_RAW_DAYS", "always", "'always' is not a whole number"),
        # 1-minute rollups kept 30 days while raw rows are kept 90 (the default)
        ("replayer", "BRIDGE_RETENTION_1M_DAYS", "30", "must keep at least as long as the finer"),
        ("collector", "IB_API_MODE", "FIX", "'FIX' is not one of SOCKET, PORTAL"),
        ("collector", "IB_CLIENT_ID", "0", "0 is the trader's own session"),
        ("collector", "IB_PORT", "http", "'http' is not a whole number"),
        ("collector", "IB_RESET_WINDOWS", "nightly", "'nightly' is not like"),
        ("collector", "IB_MARKET_DATA_TYPE", "realtime", "'realtime' is not one of"),
        ("collector", "IB_PORTAL_URL", "ftp://gw", "'ftp://gw' is not an http(s) URL"),
        ("collector", "BRIDGE_BETAS_FILE", "/nonexistent/betas.toml", "cannot read"),
        ("collector", "BRIDGE_BETA_BENCHMARK", "S&P", "'S&P' is not a symbol"),
        ("alerter", "BRIDGE_ALERT_URLS", "json://127.0.0.1:9/a bogus://u:hunter2@host/x",
         "target 2 (bogus) is not a URL Apprise can use"),
        ("alerter", "BRIDGE_ALERTS_FILE", "/nonexistent/alerts.toml", "/nonexistent/alerts.toml"),
        ("alerter", "BRIDGE_ALERT_RETRY_DELAYS_S", "soon", "expected seconds like"),
        ("web", "BRIDGE_WEB_PORT", "http", "'http' is not a whole number"),
        ("web", "BRIDGE_WEB_REFRESH_S", "0", "0 is outside 0.5..300 seconds"),
        ("web", "BRIDGE_WEB_HEALTH_TIMEOUT_S", "0", "0 is outside 0.5..60 seconds"),
    ],
)  # fmt: skip
def test_bad_setting_is_one_clear_line_and_a_non_zero_exit(
    module: str, variable: str, value: str, message: str
) -> None:
    """A wrong value stops the process at once; a password in it is never echoed."""
    result = subprocess.run(
        [sys.executable, "-m", module],
        env={"PATH": "/usr/bin:/bin", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"bridge-{module}: {variable}: {message}")
    assert "hunter2" not in result.stderr
