"""`python -m simulator` (`ibkr-sim`): a local IB Gateway and Client Portal gateway."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from shared import logs
from shared.errors import SettingsError
from shared.settings import with_dotenv
from simulator.app import Simulator
from simulator.errors import ScenarioError
from simulator.settings import SimulatorSettings

_FLAGS = {
    "host": "IBKR_SIM_HOST",
    "socket_port": "IBKR_SIM_SOCKET_PORT",
    "portal_port": "IBKR_SIM_PORTAL_PORT",
    "control_port": "IBKR_SIM_CONTROL_PORT",
    "scenario": "IBKR_SIM_SCENARIO",
    "seed": "IBKR_SIM_SEED",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ibkr-sim", description=__doc__)
    for flag, variable in _FLAGS.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", help=f"overrides {variable}")
    parser.add_argument("--frozen", action="store_true", help="hold prices and Greeks still")
    args = parser.parse_args(argv)
    environ = with_dotenv(os.environ)
    environ.update(
        {
            variable: str(value)
            for flag, variable in _FLAGS.items()
            if (value := getattr(args, flag)) is not None
        }
    )
    if args.frozen:
        environ["IBKR_SIM_FROZEN"] = "true"
    try:
        settings = SimulatorSettings.from_environ(environ)
        simulator = Simulator(settings)
    except (SettingsError, ScenarioError) as exc:
        print(f"ibkr-sim: {exc}", file=sys.stderr)
        sys.exit(2)
    logs.configure(settings.log_level)
    asyncio.run(simulator.run())


if __name__ == "__main__":
    main()
