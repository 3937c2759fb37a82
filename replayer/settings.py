"""The replayer's settings, read once from the environment at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from database.settings import DatabaseSettings
from shared.settings import EnvReader, PipelinePaths


@dataclass(frozen=True)
class ReplayerSettings:
    paths: PipelinePaths
    database: DatabaseSettings
    replay_interval_s: float
    chunk_records: int
    chunk_max_bytes: int
    connections: int
    status_interval_s: float
    log_level: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ReplayerSettings:
        env = EnvReader(environ)
        paths = PipelinePaths.from_environ(environ)
        return cls(
            paths=paths,
            database=DatabaseSettings.from_environ(environ, var_dir=paths.var_dir),
            replay_interval_s=env.seconds(
                "BRIDGE_REPLAY_INTERVAL_S", 60.0, minimum=0.1, maximum=86_400
            ),
            # One COPY per chunk, then an offset checkpoint: a killed replayer redoes at most
            # one chunk, and a chunk is large enough that the COPY dominates.
            chunk_records=env.integer(
                "BRIDGE_REPLAY_CHUNK_RECORDS", 20_000, minimum=1, maximum=1_000_000
            ),
            # Bytes bound a chunk too: a few huge records must not make one statement that runs
            # past the statement timeout or the server's memory.
            chunk_max_bytes=env.integer(
                "BRIDGE_REPLAY_CHUNK_MAX_BYTES", 16 << 20, minimum=4096, maximum=1 << 30
            ),
            connections=env.integer("BRIDGE_REPLAY_CONNECTIONS", 2, minimum=1, maximum=8),
            status_interval_s=env.seconds("BRIDGE_STATUS_INTERVAL_S", 1.0, minimum=0.1, maximum=60),
            log_level=env.choice("BRIDGE_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
        )
