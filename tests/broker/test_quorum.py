"""Quorum queues on a private node: every queue of the listener is quorum, retries wait in
quorum delay queues and dead-letter back, options quorum queues cannot honour are refused at
construction, declaring over a queue of the other type says how to migrate (the exact text,
both directions), and the broker's ``x-delivery-count`` counts as attempts."""

from __future__ import annotations

import time
import uuid

import kombu
import pytest

from support.faultkit import Running, close_broker, tally, wait_until
from support.listener_kit import GROUP, Broker, slug, task_key, task_status
from tclisten.app import Listener
from tclisten.exceptions import BrokerError, ConfigError
from tclisten.exchanges import QueueEvents
from tclisten.topology import Topology


@pytest.fixture
def broker(private_node):
    """Publishes like Taskcluster on the private node; deletes what the test made."""
    b = Broker(private_node.url)
    yield b
    close_broker(b)


def make(broker: Broker, name: str | None = None, **options) -> Listener:
    options.setdefault("queue_type", "quorum")
    app = Listener(name or f"test-{uuid.uuid4().hex[:8]}", broker_url=broker.url, declare_exchanges=True,
                   **options)
    broker.forget_listener(app)
    return app


def publish_one(broker: Broker, task: str) -> None:
    broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))


def arguments(row: dict) -> dict:
    """A queue's arguments from ``rabbitmqctl list_queues`` ([name, type, value] triples)."""
    return {name: value for name, _, value in row["arguments"]}


# -- options ----------------------------------------------------------------------------------

def test_overflow_quorum_queues_do_not_support_is_refused_at_construction():
    with pytest.raises(ConfigError) as refused:
        Listener("x", broker_url="amqp://guest:guest@127.0.0.1:5672//", queue_type="quorum",
                 overflow="reject-publish-dlx", max_length=10)
    assert str(refused.value) == ("overflow 'reject-publish-dlx' is not supported by quorum queues; "
                                  "use one of drop-head, reject-publish")
    for overflow in ("drop-head", "reject-publish"):
        app = Listener("x", broker_url="amqp://guest:guest@127.0.0.1:5672//", queue_type="quorum",
                       overflow=overflow, max_length=10, expires=60_000)
        assert app.topology.main_queue().queue_arguments == {
            "x-max-length": 10, "x-overflow": overflow, "x-expires": 60_000, "x-queue-type": "quorum"}
    # a classic queue takes it
    Listener("x", broker_url="amqp://guest:guest@127.0.0.1:5672//", overflow="reject-publish-dlx")
    with pytest.raises(ConfigError, match="queue_type must be one of classic, quorum"):
        Topology("u", "x", queue_type="stream")


# -- the queues ---------------------------------------------------------------------------------

def test_every_queue_of_the_listener_is_a_quorum_queue(private_node, broker):
    app = make(broker, retry={"max_attempts": 3, "delay": 1.0, "backoff": 2.0}, max_length=1000,
               overflow="reject-publish")
    app.add_handler(lambda m, c: None, QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted, name="h")
    app.declare()
    queues = private_node.queues()
    names = app.queue_names()
    t = app.topology
    assert {t.queue_name, t.parked_name, t.bindings_name, f"{t.queue_name}/retry/1000",
            f"{t.queue_name}/retry/2000"} <= set(names)
    assert {name: queues[name]["type"] for name in names} == {name: "quorum" for name in names}
    assert all(queues[name]["durable"] and not queues[name]["auto_delete"] for name in names)
    delay = arguments(queues[f"{app.queue_name}/retry/2000"])
    assert delay["x-message-ttl"] == 2000 and delay["x-dead-letter-routing-key"] == "due"
    assert delay["x-dead-letter-exchange"] == app.topology.exchange.name
    main = arguments(queues[app.queue_name])
    assert main["x-max-length"] == 1000 and main["x-overflow"] == "reject-publish"


