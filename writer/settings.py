"""The writer's settings, read once from the environment at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from database.settings import DatabaseSettings
from shared.settings import BufferLimits, EnvReader, PipelineCore


@dataclass(frozen=True)
class WriterSettings(PipelineCore):
    """The pipeline's preamble (the mode: for the events the writer itself reports), then the
    writer's own."""

    database: DatabaseSettings
    buffer_limits: BufferLimits
    poll_interval_s: float
    batch_max_records: int
    connections: int
    startup_grace_s: float

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> WriterSettings:
        env = EnvReader(environ)
        core = PipelineCore.from_environ(environ)
        return cls(
            **core.by_name(),
            database=DatabaseSettings.from_environ(environ, var_dir=core.paths.var_dir),
            buffer_limits=BufferLimits.from_environ(environ),
            # The pause when the spool had nothing new (after a batch that found work there is
            # none): 20 ms keeps spool-to-database latency far under 100 ms at p99 for the
            # price of 50 reads a second when idle.
            poll_interval_s=env.seconds("BRIDGE_WRITER_POLL_S", 0.02, minimum=0.001, maximum=10),
            batch_max_records=env.integer(
                "BRIDGE_WRITER_BATCH_MAX", 1000, minimum=1, maximum=100_000
            ),
            # A large batch is spread over this many connections (writer/writer.py says how).
            connections=env.integer("BRIDGE_WRITER_CONNECTIONS", 2, minimum=1, maximum=8),
            startup_grace_s=env.seconds(
                "BRIDGE_WRITER_STARTUP_GRACE_S", 30.0, minimum=0, maximum=3600
            ),
        )
