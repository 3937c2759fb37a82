"""A real Prometheus (Debian's 2.42) against the bridge: the rules file.

The rules of docs/prometheus/ibkr-bridge.rules.yml must pass `promtool check rules`, and its
unit tests (ibkr-bridge.rules.test.yml, a firing and a quiet case per rule) `promtool test
rules`. Skipped without the package, failed under CI (tests/fixtures/prometheus.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs/prometheus/ibkr-bridge.rules.yml"
RULE_TESTS = ROOT / "docs/prometheus/ibkr-bridge.rules.test.yml"


def _alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def _promtool(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # From the docs folder: the unit-test file names the rules file relative to itself.
    return subprocess.run(
        [str(promtool), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=RULES.parent,
    )


def test_promtool_accepts_every_rule_of_the_rules_file(promtool: Path) -> None:
    result = _promtool(promtool, "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    # As many rules as the file has alerts: promtool read them all, none was skipped.
    assert f"SUCCESS: {len(_alert_names())} rules found" in result.stdout, result.stdout


def test_each_rule_fires_and_stays_quiet_as_its_promtool_unit_tests_expect(
    promtool: Path,
) -> None:
    """Every alert of the rules file has a case where it fires and one where it must not, and
    `promtool test rules` passes them all."""
    cases = yaml.safe_load(RULE_TESTS.read_text())
    assert cases["rule_files"] == [RULES.name]
    fires: set[str] = set()
    quiet: set[str] = set()
    for group in cases["tests"]:
        for case in group["alert_rule_test"]:
            (fires if case["exp_alerts"] else quiet).add(case["alertname"])
    names = set(_alert_names())
    assert len(names) >= 5  # healthy, snapshot age, breaker, gap, scrape
    assert fires == names
    assert quiet == names
    result = _promtool(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout
