"""The exception tree of the simulator.

SimulatorError (BridgeError)
└── ScenarioError   a scenario file is missing, malformed or inconsistent (names the problem)
"""

from __future__ import annotations

from shared.errors import BridgeError


class SimulatorError(BridgeError):
    """Base class of the simulator's errors."""


class ScenarioError(SimulatorError):
    """A scenario cannot be used as written."""
