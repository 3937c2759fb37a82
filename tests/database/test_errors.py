"""The translation table: which foreign exception opens the breaker and which quarantines."""

from __future__ import annotations

import psycopg
import psycopg.errors
import pytest

from database.errors import (
    BatchTooLarge,
    DatabaseUnavailable,
    RecordRejected,
    SchemaError,
    TransientConflict,
    translate,
)


@pytest.mark.parametrize(
    ("foreign", "expected"),
    [
        (psycopg.OperationalError("connection refused"), DatabaseUnavailable),
        (psycopg.errors.AdminShutdown("terminating connection"), DatabaseUnavailable),
        (psycopg.errors.DiskFull("no space"), DatabaseUnavailable),
        (psycopg.errors.TooManyConnections("too many clients"), DatabaseUnavailable),
        (
            psycopg.errors.CannotConnectNow("the database system is starting up"),
            DatabaseUnavailable,
        ),
        (psycopg.errors.IoError("could not read block"), DatabaseUnavailable),
        (psycopg.errors.InvalidPassword("password authentication failed"), DatabaseUnavailable),
        (psycopg.InterfaceError("the connection is closed"), DatabaseUnavailable),
        (ConnectionResetError("reset by peer"), DatabaseUnavailable),
        (TimeoutError("timed out"), DatabaseUnavailable),
        (psycopg.errors.SerializationFailure("could not serialize"), TransientConflict),
        (psycopg.errors.DeadlockDetected("deadlock"), TransientConflict),
        (psycopg.errors.InvalidTextRepresentation("bad uuid"), RecordRejected),
        (psycopg.errors.UntranslatableCharacter("\\u0000"), RecordRejected),
        (psycopg.errors.NotNullViolation("null in account"), RecordRejected),
        (psycopg.errors.CheckViolation("mode"), RecordRejected),
        (psycopg.errors.ProgramLimitExceeded("index row size 3016 exceeds"), RecordRejected),
        (psycopg.errors.StatementTooComplex("stack depth limit exceeded"), RecordRejected),
        (psycopg.errors.QueryCanceled("canceling statement due to timeout"), BatchTooLarge),
        (psycopg.errors.OutOfMemory("out of memory"), BatchTooLarge),
        (psycopg.errors.UndefinedTable("no portfolio_greeks"), SchemaError),
        (psycopg.errors.SyntaxError("near SELEC"), SchemaError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_translation(foreign: BaseException, expected: type[Exception]) -> None:
    """Outages open the breaker, races retry, bad data is quarantined, a batch too large is
    split, bad SQL fails loudly."""
    translated = translate(foreign)
    assert type(translated) is expected
    assert str(foreign) in str(translated)


def test_unknown_exceptions_are_not_guessed() -> None:
    """An exception the table does not know is a bug in the caller, not an outage."""
    with pytest.raises(TypeError, match="ValueError"):
        translate(ValueError("not a database error"))
