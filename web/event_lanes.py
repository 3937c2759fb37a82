"""The lanes of the chart's event axis: which api_logs events are drawn, and on which lane. Pure."""

from __future__ import annotations

from typing import Literal

Lane = Literal["gap", "connection", "reset window", "breaker", "alert", "other"]

_LANES: dict[str, Lane] = {
    "gap": "gap",
    "connected": "connection",
    "disconnected": "connection",
    "reconnect_attempt": "connection",
    "stalled": "connection",
    "client_id_in_use": "connection",
    "session_required": "connection",
    "connectivity_lost": "connection",
    "connectivity_restored": "connection",
    "connectivity_restored_data_lost": "connection",
    "reset_window_entered": "reset window",
    "reset_window_left": "reset window",
    "breaker_opened": "breaker",
    "breaker_closed": "breaker",
    "alert_fired": "alert",
    "alert_resolved": "alert",
}


def lane(event: str, level: str) -> Lane | None:
    """Which lane of the event axis shows an api_logs event; None: routine, not drawn."""
    if event in _LANES:
        return _LANES[event]
    return "other" if level in ("warning", "error", "critical") else None


EVENTS_SHOWN: tuple[str, ...] = tuple(_LANES)
