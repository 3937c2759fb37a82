"""The exception tree of the alerter.

AlerterError (BridgeError)
├── RulesError      the rules file is not valid: names the rule and the problem, in one line
└── TargetError     a notification URL is not one Apprise can use (its secret never echoed)
"""

from __future__ import annotations

from shared.errors import BridgeError


class AlerterError(BridgeError):
    """Base class of the alerter's errors."""


class RulesError(AlerterError):
    """A rule of the alerts file is not valid; `rule` names it, `problem` says why."""

    def __init__(self, rule: str, problem: str) -> None:
        super().__init__(f"{rule}: {problem}")
        self.rule = rule
        self.problem = problem


class TargetError(AlerterError):
    """A notification URL cannot be used; the message names it by position and scheme only."""
