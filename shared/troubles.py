"""Problems a process retries through (a full disk, a corrupt checkpoint), reported once each.

A retried failure logs one line when it starts or changes and one when it ends, never one per
retry, and the current ones go into the process's heartbeat so `bridge-status` shows them.
"""

from __future__ import annotations

import logging

from shared import logs


class Troubles:
    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._current: dict[str, str] = {}

    @property
    def current(self) -> dict[str, str]:
        """subject -> what is wrong, for the heartbeat (a copy)."""
        return dict(self._current)

    def report(self, subject: str, message: str, reason: object) -> None:
        """`subject` is failing with `reason`; logged at error when it is news."""
        text = f"{message}: {reason}"
        if self._current.get(subject) != text:
            self._log.error(message, extra=logs.fields(subject=subject, reason=reason))
        self._current[subject] = text

    def clear(self, subject: str) -> None:
        """`subject` works again; logged once."""
        if self._current.pop(subject, None) is not None:
            self._log.warning("recovered", extra=logs.fields(subject=subject))
