"""The collector's settings, read once from the environment at start.

In the local profile (`BRIDGE_PROFILE=local`, set by supervisord.conf) the gateway defaults point
at the bundled simulator; anywhere else they point at a real IB Gateway (4001) or Client Portal
gateway (5000) on this machine. Changing the environment alone switches between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

from collector.betas import BetasFileError, parse_betas_file
from collector.worker import KILL_AFTER_S
from shared.errors import SettingsError
from shared.records import Mode
from shared.reset_window import ResetWindow
from shared.settings import EnvReader, PipelinePaths, is_local_profile, is_loopback

MarketDataType = Literal["live", "frozen", "delayed", "delayed-frozen"]
# reqMarketDataType's codes, by the names IB's documentation gives them.
MARKET_DATA_TYPES: Final[dict[str, int]] = {
    "live": 1,
    "frozen": 2,
    "delayed": 3,
    "delayed-frozen": 4,
}
SIMULATOR_SOCKET_PORT: Final = 14001
SIMULATOR_PORTAL_URL: Final = "https://127.0.0.1:15000/v1/api"


@dataclass(frozen=True)
class CollectorSettings:
    mode: Mode
    paths: PipelinePaths
    poll_interval_s: float
    host: str
    port: int
    client_id: int
    connect_timeout_s: float
    portal_url: str
    portal_verify_tls: bool
    tickle_interval_s: float
    portal_pacing_pause_s: float
    market_data_type: MarketDataType
    market_data_fallback: bool
    market_data_lines: int
    market_data_mode: Literal["stream", "snapshot"]
    accounts: tuple[str, ...]  # empty: every account the gateway reports
    reset_windows: tuple[ResetWindow, ...]
    stall_probe_s: float
    reconnect_delays_s: tuple[float, ...]
    segment_max_bytes: int
    held_max_records: int
    log_level: str
    # How often each position's leg is stored (position_legs): at the first tick of each
    # window of this many seconds; at most a minute, every tick when at most the poll interval.
    legs_interval_s: float = 60.0
    # How often the Greeks by expiry are stored (expiry_greeks), the same way as the legs.
    expiry_interval_s: float = 60.0
    beta_benchmark: str = "SPY"
    # PORTAL: the search hit taken as the benchmark (its primary exchange and its currency)
    beta_benchmark_exchange: str = "ARCA"
    beta_benchmark_currency: str = "USD"
    beta_overrides: Mapping[str, float] = field(default_factory=dict)
    # Dimson's beta (same-day and previous-day benchmark returns) for books whose underlyings
    # close before the benchmark (collector/betas.py)
    beta_lagged: bool = False
    # Scenario P&L (docs/scenarios.md): how often the grid is stored, and what the gateway does
    # not state for the revaluation (and the Greeks recomputed where the Portal's rounding
    # destroys them), both annual and continuously compounded, in percent.
    scenario_interval_s: float = 60.0
    risk_free_rate_pct: float = 4.0
    dividend_yield_pct: float = 0.0
    # A worker process's job running longer is hung: its process is killed (collector/worker.py).
    worker_kill_after_s: float = KILL_AFTER_S

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> CollectorSettings:
        env = EnvReader(environ)
        local = is_local_profile(environ)
        mode = env.api_mode()
        portal_url = env.text(
            "IB_PORTAL_URL", SIMULATOR_PORTAL_URL if local else "https://localhost:5000/v1/api"
        ).rstrip("/")
        if urlsplit(portal_url).scheme not in ("http", "https"):
            raise SettingsError("IB_PORTAL_URL", f"{portal_url!r} is not an http(s) URL")
        verify = env.choice("IB_PORTAL_VERIFY_TLS", ("AUTO", "TRUE", "FALSE"), "AUTO")
        client_id = env.integer("IB_CLIENT_ID", 10, minimum=0, maximum=2**31 - 1)
        if client_id == 0:
            raise SettingsError(
                "IB_CLIENT_ID", "0 is the trader's own session (TWS master id); use another id"
            )
        market_data_type = env.text("IB_MARKET_DATA_TYPE", "live").lower()
        if market_data_type not in MARKET_DATA_TYPES:
            raise SettingsError(
                "IB_MARKET_DATA_TYPE",
                f"{market_data_type!r} is not one of {', '.join(MARKET_DATA_TYPES)}",
            )
        accounts = env.text("IB_ACCOUNTS", "")
        benchmark = env.text("BRIDGE_BETA_BENCHMARK", "SPY").strip().upper()
        if not benchmark or not benchmark.replace(".", "").replace(" ", "").isalnum():
            raise SettingsError("BRIDGE_BETA_BENCHMARK", f"{benchmark!r} is not a symbol")
        betas_file = env.optional_text("BRIDGE_BETAS_FILE")
        poll_interval_s = env.seconds("BRIDGE_POLL_INTERVAL_S", 5.0, minimum=1, maximum=3600)
        return cls(
            mode=mode,
            paths=PipelinePaths.from_environ(environ),
            poll_interval_s=poll_interval_s,
            host=env.text("IB_HOST", "127.0.0.1"),
            port=env.integer(
                "IB_PORT", SIMULATOR_SOCKET_PORT if local else 4001, minimum=1, maximum=65535
            ),
            client_id=client_id,
            connect_timeout_s=env.seconds("IB_CONNECT_TIMEOUT_S", 10, minimum=1, maximum=300),
            portal_url=portal_url,
            # The gateway's certificate is self-signed: verifying it on loopback proves nothing.
            portal_verify_tls=verify == "TRUE"
            or (verify == "AUTO" and not is_loopback(urlsplit(portal_url).hostname or "")),
            tickle_interval_s=env.seconds("IB_TICKLE_INTERVAL_S", 60, minimum=5, maximum=290),
            portal_pacing_pause_s=env.seconds(
                "IB_PORTAL_PACING_PAUSE_S", 60, minimum=0.1, maximum=3600
            ),
            market_data_type=market_data_type,  # type: ignore[arg-type]  # checked above
            market_data_fallback=env.flag("IB_MARKET_DATA_FALLBACK", default=True),
            market_data_lines=env.integer("IB_MARKET_DATA_LINES", 100, minimum=1, maximum=10_000),
            market_data_mode=env.choice(  # type: ignore[arg-type]  # validated by choice()
                "IB_MARKET_DATA_MODE", ("STREAM", "SNAPSHOT"), "STREAM"
            ).lower(),
            accounts=tuple(name.strip() for name in accounts.split(",") if name.strip()),
            reset_windows=env.reset_windows(),
            stall_probe_s=env.seconds("IB_STALL_PROBE_S", 30, minimum=0.1, maximum=600),
            reconnect_delays_s=env.delays("IB_RECONNECT_DELAYS_S", "5,10,20", maximum=3600),
            segment_max_bytes=env.integer(
                "BRIDGE_SPOOL_SEGMENT_MAX_BYTES", 1 << 20, minimum=4096, maximum=1 << 30
            ),
            held_max_records=env.integer(
                "BRIDGE_COLLECTOR_HELD_MAX_RECORDS", 100_000, minimum=1, maximum=10_000_000
            ),
            log_level=env.log_level(),
            legs_interval_s=env.seconds("BRIDGE_LEGS_INTERVAL_S", 60.0, minimum=1, maximum=60),
            expiry_interval_s=env.seconds("BRIDGE_EXPIRY_INTERVAL_S", 60.0, minimum=1, maximum=60),
            beta_benchmark=benchmark,
            beta_benchmark_exchange=env.text("BRIDGE_BETA_BENCHMARK_EXCHANGE", "ARCA")
            .strip()
            .upper(),
            beta_benchmark_currency=env.text("BRIDGE_BETA_BENCHMARK_CURRENCY", "USD")
            .strip()
            .upper(),
            beta_overrides=_read_betas_file(betas_file) if betas_file else {},
            beta_lagged=env.flag("BRIDGE_BETA_LAGGED", default=False),
            scenario_interval_s=env.seconds(
                "BRIDGE_SCENARIO_INTERVAL_S", 60.0, minimum=0, maximum=86400
            ),
            risk_free_rate_pct=env.percent(
                "BRIDGE_RISK_FREE_RATE_PCT", 4.0, minimum=-5, maximum=50
            ),
            dividend_yield_pct=env.percent("BRIDGE_DIVIDEND_YIELD_PCT", 0.0, minimum=0, maximum=50),
            # At least the interval: a tick waits for its recompute 0.8 of it, and a shorter
            # bound would kill a job the tick still waits for.
            worker_kill_after_s=env.seconds(
                "BRIDGE_WORKER_KILL_AFTER_S",
                max(KILL_AFTER_S, poll_interval_s),
                minimum=poll_interval_s,
                maximum=86400,
            ),
        )


def _read_betas_file(path: str) -> dict[str, float]:
    """The overrides, read once at start: a bad file stops the collector naming the variable."""
    try:
        return parse_betas_file(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise SettingsError("BRIDGE_BETAS_FILE", f"cannot read {path}: {exc.strerror}") from None
    except (BetasFileError, UnicodeDecodeError) as exc:
        raise SettingsError("BRIDGE_BETAS_FILE", f"{path}: {exc}") from None
