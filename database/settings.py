"""Database settings shared by the writer, the replayer and the alerter, and how they connect.

`DATABASE_URL` names an external server. When it is unset (the local profile), the URL is read
at connect time from the file the embedded PostgreSQL program writes (`var/database_url`), so a
writer that starts before the database simply sees it as "not up yet" and buffers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

from database.errors import DatabaseUnavailable
from shared import logs
from shared.settings import EnvReader, Secret, mask_url


@dataclass(frozen=True)
class DatabaseSettings:
    url: Secret | None
    url_file: Path
    connect_timeout_s: float
    statement_timeout_s: float
    breaker_fail_max: int
    breaker_reset_s: float

    @property
    def reply_timeout_s(self) -> float:
        """The longest a live server takes to answer a statement: its own statement timeout
        answers with an error first; the connect timeout is the margin for the way back.
        Silent past it, the server is taken for gone (database/session.py `answered`)."""
        return self.statement_timeout_s + self.connect_timeout_s

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], *, var_dir: Path, reader: bool = False
    ) -> DatabaseSettings:
        """`reader`: for the programs that only read (the web program, the alerter), which
        connect as a role that can only read: `DATABASE_READER_URL` (else `DATABASE_URL`, with
        only the session read-only), or the embedded server's reader URL file."""
        env = EnvReader(environ)
        if reader:
            url = env.database_url("DATABASE_READER_URL") or env.database_url("DATABASE_URL")
            url_file = env.path("BRIDGE_DATABASE_READER_URL_FILE", var_dir / "database_reader_url")
        else:
            url = env.database_url("DATABASE_URL")
            url_file = env.path("BRIDGE_DATABASE_URL_FILE", var_dir / "database_url")
        return cls(
            url=url,
            url_file=url_file,
            connect_timeout_s=env.seconds(
                "BRIDGE_DB_CONNECT_TIMEOUT_S", 5.0, minimum=1, maximum=120
            ),
            statement_timeout_s=env.seconds(
                "BRIDGE_DB_STATEMENT_TIMEOUT_S", 60.0, minimum=1, maximum=3600
            ),
            breaker_fail_max=env.integer("BRIDGE_BREAKER_FAIL_MAX", 3, minimum=1, maximum=100),
            breaker_reset_s=env.seconds("BRIDGE_BREAKER_RESET_S", 2.0, minimum=0.1, maximum=600),
        )

    def resolve_url(self) -> str:
        """The URL to connect to now; DatabaseUnavailable while the local server has none yet."""
        if self.url is not None:
            return self.url.reveal()
        try:
            return self.url_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise DatabaseUnavailable(
                f"DATABASE_URL is unset and {self.url_file} does not exist yet"
            ) from None

    def secret_urls(self) -> list[str]:
        """URLs whose passwords must never be logged (the local file's is hidden on connect)."""
        return [self.url.reveal()] if self.url is not None else []

    def describe(self) -> str:
        """Where the database is, for logs: the password never appears."""
        if self.url is not None:
            return mask_url(self.url.reveal())
        return f"the URL in {self.url_file}"

    async def connect(
        self, application_name: str, *, read_only: bool = False
    ) -> psycopg.AsyncConnection[TupleRow]:
        """A connection; `read_only` makes the server refuse every write in the session (for
        processes that only watch, like the alerter)."""
        url = self.resolve_url()
        logs.hide_url_password(url)  # the local profile's URL comes from a file, not the settings
        options = f"-c statement_timeout={int(self.statement_timeout_s * 1000)}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        return await psycopg.AsyncConnection.connect(
            url,
            autocommit=True,
            connect_timeout=max(1, round(self.connect_timeout_s)),
            application_name=application_name,
            options=options,
        )
