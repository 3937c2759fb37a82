"""`bridge-alerter` refuses a bad rules file at start: one line naming the rule and the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_bad_rule_stops_the_alerter_with_one_line(tmp_path: Path) -> None:
    """A rules file naming a figure that does not exist stops `python -m alerter` with exit 1 and
    one line naming the rule and the figure."""
    rules = tmp_path / "alerts.toml"
    rules.write_text(
        '[[limit]]\nfigure = "net_delta"\nabove = 500\n\n'
        '[[limit]]\nname = "theta floor"\nfigure = "net_thta"\nbelow = -2000\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "alerter"],
        env={"PATH": "/usr/bin:/bin", "BRIDGE_ALERTS_FILE": str(rules)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"bridge-alerter: BRIDGE_ALERTS_FILE: {rules}: [[limit]] #2 (theta floor): figure"
        " 'net_thta' is not a number stored in portfolio_greeks (known: net_delta, "
    )
