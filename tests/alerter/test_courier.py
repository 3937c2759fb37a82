"""The courier alone: a step's transitions queued as one notification per target, sent to a
real webhook receiver, told back, and kept in the outbox while a target is down."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alerter.courier import Courier
from alerter.delivery import parse_targets
from alerter.episodes import Episode
from alerter.state import Alert
from alerter.transitions import Transition
from tests.fixtures.receiver import Receiver

T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


def _fired(subject: str) -> Transition:
    episode = Episode(past_since=T0, fired_at=T0, number=1, value=130.0, limit=100.0)
    alert = Alert("delta cap", subject, "net_dollar_delta", subject, episode)
    return Transition(alert, "fired", T0, T0, T0)


class Told:
    """What the courier tells back: the alerts delivered, and each time it settled."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, ...]] = []
        self.settled = asyncio.Event()

    def on_delivered(self, alerts: tuple[str, ...], _at: datetime) -> None:
        self.delivered.append(alerts)

    def on_settled(self) -> None:
        self.settled.set()


def _courier(urls: str, told: Told) -> Courier:
    return Courier(
        parse_targets(urls), retry_delays_s=(60.0,), give_up_s=3600.0,
        clock=lambda: T0, steady_now=lambda: T0,
        on_delivered=told.on_delivered, on_settled=told.on_settled,
    )  # fmt: skip


async def test_a_steps_changes_go_as_one_notification_and_are_told_back(
    receiver: Receiver,
) -> None:
    """Two alerts fired in one step: one request to the target naming both; the courier says
    which alerts were delivered, then that it settled, and its outbox is empty."""
    told = Told()
    courier = _courier(receiver.url(), told)
    courier.queue([_fired("DU0001"), _fired("DU0002")], T0)
    assert len(courier.outbox.pending) == 1
    courier.dispatch()
    await asyncio.wait_for(told.settled.wait(), 30)
    assert told.delivered == [("delta cap|DU0001", "delta cap|DU0002")]
    assert [body["title"] for body in receiver.received] == [
        "FIRING: delta cap (DU0001); FIRING: delta cap (DU0002)"
    ]
    assert [waiting.id for waiting in courier.outbox.pending] == []
    assert courier.unsaved is True
    courier.saved()
    assert courier.unsaved is False
    await courier.close()


async def test_a_target_down_keeps_the_notification_for_its_retry(receiver: Receiver) -> None:
    """The target refuses: nothing is told delivered, the notification waits in the outbox
    with one attempt counted, due after the first retry delay."""
    receiver.down()
    told = Told()
    courier = _courier(receiver.url(), told)
    courier.queue([_fired("DU0001")], T0)
    courier.dispatch()
    await asyncio.wait_for(told.settled.wait(), 30)
    assert told.delivered == []
    [waiting] = courier.outbox.pending
    assert waiting.attempts == 1
    assert waiting.due_at > T0
    await courier.close()
