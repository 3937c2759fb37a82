"""The web program's settings, read once from the environment at start.

Bound to loopback (the default) the page is for whoever sits at this machine. Bound to any
other address it serves the network, so a bearer token is required; starting without one is
refused with one line naming `BRIDGE_WEB_TOKEN`. Requests are served only when their `Host`
names this server (`web/exposure.py`); `BRIDGE_WEB_ALLOWED_HOSTS` adds names to the loopback
names, IP addresses and the bind host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from database.settings import DatabaseSettings
from shared.errors import SettingsError
from shared.settings import BufferLimits, EnvReader, PipelinePaths, Secret, is_loopback

_MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class WebSettings:
    paths: PipelinePaths
    database: DatabaseSettings
    buffer_limits: BufferLimits
    host: str
    port: int
    token: Secret | None
    refresh_s: float
    log_level: str
    health_timeout_s: float = 3.0  # /healthz answers within it, 503 when the database hangs
    allowed_hosts: tuple[str, ...] = ()  # names beyond loopback and the bind host (web/exposure)

    def url(self, port: int) -> str:
        """Where it serves, on `port` (the one the OS chose when the setting is 0)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> WebSettings:
        env = EnvReader(environ)
        paths = PipelinePaths.from_environ(environ)
        host = env.text("BRIDGE_WEB_HOST", "127.0.0.1")
        token = env.secret("BRIDGE_WEB_TOKEN")
        if token is None and not is_loopback(host):
            raise SettingsError(
                "BRIDGE_WEB_TOKEN",
                f"required when BRIDGE_WEB_HOST ({host}) is not a loopback address",
            )
        if token is not None and len(token.reveal()) < _MIN_TOKEN_CHARS:
            raise SettingsError("BRIDGE_WEB_TOKEN", f"shorter than {_MIN_TOKEN_CHARS} characters")
        return cls(
            paths=paths,
            database=DatabaseSettings.from_environ(environ, var_dir=paths.var_dir, reader=True),
            buffer_limits=BufferLimits.from_environ(environ),
            host=host,
            port=env.integer("BRIDGE_WEB_PORT", 8765, minimum=0, maximum=65535),
            token=token,
            refresh_s=env.seconds("BRIDGE_WEB_REFRESH_S", 5.0, minimum=0.5, maximum=300),
            log_level=env.log_level(),
            health_timeout_s=env.seconds(
                "BRIDGE_WEB_HEALTH_TIMEOUT_S", 3.0, minimum=0.5, maximum=60
            ),
            allowed_hosts=tuple(
                (env.optional_text("BRIDGE_WEB_ALLOWED_HOSTS") or "").replace(",", " ").split()
            ),
        )
