"""The spool: append-only JSONL segments, written by the collector and read by the writer.

Segments are named `segment-<seq>.jsonl` with a 20-digit sequence number that only grows. The
collector appends to the newest segment only and starts a new one when it starts and when the
current one is full, so a segment with a newer one beside it is *sealed*: nobody will write to
it again. The writer therefore:

- consumes only complete lines (up to the last newline) of the newest segment, because the
  collector may be in the middle of a write;
- treats the bytes after the last newline of a *sealed* segment as a torn write (a collector
  killed mid-append) and reports them instead of waiting forever;
- deletes a segment once it is sealed and fully consumed, so disk use stays bounded.

To know a segment is sealed *before* reading it, the reader lists the directory first: a
segment that already had a successor when listed was complete when read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared.durable import atomic_replace, fsync_directory, single_instance, write_all
from shared.errors import CheckpointCorrupt, SpoolError

_SEGMENT = re.compile(r"^segment-(\d{20})\.jsonl$")
LOCK_NAME = "collector.lock"
# A line longer than this cannot be a record; it is reported as torn rather than read forever.
MAX_LINE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, order=True)
class Segment:
    seq: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def segment_name(seq: int) -> str:
    return f"segment-{seq:020d}.jsonl"


def list_segments(directory: Path) -> list[Segment]:
    """Every segment in `directory`, oldest first."""
    segments = []
    for entry in os.scandir(directory):
        match = _SEGMENT.match(entry.name)
        if match is not None:
            segments.append(Segment(int(match.group(1)), Path(entry.path)))
    return sorted(segments)


class SpoolAppender:
    """A producer's side: appends whole lines to the newest segment, one process at a time.

    Each producer has its own spool directory and lock (`collector.lock`, `alerter.lock`), so
    segments of one directory are only ever written in order by one process.
    """

    def __init__(
        self, directory: Path, *, segment_max_bytes: int, lock_name: str = LOCK_NAME
    ) -> None:
        self.directory = directory
        self.segment_max_bytes = segment_max_bytes
        self.lock_name = lock_name
        self._held = contextlib.ExitStack()
        self._is_open = False
        self._fd: int | None = None
        self._size = 0
        self.segment: Segment | None = None

    def open(self, *, now_us: int) -> None:
        """Take the producer's lock and start a fresh segment (never after a crash's tail)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        producer = self.lock_name.removesuffix(".lock")
        self._held.enter_context(single_instance(self.directory / self.lock_name, producer))
        self._is_open = True
        self._start_segment(now_us=now_us)

    def _start_segment(self, *, now_us: int) -> None:
        existing = list_segments(self.directory)
        # Sequence numbers start from the clock so that a wiped spool directory never reuses a
        # number the writer has already checkpointed past.
        seq = max(existing[-1].seq + 1 if existing else 0, now_us)
        path = self.directory / segment_name(seq)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fsync_directory(self.directory)
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._size, self.segment = fd, 0, Segment(seq, path)

    def append(self, lines: Sequence[bytes], *, now_us: int) -> None:
        """Append complete lines and fsync them; on failure the segment is left as it was.

        A failed write (ENOSPC, EIO) is cut back to the last complete line so the next append
        never glues a record onto a fragment; the OSError is re-raised for the caller to report.
        """
        if not self._is_open:
            raise SpoolError("the spool is not open")
        data = b"".join(lines)
        if not data.endswith(b"\n"):
            raise SpoolError("spool lines must end with a newline")
        if self._fd is None or (self._size and self._size + len(data) > self.segment_max_bytes):
            self._start_segment(now_us=now_us)
        assert self._fd is not None
        try:
            write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError:
            self._cut_back()
            raise
        self._size += len(data)

    def _cut_back(self) -> None:
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            # Could not repair in place: seal this segment (the writer reports its torn tail);
            # the next append starts a new one.
            fd, self._fd = self._fd, None
            os.close(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._is_open = False
        self._held.close()


@dataclass(frozen=True, order=True)
class SpoolPosition:
    """Where the writer has consumed up to: a segment's sequence number and a byte offset in it."""

    seq: int
    offset: int


CHECKPOINT_NAME = "writer.checkpoint"


def load_checkpoint(directory: Path) -> SpoolPosition:
    """Where the writer has consumed up to (the start when it never checkpointed).

    Raises CheckpointCorrupt when the file is not a checkpoint (torn, or written by hand).
    """
    path = directory / CHECKPOINT_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return SpoolPosition(0, 0)
    try:
        body = json.loads(data)
        seq, offset = body["seq"], body["offset"]
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise CheckpointCorrupt(f"{path} is not a checkpoint ({exc!r}): {data[:100]!r}") from None
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (seq, offset)):
        raise CheckpointCorrupt(f"{path} is not a checkpoint: {data[:100]!r}")
    return SpoolPosition(seq, offset)


def save_checkpoint(directory: Path, position: SpoolPosition) -> None:
    body = {"seq": position.seq, "offset": position.offset}
    atomic_replace(directory / CHECKPOINT_NAME, json.dumps(body).encode())


