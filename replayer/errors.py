"""The exception tree of the replayer.

ReplayerError (BridgeError)
└── BufferCorrupt   the claimed buffer file cannot be read as lines (I/O error)
"""

from __future__ import annotations

from shared.errors import BridgeError


class ReplayerError(BridgeError):
    """Base class of the replayer's errors."""


class BufferCorrupt(ReplayerError):
    """The claimed buffer file cannot be read."""
