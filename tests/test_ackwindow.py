"""The ack window: the only code that acks; never an unsettled delivery, finished work within
a bounded time, batches in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tclisten.ackwindow import AckWindow


class Tag:
    """A delivery as the window sees it; records what the broker was told."""

    def __init__(self, tag: int, log: list) -> None:
        self.tag, self.log = tag, log

    def ack(self, multiple: bool = False) -> None:
        self.log.append(("ack", self.tag, multiple))

    def reject(self, requeue: bool) -> None:
        self.log.append(("reject", self.tag, requeue))


def acked_by(log: list, tags: int) -> set[int]:
    """The tags the broker considers acked after ``log`` (RabbitMQ's multiple semantics)."""
    done: set[int] = set()
    for kind, tag, flag in log:
        if kind == "ack":
            done.update(range(1, tag + 1) if flag else (tag,))
        else:
            done.add(tag)
    return done


def test_in_order_deliveries_are_acked_in_batches():
    log: list = []
    window = AckWindow(batch=3, max_delay=1.0)
    slots = [window.add(Tag(n, log)) for n in range(1, 7)]
    for slot in slots:
        window.done(slot, now=0.0)
    assert log == [("ack", 3, True), ("ack", 6, True)]
    assert window.acked == 6


def test_a_short_run_waits_at_most_max_delay():
    log: list = []
    window = AckWindow(batch=100, max_delay=1.0)
    window.done(window.add(Tag(1, log)), now=0.0)
    window.flush(now=0.5)
    assert log == []
    window.flush(now=1.0)
    assert log == [("ack", 1, True)]


def test_finished_behind_a_running_one_is_acked_alone_and_never_the_running_one():
    log: list = []
    window = AckWindow(batch=2, max_delay=1.0)
    slow, *rest = [window.add(Tag(n, log)) for n in range(1, 12)]
    for slot in rest:
        window.done(slot, now=0.0)
    assert log == []  # nothing at the head is settled: no multiple ack may be sent
    window.flush(now=1.0)
    assert sorted(tag for _, tag, multiple in log) == list(range(2, 12))
    assert all(not multiple for _, _, multiple in log)
    assert 1 not in acked_by(log, 11)
    window.done(slow, now=2.0)
    window.flush(now=3.1)
    assert acked_by(log, 11) == set(range(1, 12))
    assert len(window) == 0


def test_give_back_rejects_and_the_run_goes_past_it():
    log: list = []
    window = AckWindow(batch=10, max_delay=1.0)
    a, b, c = (window.add(Tag(n, log)) for n in (1, 2, 3))
    window.give_back(b)
    window.done(a, now=0.0)
    window.done(c, now=0.0)
    window.flush(force=True)
    assert ("reject", 2, True) in log
    assert log[-1] == ("ack", 3, True)
    assert window.rejected == 1


def test_forget_drops_everything_after_a_lost_channel():
    window = AckWindow(batch=10)
    for n in range(5):
        window.add(Tag(n, []))
    assert window.forget() == 5
    assert len(window) == 0


def test_each_mode_acks_one_by_one():
    log: list = []
    window = AckWindow(batch=10, each=True)
    for n in (1, 2):
        window.done(window.add(Tag(n, log)))
    assert log == [("ack", 1, False), ("ack", 2, False)]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=10), st.randoms())
def test_never_acks_an_unsettled_delivery_and_settles_everything(count, batch, rnd):
    log: list = []
    window = AckWindow(batch=batch, max_delay=1.0)
    slots = [window.add(Tag(n, log)) for n in range(1, count + 1)]
    order = list(range(count))
    rnd.shuffle(order)
    now = 0.0
    settled: set[int] = set()
    for index in order:
        now += rnd.random()
        if rnd.random() < 0.1:
            window.give_back(slots[index])
        else:
            window.done(slots[index], now=now)
        settled.add(index + 1)
        window.flush(now=now)
        assert acked_by(log, count) <= settled
    window.flush(force=True)
    assert acked_by(log, count) == set(range(1, count + 1))
    seen: set[int] = set()
    for kind, tag, multiple in log:  # the tag an ack names is always still unacked (else: channel error)
        assert tag not in seen
        seen.update(range(1, tag + 1) if kind == "ack" and multiple else (tag,))
    assert len(window) == 0
