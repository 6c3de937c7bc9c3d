"""The listener under faults, on the real broker: long handlers against heartbeats, a bounded
worker pool, connections cut by a proxy, a broker restart, and REST calls answered with 5xx.

Every scenario checks that no message is lost and that duplicates stay within the in-flight
window and arrive marked redelivered; the counts are printed (``pytest -s``) as
``FAULTS <scenario>: ...`` lines.

The broker restart (``stop_app``/``start_app`` of a private node) is the last test of this file,
because it drops every connection on the broker; it waits until the broker takes logins again.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from support.faultkit import (FaultProxy, Running, delete_entities, publish_tasks, queue_counts,
                      tally, wait_for_broker, wait_until)
from support.listener_kit import Broker, run_listener, task_key, task_status, GROUP, slug
from tclisten.app import Listener
from tclisten.exchanges import QueueEvents

@pytest.fixture
def proxy():
    with FaultProxy() as p:
        yield p


def make_listener(broker: Broker, url: str | None = None, **options) -> Listener:
    options.setdefault("retry", {"max_attempts": 3, "delay": 0.05, "backoff": 2.0})
    app = Listener(f"test-{uuid.uuid4().hex[:8]}", broker_url=url or broker.url, declare_exchanges=True, **options)
    broker.forget_listener(app)
    return app


def events(broker: Broker) -> QueueEvents:
    return QueueEvents({"exchangePrefix": broker.prefix})


def report(scenario: str, result, **extra) -> None:
    more = "".join(f" {k}={v}" for k, v in extra.items())
    print(f"\nFAULTS {result.line(scenario)}{more}")


# -- 1. concurrency --------------------------------------------------------------------------

def test_idle_listener_keeps_a_short_heartbeat_connection(broker):
    """Nothing to do for several heartbeat intervals: the connection must still be there.
    (heartbeat=1: the broker's frames come every 0.5 s, always within the idle loop's wait.)"""
    app = make_listener(broker, heartbeat=1, concurrency=2, prefetch=4)
    handled = []
    app.add_handler(lambda m, c: handled.append(m.routing.taskId), events(broker).taskCompleted, name="h")
    app.declare()
    task = slug()
    with Running(app) as running:
        wait_until(lambda: running.check() or app.stats.connected_now, 20, "the listener to consume")
        time.sleep(4)
        broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
        wait_until(lambda: running.check() or handled and app.stats.acked == 1, 10, "the message")
    assert handled == [task] and app.stats.reconnects == 0


@pytest.mark.parametrize("concurrency", [1, 2])
def test_long_handler_keeps_the_connection_alive_with_a_short_heartbeat(broker, concurrency):
    """A handler busy for three heartbeat intervals: the connection keeps beating, nothing
    reconnects.  The message waits in the queue before the listener starts, so it arrives
    the moment consuming begins."""
    app = make_listener(broker, heartbeat=2, concurrency=concurrency, prefetch=4)
    handled = []
    negotiated = []

    @app.on(events(broker).taskCompleted)
    def slow(message, ctx):
        time.sleep(6)
        handled.append((message.routing.taskId, message.redelivered))

    def until() -> bool:
        consumer = app.running_consumer
        channel = consumer.channel if consumer is not None else None
        if not negotiated and channel is not None and channel.connection is not None:
            negotiated.append(channel.connection.heartbeat)  # what the broker agreed to
        return bool(handled) and app.stats.acked == 1

    app.declare()
    task = slug()
    broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
    run_listener(app, until, timeout=30)
    assert negotiated == [2]  # the broker took the short heartbeat: 6 s is three intervals
    assert handled == [(task, False)]
    assert app.stats.reconnects == 0 and app.stats.acked == 1 and app.stats.received == 1
    assert broker.count(app.queue_name) == 0


def test_handlers_run_in_a_bounded_pool_and_prefetch_reaches_the_broker(broker, monkeypatch):
    from kombu.message import Message

    settled_on = set()  # the threads that acked or rejected (a spy: the real methods still run)
    for method in ("ack", "reject"):
        real = getattr(Message, method)

        def spy(self, *args, _real=real, **kwargs):
            settled_on.add(threading.current_thread().name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Message, method, spy)
    app = make_listener(broker, concurrency=3, prefetch=10)
    lock = threading.Lock()
    active = [0]
    peak = [0]
    threads = set()
    gate = threading.Event()
    done = []

    @app.on(events(broker).taskCompleted)
    def handler(message, ctx):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            threads.add(threading.current_thread().name)
        gate.wait(20)
        time.sleep(0.01)
        with lock:
            active[0] -= 1
            done.append(message.routing.taskId)

    app.declare()
    tasks = [slug() for _ in range(30)]
    for task in tasks:
        broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))

    def until():
        # With every worker blocked the broker holds back all but ``prefetch`` messages.
        if not gate.is_set() and broker.count(app.queue_name) == 20 and peak[0] == 3:
            time.sleep(0.2)  # would more arrive or more handlers start? they must not
            assert broker.count(app.queue_name) == 20 and peak[0] == 3
            gate.set()
        return len(done) == len(tasks)

    run_listener(app, until, timeout=30)
    assert sorted(done) == sorted(tasks)
    assert peak[0] == 3 and len(threads) == 3 and all(t.startswith("tclisten-worker-") for t in threads)
    assert len(settled_on) == 1 and not settled_on & threads  # kombu channels are not thread-safe
    assert app.stats.acked == len(tasks) and broker.count(app.queue_name) == 0


def test_listener_holds_one_connection_to_the_broker(broker, proxy):
    """Pulse counts connections: a running listener needs one (its channels share it).  The
    idle one is never serviced, so the broker also drops it after two missed heartbeats."""
    app = make_listener(broker, url=proxy.url())
    seen = []
    app.add_handler(lambda m, c: seen.append(m), events(broker).taskCompleted, name="h")
    app.declare()
    task = slug()
    broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
    counts = []

    def consuming() -> bool:
        if seen:
            counts.append(proxy.open_connections)
        return bool(counts)

    run_listener(app, consuming)
    assert counts == [1], f"{counts[0]} connections through the proxy while consuming"


# -- 2. connection faults ----------------------------------------------------------------------

def test_connection_cuts_mid_stream_lose_nothing(broker, proxy, caplog):
    """10,000 messages; the proxy cuts the connection four times mid-stream (once refusing
    reconnections for a while): the listener reconnects, re-declares and resumes."""
    total = 10_000
    prefetch = 100
    app = make_listener(broker, url=proxy.url(), prefetch=prefetch, concurrency=4)
    handled = []  # (taskId, redelivered); list.append is atomic

    @app.on(events(broker).taskCompleted)
    def record(message, ctx):
        handled.append((message.routing.taskId, message.redelivered))

    app.declare()
    tasks = [slug() for _ in range(total)]
    publish_tasks(broker.url, broker.exchange("task-completed"), tasks, GROUP, task_key, task_status)
    wait_until(lambda: broker.count(app.queue_name) == total, 30, "the messages to be queued")

    thresholds = [1500, 3500, 5500, 7500]
    faults = []

    def inject() -> None:
        for index, threshold in enumerate(thresholds):
            while len(handled) < threshold:
                if stop_injecting.is_set():
                    return
                time.sleep(0.002)
            if index == 2:
                proxy.refuse(True)  # reconnection attempts fail for a while: backoff
                faults.append(("cut+refuse", proxy.cut(), len(handled)))
                time.sleep(1.0)
                proxy.refuse(False)
            else:
                faults.append(("cut", proxy.cut(), len(handled)))

    stop_injecting = threading.Event()
    injector = threading.Thread(target=inject, daemon=True)
    injector.start()
    started = time.monotonic()
    try:
        def all_handled() -> bool:  # the redelivered copies (each counted as an attempt) included
            return (len(faults) == len(thresholds) and len({t for t, _ in handled}) == total
                    and broker.count(app.queue_name) == 0)

        run_listener(app, all_handled, timeout=90)
    finally:
        stop_injecting.set()
        injector.join(5)
    elapsed = time.monotonic() - started
    result = tally(tasks, handled)
    report("proxy cuts", result, faults=len(faults), reconnects=app.stats.reconnects,
           refused=proxy.refused, seconds=f"{elapsed:.1f}")
    assert result.lost == 0
    assert result.duplicates <= prefetch * len(faults)
    assert result.duplicates_not_redelivered == 0
    assert app.stats.reconnects >= len(faults) and proxy.refused >= 1  # more if the broker restarted too
    backoff = [r.getMessage() for r in caplog.records if r.getMessage().startswith("broker connection failed")]
    assert backoff and "retrying in 2.0 s" in backoff[0]  # refused while cut: it waited, then tried again
    assert f"127.0.0.1:{proxy.port}" in backoff[0] and "guest" in backoff[0]  # where, and as whom
    assert not any(":guest@" in text for text in backoff)  # never the password
    assert broker.count(app.queue_name) == 0  # everything was acked before the listener stopped


def test_queue_deleted_under_the_listener_is_declared_again_with_its_bindings(broker, proxy):
    """What Pulse's guardian does to an overgrown queue, and a connection cut while the queue
    is gone: the listener re-declares the queue, its bindings and side queues, and resumes."""
    app = make_listener(broker, url=proxy.url(), concurrency=2, prefetch=10)
    seen = []
    app.add_handler(lambda m, c: seen.append(m.routing.taskId), events(broker).taskCompleted, name="h")
    app.declare()
    side = app.queue_names()[1:]
    with Running(app) as running:
        wait_until(lambda: running.check() or app.stats.connected_now, 20, "the listener to consume")
        with broker.conn.channel() as channel:
            channel.queue_delete(app.queue_name)  # the broker cancels the consumer
        wait_until(lambda: running.check() or app.stats.reconnects >= 1 and app.stats.connected_now, 20,
                   "the listener to come back after the deletion")
        before_cut = app.stats.reconnects
        proxy.refuse(True)
        proxy.cut()
        with broker.conn.channel() as channel:
            channel.queue_delete(app.queue_name)
            for name in side:
                channel.queue_delete(name)
        proxy.refuse(False)
        wait_until(lambda: running.check() or app.stats.reconnects > before_cut and app.stats.connected_now, 20,
                   "the listener to reconnect")
        task = slug()
        broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
        wait_until(lambda: running.check() or seen, 20, "a message through the re-declared binding")
        for name in side:
            with broker.conn.channel() as channel:
                channel.queue_declare(name, passive=True)  # raises if it was not declared again
    assert set(seen) == {task} and app.stats.reconnects >= 2


def test_stop_after_a_reconnect_with_deliveries_still_waiting_for_a_worker(broker, proxy):
    """Slow workers, a full prefetch window waiting for them, the connection cut, then a stop:
    the deliveries of the dead connection still queued for the worker must not break the stop."""
    app = make_listener(broker, url=proxy.url(), concurrency=2, prefetch=6, grace_period=5)
    started, done = [], []

    @app.on(events(broker).taskCompleted)
    def slow(message, ctx):
        started.append(message.routing.taskId)
        time.sleep(1.0)
        done.append((message.routing.taskId, message.redelivered))

    app.declare()
    tasks = [slug() for _ in range(10)]
    for task in tasks:
        broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
    with Running(app) as running:
        wait_until(lambda: running.check() or started and app.stats.connected_now, 20, "the first handler")
        proxy.cut()
        wait_until(lambda: running.check() or app.stats.reconnects == 1 and app.stats.connected_now, 20,
                   "the reconnection")
    left = broker.count(app.queue_name) + broker.count(app.queue_name + "/suspect")  # redelivered: tried alone
    assert left + len({t for t, _ in done}) >= len(tasks)  # nothing lost


# -- 7. REST faults inside handlers ---------------------------------------------------------------

def test_rest_5xx_bursts_are_retried_by_the_client_then_by_the_listener_then_parked(broker):
    from tclisten.testing.fakeserver import FakeTaskcluster

    token = uuid.uuid4().hex  # made at run time, never a committed secret
    with FakeTaskcluster(clients={"reactor": {"accessToken": token, "scopes": ["*"]}}) as tc:
        app = make_listener(broker, concurrency=1, prefetch=4,
                            retry={"max_attempts": 2, "delay": 0.05, "backoff": 1.0},
                            taskcluster={"rootUrl": tc.root_url, "maxRetries": 2,
                                         "credentials": {"clientId": "reactor", "accessToken": token}})
        tc.respond("queue", "task", lambda call: {"metadata": {"name": f"task {call.args['taskId']}"}})
        done = []  # (taskId, attempt)

        @app.on(events(broker).taskFailed)
        def look_up(message, ctx):
            task_id = message.routing.taskId
            assert ctx.queue.task(task_id)["metadata"]["name"] == f"task {task_id}"
            done.append((task_id, message.attempt))

        def send(task: str) -> None:
            broker.publish("task-failed", task_key(task, GROUP), task_status(task, GROUP, "failed"))

        app.declare()
        parked_queue = f"{app.queue_name}/parked"
        first, second, third = slug(), slug(), slug()
        with Running(app) as running:
            # a burst of 2 answers 503: the client's own retries (maxRetries=2) get through
            tc.fail_next(2, status=503)
            send(first)
            wait_until(lambda: running.check() or done, 20, "the first message")
            assert done == [(first, 1)] and [c.status for c in tc.calls] == [503, 503, 200]
            # 6 failures = 3 calls in each of the listener's 2 attempts: the message is parked
            tc.fail_next(6, status=500)
            send(second)
            wait_until(lambda: running.check() or broker.count(parked_queue) == 1, 20, "the parked message")
            assert [c.status for c in tc.calls[3:]] == [500] * 6
            # 3 failures: the first attempt fails, the listener's retry succeeds
            tc.fail_next(3, status=502)
            send(third)
            wait_until(lambda: running.check() or len(done) == 2, 20, "the retried message")
            assert [c.status for c in tc.calls[9:]] == [502] * 3 + [200]
        assert done == [(first, 1), (third, 2)]
        assert app.stats.retried == 2 and app.stats.parked == 1
        parked = app.parked()
        assert [p.routing_key for p in parked] == [task_key(second, GROUP)] and parked[0].attempts == 2
        assert "500" in parked[0].reason and "3 attempts" in parked[0].reason
        assert token not in parked[0].reason
        assert broker.count(app.queue_name) == 0
    print(f"\nFAULTS rest 5xx: messages=3 handled=2 parked=1 lost=0 duplicates=0 "
          f"calls={len(tc.calls)} listener_retries={app.stats.retried}")


# -- 2b. the broker restarts (last: it drops every connection on the broker) ---------------------

def test_broker_restart_mid_stream_loses_nothing(private_node):
    """``stop_app`` on a broker node of the test's own while 2,000 persistent messages are
    being consumed from a durable queue, then starting it again: the listener backs off,
    reconnects, re-declares its queue and bindings, and every message is handled."""
    broker_url = private_node.url
    total = 2000
    prefetch = 50
    b = Broker(broker_url)
    app = make_listener(b, prefetch=prefetch, concurrency=4)
    handled = []
    gate = threading.Event()
    stop_at = 600

    @app.on(events(b).taskCompleted)
    def record(message, ctx):
        if len(handled) >= stop_at and not gate.is_set():
            gate.wait(60)  # mid-stream: hold the handlers while the broker goes down
        time.sleep(0.001)
        handled.append((message.routing.taskId, message.redelivered))

    app.declare()
    tasks = [slug() for _ in range(total)]
    publish_tasks(b.url, b.exchange("task-completed"), tasks, GROUP, task_key, task_status)
    wait_until(lambda: b.count(app.queue_name) == total, 30, "the messages to be queued")
    b.conn.release()  # the restart kills it; cleanup uses fresh connections
    queues, exchanges = set(b.queues), set(b.exchanges)
    timings = {}
    started = time.monotonic()
    try:
        with Running(app, join_timeout=60) as running:
            wait_until(lambda: running.check() or len(handled) >= stop_at, 30, "the stream to start")
            t0 = time.monotonic()
            try:
                private_node.stop_app()
                timings["stopped"] = time.monotonic() - t0
                gate.set()
            finally:
                gate.set()
                t1 = time.monotonic()
                private_node.start_app()
                timings["started"] = time.monotonic() - t1
            wait_for_broker(broker_url)
            timings["down"] = time.monotonic() - t0
            wait_until(lambda: running.check() or len({t for t, _ in handled}) == total, 60,
                       "every message after the restart", interval=0.1)
            timings["resumed_after"] = time.monotonic() - t0
        elapsed = time.monotonic() - started
        result = tally(tasks, handled)
        report("broker restart", result, reconnects=app.stats.reconnects, seconds=f"{elapsed:.1f}",
               **{k: f"{v:.1f}s" for k, v in timings.items()})
        assert result.lost == 0
        assert result.duplicates <= prefetch
        assert result.duplicates_not_redelivered == 0
        assert app.stats.reconnects >= 1
        assert queue_counts(broker_url, app.queue_name) == (0, 0)
    finally:
        gate.set()
        wait_for_broker(broker_url)
        delete_entities(broker_url, queues, exchanges)
