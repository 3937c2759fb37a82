"""Reading settings from a mapping of environment variables, validated at the edge.

Each process builds one frozen settings object with `Settings.from_environ(environ)`; this module
gives them the typed readers, so every bad value fails the same way: one line that names the
variable, shows the value (masked when secret) and says what was expected, and the preamble the
pipeline's processes share (`PipelineCore`: paths, log level, API mode, heartbeat interval).
Nothing here reads `os.environ` itself: `__main__` passes it in, tests pass a dict.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from shared.errors import SettingsError
from shared.records import MODES, Mode
from shared.reset_window import DEFAULT_RESET_WINDOWS, ResetWindow, parse_reset_windows

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class Secret:
    """A credential: its value is reachable through `.reveal()` only, never through repr or str."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


def mask_url(url: str) -> str:
    """`postgresql://u:pw@h/db` -> `postgresql://u:***@h/db`; query passwords are masked too."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if sep else ''}@{hostport}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file of `KEY=value` lines; a missing file is an empty mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _DOTENV_LINE.match(line)
        if match is None:
            raise SettingsError(f"{path}:{number}", "expected KEY=value")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def with_dotenv(environ: Mapping[str, str], path: Path = Path(".env")) -> dict[str, str]:
    """The process environment over the optional `.env` file: the environment always wins."""
    return {**read_dotenv(path), **environ}


class EnvReader:
    """Typed, validated access to one mapping of environment variables."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def is_set(self, name: str) -> bool:
        return self._raw(name) is not None

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def optional_text(self, name: str) -> str | None:
        return self._raw(name)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self._raw(name)
        if value is None:
            return default
        normalized = value.upper()
        if normalized not in choices:
            raise SettingsError(name, f"{value!r} is not one of {', '.join(choices)}")
        return normalized

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(name, f"{value!r} is not a whole number") from None
        if not minimum <= number <= maximum:
            raise SettingsError(name, f"{number} is outside {minimum}..{maximum}")
        return number

    def seconds(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        return self._finite(name, default, minimum, maximum, ("seconds", " seconds"))

    def percent(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        """A percentage (4 for 4 %), returned as it is written."""
        return self._finite(name, default, minimum, maximum, ("percent", " %"))

    def _finite(
        self, name: str, default: float, minimum: float, maximum: float, unit: tuple[str, str]
    ) -> float:
        """A finite number in minimum..maximum; `unit` names it in the errors (a number of
        `unit[0]`, outside the range with `unit[1]` after it)."""
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(name, f"{value!r} is not a number of {unit[0]}") from None
        if not math.isfinite(number) or not minimum <= number <= maximum:
            raise SettingsError(name, f"{value} is outside {minimum:g}..{maximum:g}{unit[1]}")
        return number

    def delays(self, name: str, default: str, *, maximum: float) -> tuple[float, ...]:
        """Comma-separated seconds (retry or reconnect delays), each in 0 (exclusive)..maximum."""
        try:
            delays = tuple(float(part) for part in self.text(name, default).split(","))
        except ValueError:
            raise SettingsError(name, f"expected seconds like {default}") from None
        if not all(0 < delay <= maximum for delay in delays):
            raise SettingsError(name, f"each delay must be in 0..{maximum:g} seconds")
        return delays

    def log_level(self) -> str:
        """BRIDGE_LOG_LEVEL, for every program."""
        return self.choice("BRIDGE_LOG_LEVEL", LOG_LEVELS, "INFO")

    def api_mode(self) -> Mode:
        """IB_API_MODE: how the collector reaches IBKR (and the mode of every event recorded)."""
        return "PORTAL" if self.choice("IB_API_MODE", MODES, "SOCKET") == "PORTAL" else "SOCKET"

    def reset_windows(self) -> tuple[ResetWindow, ...]:
        """IB_RESET_WINDOWS: the gateway's daily restart windows (shared/reset_window.py)."""
        try:
            return parse_reset_windows(self.text("IB_RESET_WINDOWS", DEFAULT_RESET_WINDOWS))
        except ValueError as exc:
            raise SettingsError("IB_RESET_WINDOWS", str(exc)) from None

    def flag(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise SettingsError(name, f"{value!r} is not a boolean (true/false)")

    def path(self, name: str, default: Path) -> Path:
        value = self._raw(name)
        return Path(value).expanduser() if value is not None else default.expanduser()

    def secret(self, name: str) -> Secret | None:
        value = self._raw(name)
        return Secret(value) if value is not None else None

    def database_url(self, name: str) -> Secret | None:
        """A PostgreSQL URL; validated for shape, kept secret because it may hold a password."""
        value = self._raw(name)
        if value is None:
            return None
        scheme = urlsplit(value).scheme
        if scheme not in ("postgresql", "postgres"):
            raise SettingsError(name, f"{mask_url(value)!r} is not a postgresql:// URL")
        return Secret(value)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; any other name or address serves a network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


LOCAL_PROFILE = "local"


def is_local_profile(environ: Mapping[str, str]) -> bool:
    """True under the project's supervisord.conf: everything stays inside the checkout."""
    return EnvReader(environ).text("BRIDGE_PROFILE", "") == LOCAL_PROFILE


@dataclass(frozen=True)
class PipelinePaths:
    """Where the processes meet on disk; the local profile keeps all of it under `var/`.

    Producers spool records for the writer: the collector (`spool_dir`), the alerter
    (`alerter_spool_dir`), and the writer and the replayer their own events (`writer_events_dir`,
    `replayer_events_dir`: their database breaker's changes, under `var_dir`); the writer tails
    each, with its own checkpoint.

    The buffer defaults to `~/.portfolio_bridge_buffer.jsonl` (the original plan's place), except
    in the local profile, which never writes to the user's home.
    """

    var_dir: Path
    spool_dir: Path
    alerter_spool_dir: Path
    writer_events_dir: Path
    replayer_events_dir: Path
    buffer_path: Path
    dead_letter_path: Path
    run_dir: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PipelinePaths:
        env = EnvReader(environ)
        var_dir = env.path("BRIDGE_VAR_DIR", Path("var"))
        return cls(
            var_dir=var_dir,
            spool_dir=env.path("BRIDGE_SPOOL_DIR", var_dir / "spool"),
            alerter_spool_dir=env.path("BRIDGE_ALERTER_SPOOL_DIR", var_dir / "alerter-spool"),
            writer_events_dir=var_dir / "writer-events",
            replayer_events_dir=var_dir / "replayer-events",
            buffer_path=env.path(
                "BRIDGE_BUFFER_PATH",
                var_dir / "buffer.jsonl"
                if is_local_profile(environ)
                else Path("~/.portfolio_bridge_buffer.jsonl"),
            ),
            dead_letter_path=env.path("BRIDGE_DEAD_LETTER_PATH", var_dir / "deadletter.jsonl"),
            run_dir=env.path("BRIDGE_RUN_DIR", var_dir / "run"),
        )


@dataclass(frozen=True)
class BufferLimits:
    """How large the buffer may grow (bytes on disk, claimed file included), and when to warn.

    At the cap the writer stops taking records from the spool while PostgreSQL is down: they
    wait there, on disk, until the database or the replayer makes room (nothing is dropped).
    """

    max_bytes: int
    warn_bytes: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BufferLimits:
        env = EnvReader(environ)
        # 1 GiB: about 40 hours of 5-s snapshots for 60 accounts (600 B a line).
        max_bytes = env.integer("BRIDGE_BUFFER_MAX_BYTES", 1 << 30, minimum=4096, maximum=1 << 50)
        warn_percent = env.integer("BRIDGE_BUFFER_WARN_PERCENT", 80, minimum=1, maximum=100)
        return cls(max_bytes=max_bytes, warn_bytes=max_bytes * warn_percent // 100)


@dataclass(frozen=True)
class PipelineCore:
    """The preamble the writer, the replayer and the alerter read alike: where the files are,
    how loud to log, the collector's API mode (for the events a process records itself) and how
    often the heartbeat is published (BRIDGE_STATUS_INTERVAL_S; the alerter beats at its own
    step instead)."""

    paths: PipelinePaths
    log_level: str
    mode: Mode
    status_interval_s: float

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PipelineCore:
        env = EnvReader(environ)
        return cls(
            paths=PipelinePaths.from_environ(environ),
            log_level=env.log_level(),
            mode=env.api_mode(),
            status_interval_s=env.seconds("BRIDGE_STATUS_INTERVAL_S", 1.0, minimum=0.1, maximum=60),
        )

    def by_name(self) -> dict[str, Any]:
        """Each field by its name, for the settings of a process that extends the core."""
        return {item.name: getattr(self, item.name) for item in fields(PipelineCore)}
