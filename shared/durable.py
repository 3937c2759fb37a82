"""Durable file operations: atomic replace, fsynced append, and advisory lock files.

Used for checkpoints (a temp file of its own + fsync + rename + fsync of the directory, so a
crash leaves the old or the new file, never half of one, and two writers never share a temp
file) and for the buffer and dead-letter files (append under a lock on a separate, never-renamed
lock file, then fsync before anyone is told it is stored; a failed append is cut back to where
it started, so a retry never glues a record onto a fragment). `single_instance` keeps a second
copy of a process off the files the first one owns.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shared.errors import AlreadyRunning


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable (man 2 fsync: entries need their own)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte: os.write may write fewer bytes than asked (man 2 write)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_replace(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers and crashes see the old or the new content.

    The temp file's name is unique (mkstemp, 0600), so two processes replacing the same file
    never write into one temp file; a failed write removes it and raises the OSError.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def append_durably(path: Path, data: bytes) -> None:
    """Append `data` to `path` (created 0600 if missing) and fsync it before returning.

    On failure (ENOSPC, EFBIG, EIO) the file is cut back to its size before the append and the
    OSError is raised, so the caller's retry starts on a clean line boundary. A new file's
    directory entry is fsynced too, so the file survives a power cut with its content.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        before = os.fstat(fd).st_size
        if before == 0:
            fsync_directory(path.parent)
        try:
            write_all(fd, data)
            os.fsync(fd)
        except OSError:
            # A torn append left behind would be glued to the retried batch; a truncate that
            # fails too leaves the fragment, which the reader reports as an unparseable line.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, before)
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(lock_path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive flock on `lock_path` (a file that is never renamed or removed).

    Yields True when the lock is held; with `blocking=False` yields False if another process
    holds it. flock locks belong to the open file description and die with the process, so a
    crashed holder never leaves a stale lock behind.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def single_instance(lock_path: Path, what: str) -> Iterator[None]:
    """Hold `lock_path` for as long as this process runs `what`; a second copy is refused.

    Raises AlreadyRunning (one line naming the lock) when another process holds it.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with locked(lock_path, blocking=False) as held:
        if not held:
            raise AlreadyRunning(f"another {what} is running (it holds {lock_path})")
        yield
