"""`bridge-status`: the bridge's health on one screen, for operators and health checks.

Reads each process's heartbeat file, the spool, the buffer and the dead-letter file directly
(`shared/bridge_status.py`), so it answers when every process is down; asks PostgreSQL (with a
short timeout) how many rows it stored in the last hour, and says so when it cannot. Exit 0 when
healthy (warnings allowed), 1 when unhealthy, with the reasons; `--json` prints the same for
machines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime

import psycopg

from database.settings import DatabaseSettings
from shared.bridge_status import gather_files, render, summary, unhealthy
from shared.errors import BridgeError, SettingsError
from shared.health import Facts, assess
from shared.logs import redact
from shared.settings import BufferLimits, PipelinePaths, with_dotenv

# Snapshots of the last hour, by tick: the partitions of older days are pruned and the primary
# key (account, ts) answers by skip scan, however long the history. (Counting by `stored_at`,
# which has no index, read every partition: bench/web.py measures both.)
ROWS_LAST_HOUR_SQL = "SELECT count(*) FROM portfolio_greeks WHERE ts > now() - interval '1 hour'"


def _rows_last_hour(database: DatabaseSettings) -> tuple[int | None, str | None]:
    try:
        url = database.resolve_url()
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute(ROWS_LAST_HOUR_SQL).fetchone()
    except (psycopg.Error, OSError, BridgeError) as exc:
        return None, redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    return (int(row[0]) if row else 0), None


def gather(
    paths: PipelinePaths, database: DatabaseSettings, limits: BufferLimits, now: datetime
) -> Facts:
    rows, error = _rows_last_hour(database)
    return replace(gather_files(paths, limits, now), rows_last_hour=rows, database_error=error)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bridge-status", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    environ = with_dotenv(os.environ)
    try:
        paths = PipelinePaths.from_environ(environ)
        database = DatabaseSettings.from_environ(environ, var_dir=paths.var_dir)
        limits = BufferLimits.from_environ(environ)
    except SettingsError as exc:
        sys.exit(f"bridge-status: {exc}")
    now = datetime.now(UTC)
    facts = gather(paths, database, limits, now)
    findings = assess(facts, now)
    if args.json:
        print(json.dumps(summary(facts, findings), default=str, indent=2))
    else:
        print(render(facts, findings, now))
    sys.exit(1 if unhealthy(findings) else 0)


if __name__ == "__main__":
    main()
