"""The exception tree of the `database` package, and the one table that translates psycopg's.

    DatabaseError (BridgeError)
    ├── DatabaseUnavailable   the server cannot be reached or is failing: opens the breaker,
    │                         the batch goes to the buffer
    ├── TransientConflict     serialization failure or deadlock: retry the same batch
    ├── RecordRejected        the record's fault (bad value, constraint, a program limit such as
    │                         an index row too big): bisect to it and quarantine it alone
    ├── BatchTooLarge         the batch's fault (statement timeout, out of memory): split it;
    │                         a single record that still fails is that record's fault
    └── SchemaError           the server refused the statement itself: a bug or a missing
                              migration, so fail loudly instead of buffering forever

The server's errors are classed by what they mean, not by psycopg's class: psycopg makes every
class-53/54/57 error an OperationalError, but only connection-level failures say the server is
unavailable. `translate()` is the only place that looks at psycopg's exceptions.
"""

from __future__ import annotations

import psycopg
import psycopg.errors

from shared.errors import BridgeError


class DatabaseError(BridgeError):
    """Base class of the database package's errors; `sqlstate` is set when the server sent one."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate

    @property
    def reason(self) -> str:
        """The error as the logs and heartbeats say it: its SQLSTATE first, when there is one."""
        return f"{self.sqlstate}: {self}" if self.sqlstate else str(self)


class DatabaseUnavailable(DatabaseError):
    """PostgreSQL cannot be reached or is not serving (connection, shutdown, disk full, auth)."""


class TransientConflict(DatabaseError):
    """The transaction lost a race (serialization failure, deadlock); the batch can be retried."""


class RecordRejected(DatabaseError):
    """The server refused the data of a record (bad value, constraint violation)."""


class BatchTooLarge(DatabaseError):
    """The server gave up on the batch for its size (statement timeout, out of memory)."""


class SchemaError(DatabaseError):
    """The server refused the statement itself (undefined table or column, bad SQL)."""


# What a SQLSTATE means, by its full code, else its two-character class; checked before the
# exception classes below. psycopg makes the codes of one class siblings, not subclasses, so
# "every program limit" can only be said here.
BY_SQLSTATE: dict[str, type[DatabaseError]] = {
    "40": TransientConflict,  # transaction rollback: serialization failure, deadlock
    "22": RecordRejected,  # data exception: a bad value
    "23": RecordRejected,  # integrity constraint violation
    "54": RecordRejected,  # program limit exceeded: e.g. a 3 KB account makes an index row too big
    "57014": BatchTooLarge,  # query canceled: the statement timeout, on a batch too large for it
    "53200": BatchTooLarge,  # out of memory: the batch is too large for the server's memory now
}

# For errors without a SQLSTATE in BY_SQLSTATE; first match wins. Every other server error that
# psycopg calls operational (class 08 connection, 53100 disk full, 53300 too many connections,
# 57P01 shutdown, 58 I/O error...) and every client-side connection failure is an outage.
TRANSLATION: tuple[tuple[type[BaseException], type[DatabaseError]], ...] = (
    (psycopg.OperationalError, DatabaseUnavailable),
    (psycopg.InterfaceError, DatabaseUnavailable),
    (OSError, DatabaseUnavailable),
    (TimeoutError, DatabaseUnavailable),
    (psycopg.ProgrammingError, SchemaError),
    (psycopg.Error, SchemaError),
)


def translate(exc: BaseException) -> DatabaseError:
    """The bridge's error for a foreign exception (psycopg's or the OS's)."""
    sqlstate = getattr(exc, "sqlstate", None)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.Error) and sqlstate:
        meaning = BY_SQLSTATE.get(sqlstate) or BY_SQLSTATE.get(sqlstate[:2])
        if meaning is not None:
            return meaning(message, sqlstate=sqlstate)
    for foreign, ours in TRANSLATION:
        if isinstance(exc, foreign):
            return ours(message, sqlstate=sqlstate)
    raise TypeError(f"no translation for {type(exc).__name__}") from exc
