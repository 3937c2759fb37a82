"""What every benchmark shares: a scratch PostgreSQL, the machine's description, percentiles."""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from testkit.postgres import PostgresServer


@contextmanager
def scratch_postgres() -> Iterator[PostgresServer]:
    """The project's embedded PostgreSQL in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bridge-bench-") as root:
        server = PostgresServer(Path(root))
        server.start()
        try:
            yield server
        finally:
            server.stop()


def fresh_database(server: PostgresServer, name: str) -> str:
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[round(fraction * 1000) - 1]
