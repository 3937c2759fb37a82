"""The exception tree of the writer.

WriterError (BridgeError)
├── BufferUnavailable   records could neither be stored nor buffered (disk full, I/O error):
│   │                   the checkpoint does not move, the spool keeps them, we retry
    └── BufferFull      ... because the buffer reached BRIDGE_BUFFER_MAX_BYTES

A bad line that cannot be dead-lettered raises shared's DeadLettersUnavailable (the replayer
meets it too): the checkpoint does not move, the spool keeps it, we retry.
"""

from __future__ import annotations

from shared.errors import BridgeError


class WriterError(BridgeError):
    """Base class of the writer's errors."""


class BufferUnavailable(WriterError):
    """PostgreSQL is down and the buffer file cannot be appended to either."""


class BufferFull(BufferUnavailable):
    """PostgreSQL is down and the buffer has reached its configured cap."""
