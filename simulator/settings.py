"""The simulator's settings: ports, bind address, scenario, from flags over the environment."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.errors import SettingsError
from shared.settings import EnvReader


@dataclass(frozen=True)
class SimulatorSettings:
    host: str
    socket_port: int
    portal_port: int
    control_port: int
    scenario: Path | None
    seed: int | None
    frozen: bool
    portal_pacing: bool
    portal_penalty_s: float
    portal_idle_expiry_s: float
    log_level: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SimulatorSettings:
        env = EnvReader(environ)
        host = env.text("IBKR_SIM_HOST", "127.0.0.1")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            raise SettingsError("IBKR_SIM_HOST", f"{host!r} is not an IP address") from None
        if not loopback and not env.flag("IBKR_SIM_ALLOW_REMOTE", default=False):
            raise SettingsError(
                "IBKR_SIM_HOST",
                f"{host} is not loopback: the simulator has no authentication; set "
                "IBKR_SIM_ALLOW_REMOTE=true to expose it anyway",
            )
        seed = env.optional_text("IBKR_SIM_SEED")
        scenario = env.optional_text("IBKR_SIM_SCENARIO")
        return cls(
            host=host,
            # Never a real gateway's port (4001/4002, 7496/7497, 5000).
            socket_port=env.integer("IBKR_SIM_SOCKET_PORT", 14001, minimum=0, maximum=65535),
            portal_port=env.integer("IBKR_SIM_PORTAL_PORT", 15000, minimum=0, maximum=65535),
            control_port=env.integer("IBKR_SIM_CONTROL_PORT", 15001, minimum=0, maximum=65535),
            scenario=Path(scenario) if scenario else None,
            seed=env.integer("IBKR_SIM_SEED", 0, minimum=0, maximum=2**31) if seed else None,
            frozen=env.flag("IBKR_SIM_FROZEN", default=False),
            portal_pacing=env.flag("IBKR_SIM_PACING", default=True),
            portal_penalty_s=env.seconds("IBKR_SIM_PENALTY_S", 600, minimum=0, maximum=3600),
            portal_idle_expiry_s=env.seconds(
                "IBKR_SIM_IDLE_EXPIRY_S", 360, minimum=1, maximum=86_400
            ),
            log_level=env.log_level(),
        )
