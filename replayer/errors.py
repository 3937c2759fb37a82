"""The exception tree of the replayer.

ReplayerError (BridgeError)
├── BufferCorrupt           the claimed buffer file cannot be read as lines (I/O error)
└── DeadLettersUnavailable  lines PostgreSQL refused cannot be dead-lettered (disk full): the
                            offset stays before them, the next period retries
"""

from __future__ import annotations

from shared.errors import BridgeError


class ReplayerError(BridgeError):
    """Base class of the replayer's errors."""


class BufferCorrupt(ReplayerError):
    """The claimed buffer file cannot be read."""


class DeadLettersUnavailable(ReplayerError):
    """Lines the server refused cannot be written to the dead-letter file."""
