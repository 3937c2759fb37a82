"""Durable file operations: atomic replace, fsynced append, and an advisory lock file.

Used for checkpoints (temp + fsync + rename + fsync of the directory, so a crash leaves the old
or the new file, never half of one) and for the buffer and dead-letter files (append under a
lock on a separate, never-renamed lock file, then fsync before anyone is told it is stored).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


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
    """Replace `path` with `data` so that readers and crashes see the old or the new content."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_directory(path.parent)


def append_durably(path: Path, data: bytes) -> None:
    """Append `data` to `path` (created 0600 if missing) and fsync it before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
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
