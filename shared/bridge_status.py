"""`bridge-status`: the bridge's health on one screen, for operators and health checks.

Reads each process's heartbeat file, the spool, the buffer and the dead-letter file directly, so
it answers when every process is down; asks PostgreSQL (with a short timeout) how many rows it
stored in the last hour, and says so when it cannot. The alerts firing come from the alerter's
heartbeat. Exit 0 when healthy (warnings allowed),
1 when unhealthy, with the reasons; `--json` prints the same for machines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

import psycopg

from database.settings import DatabaseSettings
from shared.buffer import Buffer
from shared.deadletter import DeadLetters
from shared.errors import BridgeError, CheckpointCorrupt, SettingsError
from shared.health import PROCESSES, Facts, Finding, assess, worst
from shared.logs import redact
from shared.settings import BufferLimits, PipelinePaths, with_dotenv
from shared.spool import SpoolPosition, backlog, load_checkpoint
from shared.status import read


def _record_ts(line: bytes | None) -> datetime | None:
    if not line:
        return None
    try:
        return datetime.fromisoformat(json.loads(line)["ts"])
    except (ValueError, KeyError, TypeError):
        return None


def _oldest_buffered(buffer: Buffer) -> datetime | None:
    if buffer.draining_path.exists():
        candidates = [(buffer.draining_path, buffer.drained_offset()), (buffer.path, 0)]
    else:
        candidates = [(buffer.path, 0)]
    for path, offset in candidates:
        try:
            with path.open("rb") as file:
                file.seek(offset)
                stamp = _record_ts(file.readline())
        except FileNotFoundError:
            continue
        if stamp is not None:
            return stamp
    return None


# Also asked by the web program over its own read-only session.
ROWS_LAST_HOUR_SQL = (
    "SELECT count(*) FROM portfolio_greeks WHERE stored_at > now() - interval '1 hour'"
)


def _rows_last_hour(database: DatabaseSettings) -> tuple[int | None, str | None]:
    try:
        url = database.resolve_url()
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute(ROWS_LAST_HOUR_SQL).fetchone()
    except (psycopg.Error, OSError, BridgeError) as exc:
        return None, redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    return (int(row[0]) if row else 0), None


def gather_files(paths: PipelinePaths, limits: BufferLimits, now: datetime) -> Facts:
    """Everything but the database: heartbeats, spool, buffer, dead letters (only read)."""
    try:
        position = load_checkpoint(paths.spool_dir) if paths.spool_dir.exists() else None
    except CheckpointCorrupt:
        position = SpoolPosition(0, 0)  # what the writer does too
    pending = backlog(paths.spool_dir, position) if position is not None else None
    first_pending_ts = _record_ts(pending.first_line) if pending else None
    buffer = Buffer(paths.buffer_path)
    return Facts(
        heartbeats={name: read(paths.run_dir, name) for name in PROCESSES},
        spool_lag_records=pending.records if pending else 0,
        spool_lag_s=(now - first_pending_ts).total_seconds() if first_pending_ts else None,
        buffer_bytes=buffer.stats().pending_bytes,
        oldest_buffered_ts=_oldest_buffered(buffer),
        dead_letters=DeadLetters(paths.dead_letter_path).count(),
        buffer_max_bytes=limits.max_bytes,
        buffer_warn_bytes=limits.warn_bytes,
    )


def gather(
    paths: PipelinePaths, database: DatabaseSettings, limits: BufferLimits, now: datetime
) -> Facts:
    rows, error = _rows_last_hour(database)
    return replace(gather_files(paths, limits, now), rows_last_hour=rows, database_error=error)


def summary(facts: Facts, findings: list[Finding]) -> dict[str, Any]:
    """The `--json` body, also served by the web program's `/healthz`."""
    return {
        "status": worst(findings),
        "findings": [asdict(finding) for finding in findings],
        "facts": asdict(facts),
    }


def unhealthy(findings: list[Finding]) -> bool:
    """What makes `bridge-status` exit 1 and `/healthz` answer 503."""
    return worst(findings) == "unhealthy"


def render(facts: Facts, findings: list[Finding], now: datetime) -> str:
    lines = [f"bridge status at {now:%Y-%m-%d %H:%M:%S} UTC: {worst(findings).upper()}", ""]
    for name in PROCESSES:
        beat = facts.heartbeats.get(name)
        if beat is None:
            lines.append(f"  {name:<10} no heartbeat")
            continue
        age = (now - datetime.fromisoformat(beat["heartbeat"])).total_seconds()
        extra = _process_line(name, beat)
        lines.append(f"  {name:<10} {beat.get('state', '?'):<12} heartbeat {age:5.1f} s ago{extra}")
    collector = facts.heartbeats.get("collector") or {}
    for account, info in sorted((collector.get("accounts") or {}).items()):
        stamp = (info or {}).get("last_snapshot_ts")
        seen = (
            f"{(now - datetime.fromisoformat(stamp)).total_seconds():.1f} s ago"
            if stamp
            else "never"
        )
        lines.append(f"  account {account:<12} last snapshot {seen}")
    lag = f"{facts.spool_lag_s:.1f} s" if facts.spool_lag_s is not None else "none"
    lines += [
        "",
        f"  spool lag      {facts.spool_lag_records} records, {lag}",
        f"  buffer         {facts.buffer_bytes} bytes"
        + (
            f" of {facts.buffer_max_bytes} (warning at {facts.buffer_warn_bytes})"
            if facts.buffer_max_bytes is not None
            else ""
        )
        + (f", oldest {facts.oldest_buffered_ts:%H:%M:%S}" if facts.oldest_buffered_ts else ""),
        f"  dead letters   {facts.dead_letters}",
        "  rows last hour "
        + (str(facts.rows_last_hour) if facts.rows_last_hour is not None else "unknown"),
        "  history        "
        + _history_line((facts.heartbeats.get("replayer") or {}).get("history")),
        "",
    ]
    lines += [f"  {f.level.upper():<9} {f.subject}: {f.message}" for f in findings] or ["  all ok"]
    return "\n".join(lines)


def _history_line(history: dict[str, Any] | None) -> str:
    """The replayer's last look at the database: size, oldest raw row, next partition to drop."""
    if not history:
        return "not measured yet (the replayer measures it every period)"
    oldest = history.get("oldest_raw_ts")
    drop = history.get("next_drop")
    return ", ".join(
        [
            f"database {history.get('database_bytes', 0) / 1e9:.2f} GB",
            f"oldest raw row {str(oldest)[:19] if oldest else 'none'}",
            f"next drop {drop} at {str(history.get('next_drop_at'))[:16]}"
            if drop
            else "nothing to drop (kept forever)",
            f"{history.get('pending_minutes', 0)} minutes to roll up",
        ]
    )


def _process_line(name: str, beat: dict[str, Any]) -> str:
    if name == "collector":
        gateway = beat.get("gateway") or {}
        error = gateway.get("last_error") or {}
        last = f", last IB error {error.get('code')}: {error.get('message')}" if error else ""
        state = "connected" if gateway.get("connected") else "disconnected"
        return f", {beat.get('mode', '?')} gateway {state}{last}"
    if name == "alerter":
        return f", {len(beat.get('firing') or [])} alerts firing"
    return f", breaker {beat.get('breaker', '?')}"


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
