"""Dependencies point one way: the processes use `database/` and `shared/`; `database/` uses
`shared/`; `shared/` uses neither a process nor `database/`; no process imports another, and the
collector and the simulator (which never touch PostgreSQL) import no `database/`. The bridge
imports none of `tests/`, `bench/` and `testkit/`; the benchmarks import no test (what both
need is in `testkit/`, which imports neither). Read from the sources' imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = {"collector", "writer", "replayer", "alerter", "web", "simulator"}
TOOLS = {"tests", "bench", "testkit"}  # never part of the bridge itself
MAY_NOT_IMPORT = {
    "shared": PROCESSES | {"database"} | TOOLS,
    "database": PROCESSES | TOOLS,
    **{process: PROCESSES - {process} | TOOLS for process in PROCESSES},
    "collector": PROCESSES - {"collector"} | {"database"} | TOOLS,
    "simulator": PROCESSES - {"simulator"} | {"database"} | TOOLS,
    "bench": {"tests"},
    "testkit": {"tests", "bench"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_a_lower_layer_imports_no_higher_one(package: str) -> None:
    """No module of a package imports a package it may not (the table MAY_NOT_IMPORT)."""
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & MAY_NOT_IMPORT[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {name: found for name, found in wrong.items() if found} == {}


def test_the_check_sees_imports(tmp_path: Path) -> None:
    """The import reader sees `import` and `from` imports by their top package and ignores relative
    ones."""
    module = tmp_path / "m.py"
    module.write_text("import writer.writer\nfrom database.store import X\nfrom . import y\n")
    assert _imported_packages(module) == {"writer", "database"}
