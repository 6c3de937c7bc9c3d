"""Everything a listener does, as a user with exactly PulseGuardian's permissions (the
``pulse_user`` fixture on a private node: configure and write ``queue/<user>/.*`` and
``exchange/<user>/.*``, read those and every ``exchange/.*``): consume, retry, park,
requeue parked messages, count a redelivery, prune bindings, migrate to quorum queues.
The Taskcluster-like exchanges are declared by the publisher (guest), as on Pulse."""

from __future__ import annotations

import logging
import time
import uuid

import kombu
import pytest

from support.faultkit import Running, close_broker, wait_until
from support.listener_kit import Broker, slug, task_key, task_status
from tclisten.app import Listener
from tclisten.exchanges import QueueEvents

A, B = "AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"


@pytest.fixture
def publisher(pulse_user):
    """Taskcluster's side: declares the exchanges and publishes, as guest."""
    b = Broker(pulse_user.admin_url)
    b.exchange("task-completed")
    yield b
    close_broker(b)


@pytest.fixture
def refusals(caplog):
    """Every log line that says the broker refused something; must stay empty."""
    caplog.set_level(logging.INFO)
    yield lambda: [r.getMessage() for r in caplog.records if "ACCESS_REFUSED" in r.getMessage()
                   or "access refused" in r.getMessage().lower()]


def events(publisher: Broker):
    return QueueEvents({"exchangePrefix": publisher.prefix}).taskCompleted


def publish(publisher: Broker, group: str = A, task: str | None = None) -> str:
    task = task or slug()
    publisher.publish("task-completed", task_key(task, group), task_status(task, group))
    return task


def count(pulse_user, queue: str) -> int:
    with kombu.Connection(pulse_user.admin_url, connect_timeout=10) as conn:
        return conn.channel().queue_declare(queue, passive=True).message_count


def test_consume_retry_park_requeue_and_redelivery_as_a_pulse_user(pulse_user, publisher, refusals):
    app = Listener(f"test-{uuid.uuid4().hex[:6]}", broker_url=pulse_user, retry={"max_attempts": 2, "delay": 0.2})
    assert app.queue_name == f"queue/{pulse_user.name}/{app.name}"
    fails_once, always_fails, heals = slug(), slug(), set()
    attempts: dict[str, list[int]] = {}

    @app.on(events(publisher))
    def handle(message, ctx):
        task = message.routing.taskId
        attempts.setdefault(task, []).append(message.attempt)
        if task == fails_once and message.attempt == 1:
            raise RuntimeError("fails once")
        if task == always_fails and task not in heals:
            raise RuntimeError("always fails")

    app.declare()
    redelivered = publish(publisher)
    with kombu.Connection(pulse_user, connect_timeout=10) as conn:  # taken, never acked: a redelivery
        channel = conn.channel()
        assert wait_until(lambda: channel.basic_get(app.queue_name, no_ack=False), 10, "the message to take")
        channel.close()
    with Running(app) as running:
        wait_until(lambda: running.check() or app.stats.connected_now, 20, "the listener to consume")
        plain = publish(publisher)
        for task in (fails_once, always_fails):
            publish(publisher, task=task)
        wait_until(lambda: running.check() or (app.stats.parked == 1 and fails_once in attempts
                                               and len(attempts[fails_once]) == 2), 30, "the retry and the park")
        assert [p.task_id for p in app.parked()] == [always_fails]
        heals.add(always_fails)
        assert app.requeue_parked() == 1
        wait_until(lambda: running.check() or len(attempts[always_fails]) == 3, 20, "the requeued message")
        wait_until(lambda: running.check() or count(pulse_user, app.queue_name) == 0, 20, "an empty queue")
    assert attempts[plain] == [1]
    assert attempts[fails_once] == [1, 2]
    assert attempts[always_fails] == [1, 2, 1]  # parked after 2, requeued from attempt 1
    assert attempts[redelivered] == [2]  # the redelivery counted as an attempt
    assert app.parked() == []
    assert refusals() == []


def test_binding_pruning_as_a_pulse_user(pulse_user, publisher, refusals):
    name = f"test-{uuid.uuid4().hex[:6]}"

    def handle(message, ctx):
        pass

    def version(*groups):
        app = Listener(name, broker_url=pulse_user)
        for group in groups:
            app.add_handler(handle, events(publisher), taskGroupId=group, name="h")
        return app

    v1 = version(A, B)
    assert v1.declare() == []
    v2 = version(A)
    removed = v2.declare()
    assert [pattern for _, pattern in removed] == [b.pattern for b in v1.bindings if B in b.pattern]
    publish(publisher, B)
    publish(publisher, A)
    wait_until(lambda: count(pulse_user, v2.queue_name) == 1, 10, "the A message only")
    time.sleep(0.3)
    assert count(pulse_user, v2.queue_name) == 1
    assert refusals() == []


def test_migrating_to_quorum_as_a_pulse_user(pulse_user, publisher, refusals, private_node):
    """Migration publishes only through the listener's own exchange (a Pulse user may not
    publish to the default exchange), and every queue it creates is under queue/<user>/."""
    from tclisten.migrate import migrate

    name = f"test-{uuid.uuid4().hex[:6]}"
    retry = {"max_attempts": 2, "delay": 30.0}
    old = Listener(name, broker_url=pulse_user, retry=retry)
    old.add_handler(lambda m, c: None, events(publisher), name="h")
    old.declare()
    tasks = [publish(publisher) for _ in range(30)]
    wait_until(lambda: count(pulse_user, old.queue_name) == 30, 10, "30 messages")
    with kombu.Connection(pulse_user, connect_timeout=10, transport_options={"confirm_publish": True}) as conn:
        # what migrating could not do: Pulse users may not publish to the default exchange
        with pytest.raises(conn.channel_errors, match="ACCESS_REFUSED"):
            kombu.Producer(conn.channel()).publish({}, routing_key=old.queue_name, retry=False)
    counts = migrate(old, "quorum", log=lambda line: None)
    assert counts[old.queue_name] == 30
    types = {q: row["type"] for q, row in private_node.queues().items() if q.startswith(f"queue/{pulse_user.name}/")}
    assert types == {q: "quorum" for q in old.queue_names()}
    handled: list[str] = []
    new = Listener(name, broker_url=pulse_user, retry=retry, queue_type="quorum")
    new.add_handler(lambda m, c: handled.append(m.routing.taskId), events(publisher), name="h")
    with Running(new) as running:
        wait_until(lambda: running.check() or len(handled) >= 30, 20, "the migrated messages")
    assert sorted(handled) == sorted(tasks)
    assert refusals() == []