def test_a_failing_handler_waits_in_the_quorum_delay_queue_then_is_parked(private_node, broker):
    app = make(broker, retry={"max_attempts": 3, "delay": 0.6, "backoff": 1.0})
    attempts: list[tuple[int, float]] = []

    @app.on(QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted)
    def fails(message, ctx):
        attempts.append((message.attempt, time.monotonic()))
        raise RuntimeError("boom")

    app.declare()
    task = slug()
    with Running(app) as running:
        wait_until(lambda: running.check() or app.stats.connected_now, 30, "the listener to consume")
        publish_one(broker, task)
        wait_until(lambda: running.check() or app.stats.parked == 1, 30, "the message to be parked")
    assert [a for a, _ in attempts] == [1, 2, 3]
    gaps = [later - earlier for (_, earlier), (_, later) in zip(attempts, attempts[1:])]
    assert all(gap >= 0.55 for gap in gaps), gaps  # waited in the broker, not in the listener
    assert app.stats.retried == 2
    parked = app.parked()
    assert [(p.task_id, p.attempts) for p in parked] == [(task, 3)]
    assert parked[0].reason.startswith("failed 3 attempts; ") and "boom" in parked[0].reason
    wait_until(lambda: private_node.queue_counts(app.queue_name) == (0, 0), 20, "the main queue to be empty")
    assert private_node.queue_counts(f"{app.queue_name}/retry/600") == (0, 0)


@pytest.mark.parametrize("existing, wanted", [("classic", "quorum"), ("quorum", "classic")])
def test_declaring_over_a_queue_of_the_other_type_says_how_to_migrate(broker, existing, wanted):
    name = f"test-{uuid.uuid4().hex[:8]}"
    events = QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted
    before = make(broker, name, queue_type=existing)
    before.add_handler(lambda m, c: None, events, name="h")
    before.declare()
    after = make(broker, name, queue_type=wanted)
    after.add_handler(lambda m, c: None, events, name="h")
    with pytest.raises(BrokerError) as refused:
        after.declare()
    queue = f"queue/guest/{name}"
    assert str(refused.value) == (
        f"queue {queue!r} exists as a {existing} queue, but the listener declares a {wanted} queue: move its "
        f"messages with `tclisten migrate TARGET --queue-type {wanted}` (none is lost), or keep "
        f"queue_type={existing!r}")
    assert (refused.value.queue, refused.value.current_type, refused.value.wanted_type) == (queue, existing, wanted)
    assert "inequivalent arg 'x-queue-type'" in str(refused.value.__cause__)


# -- delivery counts ------------------------------------------------------------------------------

def redeliver(url: str, queue: str, times: int) -> list[int]:
    """Take the queue's message and give it back unacked (close the channel), ``times``
    times: the x-delivery-count each take saw."""
    seen = []
    with kombu.Connection(url, connect_timeout=15) as conn:
        for _ in range(times):
            channel = conn.channel()
            message = None
            deadline = time.monotonic() + 20
            while message is None and time.monotonic() < deadline:
                message = channel.basic_get(queue, no_ack=False)
                if message is None:
                    time.sleep(0.05)
            assert message is not None, f"no message in {queue}"
            seen.append(message.headers.get("x-delivery-count"))
            channel.close()  # unacked: back to the queue, counted
    return seen


def test_redeliveries_on_a_quorum_queue_count_as_attempts(broker):
    app = make(broker, retry={"max_attempts": 5, "delay": 0.1})
    seen = []

    @app.on(QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted)
    def record(message, ctx):
        seen.append((message.attempt, message.redelivered, message.headers.get("x-delivery-count")))

    app.declare()
    publish_one(broker, slug())
    assert redeliver(broker.url, app.queue_name, 2) == [0, 1]
    with Running(app) as running:
        wait_until(lambda: running.check() or seen, 30, "the message")
        wait_until(lambda: running.check() or app.stats.acked >= 1, 10, "the ack")
    assert [(attempt, redelivered) for attempt, redelivered, _ in seen] == [(3, True)]  # 1 + x-delivery-count 2
    assert app.stats.parked == 0


