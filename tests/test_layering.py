"""Dependencies point one way: the processes use `database/` and `shared/`; `database/` uses
`shared/`; `shared/` uses neither a process nor `database/`; no process imports another, and the
collector and the simulator (which never touch PostgreSQL) import no `database/`. The bridge
imports none of `tests/`, `bench/` and `testkit/`; the benchmarks import no test (what both
need is in `testkit/`, which imports neither). PostgreSQL is reached through `database/` only
(the one seam: its `Session`, its named reads): no other part of the bridge imports psycopg but
`psycopg.sql`, which composes a query and connects nothing. Read from the sources' imports."""

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


# Outside database/, the one part of psycopg allowed: composing a query (web/reader.py's charts).
OUTSIDE_THE_SEAM = {"psycopg.sql"}


def _imported_modules(path: Path) -> set[str]:
    """Each absolute import by its full name; `from a import b` as `a.b` (b may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _imported_packages(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported_modules(path)}


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_a_lower_layer_imports_no_higher_one(package: str) -> None:
    """No module of a package imports a package it may not (the table MAY_NOT_IMPORT)."""
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & MAY_NOT_IMPORT[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {name: found for name, found in wrong.items() if found} == {}


def test_only_database_reaches_postgresql() -> None:
    """No module of the bridge outside `database/` imports psycopg, but to compose a query."""
    wrong = {
        str(path.relative_to(ROOT)): sorted(psycopg - OUTSIDE_THE_SEAM)
        for package in sorted(PROCESSES | {"shared"})
        for path in sorted((ROOT / package).rglob("*.py"))
        if (psycopg := {m for m in _imported_modules(path) if m.split(".")[0] == "psycopg"})
    }
    assert {name: found for name, found in wrong.items() if found} == {}


def test_the_check_sees_imports(tmp_path: Path) -> None:
    """The import reader sees `import` and `from` imports by their top package and their full
    names, and ignores relative ones."""
    module = tmp_path / "m.py"
    module.write_text(
        "import writer.writer\nfrom database.store import X\nfrom . import y\n"
        "from psycopg import sql, AsyncConnection\n"
    )
    assert _imported_packages(module) == {"writer", "database", "psycopg"}
    assert {"psycopg.sql", "psycopg.AsyncConnection"} <= _imported_modules(module)
