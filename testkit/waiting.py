"""Waiting for another process to make something true, where no event can be awaited.

A bounded poll: checks `condition` every `interval_s` and fails the test with `what` after
`timeout_s`. Used only across process boundaries (rows in PostgreSQL, files on disk).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest


def wait_until(
    condition: Callable[[], bool],
    *,
    what: str | Callable[[], str],
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
) -> None:
    """Poll `condition` until it holds; past `timeout_s` fail, saying `what` was awaited (a
    callable is asked then, so it can tell what was seen last)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout_s} s waiting for {said}")
        time.sleep(interval_s)


async def wait_until_async(
    condition: Callable[[], bool], *, what: str, timeout_s: float = 30.0, interval_s: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)