def test_a_message_delivered_max_attempts_times_without_an_outcome_is_parked(private_node, broker):
    app = make(broker, retry={"max_attempts": 3, "delay": 0.1})
    calls = []
    app.add_handler(lambda m, c: calls.append(m), QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted,
                    name="h")
    app.declare()
    task = slug()
    publish_one(broker, task)
    assert redeliver(broker.url, app.queue_name, 3) == [0, 1, 2]
    with Running(app) as running:
        wait_until(lambda: running.check() or app.stats.parked == 1, 30, "the message to be parked")
    assert calls == []  # parked before the handlers, which might kill the process again
    parked = app.parked()
    assert [p.task_id for p in parked] == [task]
    assert parked[0].reason == "delivered 3 times without an outcome (did the process die?)"
    wait_until(lambda: private_node.queue_counts(app.queue_name) == (0, 0), 20, "the main queue to be empty")


# -- migrating between the types (tclisten.migrate) --------------------------------------------------

def test_migrate_doctests_and_headers_of_moved_copies():
    import doctest

    from tclisten import migrate as module
    from tclisten.migrate import carried_headers

    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted >= 4
    own = "exchange/u/x"
    fresh = carried_headers({"CC": ["route.a"], "x-delivery-count": 0}, {"exchange": "ex", "routing_key": "k"}, own)
    assert fresh == {"x-tclisten-exchange": "ex", "x-tclisten-routing-key": "k", "x-tclisten-cc": ["route.a"],
                     "x-tclisten-attempt": 1}
    classic = carried_headers({}, {"exchange": "ex", "routing_key": "k", "redelivered": True}, own)
    assert classic["x-tclisten-attempt"] == 2 and classic["x-tclisten-redelivered"] is True
    retried = {"x-tclisten-exchange": "ex", "x-tclisten-routing-key": "k", "x-tclisten-attempt": 3,
               "x-tclisten-handlers": ["h"], "x-death": [{"count": 1}], "other": "kept"}
    again = carried_headers(retried, {"exchange": own, "routing_key": "retry.2000"}, own)
    assert again["x-tclisten-attempt"] == 3 and again["x-tclisten-handlers"] == ["h"] and again["other"] == "kept"
    assert "x-death" not in again
    record = carried_headers({"x-delivery-count": 1}, {"exchange": own, "routing_key": "bindings"}, own)
    assert record == {}
    unreadable = {"x-tclisten-exchange": "ex", "x-tclisten-attempt": "many"}
    assert carried_headers(unreadable, {"exchange": own, "routing_key": "due"}, own) == unreadable


class Publisher:
    """Publishes Taskcluster-style messages with publisher confirms from a thread, paced,
    until it has published ``count`` (the confirmed taskIds are in ``confirmed``)."""

    def __init__(self, url: str, exchange: str, count: int, interval: float) -> None:
        import threading

        self.url, self.exchange, self.count, self.interval = url, exchange, count, interval
        self.confirmed: list[str] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import json

        try:
            with kombu.Connection(self.url, transport_options={"confirm_publish": True}) as conn:
                producer = kombu.Producer(conn.channel())
                for _ in range(self.count):
                    task = slug()
                    producer.publish(json.dumps(task_status(task, GROUP)).encode(), exchange=self.exchange,
                                     routing_key=task_key(task, GROUP), content_type="application/json",
                                     content_encoding="utf-8", delivery_mode=2, retry=False)
                    self.confirmed.append(task)
                    time.sleep(self.interval)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.errors.append(exc)

    def __enter__(self) -> "Publisher":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join(120)
        if exc[0] is None and self.errors:
            raise self.errors[0]


