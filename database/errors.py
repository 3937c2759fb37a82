"""The exception tree of the `database` package, and the one table that translates psycopg's.

    DatabaseError (BridgeError)
    ├── DatabaseUnavailable   the server cannot be reached or is failing: opens the breaker,
    │                         the batch goes to the buffer
    ├── TransientConflict     serialization failure or deadlock: retry the same batch
    ├── RecordRejected        the server refused a record's data: quarantine that record only
    └── SchemaError           the server refused the statement itself: a bug or a missing
                              migration, so fail loudly instead of buffering forever

`translate()` is the only place that looks at psycopg's exception classes.
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


class DatabaseUnavailable(DatabaseError):
    """PostgreSQL cannot be reached or is not serving (connection, shutdown, disk full, auth)."""


class TransientConflict(DatabaseError):
    """The transaction lost a race (serialization failure, deadlock); the batch can be retried."""


class RecordRejected(DatabaseError):
    """The server refused the data of a record (bad value, constraint violation)."""


class SchemaError(DatabaseError):
    """The server refused the statement itself (undefined table or column, bad SQL)."""


# First match wins, so the narrower classes come first. Class 40 (transaction rollback) is an
# OperationalError in psycopg (its classes are siblings, not subclasses of TransactionRollback)
# but it is a race, not an outage.
TRANSLATION: tuple[tuple[type[BaseException], type[DatabaseError]], ...] = (
    (psycopg.errors.TransactionRollback, TransientConflict),
    (psycopg.errors.SerializationFailure, TransientConflict),
    (psycopg.errors.DeadlockDetected, TransientConflict),
    (psycopg.DataError, RecordRejected),
    (psycopg.IntegrityError, RecordRejected),
    (psycopg.OperationalError, DatabaseUnavailable),
    (psycopg.InterfaceError, DatabaseUnavailable),
    (OSError, DatabaseUnavailable),
    (TimeoutError, DatabaseUnavailable),
    (psycopg.ProgrammingError, SchemaError),
    (psycopg.Error, SchemaError),
)


def translate(exc: BaseException) -> DatabaseError:
    """The bridge's error for a foreign exception (psycopg's or the OS's)."""
    for foreign, ours in TRANSLATION:
        if isinstance(exc, foreign):
            sqlstate = getattr(exc, "sqlstate", None)
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return ours(message, sqlstate=sqlstate)
    raise TypeError(f"no translation for {type(exc).__name__}") from exc
