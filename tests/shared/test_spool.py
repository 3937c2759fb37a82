"""The spool's two ends on a real directory: whole lines only, torn tails, rotation, one owner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shared.errors import SpoolError
from shared.spool import SpoolAppender, SpoolBatch, SpoolPosition, list_segments, read_spool


def _open(directory: Path, now_us: int = 1, segment_max_bytes: int = 1 << 20) -> SpoolAppender:
    appender = SpoolAppender(directory, segment_max_bytes=segment_max_bytes)
    appender.open(now_us=now_us)
    return appender


_START = SpoolPosition(0, 0)


def _read(directory: Path, start: SpoolPosition = _START, max_lines: int = 100) -> SpoolBatch:
    return read_spool(directory, start, max_lines=max_lines, max_bytes=1 << 16)


def test_a_second_collector_cannot_append(tmp_path: Path) -> None:
    """Two collectors on one spool would interleave segments: the second is refused."""
    first = _open(tmp_path)
    with pytest.raises(SpoolError, match="another collector"):
        _open(tmp_path)
    first.close()
    _open(tmp_path, now_us=2).close()


def test_segment_numbers_only_grow_even_when_the_clock_is_behind(tmp_path: Path) -> None:
    """A restart with a clock that went backwards still starts a newer segment."""
    _open(tmp_path, now_us=5_000).close()
    _open(tmp_path, now_us=10).close()
    assert [segment.seq for segment in list_segments(tmp_path)] == [5_000, 5_001]


def test_only_complete_lines_of_the_active_segment_are_read(tmp_path: Path) -> None:
    """A line being written (no newline yet) is left for later, not reported as torn."""
    appender = _open(tmp_path)
    appender.append([b'{"a":1}\n', b'{"a":2}\n'], now_us=1)
    assert appender.segment is not None
    with appender.segment.path.open("ab") as file:
        file.write(b'{"a":')
    batch = _read(tmp_path)
    assert [line.data for line in batch.lines] == [b'{"a":1}\n', b'{"a":2}\n']
    assert batch.torn == []
    assert batch.end == SpoolPosition(appender.segment.seq, 16)
    with appender.segment.path.open("ab") as file:
        file.write(b"3}\n")
    assert [line.data for line in _read(tmp_path, batch.end).lines] == [b'{"a":3}\n']
    appender.close()


def test_torn_tail_of_a_sealed_segment_is_reported_once(tmp_path: Path) -> None:
    """Once a newer segment exists, the fragment is torn: reported, skipped, never re-read."""
    appender = _open(tmp_path, now_us=1)
    appender.append([b"one\n"], now_us=1)
    assert appender.segment is not None
    with appender.segment.path.open("ab") as file:
        file.write(b"tw")
    appender.close()
    restarted = _open(tmp_path, now_us=2)
    restarted.append([b"three\n"], now_us=2)
    batch = _read(tmp_path)
    assert [line.data for line in batch.lines] == [b"one\n", b"three\n"]
    assert [(torn.data, torn.source.split(":")[1]) for torn in batch.torn] == [(b"tw", "4")]
    assert [segment.seq for segment in batch.finished] == [1]
    assert _read(tmp_path, batch.end).torn == []
    restarted.close()


@pytest.mark.parametrize(("max_lines", "expected_reads"), [(1, 5), (2, 3), (5, 1), (50, 1)])
def test_line_budget_splits_reading_without_losing_lines(
    tmp_path: Path, max_lines: int, expected_reads: int
) -> None:
    """Reading in small batches across segments yields every line exactly once."""
    appender = _open(tmp_path, segment_max_bytes=10)
    for number in range(5):
        appender.append([f"line{number}\n".encode()], now_us=1)
    seen, reads, position = [], 0, _START
    while batch := _read(tmp_path, position, max_lines):
        if not batch.lines:
            break
        seen += [line.data for line in batch.lines]
        position, reads = batch.end, reads + 1
    assert seen == [f"line{number}\n".encode() for number in range(5)]
    assert reads == expected_reads
    appender.close()


def test_truncated_segment_is_reported_and_read_from_the_start(tmp_path: Path) -> None:
    """A segment shorter than the checkpoint was replaced: say so and re-read it."""
    appender = _open(tmp_path)
    appender.append([b"a\n"], now_us=1)
    assert appender.segment is not None
    batch = _read(tmp_path, SpoolPosition(appender.segment.seq, 100))
    assert batch.truncated
    assert [line.data for line in batch.lines] == [b"a\n"]
    appender.close()


def test_a_failed_append_is_cut_back_so_nothing_is_glued(tmp_path: Path) -> None:
    """With the file size limit hit mid-write (as on a full disk), the partial bytes are
    removed, the error is raised, and the next append starts on a clean line boundary."""
    script = textwrap.dedent(
        f"""
        import resource, signal
        from pathlib import Path
        from shared.spool import SpoolAppender
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        appender = SpoolAppender(Path({str(tmp_path)!r}), segment_max_bytes=1 << 20)
        appender.open(now_us=1)
        appender.append([b"x" * 99 + b"\\n"], now_us=1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (150, resource.RLIM_INFINITY))
        try:
            appender.append([b"y" * 99 + b"\\n"], now_us=1)
        except OSError as exc:
            print("refused", exc.errno)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        appender.append([b"z\\n"], now_us=1)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.startswith("refused")
    (segment,) = list_segments(tmp_path)
    assert segment.path.read_bytes() == b"x" * 99 + b"\n" + b"z\n"
    assert os.stat(segment.path).st_mode & 0o777 == 0o600


def test_byte_budget_spans_segments_and_always_takes_a_line(tmp_path: Path) -> None:
    """Lines of 10 B, 35 B asked: whole lines up to 35 B, across a sealed segment (2 lines,
    20 B) into the next (1 more line: 30 B; a fourth would make 40 B); with 1 B asked, still
    one whole line."""
    first = _open(tmp_path, now_us=1)
    first.append([b"123456789\n"] * 2, now_us=1)
    first.close()
    second = _open(tmp_path, now_us=2)
    second.append([b"abcdefghi\n"] * 3, now_us=2)
    batch = read_spool(tmp_path, _START, max_lines=100, max_bytes=35)
    assert [line.data for line in batch.lines] == [b"123456789\n"] * 2 + [b"abcdefghi\n"]
    assert second.segment is not None
    assert batch.end == SpoolPosition(second.segment.seq, 10)
    one = read_spool(tmp_path, batch.end, max_lines=100, max_bytes=1)
    assert [line.data for line in one.lines] == [b"abcdefghi\n"]
    second.close()
