"""The replayer's settings, read once from the environment at start."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from database.history import Retention
from database.settings import DatabaseSettings
from shared.errors import SettingsError
from shared.settings import EnvReader, PipelineCore


@dataclass(frozen=True)
class ReplayerSettings(PipelineCore):
    """The pipeline's preamble (the mode: for the events the replayer itself reports), then the
    replayer's own."""

    database: DatabaseSettings
    replay_interval_s: float
    chunk_records: int
    chunk_max_bytes: int
    connections: int
    retention: Retention

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ReplayerSettings:
        env = EnvReader(environ)
        core = PipelineCore.from_environ(environ)
        return cls(
            **core.by_name(),
            database=DatabaseSettings.from_environ(environ, var_dir=core.paths.var_dir),
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
            retention=_retention(env),
        )


def _days(env: EnvReader, name: str, default: int | None) -> timedelta | None:
    """Whole days, or `forever` (kept, never dropped)."""
    raw = env.optional_text(name)
    if raw is not None and raw.lower() == "forever":
        return None
    if raw is None and default is None:
        return None
    return timedelta(days=env.integer(name, default or 1, minimum=1, maximum=36_500))


def _retention(env: EnvReader) -> Retention:
    retention = Retention(
        raw=_days(env, "BRIDGE_RETENTION_RAW_DAYS", 90),
        api_logs=_days(env, "BRIDGE_RETENTION_API_LOGS_DAYS", 90),
        rollup_1m=_days(env, "BRIDGE_RETENTION_1M_DAYS", 730),
        rollup_1h=_days(env, "BRIDGE_RETENTION_1H_DAYS", None),
    )
    # A minute is recomputed from raw rows and an hour from minutes: a coarser resolution kept
    # for less time than a finer one would lose buckets the finer one still rebuilds.
    order = [
        ("BRIDGE_RETENTION_RAW_DAYS", retention.raw),
        ("BRIDGE_RETENTION_1M_DAYS", retention.rollup_1m),
        ("BRIDGE_RETENTION_1H_DAYS", retention.rollup_1h),
    ]
    for (_, finer), (name, coarser) in itertools.pairwise(order):
        if coarser is not None and (finer is None or coarser < finer):
            raise SettingsError(name, "must keep at least as long as the finer resolution")
    return retention
