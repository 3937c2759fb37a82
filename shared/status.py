"""Heartbeat files: each process publishes its state and counters to `<run_dir>/<process>.json`.

`bridge-status` reads them without needing any process (or the database) to answer. Files are
replaced atomically (temp + rename) but not fsynced: a heartbeat lost in a power cut is
replaced by the next one a second later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any


def publish(
    run_dir: Path, process: str, state: Mapping[str, Any], *, now: datetime, interval_s: float
) -> None:
    """Replace the heartbeat; `interval_s` says how often it is refreshed, for staleness checks."""
    run_dir.mkdir(parents=True, exist_ok=True)
    body = {
        "process": process,
        "pid": os.getpid(),
        "heartbeat": now.isoformat(),
        "interval_s": interval_s,
        **state,
    }
    path = run_dir / f"{process}.json"
    temporary = run_dir / f".{process}.json.tmp"
    temporary.write_text(json.dumps(body, default=str, sort_keys=True))
    os.replace(temporary, path)


def read(run_dir: Path, process: str) -> dict[str, Any] | None:
    try:
        body = json.loads((run_dir / f"{process}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return body if isinstance(body, dict) else None
