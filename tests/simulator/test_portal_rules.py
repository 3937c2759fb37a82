"""The Portal side's pure rules: pacing arithmetic, the session's states, how values are written."""

from __future__ import annotations

import pytest

from simulator import portal_format as fmt
from simulator.model import Market
from simulator.portal_pacing import Pacing
from simulator.portal_session import PortalSession, SessionState

T0 = 1_000.0


@pytest.mark.parametrize(
    ("requests", "refused_at"),
    [
        ([("/tickle", 0.0), ("/tickle", 0.5)], 1),  # 1 a second
        ([("/tickle", 0.0), ("/tickle", 1.0)], None),
        ([("/portfolio/accounts", 0.0), ("/portfolio/accounts", 4.9)], 1),  # 1 per 5 s
        ([("/portfolio/accounts", 0.0), ("/portfolio/accounts", 5.0)], None),
        ([("/sso/validate", 0.0), ("/sso/validate", 59.0)], 1),  # 1 a minute
        ([("/iserver/marketdata/snapshot", i * 0.01) for i in range(11)], 10),  # 10 a second
        ([(f"/x{i}", i * 0.01) for i in range(11)], 10),  # 10 a second overall
        ([(f"/x{i}", i * 0.11) for i in range(11)], None),
    ],
)
def test_pacing_refuses_exactly_the_request_past_a_limit(
    requests: list[tuple[str, float]], refused_at: int | None
) -> None:
    """The documented limits refuse the request that breaks them and no earlier one."""
    pacing = Pacing(penalty_s=60)
    results = [pacing.admit(path, at) for path, at in requests]
    assert results == [refused_at is None or index < refused_at for index in range(len(requests))]


def test_the_penalty_refuses_everything_for_its_length_then_ends() -> None:
    """After a 429 every request is refused until `penalty_s` has passed, then all is forgotten."""
    pacing = Pacing(penalty_s=60)
    assert pacing.admit("/tickle", 0.0)
    assert not pacing.admit("/tickle", 0.5)
    assert not pacing.admit("/iserver/auth/status", 60.4)
    assert pacing.admit("/iserver/auth/status", 60.6)
    assert pacing.admit("/tickle", 60.7)


def _state(session: PortalSession) -> SessionState:
    """The state now (a call, so the type checker does not carry an earlier assert over)."""
    return session.state


def _session(*, open_brokerage_on_login: bool = True) -> PortalSession:
    return PortalSession(360.0, T0, open_brokerage_on_login=open_brokerage_on_login)


def test_the_login_opens_the_brokerage_session_unless_told_not_to() -> None:
    """A logged-in gateway has its brokerage session, as the real one opens it after login."""
    assert _session().state is SessionState.BROKERAGE
    assert _session(open_brokerage_on_login=False).state is SessionState.NO_BRIDGE


def test_requests_keep_the_session_alive_and_idling_expires_it() -> None:
    """Each request restarts the idle clock; past `idle_expiry_s` without one, it expires."""
    session = _session()
    session.on_request(T0 + 300, login_valid=True, reset_under_way=False)
    session.on_request(T0 + 600, login_valid=True, reset_under_way=False)
    assert _state(session) is SessionState.BROKERAGE
    session.on_request(T0 + 961, login_valid=True, reset_under_way=False)
    assert _state(session) is SessionState.EXPIRED
    session.on_request(T0 + 962, login_valid=True, reset_under_way=False)
    assert _state(session) is SessionState.EXPIRED
    assert session.open_brokerage(T0 + 963)
    assert _state(session) is SessionState.BROKERAGE


def test_a_reset_closes_the_brokerage_session_and_its_streams() -> None:
    """A reset leaves the login but closes the bridge, its market data streams and accounts."""
    session = _session()
    session.accounts_queried = True
    session.snapshot_fields(700001, {"31"})
    session.on_request(T0 + 1, login_valid=True, reset_under_way=True)
    assert (session.state, session.streams, session.accounts_queried) == (
        SessionState.NO_BRIDGE, {}, False,
    )  # fmt: skip


def test_a_lost_login_ends_everything_until_it_returns() -> None:
    """Without a valid login nothing can open a session; when it returns, a fresh one opens."""
    session = _session()
    session.on_request(T0 + 1, login_valid=False, reset_under_way=False)
    assert _state(session) is SessionState.LOGGED_OUT
    assert not session.open_brokerage(T0 + 2)
    session.on_request(T0 + 3, login_valid=True, reset_under_way=False)
    assert _state(session) is SessionState.BROKERAGE


def test_after_a_logout_only_a_login_opens_a_session() -> None:
    """/logout ends the session; requests and ssodh/init do not bring it back, a login does."""
    session = _session()
    session.log_out()
    session.on_request(T0 + 1, login_valid=True, reset_under_way=False)
    assert not session.open_brokerage(T0 + 2)
    assert _state(session) is SessionState.LOGGED_OUT
    session.log_in(T0 + 3)
    assert _state(session) is SessionState.BROKERAGE


def test_snapshot_fields_arrive_from_the_request_after_they_were_asked_for() -> None:
    """The first request opens the stream (no values); later ones serve every field asked so far."""
    session = _session()
    assert session.snapshot_fields(1, {"31"}) is None
    assert session.snapshot_fields(1, {"7308"}) == frozenset({"31"})
    assert session.snapshot_fields(1, set()) == frozenset({"31", "7308"})
    assert session.unsubscribe(1)
    assert not session.unsubscribe(1)
    assert session.snapshot_fields(1, {"31"}) is None


@pytest.mark.parametrize(
    ("formatted", "expected"),
    [
        (fmt.price(168.42), "168.42"),
        (fmt.price(0.1 + 0.2), "0.30000000000000004"),  # every digit, for exact sums
        (fmt.price(None), None),
        (fmt.size(1300.0), "1,300"),
        (fmt.size(100.0), "100"),
        (fmt.volume(10_200.0), "10.2K"),
        (fmt.volume(10_000.0), "10K"),
        (fmt.volume(1_234_567.0), "1.23M"),
        (fmt.volume(500.0), "500"),
        (fmt.strike(440.0), "440"),
        (fmt.strike(187.5), "187.5"),
        (fmt.strike(None), "0"),
        (fmt.multiplier(100.0), 100),
        (fmt.multiplier(2.5), 2.5),
    ],
)
def test_values_are_written_as_the_gateway_writes_them(formatted: object, expected: object) -> None:
    """Sizes carry thousands separators, volumes a K/M suffix, strikes no needless decimals."""
    assert formatted == expected
    assert type(formatted) is type(expected)


def test_descriptions_follow_the_recorded_examples(market: Market) -> None:
    """contractDesc, fullName and contract info's text read like IBKR's own."""
    call, stock, future = (market.instrument(c) for c in (700001, 756733, 495512563))
    assert call is not None
    assert stock is not None
    assert future is not None
    assert call.expiry is not None
    month = fmt.contract_description(call).split()[1]
    assert fmt.contract_description(call) == (
        f"SPY    {month} 620 C [SPY   {call.expiry[2:]}C00620000 100]"
    )
    assert fmt.contract_description(stock) == "SPY"
    assert fmt.contract_description(future).startswith("ES ")
    assert fmt.full_name(call).endswith(" 620 Call")
    text = fmt.contract_text(call)
    assert text is not None
    assert text.endswith(f"'{call.expiry[2:4]} 620 Call")
    assert fmt.position_multiplier(stock) is None
    assert fmt.position_multiplier(future) == 50