def test_migrate_classic_to_quorum_while_publishing_loses_nothing(private_node, broker):
    """100 messages in the main queue, 10 parked, 5 waiting in a delay queue; migrated to
    quorum while 200 more are published: every message is in the new queues, and a quorum
    listener handles them all (the 5 after waiting their delay again)."""
    from tclisten.exceptions import Park
    from tclisten.migrate import SUFFIX, migrate

    name = f"test-{uuid.uuid4().hex[:8]}"
    retry = {"max_attempts": 3, "delay": 12.0, "backoff": 1.0}
    events = QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted
    parked_ids, retried_ids = {slug() for _ in range(10)}, {slug() for _ in range(5)}
    handled: list[tuple[str, bool]] = []
    seen: dict[str, tuple] = {}

    def handler(message, ctx):
        task = message.routing.taskId
        if task in parked_ids:
            raise Park("parked on purpose")
        if task in retried_ids and message.attempt == 1:
            raise RuntimeError("once")
        seen[task] = (message.exchange, message.routing_key, message.attempt)
        handled.append((task, message.redelivered))

    old = make(broker, name, queue_type="classic", retry=retry)
    old.add_handler(handler, events, name="h")
    old.declare()
    for task in sorted(parked_ids | retried_ids):
        publish_one(broker, task)
    with Running(old) as running:
        wait_until(lambda: running.check() or (old.stats.parked, old.stats.retried) == (10, 5), 30,
                   "10 parked, 5 retried")
    first = [slug() for _ in range(100)]
    for task in first:
        publish_one(broker, task)
    delay_queue = f"{old.queue_name}/retry/12000"
    wait_until(lambda: broker.count(old.queue_name) == 100, 20, "100 messages in the main queue")
    before = {q: broker.count(q) for q in old.queue_names()}
    assert before[old.topology.parked_name] == 10 and before[delay_queue] == 5 and before[old.topology.bindings_name] == 1

    assert len(old.parked()) == 10  # fetched and given back: redelivered, but not an attempt
    lines: list[str] = []
    with Publisher(broker.url, broker.exchange("task-completed"), 200, 0.01) as publisher:
        wait_until(lambda: len(publisher.confirmed) >= 10, 10, "the publisher to start")
        started = time.monotonic()
        at_start = len(publisher.confirmed)
        counts = migrate(old, "quorum", log=lines.append)
        migrated_in, at_end = time.monotonic() - started, len(publisher.confirmed)
    print(f"\nMIGRATE classic->quorum: {counts} in {migrated_in:.1f} s; published before {at_start}, during "
          f"{at_end - at_start}, after {200 - at_end}\n" + "\n".join(lines))
    assert len(publisher.confirmed) == 200
    assert at_end - at_start >= 50  # the main queue moved while messages kept coming
    queues = private_node.queues()
    assert {q: queues[q]["type"] for q in old.queue_names()} == {q: "quorum" for q in old.queue_names()}
    assert not [q for q in queues if q.endswith(SUFFIX)]
    assert set(counts) == set(old.queue_names())
    assert counts[old.topology.parked_name] == 10 and counts[old.topology.bindings_name] == 1
    after = {q: broker.count(q) for q in old.queue_names()}
    assert after[old.topology.parked_name] == 10 and after[old.topology.bindings_name] == 1
    # the delayed ones may have dead-lettered into the main queue by now
    assert after[old.queue_name] + after[delay_queue] >= 305, after

    new = make(broker, name, queue_type="quorum", retry=retry)
    new.add_handler(handler, events, name="h")
    expected = set(first) | set(publisher.confirmed) | retried_ids
    with Running(new) as running:
        wait_until(lambda: running.check() or {t for t, _ in handled} >= expected, 60,
                   "every message handled by the quorum listener", interval=0.1)
    result = tally(expected, [h for h in handled if h[0] in expected])
    print(result.line("MIGRATE then consume"))
    assert result.lost == 0
    assert result.duplicates <= 4  # a publish in the instant a binding moves may reach both queues
    assert not {t for t, _ in handled} - expected - parked_ids
    some = first[0]
    assert seen[some] == (broker.exchange("task-completed"), task_key(some, GROUP), 1)
    assert all(seen[t][2] == 2 for t in retried_ids)
    assert sorted(p.task_id for p in new.parked()) == sorted(parked_ids)
    assert {p.attempts for p in new.parked()} == {1}
    assert "parked on purpose" in new.parked()[0].reason  # the parked record survived the move


