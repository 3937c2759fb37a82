"""`bridge-status`: the bridge's health on one screen, for operators and health checks.

Reads each process's heartbeat file, the spool, the buffer and the dead-letter file directly
(`shared/status_report.py`), so it answers when every process is down; asks PostgreSQL (through
one short `Session`: the same reply bound and translation of errors as every other client) how
many rows it stored in the last hour, and says so when it cannot. Exit 0 when healthy
(warnings allowed), 1 when unhealthy, with the reasons; `--json` prints the same for machines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime

from database.errors import DatabaseError
from database.reads import rows_last_hour
from database.session import ask_once
from database.settings import DatabaseSettings
from shared.errors import SettingsError
from shared.health import Facts, assess
from shared.logs import redact
from shared.settings import BufferLimits, PipelinePaths, with_dotenv
from shared.status_report import gather_files, render, summary, unhealthy

# A health check must answer soon, whatever the processes' own timeouts: the connection gets
# this long, and the count (a skip scan of today's partition: milliseconds) this long again.
_CONNECT_S = 2.0
_COUNT_S = 5.0


def _rows_last_hour(database: DatabaseSettings) -> tuple[int | None, str | None]:
    quick = replace(database, connect_timeout_s=_CONNECT_S, statement_timeout_s=_COUNT_S)
    try:
        rows = ask_once(
            lambda: quick.connect("bridge-status", read_only=True),
            rows_last_hour,
            reply_timeout_s=quick.reply_timeout_s,
        )
    except DatabaseError as exc:
        return None, redact(str(exc) or type(exc).__name__)
    return rows, None


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
