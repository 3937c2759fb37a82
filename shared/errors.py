"""The exception tree of the `shared` package.

    BridgeError                 base of every error the bridge raises on purpose
    ├── SettingsError           a setting is missing or malformed (names the variable)
    ├── RecordError             a spool or buffer line is not a valid record (names the reason)
    ├── SpoolError              the spool or buffer files cannot be used as they are
    │   ├── AlreadyRunning      another copy of this process holds its single-instance lock
    │   ├── CheckpointCorrupt   a checkpoint or offset file cannot be read as one
    │   └── DeadLettersUnavailable  a line that cannot be stored cannot be dead-lettered
    │                           either (disk full, I/O error): the writer's checkpoint and the
    │                           replayer's offset stay before it, and it is retried

Each process package extends `BridgeError` in its own `errors.py`.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base class of every error the bridge raises on purpose."""


class SettingsError(BridgeError):
    """A setting is missing or malformed; the message is one line naming the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class RecordError(BridgeError):
    """A line is not a valid record; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SpoolError(BridgeError):
    """The spool, buffer or dead-letter files cannot be used (lock held, unreadable, full)."""


class AlreadyRunning(SpoolError):
    """Another copy of this process is running on the same files (it holds the lock)."""


class CheckpointCorrupt(SpoolError):
    """A checkpoint or offset file is torn or not what we write: start over, and say so."""


class DeadLettersUnavailable(SpoolError):
    """A line that cannot be stored cannot be written to the dead-letter file either."""
