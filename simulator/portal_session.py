"""The Client Portal gateway's session as a state machine told the time (no clock, no I/O).

Two tiers, as on the real gateway: the login (enough for /portfolio) and the brokerage session
(needed for /iserver), plus the market data streams that live and die with the latter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class SessionState(Enum):
    LOGGED_OUT = "nobody is logged in: 401 everywhere, /tickle included"
    EXPIRED = "idle too long: 401, /tickle says no session, ssodh/init opens it again"
    NO_BRIDGE = "logged in without a brokerage session: /iserver answers 400 no bridge"
    BROKERAGE = "logged in with a brokerage session: everything is served"


_ALIVE = (SessionState.NO_BRIDGE, SessionState.BROKERAGE)


@dataclass
class PortalSession:
    """The gateway's session; every method that can depend on time takes `now` (seconds)."""

    idle_expiry_s: float
    last_request_at: float
    open_brokerage_on_login: bool = True
    state: SessionState = SessionState.LOGGED_OUT
    accounts_queried: bool = False  # /iserver/accounts since the brokerage session opened
    streams: dict[int, set[str]] = field(default_factory=dict)  # conid -> subscribed field ids
    answers: dict[int, int] = field(default_factory=dict)  # conid -> answers with data so far
    _login_lost: bool = False

    def __post_init__(self) -> None:
        # The simulator plays a gateway someone has already logged in to.
        self.log_in(self.last_request_at)

    @property
    def alive(self) -> bool:
        return self.state in _ALIVE

    def on_request(self, now: float, *, login_valid: bool, reset_under_way: bool) -> None:
        """Bring the state up to date as a request arrives: the login, idling, a reset."""
        if not login_valid:
            self._login_lost = True
            self.log_out()
        elif self._login_lost:
            self.log_in(now)  # the operator's login is back: a fresh session
        if self.alive and now - self.last_request_at > self.idle_expiry_s:
            self.state = SessionState.EXPIRED
            self._close_bridge()
        if reset_under_way:
            self.lose_bridge()
        if self.alive:
            self.last_request_at = now

    def log_in(self, now: float) -> None:
        """A login; like the real gateway, it opens the brokerage session unless told not to."""
        self._login_lost = False
        self._close_bridge()
        self.state = (
            SessionState.BROKERAGE if self.open_brokerage_on_login else SessionState.NO_BRIDGE
        )
        self.last_request_at = now

    def log_out(self) -> None:
        self._close_bridge()
        self.state = SessionState.LOGGED_OUT

    def open_brokerage(self, now: float) -> bool:
        """ssodh/init or reauthenticate: False when nobody is logged in to open it for."""
        if self.state is SessionState.LOGGED_OUT:
            return False
        if self.state is not SessionState.BROKERAGE:
            self._close_bridge()
            self.state = SessionState.BROKERAGE
        self.last_request_at = now
        return True

    def lose_bridge(self) -> None:
        """IBKR dropped the brokerage session (a reset, dropped connections); the login stays."""
        if self.state is SessionState.BROKERAGE:
            self.state = SessionState.NO_BRIDGE
            self._close_bridge()

    def _close_bridge(self) -> None:
        self.accounts_queried = False
        self.streams.clear()
        self.answers.clear()

    def snapshot_fields(self, conid: int, fields: set[str]) -> frozenset[str] | None:
        """The field ids served for `conid` now: None for the first request (it opens the
        stream), else those subscribed by earlier requests; `fields` are added for next time."""
        subscribed = self.streams.get(conid)
        self.streams[conid] = (subscribed or set()) | fields
        if subscribed is None:
            return None
        self.answers[conid] = self.answers.get(conid, 0) + 1
        return frozenset(subscribed)

    def unsubscribe(self, conid: int) -> bool:
        self.answers.pop(conid, None)
        return self.streams.pop(conid, None) is not None