def test_migrate_quorum_to_classic_and_resume_an_interrupted_move(private_node, broker):
    """The other way round (quorum queues have no if-empty delete), and a temporary queue
    left by an interrupted run is emptied into the queue of the new type."""
    from tclisten.migrate import SUFFIX, migrate

    name = f"test-{uuid.uuid4().hex[:8]}"
    events = QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted
    app = make(broker, name, queue_type="quorum", retry={"max_attempts": 2, "delay": 30.0})
    app.add_handler(lambda m, c: None, events, name="h")
    app.declare()
    tasks = [slug() for _ in range(20)]
    for task in tasks:
        publish_one(broker, task)
    leftover = app.topology.parked_name + SUFFIX
    broker.queues.add(leftover)
    with kombu.Connection(broker.url, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        channel.queue_declare(leftover, durable=True, auto_delete=False)
        producer = kombu.Producer(channel)
        for n in range(3):  # parked copies an interrupted migration had moved out
            producer.publish({"n": n}, routing_key=leftover, headers={
                "x-tclisten-exchange": broker.exchange("task-completed"), "x-tclisten-routing-key": "k",
                "x-tclisten-reason": "left over"})
    wait_until(lambda: broker.count(app.queue_name) == 20, 20, "20 messages in the main queue")
    with kombu.Connection(broker.url) as conn:  # the first message, delivered twice without an outcome
        channel = conn.channel()
        channel.basic_qos(0, 1, False)
        first = []
        channel.basic_consume(app.queue_name, callback=first.append)
        while not first:
            conn.drain_events(timeout=10)
        channel.close()
    assert redeliver(broker.url, app.queue_name, 1) == [1]
    lines: list[str] = []
    counts = migrate(app, "classic", log=lines.append)
    print("\n" + "\n".join(lines))
    queues = private_node.queues()
    assert {q: queues[q]["type"] for q in app.queue_names()} == {q: "classic" for q in app.queue_names()}
    assert not [q for q in queues if q.endswith(SUFFIX)]
    assert counts[app.queue_name] == 20 and counts[app.topology.parked_name] == 3
    assert broker.count(app.queue_name) == 20 and broker.count(app.topology.parked_name) == 3
    assert any("left by an interrupted migration" in line for line in lines), lines
    # migrating again is a no-op
    assert migrate(app, "classic", log=lines.append) == {q: 0 for q in app.queue_names()}
    attempts: dict[str, int] = {}
    after = make(broker, name, queue_type="classic", retry={"max_attempts": 2, "delay": 30.0})
    after.add_handler(lambda m, c: attempts.__setitem__(m.routing.taskId, m.attempt), events, name="h")
    with Running(after) as running:
        wait_until(lambda: running.check() or len(attempts) == 20, 30, "the 20 messages")
    assert sorted(attempts) == sorted(tasks)
    assert attempts[tasks[0]] == 3 and {attempts[t] for t in tasks[1:]} == {1}  # 1 + x-delivery-count 2


def test_migrate_refuses_while_a_listener_consumes(broker):
    from tclisten.migrate import migrate

    app = make(broker, queue_type="classic")
    app.add_handler(lambda m, c: None, QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted, name="h")
    with Running(app) as running:
        wait_until(lambda: running.check() or app.stats.connected_now, 30, "the listener to consume")
        with pytest.raises(BrokerError) as refused:
            migrate(app, "quorum", log=lambda line: None)
    assert str(refused.value).startswith(f"queue {app.queue_name!r} has 1 consumer(s): stop every listener")
    assert broker.count(app.queue_name) == 0  # untouched: still the classic queue
    with kombu.Connection(broker.url) as conn:
        conn.channel().queue_declare(app.queue_name, passive=True)
