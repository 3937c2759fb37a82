"""Faults the simulator can stage, shared by its socket and Portal sides and its control endpoint.

Each field is a condition the gateways consult on every request; `emit` tells the sides about
one-off events (drop every connection, a reset starting or ending, farm status changes) so they
can act at once. `clear` puts everything back to normal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Literal

FaultEvent = Literal[
    "drop_connections", "reset_started", "reset_ended", "farm_broken", "farm_ok", "changed"
]


@dataclass
class Faults:
    reset_until: float | None = None  # epoch s: a daily reset is under way until then
    reset_data_lost: bool = False  # the reset ends with 1101 (subscriptions lost), not 1102
    client_ids_in_use: set[int] = field(default_factory=set)  # socket: error 326 for these
    market_data_error: int | None = None  # 354, 10167 or 10090 answered to every reqMktData
    max_market_data_lines: int = 100  # beyond it: error 101
    stalled: bool = False  # connections stay open, nothing is answered
    reply_delay_s: float = 0.0  # every reply is delayed by this much
    portal_authenticated: bool = True  # False: 401 until re-authenticated
    portal_competing: bool = False
    portal_rate_limit_storm: bool = False  # every Portal request answers 429
    portal_server_error: int | None = None  # 500 or 503 on every Portal request
    portal_string_conids: bool = False  # positions' conid and undConid as decimal strings
    portal_garbled_conid: int | None = None  # this position's conid served as "n/a"
    portal_garbled_quantity: int | None = None  # this position's quantity served as "n/a"
    portal_no_display_rule: bool = False  # positions without their displayRule
    portal_rules_error: int | None = None  # this status from every info-and-rules request
    portal_delayed_conid: int | None = None  # this conid's quotes say delayed (6509 "DpB")
    # socket: reqPnLSingle in the account's base currency, not the position's: the other
    # reading IBKR leaves open (docs/pnl-explain.md, "Actual")
    pnl_single_in_base: bool = False
    _listeners: list[Callable[[FaultEvent], None]] = field(default_factory=list, repr=False)

    def subscribe(self, callback: Callable[[FaultEvent], None]) -> None:
        self._listeners.append(callback)

    def emit(self, event: FaultEvent) -> None:
        for callback in list(self._listeners):
            callback(event)

    def clear(self) -> None:
        """Everything back to normal (listeners stay)."""
        defaults = Faults()
        for item in fields(self):
            if item.name != "_listeners":
                setattr(self, item.name, getattr(defaults, item.name))
        self.emit("changed")

    def describe(self) -> dict[str, object]:
        """The active faults, for the control endpoint."""
        return {
            item.name: sorted(value) if isinstance(value, set) else value
            for item in fields(self)
            if item.name != "_listeners"
            and (value := getattr(self, item.name)) != getattr(Faults(), item.name)
        }
