"""The exception tree of the web program.

WebError (BridgeError)
├── NoAnswer   the database could not answer and nothing was known before: the caller says so
└── NoSchema   the database answers but the bridge's tables are not there yet (the writer
               creates them)
"""

from __future__ import annotations

from shared.errors import BridgeError


class WebError(BridgeError):
    """Base class of the web program's errors."""


class NoAnswer(WebError):
    """The database is unreachable (or refused the query) and no earlier answer is kept."""


class NoSchema(WebError):
    """`portfolio_greeks` does not exist yet."""
