"""The dead-letter file: lines that could not be stored, each kept whole with its reason.

One JSON object per line: `at` (UTC), `source` (file and offset), `reason`, and `line`, the
original bytes as text (bytes that are not UTF-8 survive as `\\udcXX` escapes, so nothing is
lost). A dead letter never blocks the lines behind it; an operator can fix and re-spool it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from shared.durable import append_durably, locked
from shared.errors import DeadLettersUnavailable


@dataclass(frozen=True)
class DeadLetter:
    line: bytes
    source: str
    reason: str


class DeadLetters:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def add(self, letters: Sequence[DeadLetter], *, now: datetime) -> None:
        if not letters:
            return
        at = now.isoformat(timespec="milliseconds")
        entries = [
            json.dumps(
                {
                    "at": at,
                    "source": letter.source,
                    "reason": letter.reason,
                    "line": letter.line.rstrip(b"\n").decode("utf-8", "surrogateescape"),
                }
            ).encode()
            + b"\n"
            for letter in letters
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.lock_path):
            append_durably(self.path, b"".join(entries))

    def quarantine(self, letters: Sequence[DeadLetter], *, now: datetime) -> None:
        """`add`, for the writer and the replayer: raises DeadLettersUnavailable when the file
        cannot take them, so the caller keeps its place before these lines and retries."""
        try:
            self.add(letters, now=now)
        except OSError as exc:
            raise DeadLettersUnavailable(f"cannot append to {self.path}: {exc}") from exc

    def count(self) -> int:
        try:
            with self.path.open("rb") as file:
                return sum(1 for _ in file)
        except FileNotFoundError:
            return 0
