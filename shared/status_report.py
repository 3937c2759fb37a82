"""The files' side of `bridge-status` (the command is `database/status.py`), shared with the web
program's `/healthz`: each process's heartbeat file, the spool, the buffer and the dead-letter
file, read directly so it answers when every process is down; the report's text and its JSON.
The alerts firing come from the alerter's heartbeat.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.buffer import Buffer
from shared.deadletter import DeadLetters
from shared.errors import CheckpointCorrupt
from shared.health import PROCESSES, Facts, Finding, worst
from shared.heartbeat_files import Heartbeat, read_all
from shared.settings import BufferLimits, PipelinePaths
from shared.spool import SpoolPosition, backlog, load_checkpoint


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


@dataclass(frozen=True)
class FileCounts:
    """The costly part of the files: the spool's backlog (up to 64 MiB read) and the lines of
    the dead-letter file (all read). The web program keeps them a second between requests."""

    spool_lag_records: int
    first_pending_ts: datetime | None
    dead_letters: int


def count_files(paths: PipelinePaths) -> FileCounts:
    try:
        position = load_checkpoint(paths.spool_dir) if paths.spool_dir.exists() else None
    except CheckpointCorrupt:
        position = SpoolPosition(0, 0)  # what the writer does too
    pending = backlog(paths.spool_dir, position) if position is not None else None
    return FileCounts(
        spool_lag_records=pending.records if pending else 0,
        first_pending_ts=_record_ts(pending.first_line) if pending else None,
        dead_letters=DeadLetters(paths.dead_letter_path).count(),
    )


# Also asked by the web program over its own read-only session.
def gather_files(
    paths: PipelinePaths, limits: BufferLimits, now: datetime, counts: FileCounts | None = None
) -> Facts:
    """Everything but the database: heartbeats, spool, buffer, dead letters (only read);
    `counts` when the caller has them already (`count_files`)."""
    if counts is None:
        counts = count_files(paths)
    first_pending_ts = counts.first_pending_ts
    heartbeats = read_all(paths.run_dir, PROCESSES)
    # The running writer's buffer and cap, which an operator's shell may not have in its
    # environment (the local profile's var/buffer.jsonl, say); this environment's otherwise.
    writer = beat.details if (beat := heartbeats.get("writer")) is not None else {}
    buffer = Buffer(Path(writer.get("buffer_path") or paths.buffer_path))
    limits = BufferLimits(
        max_bytes=writer.get("buffer_max_bytes") or limits.max_bytes,
        warn_bytes=writer.get("buffer_warn_bytes") or limits.warn_bytes,
    )
    return Facts(
        heartbeats=heartbeats,
        spool_lag_records=counts.spool_lag_records,
        spool_lag_s=(now - first_pending_ts).total_seconds() if first_pending_ts else None,
        buffer_bytes=buffer.stats().pending_bytes,
        oldest_buffered_ts=_oldest_buffered(buffer),
        dead_letters=counts.dead_letters,
        buffer_max_bytes=limits.max_bytes,
        buffer_warn_bytes=limits.warn_bytes,
    )


def summary(facts: Facts, findings: list[Finding]) -> dict[str, Any]:
    """The `--json` body, also served by the web program's `/healthz`."""
    body = {item.name: getattr(facts, item.name) for item in fields(facts)}
    # Each heartbeat as its file holds it.
    body["heartbeats"] = {
        name: beat.to_json() if beat is not None else None
        for name, beat in facts.heartbeats.items()
    }
    return {
        "status": worst(findings),
        "findings": [asdict(finding) for finding in findings],
        "facts": body,
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
        age = f"{(now - beat.at).total_seconds():5.1f} s" if beat.at is not None else "unknown"
        extra = _process_line(name, beat)
        lines.append(f"  {name:<10} {beat.state:<12} heartbeat {age} ago{extra}")
    collector = facts.heartbeats.get("collector")
    for account, stamp in sorted(collector.accounts.items() if collector is not None else []):
        seen = f"{(now - stamp).total_seconds():.1f} s ago" if stamp else "never"
        lines.append(f"  account {account:<12} last snapshot {seen}")
    lag = f"{facts.spool_lag_s:.1f} s" if facts.spool_lag_s is not None else "none"
    replayer = facts.heartbeats.get("replayer")
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
        + _history_line(replayer.details.get("history") if replayer is not None else None),
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


def _process_line(name: str, beat: Heartbeat) -> str:
    if name == "collector":
        error = (beat.gateway.last_error if beat.gateway else None) or {}
        last = f", last IB error {error.get('code')}: {error.get('message')}" if error else ""
        state = "connected" if beat.gateway and beat.gateway.connected else "disconnected"
        return f", {beat.details.get('mode', '?')} gateway {state}{last}"
    if name == "alerter":
        return f", {len(beat.firing or ())} alerts firing"
    return f", breaker {beat.breaker or '?'}"
