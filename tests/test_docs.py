"""The documentation names every setting the code reads, so operators never guess; every test
says what it proves."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("collector", "writer", "replayer", "alerter", "shared", "database", "web")
_VARIABLE = re.compile(r"\"((?:BRIDGE|IB)_[A-Z0-9_]+|DATABASE_URL)\"")


def _variables_read_by_code() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            found.update(_VARIABLE.findall(source.read_text()))
    return found


def test_the_code_reads_settings_at_all() -> None:
    """The scan finds the settings (a broken pattern would make the next test vacuous)."""
    assert {"DATABASE_URL", "BRIDGE_REPLAY_INTERVAL_S"} <= _variables_read_by_code()


def test_every_simulator_setting_is_documented() -> None:
    """Each IBKR_SIM_* variable the simulator reads appears in docs/simulator.md."""
    text = (ROOT / "docs" / "simulator.md").read_text()
    found: set[str] = set()
    for source in (ROOT / "simulator").rglob("*.py"):
        found.update(re.findall(r"\"(IBKR_SIM_[A-Z0-9_]+)\"", source.read_text()))
    assert "IBKR_SIM_SOCKET_PORT" in found
    assert sorted(name for name in found if name not in text) == []


@pytest.mark.parametrize(
    "documents",
    [("README.md", "docs/collector.md", "docs/alerts.md"), (".env.example",)],
    ids=["settings tables", ".env.example"],
)
def test_every_setting_is_documented(documents: tuple[str, ...]) -> None:
    """Each variable any process reads appears in a settings table (the README's, the
    collector's and the alerter's pages) and in .env.example."""
    text = "".join((ROOT / document).read_text() for document in documents)
    missing = sorted(name for name in _variables_read_by_code() if name not in text)
    assert missing == []


def test_docs_web_md_points_at_the_prometheus_rules_and_their_unit_tests() -> None:
    """The operator finds the alert rules (and how to test them) from the page on /metrics,
    and the files it names exist (tests/e2e/test_prometheus.py runs promtool on them)."""
    text = (ROOT / "docs" / "web.md").read_text()
    for name in ("ibkr-bridge.rules.yml", "ibkr-bridge.rules.test.yml"):
        assert f"(prometheus/{name})" in text, name
        assert (ROOT / "docs" / "prometheus" / name).is_file(), name


def _tests() -> dict[str, bool]:
    """Every test function under tests/, by file, line and name: has it a docstring?"""
    found = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                found[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = (
                    ast.get_docstring(node) is not None
                )
    return found


def test_every_test_has_a_docstring() -> None:
    """Each test function under tests/ says in its docstring what it proves."""
    tests = _tests()
    assert len(tests) > 100  # the scan finds the tests: a broken one would make this vacuous
    assert [test for test, documented in tests.items() if not documented] == []
