"""The buffer: where the writer puts validated records while PostgreSQL cannot take them.

Files, all beside `path` (default `~/.portfolio_bridge_buffer.jsonl`):

- `<path>`            the writer appends batches here (fsynced before its spool checkpoint moves);
- `<path>.lock`       a lock file that is never renamed: both processes hold it to touch `<path>`;
- `<path>.draining`   the replayer's claimed batch, renamed from `<path>` under the lock;
- `<path>.offset`     how far into `.draining` the replayer has stored (atomic checkpoint);
- `<path>.replayer.lock` held by the one replayer that runs (a second one is refused).

Renaming alone is not a safe hand-off (a writer that opened the old inode keeps appending to a
file the replayer has already read: rename moves a name, not open descriptors), so the writer
holds the lock from open to close and the replayer holds it around the rename. A replayer killed
mid-drain finds `.draining` and `.offset` on its next start and finishes them first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.durable import append_durably, atomic_replace, fsync_directory, locked
from shared.errors import CheckpointCorrupt


@dataclass(frozen=True)
class BufferStats:
    pending_bytes: int
    draining: bool


class Buffer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.draining_path = path.with_name(path.name + ".draining")
        self.offset_path = path.with_name(path.name + ".offset")
        self.replayer_lock_path = path.with_name(path.name + ".replayer.lock")

    def append(self, lines: Sequence[bytes]) -> None:
        """Append whole lines durably (fsynced before returning); a failed append leaves the
        file as it was and raises the OSError."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.lock_path):
            append_durably(self.path, b"".join(lines))

    def claim(self) -> Path | None:
        """The file the replayer should drain now: an unfinished `.draining`, else the buffer."""
        if self.draining_path.exists():
            return self.draining_path
        if not self.path.exists():
            return None
        with locked(self.lock_path):
            if not self.path.exists() or self.path.stat().st_size == 0:
                return None
            # A stale offset belongs to a finished drain whose cleanup was interrupted.
            self.offset_path.unlink(missing_ok=True)
            os.rename(self.path, self.draining_path)
            fsync_directory(self.path.parent)
        return self.draining_path

    def drained_offset(self) -> int:
        """How far `.draining` is stored; raises CheckpointCorrupt when the file is not one."""
        try:
            data = self.offset_path.read_bytes()
        except FileNotFoundError:
            return 0
        try:
            offset = json.loads(data)["offset"]
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise CheckpointCorrupt(f"{self.offset_path} is not an offset ({exc!r})") from None
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise CheckpointCorrupt(f"{self.offset_path} is not an offset: {data[:100]!r}")
        return offset

    def save_drained_offset(self, offset: int) -> None:
        atomic_replace(self.offset_path, json.dumps({"offset": offset}).encode())

    def finish_drain(self) -> None:
        """The claimed file is stored: remove it, then its offset (a crash between is harmless)."""
        self.draining_path.unlink(missing_ok=True)
        fsync_directory(self.draining_path.parent)
        self.offset_path.unlink(missing_ok=True)

    def stats(self) -> BufferStats:
        pending = 0
        for path in (self.path, self.draining_path):
            try:
                pending += path.stat().st_size
            except FileNotFoundError:
                pass
        return BufferStats(pending, self.draining_path.exists())


def read_lines(
    path: Path, offset: int, *, max_lines: int, max_bytes: int
) -> Iterator[tuple[list[bytes], int]]:
    """Yield (complete lines, offset after them) in chunks of at most `max_lines` lines and at
    most `max_bytes` bytes (a single longer line makes a chunk of its own).

    A final line without a newline (a writer killed mid-append before its fsync returned, so
    never acknowledged) is yielded too: the writer re-delivers it anyway, and the idempotent
    sink or the dead-letter file deals with it.
    """
    with path.open("rb") as file:
        file.seek(offset)
        chunk: list[bytes] = []
        size = 0
        for line in file:
            if chunk and size + len(line) > max_bytes:
                yield chunk, offset
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
            offset += len(line)
            if len(chunk) >= max_lines:
                yield chunk, offset
                chunk, size = [], 0
        if chunk:
            yield chunk, offset
