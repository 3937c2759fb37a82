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


_EVIDENCE = re.compile(
    r"\d{4}-\d{2}-\d{2}|(?:January|February|March|April|May|June|July|August|"
    r"September|October|November|December) \d{4}|no dated source found"
)


def _portal_endpoints_called() -> set[str]:
    """Every path `collector/portal_source.py` writes (a string or an f-string starting with
    "/"), each interpolation written `{}`."""
    tree = ast.parse((ROOT / "collector" / "portal_source.py").read_text())
    inside_f_strings = {
        id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
        for part in node.values
    }  # fmt: skip
    paths: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                str(part.value) if isinstance(part, ast.Constant) else "{}" for part in node.values
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in inside_f_strings:
                continue
            text = node.value
        else:
            continue
        if re.fullmatch(r"(/[a-z0-9_{}-]+)+", text):
            paths.add(text)
    return paths


def _documented_endpoints() -> dict[str, str]:
    """docs/protocol.md's endpoint table: each endpoint (its `{name}`s written `{}`) -> the
    cell of its earliest dated public evidence."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("### Endpoints the bridge depends on", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        found = re.fullmatch(r"`(?:GET|POST) (/\S+)`", cells[0]) if len(cells) == 5 else None
        if found:
            rows[re.sub(r"\{[^}]*\}", "{}", found.group(1))] = cells[3]
    return rows


def test_the_scan_finds_the_portal_endpoints() -> None:
    """The scan sees plain and f-string paths (a broken pattern would make the next test
    vacuous)."""
    assert {"/tickle", "/portfolio/{}/positions/{}", "/iserver/contract/{}/info"} <= (
        _portal_endpoints_called()
    )


def test_every_portal_endpoint_is_listed_with_its_earliest_evidence() -> None:
    """Each Client Portal endpoint the collector calls is a row of docs/protocol.md's table of
    the endpoints the bridge depends on, whose evidence cell gives a date (or says that no
    dated source was found): an endpoint added to the code without its research fails here."""
    documented = _documented_endpoints()
    assert sorted(_portal_endpoints_called() - set(documented)) == []
    undated = {path: cell for path, cell in documented.items() if not _EVIDENCE.search(cell)}
    assert undated == {}
