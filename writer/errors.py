"""The exception tree of the writer.

WriterError (BridgeError)
└── BufferUnavailable   records could neither be stored nor buffered (disk full, I/O error):
                        the checkpoint does not move, the spool keeps them, we retry
"""

from __future__ import annotations

from shared.errors import BridgeError


class WriterError(BridgeError):
    """Base class of the writer's errors."""


class BufferUnavailable(WriterError):
    """PostgreSQL is down and the buffer file cannot be appended to either."""
