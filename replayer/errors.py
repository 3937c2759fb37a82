"""The exception tree of the replayer.

ReplayerError (BridgeError)
└── BufferCorrupt           the claimed buffer file cannot be read as lines (I/O error)

Lines PostgreSQL refused that cannot be dead-lettered (disk full) raise shared's
DeadLettersUnavailable (the writer meets it too): the offset stays before them, the next
period retries.
"""

from __future__ import annotations

from shared.errors import BridgeError


class ReplayerError(BridgeError):
    """Base class of the replayer's errors."""


class BufferCorrupt(ReplayerError):
    """The claimed buffer file cannot be read."""