@dataclass(frozen=True)
class SpoolLine:
    data: bytes
    source: str  # "segment-….jsonl:<offset>", for dead letters and error messages


@dataclass
class SpoolBatch:
    lines: list[SpoolLine] = field(default_factory=list)
    torn: list[SpoolLine] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    end: SpoolPosition = SpoolPosition(0, 0)
    finished: list[Segment] = field(default_factory=list)
    listed: list[Segment] = field(default_factory=list)  # every segment at or after `start`
    vanished: list[Segment] = field(default_factory=list)  # listed, then gone before read


def read_spool(
    directory: Path, start: SpoolPosition, *, max_lines: int, max_bytes: int
) -> SpoolBatch:
    """Read complete lines from `start` on, at most `max_lines` and `max_bytes` of lines
    (always at least one line when there is one, however long)."""
    batch = SpoolBatch(end=start)
    segments = list_segments(directory)
    batch.listed = [segment for segment in segments if segment.seq >= start.seq]
    position = start
    budget = max_bytes
    for index, segment in enumerate(segments):
        if segment.seq < position.seq:
            batch.finished.append(segment)  # consumed before a crash, not yet deleted
            continue
        if segment.seq > position.seq:
            position = SpoolPosition(segment.seq, 0)
        sealed = index + 1 < len(segments)
        complete = _read_segment(segment, position, sealed, batch, max_lines, max(1, budget))
        position = batch.end
        taken = sum(len(line.data) for line in batch.lines)
        budget = max_bytes - taken
        if not complete or len(batch.lines) >= max_lines or taken >= max_bytes:
            break
        batch.finished.append(segment)
    return batch


def _read_segment(  # noqa: PLR0917  # private helper, called from one place
    segment: Segment,
    position: SpoolPosition,
    sealed: bool,
    batch: SpoolBatch,
    max_lines: int,
    max_bytes: int,
) -> bool:
    """Add this segment's complete lines to `batch`; True when it is sealed and fully consumed."""
    offset = position.offset
    try:
        with segment.path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size < offset:
                batch.truncated.append(f"{segment.name}: {size} bytes, checkpoint at {offset}")
                offset = 0
            file.seek(offset)
            chunk = file.read(max_bytes)
            # A line longer than the read size: keep reading until its newline (or the cap).
            while (
                b"\n" not in chunk
                and len(chunk) < MAX_LINE_BYTES
                and (more := file.read(max(max_bytes, 65536)))
            ):
                chunk += more
    except FileNotFoundError:
        # Nobody but the writer deletes a segment it has not consumed: say so.
        batch.vanished.append(segment)
        batch.end = SpoolPosition(segment.seq, offset)
        return True
    if b"\n" not in chunk and len(chunk) >= MAX_LINE_BYTES:
        # Never written by a collector: report it and move past it rather than block.
        batch.torn.append(SpoolLine(chunk, f"{segment.name}:{offset} (over {MAX_LINE_BYTES} B)"))
        batch.end = SpoolPosition(segment.seq, offset + len(chunk))
        return False
    start = 0
    while (
        len(batch.lines) < max_lines
        and (newline := chunk.find(b"\n", start)) >= 0
        and (newline < max_bytes or not batch.lines)  # within the budget, or the first line
    ):
        batch.lines.append(
            SpoolLine(chunk[start : newline + 1], f"{segment.name}:{offset + start}")
        )
        start = newline + 1
    batch.end = SpoolPosition(segment.seq, offset + start)
    reached_eof = offset + len(chunk) >= size
    if not sealed or not reached_eof or chunk.find(b"\n", start) >= 0:
        return False
    if start < len(chunk):
        # Bytes after the last newline of a sealed segment: a collector died mid-append.
        batch.torn.append(SpoolLine(chunk[start:], f"{segment.name}:{offset + start}"))
        batch.end = SpoolPosition(segment.seq, size)
    return True


@dataclass(frozen=True)
class SpoolBacklog:
    """What the writer has not consumed yet: complete lines, bytes, and the first such line."""

    records: int
    size_bytes: int
    first_line: bytes | None
    counted_all: bool  # False when the backlog was too large to count every line


def backlog(
    directory: Path, position: SpoolPosition, *, max_scan_bytes: int = 64 << 20
) -> SpoolBacklog:
    records = total = scanned = 0
    first: bytes | None = None
    for segment in list_segments(directory):
        if segment.seq < position.seq:
            continue
        offset = position.offset if segment.seq == position.seq else 0
        try:
            with segment.path.open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                total += max(0, size - offset)
                if scanned >= max_scan_bytes:
                    continue
                file.seek(offset)
                data = file.read(max_scan_bytes - scanned)
        except FileNotFoundError:
            continue  # consumed and deleted while we looked
        scanned += len(data)
        records += data.count(b"\n")
        if first is None and b"\n" in data:
            first = data[: data.index(b"\n")]
    return SpoolBacklog(records, total, first, scanned >= total)
