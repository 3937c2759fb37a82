"""Heartbeat files: each process publishes its state and counters to `<run_dir>/<process>.json`.

`bridge-status` reads them without needing any process (or the database) to answer. Files are
replaced atomically (temp + rename) but not fsynced: a heartbeat lost in a power cut is
replaced by the next one a second later. A full disk must not silence a process, since that is
exactly when an operator looks: the body is padded to whole 4 KiB pages, so when no temp file
can be created the heartbeat is rewritten in place over the blocks it already owns.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.troubles import Troubles

_PAGE_BYTES = 4096


def publish(
    run_dir: Path, process: str, state: Mapping[str, Any], *, now: datetime, interval_s: float
) -> None:
    """Replace the heartbeat; `interval_s` says how often it is refreshed, for staleness checks.

    Raises OSError when it can be neither replaced nor rewritten in place.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    body = {
        "process": process,
        "pid": os.getpid(),
        "heartbeat": now.isoformat(),
        "interval_s": interval_s,
        **state,
    }
    data = json.dumps(body, default=str, sort_keys=True).encode()
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


def publish_reporting(
    troubles: Troubles,
    run_dir: Path,
    process: str,
    state: Mapping[str, Any],
    *,
    now: datetime,
    interval_s: float,
) -> None:
    """`publish`, a failure reported through `troubles`: once when it starts, once when it ends,
    not at every heartbeat of a full disk."""
    try:
        publish(run_dir, process, state, now=now, interval_s=interval_s)
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


def read(run_dir: Path, process: str) -> dict[str, Any] | None:
    # A heartbeat rewritten in place may be read half-written: read it again.
    for _attempt in range(3):
        try:
            body = json.loads((run_dir / f"{process}.json").read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        return body if isinstance(body, dict) else None
    return None
