"""Durable files under a full disk and concurrent writers: nothing torn, nothing glued."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shared.durable import atomic_replace, single_instance
from shared.errors import AlreadyRunning


def _run(script: str) -> str:
    """Run `script` in a child process (where a file size limit can be set) and return stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


_LIMITED = """
    import resource, signal
    from datetime import UTC, datetime
    from pathlib import Path
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    def limit(size):
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
    def unlimited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    NOW = datetime(2026, 1, 2, tzinfo=UTC)
"""


def test_a_failed_buffer_append_is_cut_back_so_the_retry_is_not_glued(tmp_path: Path) -> None:
    """The file size limit is hit mid-batch (as a full disk would): the partial batch is
    removed, the error raised, and the retried batch starts on a clean line boundary."""
    path = tmp_path / "buffer.jsonl"
    output = _run(
        _LIMITED
        + f"""
    from shared.buffer import Buffer
    buffer = Buffer(Path({str(path)!r}))
    buffer.append([b"a" * 99 + b"\\n"])
    limit(150)
    try:
        buffer.append([b"b" * 99 + b"\\n", b"c" * 9 + b"\\n"])
    except OSError as exc:
        print("refused", exc.errno)
    unlimited()
    buffer.append([b"b" * 99 + b"\\n", b"c" * 9 + b"\\n"])
    """
    )
    assert output.startswith("refused")
    assert path.read_bytes() == b"a" * 99 + b"\n" + b"b" * 99 + b"\n" + b"c" * 9 + b"\n"


def test_a_failed_dead_letter_append_is_cut_back(tmp_path: Path) -> None:
    """Same for the dead-letter file: every line of it stays one whole JSON object."""
    path = tmp_path / "deadletter.jsonl"
    output = _run(
        _LIMITED
        + f"""
    from shared.deadletter import DeadLetter, DeadLetters
    letters = DeadLetters(Path({str(path)!r}))
    letters.add([DeadLetter(b"first", "test", "bad")], now=NOW)
    limit(path_size := Path({str(path)!r}).stat().st_size + 40)
    try:
        letters.add([DeadLetter(b"x" * 200, "test", "bad")], now=NOW)
    except OSError as exc:
        print("refused", exc.errno)
    unlimited()
    letters.add([DeadLetter(b"x" * 200, "test", "bad")], now=NOW)
    """
    )
    assert output.startswith("refused")
    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["line"] for line in lines] == ["first", "x" * 200]


def test_concurrent_atomic_replaces_never_mix_their_temp_files(tmp_path: Path) -> None:
    """Two processes replacing one checkpoint (a second writer run by hand) each use a temp
    file of their own: the file is always one writer's whole content, never a splice."""
    path = tmp_path / "writer.checkpoint"
    atomic_replace(path, json.dumps({"seq": 0, "offset": 0, "pad": "x" * 300}).encode())
    script = f"""
        import json, sys
        from pathlib import Path
        from shared.durable import atomic_replace
        me = int(sys.argv[1])
        for n in range(1500):
            body = {{"seq": me, "offset": n, "pad": "x" * (n % 7 if me else 300)}}
            atomic_replace(Path({str(path)!r}), json.dumps(body).encode())
        """
    writers = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), str(me)]) for me in (0, 1)
    ]
    seen = 0
    try:
        while any(writer.poll() is None for writer in writers):
            body = json.loads(path.read_bytes())  # a splice would not parse, or mix the seqs
            assert len(body["pad"]) == (300 if body["seq"] == 0 else body["offset"] % 7)
            seen += 1
    finally:
        codes = [writer.wait(timeout=60) for writer in writers]
    assert codes == [0, 0]
    assert seen > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["writer.checkpoint"]


def test_single_instance_refuses_a_second_holder(tmp_path: Path) -> None:
    """The second copy of a process gets one line naming the lock; the first keeps it."""
    lock = tmp_path / "writer.lock"
    with (
        single_instance(lock, "writer"),
        pytest.raises(AlreadyRunning, match=r"another writer is running \(it holds .*"),
        single_instance(lock, "writer"),
    ):
        pass
    with single_instance(lock, "writer"):
        pass
