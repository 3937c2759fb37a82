"""Heartbeat files: each process publishes its state and counters to `<run_dir>/<process>.json`.

`Heartbeat` is what a file holds, typed: every program writes and reads it here and nowhere
else. `bridge-status` reads them without needing any process (or the database) to answer. Files
are replaced atomically (temp + rename) but not fsynced: a heartbeat lost in a power cut is
replaced by the next one a second later. A full disk must not silence a process, since that is
exactly when an operator looks: the body is padded to whole 4 KiB pages, so when no temp file
can be created the heartbeat is rewritten in place over the blocks it already owns.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.troubles import Troubles

_PAGE_BYTES = 4096
# The keys `Heartbeat` reads into its own fields; every other key is the process's `details`.
_TYPED_KEYS = frozenset(
    {"process", "pid", "heartbeat", "interval_s", "state", "breaker", "last_db_error",
     "troubles", "gateway", "accounts", "firing"}
)  # fmt: skip


@dataclass(frozen=True)
class Gateway:
    """The collector's view of the IBKR gateway."""

    connected: bool
    in_reset_window: bool = False
    last_error: Mapping[str, Any] | None = None  # the last IB error: code and message


@dataclass(frozen=True)
class Heartbeat:
    """One process's state as it published it at `at`, to be published again `interval_s` later.

    `breaker` and `last_db_error` are the writer's and replayer's database breaker; `gateway`
    and `accounts` (each account's newest snapshot) the collector's; `firing` the alerter's
    alerts firing (None: not the alerter); `details` holds what only the process itself and
    the pages that show it read (the writer's totals, the replayer's history), as published."""

    process: str
    at: datetime | None  # None when the file's stamp cannot be read
    interval_s: float
    state: str
    pid: int = field(default_factory=os.getpid)
    breaker: str | None = None
    last_db_error: str | None = None
    troubles: Mapping[str, str] = field(default_factory=dict)
    gateway: Gateway | None = None
    accounts: Mapping[str, datetime | None] = field(default_factory=dict)
    firing: tuple[Mapping[str, Any], ...] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The file's body: the typed fields under their published names, then `details`."""
        body: dict[str, Any] = {
            **self.details,
            "process": self.process,
            "pid": self.pid,
            "heartbeat": self.at.isoformat() if self.at is not None else None,
            "interval_s": self.interval_s,
            "state": self.state,
        }
        if self.breaker is not None:
            body["breaker"] = self.breaker
            body["last_db_error"] = self.last_db_error
        elif self.last_db_error is not None:
            body["last_db_error"] = self.last_db_error
        if self.troubles:
            body["troubles"] = dict(self.troubles)
        if self.gateway is not None:
            body["gateway"] = {
                "connected": self.gateway.connected,
                "in_reset_window": self.gateway.in_reset_window,
                "last_error": self.gateway.last_error,
            }
            body["accounts"] = {
                account: {"last_snapshot_ts": stamp.isoformat() if stamp else None}
                for account, stamp in self.accounts.items()
            }
        if self.firing is not None:
            body["firing"] = [dict(alert) for alert in self.firing]
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Heartbeat:
        """A file's body read back; a value of the wrong type reads as absent."""
        gateway = body.get("gateway")
        accounts = body.get("accounts")
        troubles = body.get("troubles")
        firing = body.get("firing")
        return cls(
            process=str(body.get("process", "")),
            at=_stamp(body.get("heartbeat")),
            interval_s=_number(body.get("interval_s"), 1.0),
            state=str(body.get("state", "?")),
            pid=int(body["pid"]) if isinstance(body.get("pid"), int) else 0,
            breaker=str(body["breaker"]) if body.get("breaker") is not None else None,
            last_db_error=str(body["last_db_error"]) if body.get("last_db_error") else None,
            troubles=(
                {str(k): str(v) for k, v in troubles.items()} if isinstance(troubles, dict) else {}
            ),
            gateway=(
                Gateway(
                    connected=bool(gateway.get("connected", False)),
                    in_reset_window=bool(gateway.get("in_reset_window")),
                    last_error=gateway.get("last_error") or None,
                )
                if isinstance(gateway, dict)
                else None
            ),
            accounts=(
                {
                    str(account): _stamp((info or {}).get("last_snapshot_ts"))
                    for account, info in accounts.items()
                }
                if isinstance(accounts, dict)
                else {}
            ),
            firing=(
                tuple(alert for alert in firing if isinstance(alert, dict))
                if isinstance(firing, list)
                else None
            ),
            details={key: value for key, value in body.items() if key not in _TYPED_KEYS},
        )


def _stamp(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _number(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) and value else default


def publish(run_dir: Path, beat: Heartbeat) -> None:
    """Replace the heartbeat of `beat.process`.

    Raises OSError when it can be neither replaced nor rewritten in place.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    process = beat.process
    data = json.dumps(beat.to_json(), default=str, sort_keys=True).encode()
    data += b" " * (-len(data) % _PAGE_BYTES)  # JSON allows trailing white space
    path = run_dir / f"{process}.json"
    temporary = run_dir / f".{process}.json.{os.getpid()}.tmp"
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _rewrite_in_place(path, data, exc)


def publish_reporting(troubles: Troubles, run_dir: Path, beat: Heartbeat) -> None:
    """`publish`, a failure reported through `troubles`: once when it starts, once when it ends,
    not at every heartbeat of a full disk."""
    try:
        publish(run_dir, beat)
    except OSError as exc:
        troubles.report("heartbeat", "cannot write the heartbeat", exc.strerror or exc)
    else:
        troubles.clear("heartbeat")


def _rewrite_in_place(path: Path, data: bytes, refused: OSError) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        size = os.fstat(fd).st_size
        if size < len(data):
            raise refused
        data += b" " * (size - len(data))
        if os.pwrite(fd, data, 0) != len(data):
            raise refused
    finally:
        os.close(fd)


def read_all(run_dir: Path, processes: Iterable[str]) -> dict[str, Heartbeat | None]:
    """Each process's heartbeat, None for one that has none."""
    return {process: read(run_dir, process) for process in processes}


def read(run_dir: Path, process: str) -> Heartbeat | None:
    """The process's heartbeat; None when it has none (or none that reads as one)."""
    # A heartbeat rewritten in place may be read half-written: read it again.
    for _attempt in range(3):
        try:
            body = json.loads((run_dir / f"{process}.json").read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        return Heartbeat.from_json(body) if isinstance(body, dict) else None
    return None
