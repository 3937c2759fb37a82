"""Retry schedule and outbox order (pure), and URLs that are never echoed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alerter.delivery import Notification, Outbox, combine, parse_targets, retry_at
from alerter.errors import TargetError

T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempts", "after_s"),
    [(1, 5), (2, 30), (3, 120), (4, 120), (10, 120)],  # the last delay repeats
)
def test_retry_schedule(attempts: int, after_s: float) -> None:
    """The n-th retry waits the n-th delay of the schedule; past its end the last one repeats."""
    assert retry_at(attempts, T0, (5, 30, 120)) == T0 + timedelta(seconds=after_s)


@pytest.mark.parametrize(("jitter", "after_s"), [(0.0, 27), (0.5, 30), (1.0, 33)])
def test_a_retry_delay_is_spread_by_up_to_a_tenth_either_way(jitter: float, after_s: float) -> None:
    """So that what an outage held back does not come back to a service in one second."""
    assert retry_at(2, T0, (5, 30, 120), jitter=jitter) == T0 + timedelta(seconds=after_s)


def _note(id_: str, target: str = "t1", due_s: float = 0) -> Notification:
    return Notification(id_, ("a|x",), target, "fired", "t", "b", T0 + timedelta(seconds=due_s))


def test_a_targets_notifications_go_one_at_a_time_in_order_and_others_do_not_wait() -> None:
    """a1 failing on t1 holds a2 back (a resolution never overtakes its firing, and a storm is
    a queue), not b1 on t2; one in flight holds its target's next one."""
    outbox = Outbox([_note("a1"), _note("a2"), _note("b1", "t2"), _note("b2", "t2")])
    assert [n.id for n in outbox.due(T0)] == ["a1", "b1"]
    retried = outbox.failed("a1", T0, (5,), give_up_s=3600)
    assert retried is not None
    assert retried.attempts == 1
    assert [n.id for n in outbox.due(T0)] == ["b1"]  # a1 is due at +5 s, a2 behind it
    assert [n.id for n in outbox.due(T0, busy={"b1"})] == []
    outbox.delivered("b1")
    outbox.delivered("a1")
    assert [n.id for n in outbox.due(T0)] == ["a2", "b2"]


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ("json://127.0.0.1:9/hook nope://user:hunter2@host/x", "target 2 (nope) is not a URL"),
        ("hunter2-no-scheme", "target 1 (no scheme) is not a URL"),
    ],
)
def test_a_bad_url_is_named_without_its_secret(urls: str, message: str) -> None:
    """A URL that is not one is named by its position and scheme, never by its text (it may hold a
    password)."""
    with pytest.raises(TargetError) as caught:
        parse_targets(urls)
    assert str(caught.value).startswith(message)
    assert "hunter2" not in str(caught.value)


def test_good_urls_are_kept_secret() -> None:
    """Each target is labelled by its position and scheme; its URL shows in no repr or str."""
    (first, second) = parse_targets("json://user:hunter2@127.0.0.1:9/a  ntfy://topic-hunter2")
    assert (first.label, second.label) == ("target 1 (json)", "target 2 (ntfy)")
    assert "hunter2" not in repr(first) + str(first) + repr(second)


def test_a_targets_key_follows_its_url_not_its_position() -> None:
    """The key the outbox keeps is the same wherever the URL stands in the list, differs
    between URLs, and does not contain the URL's secret."""
    first, second = parse_targets("json://user:hunter2@127.0.0.1:9/a ntfy://topic")
    swapped_second, swapped_first = parse_targets("ntfy://topic json://user:hunter2@127.0.0.1:9/a")
    assert (first.key, second.key) == (swapped_first.key, swapped_second.key)
    assert first.key != second.key
    assert "hunter2" not in first.key


def test_a_notification_tried_until_the_give_up_time_is_dropped() -> None:
    """Queued at T0, give up after an hour: a failure before it is retried, one at it drops
    the notification (the caller logs it), so a service gone for good is not tried forever."""
    outbox = Outbox([replace(_note("a1"), queued_at=T0)])
    assert outbox.failed("a1", T0 + timedelta(seconds=3599), (5,), give_up_s=3600) is not None
    assert outbox.failed("a1", T0 + timedelta(seconds=3600), (5,), give_up_s=3600) is None
    assert outbox.pending == ()


def test_what_waited_for_a_target_goes_as_one_request() -> None:
    """a1 failed on t1 and a2 queued behind it: once a1 is due again, both go in one request
    (titles named, bodies in order, a warning while one fires); b1 on t2 is not in it."""
    outbox = Outbox([_note("a1"), _note("b1", "t2")])
    outbox.failed("a1", T0, (5,), give_up_s=3600)
    outbox.add(Notification("a2", ("a|x",), "t1", "resolved", "RESOLVED: a (x)", "back", T0, 0, T0))
    later = T0 + timedelta(seconds=6)
    (head, other) = outbox.due(later)
    batch = outbox.batch(head, later)
    assert ([n.id for n in batch], other.id) == (["a1", "a2"], "b1")
    assert combine(batch) == ("2 notifications held back: t; RESOLVED: a (x)",
                              "t\nb\n\nRESOLVED: a (x)\nback", "fired")  # fmt: skip
    assert combine([other]) == ("t", "b", "fired")
