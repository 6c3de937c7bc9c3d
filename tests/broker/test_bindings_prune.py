"""Bindings follow the code (tclisten.declare), on the broker on 5672 with queues and exchanges
of the tests' own: a binding the new version no longer declares is removed at its start and
the log says which; ``prune_bindings=False`` keeps it; a message that races the change is
acked and counted as unmatched, not parked."""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from support.faultkit import Running, wait_until
from support.listener_kit import Broker, slug, task_key, task_status
from tclisten.app import Listener
from tclisten.exchanges import QueueEvents
from tclisten.health import render_metrics

A, B = "AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"  # two taskGroupIds


def version(broker: Broker, name: str, groups: tuple[str, ...], calls: list | None = None, **options) -> Listener:
    """The listener as one version of the code declares it: one handler bound per task group."""
    app = Listener(name, broker_url=broker.url, declare_exchanges=True, **options)
    events = QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted

    def handle(message, ctx):
        if calls is not None:
            calls.append(message.routing.taskGroupId)

    for group in groups:
        app.add_handler(handle, events, taskGroupId=group, name="handle")
    broker.forget_listener(app)
    return app


def publish(broker: Broker, group: str) -> None:
    task = slug()
    broker.publish("task-completed", task_key(task, group), task_status(task, group))  # confirmed: routed


def stays(broker: Broker, queue: str, count: int, seconds: float = 0.5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if broker.count(queue) != count:
            return False
        time.sleep(0.05)
    return True


def purge(broker: Broker, queue: str) -> None:
    with broker.conn.channel() as channel:
        channel.queue_purge(queue)


def pattern_of(app: Listener, group: str) -> tuple[str, str]:
    found, = [(b.exchange, b.pattern) for b in app.bindings if group in b.pattern]
    return found


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_the_next_version_removes_the_binding_it_no_longer_declares(broker, name, caplog):
    caplog.set_level(logging.INFO, logger="tclisten.declare")
    v1 = version(broker, name, (A, B))
    assert v1.declare() == []
    publish(broker, B)
    wait_until(lambda: broker.count(v1.queue_name) == 1, 10, "the B message in the queue")
    purge(broker, v1.queue_name)

    v2 = version(broker, name, (A,))
    stale = pattern_of(v1, B)
    assert v2.declare() == [stale]
    assert (f"removed binding {stale[0]} {stale[1]!r} of {v2.queue_name}: the code no longer declares it"
            in caplog.messages)
    publish(broker, B)
    assert stays(broker, v2.queue_name, 0)  # the old binding is gone
    publish(broker, A)
    wait_until(lambda: broker.count(v2.queue_name) == 1, 10, "the A message in the queue")
    caplog.clear()
    assert v2.declare() == [] and not caplog.messages  # removed once, not at every start


def test_prune_bindings_false_keeps_the_old_binding(broker, name):
    v1 = version(broker, name, (A, B))
    v1.declare()
    v2 = version(broker, name, (A,), prune_bindings=False)
    assert v2.declare() == []
    publish(broker, B)
    wait_until(lambda: broker.count(v2.queue_name) == 1, 10, "the B message, through the kept binding")
    purge(broker, v2.queue_name)
    # the kept binding stays on record: a later version that prunes removes it
    v3 = version(broker, name, (A,))
    assert v3.declare() == [pattern_of(v1, B)]
    publish(broker, B)
    assert stays(broker, v3.queue_name, 0)


def test_a_message_racing_the_change_is_acked_and_counted_not_parked(broker, name):
    v1 = version(broker, name, (A, B))
    v1.declare()
    calls: list[str] = []
    v2 = version(broker, name, (A,), calls=calls)
    stale = pattern_of(v1, B)
    with Running(v2) as running:
        wait_until(lambda: running.check() or v2.stats.connected_now, 20, "v2 to consume")
        # v1 still running somewhere re-binds B (or a B message was already in the queue)
        broker.channel.queue_bind(v2.queue_name, stale[0], stale[1])
        publish(broker, B)
        publish(broker, A)
        wait_until(lambda: running.check() or v2.stats.acked == 2, 20, "both messages acked")
    assert calls == [A]
    assert v2.stats.unmatched == 1 and v2.stats.parked == 0
    assert broker.count(v2.topology.parked_name) == 0 and broker.count(v2.queue_name) == 0
    assert "tclisten_unmatched_total 1" in render_metrics(v2.stats).splitlines()
