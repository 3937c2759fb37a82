"""Reset windows in New York time: across midnight and both DST changes, in UTC instants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.reset_window import DEFAULT_RESET_WINDOWS, active_window, parse_reset_windows
from shared.settings import EnvReader

DEFAULTS = parse_reset_windows(DEFAULT_RESET_WINDOWS)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant_utc", "inside"),
    [
        # Winter (EST = UTC-5). Tuesday 2026-01-13.
        ("2026-01-13T04:44", False),  # Mon 23:44 ET
        ("2026-01-13T04:45", True),  # Mon 23:45 ET: starts
        ("2026-01-13T06:44", True),  # Tue 01:44 ET
        ("2026-01-13T06:45", False),  # Tue 01:45 ET: ended
        # Summer (EDT = UTC-4): the same wall-clock window is an hour earlier in UTC.
        ("2026-07-14T03:45", True),  # Mon 23:45 ET
        ("2026-07-14T05:44", True),  # Tue 01:44 ET
        ("2026-07-14T05:45", False),
        ("2026-07-14T04:45", True),  # Tue 00:45 ET
        # Friday-night maintenance: Fri 23:00 ET to Sat 03:00 ET (winter).
        ("2026-01-17T03:59", False),  # Fri 22:59 ET
        ("2026-01-17T04:00", True),  # Fri 23:00 ET
        ("2026-01-17T07:59", True),  # Sat 02:59 ET
        ("2026-01-17T08:00", False),  # Sat 03:00 ET
        # Saturday night into Sunday: the 01:00 ET re-login lies inside.
        ("2026-01-18T06:00", True),  # Sun 01:00 ET
        # Friday 23:45 is not a daily window start (Fri is not in Sat-Thu) but is maintenance.
        ("2026-01-17T04:45", True),
        # Spring forward, Sunday 2026-03-08 02:00 EST -> 03:00 EDT. Sat 23:45 EST = 04:45 UTC;
        # Sun 01:45 EST (before the change) = 06:45 UTC.
        ("2026-03-08T04:45", True),
        ("2026-03-08T06:44", True),
        ("2026-03-08T06:45", False),
        # Fall back, Sunday 2026-11-01 02:00 EDT -> 01:00 EST. Sat 23:45 EDT = 03:45 UTC;
        # 01:45 ET happens twice; the first (EDT, 05:45 UTC) ends the window.
        ("2026-11-01T03:44", False),
        ("2026-11-01T03:45", True),
        ("2026-11-01T05:44", True),
        ("2026-11-01T05:45", False),
        # The Monday after fall back is on EST again: Sun 23:45 EST = Mon 04:45 UTC.
        ("2026-11-02T04:45", True),
        ("2026-11-02T03:45", False),
    ],
)
def test_default_windows(instant_utc: str, inside: bool) -> None:
    """Wall-clock windows in ET hold their meaning through DST and across midnight."""
    assert (active_window(DEFAULTS, _utc(instant_utc)) is not None) == inside


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon-Fri 23:45-01:45", ["Mon,Tue,Wed,Thu,Fri 23:45-01:45 ET"]),
        ("Sat,Sun 10:00-11:00", ["Sat,Sun 10:00-11:00 ET"]),
        ("Fri-Mon 01:00-02:00", ["Mon,Fri,Sat,Sun 01:00-02:00 ET"]),
        ("sun 1:00-1:15 ; Fri 23:00-03:00", ["Sun 01:00-01:15 ET", "Fri 23:00-03:00 ET"]),
        ("", []),
        ("none", []),
        (" None ", []),
    ],
)
def test_parse(text: str, expected: list[str]) -> None:
    """The compact format reads days, ranges (wrapping past Sunday) and several windows."""
    assert [str(window) for window in parse_reset_windows(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Mon-Fri", "is not like 'Mon-Fri 23:45-01:45'"),
        ("Funday 01:00-02:00", "'Funday' is not a day"),
        ("Mon 25:00-01:00", "has an impossible time"),
        ("Mon 01:00-01:61", "has an impossible time"),
    ],
)
def test_parse_errors_say_what_is_wrong(text: str, message: str) -> None:
    """A malformed window is refused with the reason (the settings add the variable's name)."""
    with pytest.raises(ValueError, match=message):
        parse_reset_windows(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DEFAULTS),
        ("", DEFAULTS),  # blank is unset, as for every setting
        ("none", ()),
        ("Mon 10:00-11:00", parse_reset_windows("Mon 10:00-11:00")),
    ],
)
def test_the_setting(value: str | None, expected: tuple[object, ...]) -> None:
    """IB_RESET_WINDOWS: unset or blank keeps IBKR's windows; only `none` turns them off."""
    environ = {} if value is None else {"IB_RESET_WINDOWS": value}
    assert EnvReader(environ).reset_windows() == expected
