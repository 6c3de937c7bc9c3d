"""Failure control on the real broker: Park and Retry raised by handlers, per-handler retry
policies and time limits, errors retrying cannot heal, what a parked record keeps, hooks,
declaration-time checks, raw Pulse exchanges, start-up against a broker not up yet, and
kombu's consume contract."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid

import pytest

from support.faultkit import Running, wait_until
from support.listener_kit import GROUP, run_listener, slug, task_key, task_status
from tclisten import Park, Retry
from tclisten.app import Listener
from tclisten.exceptions import BindingError, BrokerError, TaskclusterRestFailure
from tclisten.exchanges import QueueEvents


def events(broker):
    return QueueEvents({"exchangePrefix": broker.prefix})


def publish_failed(broker, count=1):
    tasks = [slug() for _ in range(count)]
    for task in tasks:
        broker.publish("task-failed", task_key(task, GROUP), task_status(task, GROUP, "failed"))
    return tasks


def test_park_raised_by_a_handler_parks_at_once_with_a_full_record(broker, make_listener):
    app = make_listener()
    calls = []

    @app.on(events(broker).taskFailed)
    def judge(message, ctx):
        calls.append(message.attempt)
        raise Park("task definition has no payload")

    app.declare()
    (task,) = publish_failed(broker)
    before = time.time()
    run_listener(app, lambda: broker.count(f"{app.queue_name}/parked") == 1)
    assert calls == [1]
    (parked,) = app.parked()
    assert parked.task_id == task
    assert "Park: task definition has no payload" in parked.reason
    (failure,) = parked.failures
    assert failure.type == "Park"
    assert failure.message == "tclisten.exceptions.Park: task definition has no payload"
    assert 'raise Park("task definition has no payload")' in failure.traceback
    assert before <= failure.at <= time.time()
    assert before - 1 <= parked.parked_at <= time.time()


def test_retry_raised_with_a_delay_waits_that_long_in_a_queue_of_its_own(broker, make_listener):
    app = make_listener()
    seen = []

    @app.on(events(broker).taskFailed)
    def later(message, ctx):
        seen.append((message.attempt, time.monotonic()))
        if message.attempt == 1:
            raise Retry(delay=0.6, reason="the artifact is not uploaded yet")

    app.declare()
    publish_failed(broker)
    run_listener(app, lambda: len(seen) == 2)
    (first, t1), (second, t2) = seen
    assert (first, second) == (1, 2)
    assert t2 - t1 >= 0.6
    assert broker.count(f"{app.queue_name}/retry/600") == 0  # declared on demand, drained
    broker.queues.add(f"{app.queue_name}/retry/600")


def test_a_handler_policy_overrides_the_listener_and_permanent_errors_park_at_once(broker, make_listener):
    app = make_listener(retry={"max_attempts": 5, "delay": 0.05, "backoff": 1.0})
    calls = {"once": 0, "gone": 0, "flaky": 0}

    @app.on(events(broker).taskFailed, retry={"max_attempts": 1}, name="once")
    def once(message, ctx):
        calls["once"] += 1
        raise RuntimeError("no retry for me")

    @app.on(events(broker).taskException, name="gone")
    def gone(message, ctx):
        calls["gone"] += 1
        raise TaskclusterRestFailure("task not found", status_code=404, method="GET", url="https://tc/x")

    @app.on(events(broker).taskCompleted, name="flaky")
    def flaky(message, ctx):
        calls["flaky"] += 1
        raise RuntimeError("transient")

    app.declare()
    publish_failed(broker)
    broker.publish("task-exception", task_key(slug(), GROUP), task_status("t", GROUP, "exception"))
    broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    run_listener(app, lambda: broker.count(f"{app.queue_name}/parked") == 3)
    assert calls == {"once": 1, "gone": 1, "flaky": 5}
    reasons = {p.handlers[0]: p.reason for p in app.parked()}
    assert reasons["gone"].startswith("gone: tclisten.exceptions.TaskclusterRestFailure: task not found (404")
    assert reasons["flaky"].startswith("failed 5 attempts; flaky: RuntimeError: transient")
    assert app.stats.retried == 4


def test_a_missing_root_url_is_configuration_and_parks_at_once(broker, make_listener, monkeypatch):
    monkeypatch.delenv("TASKCLUSTER_ROOT_URL", raising=False)
    app = make_listener()
    calls = []

    @app.on(events(broker).taskFailed)
    def lookup(message, ctx):
        calls.append(1)
        ctx.queue.task(message.routing.taskId)

    app.declare()
    publish_failed(broker)
    run_listener(app, lambda: broker.count(f"{app.queue_name}/parked") == 1)
    assert calls == [1]
    assert "ConfigError" in app.parked()[0].reason


def test_a_hung_handler_times_out_on_any_thread(broker, make_listener):
    """app.run() in a thread (not the main one): the time limit interrupts the handler with
    an asynchronous exception; a handler's own timeout=None disables it."""
    app = make_listener(handler_timeout=0.5, retry={"max_attempts": 1})
    finished = []

    @app.on(events(broker).taskFailed)
    def hangs(message, ctx):
        for _ in range(600):
            time.sleep(0.05)

    @app.on(events(broker).taskCompleted, timeout=None)
    def slow_but_allowed(message, ctx):
        time.sleep(0.8)
        finished.append(message.routing.taskId)

    app.declare()
    publish_failed(broker)
    done = slug()
    broker.publish("task-completed", task_key(done, GROUP), task_status(done, GROUP))
    run_listener(app, lambda: finished and broker.count(f"{app.queue_name}/parked") == 1)
    assert "timed out after 0.5 s" in app.parked()[0].reason
    assert finished == [done]


@pytest.mark.parametrize("concurrency", [1, 2])
def test_the_grace_period_holds_without_a_heartbeat(broker, make_listener, concurrency):
    app = make_listener(heartbeat=0, grace_period=0.5, concurrency=concurrency)
    started = []

    @app.on(events(broker).taskCompleted)
    def long(message, ctx):
        started.append(1)
        for _ in range(600):
            time.sleep(0.05)

    app.declare()
    for _ in range(3):
        task = slug()
        broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
    runner = Running(app)
    runner.__enter__()
    wait_until(lambda: len(started) >= concurrency, 20, "handlers running")
    asked = time.monotonic()
    app.stop()
    runner.thread.join(10)
    assert not runner.thread.is_alive()
    assert time.monotonic() - asked < 0.5 + 1.5
    assert app.stats.unfinished == concurrency
    assert broker.count(app.queue_name) == 3


def test_hooks_wrap_every_handler_call(broker, make_listener):
    app = make_listener(retry={"max_attempts": 1})
    events_seen = []
    app.add_hook(before=lambda h, m: events_seen.append(("before", h.name)),
                 after=lambda h, m, result: events_seen.append(("after", h.name, result)),
                 error=lambda h, m, exc: events_seen.append(("error", h.name, type(exc).__name__)))

    @app.on(events(broker).taskCompleted, name="ok")
    def ok(message, ctx):
        return "done"

    @app.on(events(broker).taskFailed, name="bad")
    def bad(message, ctx):
        raise ValueError("nope")

    app.declare()
    broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    publish_failed(broker)
    run_listener(app, lambda: len(events_seen) == 4)
    assert sorted(events_seen) == [("after", "ok", "done"), ("before", "bad"), ("before", "ok"),
                                   ("error", "bad", "ValueError")]


def test_declaration_checks_the_handler_signature(make_listener, broker):
    app = make_listener()
    with pytest.raises(BindingError, match=r"cannot be called as fn\(message, ctx\)"):
        app.add_handler(lambda message: None, events(broker).taskCompleted)
    with pytest.raises(BindingError, match="not callable"):
        app.add_handler("not a function", events(broker).taskCompleted)
    app.add_handler(lambda message, ctx=None, *rest: None, events(broker).taskCompleted, name="fine")


def test_any_pulse_exchange_with_a_raw_pattern(broker, make_listener):
    """Mercurial pushes (exchange/hgpushes/v2 on Pulse) have no Taskcluster reference: bound by
    a raw routing-key pattern, dispatched once per handler, message.routing empty."""
    app = make_listener()
    exchange = f"exchange/hgpushes-{uuid.uuid4().hex[:6]}/v2"
    seen = []

    @app.on(exchange, routing_key="mozilla-central.#")
    @app.on(exchange, routing_key="#.mozilla-central")
    def push(message, ctx):
        seen.append((message.routing_key, dict(message.routing), message.body["payload"]["repo_url"]))

    with pytest.raises(BindingError, match="no bundled reference"):
        app.add_handler(push, exchange, repo="x", name="other")
    app.declare()
    broker.exchanges.add(exchange)
    from kombu import Producer
    Producer(broker.channel).publish({"payload": {"repo_url": "https://hg.mozilla.org/mozilla-central"}},
                                     exchange=exchange, routing_key="mozilla-central", serializer="json")
    Producer(broker.channel).publish({"payload": {"repo_url": "x"}}, exchange=exchange, routing_key="try",
                                     serializer="json")
    run_listener(app, lambda: seen and app.stats.received >= 1)
    assert seen == [("mozilla-central", {}, "https://hg.mozilla.org/mozilla-central")]


def test_a_warning_at_start_when_handlers_use_rest_clients_without_a_root_url(broker, make_listener, caplog,
                                                                              monkeypatch):
    monkeypatch.delenv("TASKCLUSTER_ROOT_URL", raising=False)
    app = make_listener()

    @app.on(events(broker).taskCompleted)
    def lookup(message, ctx):
        ctx.queue.task(message.routing.taskId)

    app.declare()
    with caplog.at_level(logging.WARNING, logger="tclisten.app"):
        run_listener(app, lambda: app.stats.connected_now)
    assert any("use ctx REST clients but no Taskcluster rootUrl" in r.getMessage() for r in caplog.records)


def test_start_up_waits_for_a_broker_that_is_not_up_yet(node_factory, caplog):
    from support.nodes import Node

    node = Node()
    app = Listener(f"test-{uuid.uuid4().hex[:8]}", broker_url=node.url, declare_exchanges=True)
    app.add_handler(lambda m, c: None, QueueEvents.taskCompleted, name="h")
    with caplog.at_level(logging.WARNING, logger="tclisten.broker"):
        runner = Running(app)
        runner.__enter__()
        try:
            wait_until(lambda: any("broker not reachable" in r.getMessage() for r in caplog.records), 20,
                       "a logged attempt")
            text = next(r.getMessage() for r in caplog.records if "broker not reachable" in r.getMessage())
            assert f"127.0.0.1:{node.amqp_port} vhost '/' as user 'guest'" in text
            assert "guest:guest" not in text
            node.start()
            wait_until(lambda: app.stats.connected_now, 60, "the listener to connect once the broker is up")
        finally:
            app.stop()
            runner.thread.join(20)
            node.destroy()


def test_a_refused_login_fails_at_once_naming_where_never_the_password(broker):
    url = broker.url.replace("guest:guest", "guest:s3cret-wrong")
    app = Listener(f"test-{uuid.uuid4().hex[:8]}", broker_url=url)
    app.add_handler(lambda m, c: None, QueueEvents.taskCompleted, name="h")
    started = time.monotonic()
    with pytest.raises(BrokerError) as caught:
        app.run(wait_for_broker=30)
    assert time.monotonic() - started < 10
    text = str(caught.value)
    assert "refused the login" in text
    assert "127.0.0.1:5672 vhost '/' as user 'guest'" in text
    assert "s3cret" not in text


def test_no_broker_within_the_limit_is_one_clear_error():
    app = Listener("test-nobroker", broker_url="amqp://me:pw-hidden@127.0.0.1:1//")
    app.add_handler(lambda m, c: None, QueueEvents.taskCompleted, name="h")
    with pytest.raises(BrokerError) as caught:
        app.run(wait_for_broker=0)
    text = str(caught.value)
    assert "127.0.0.1:1 vhost '/' as user 'me'" in text
    assert "pw-hidden" not in text


def test_consume_honours_kombu_limit_timeout_and_on_iteration(broker, make_listener):
    app = make_listener()
    seen = []
    app.add_handler(lambda m, c: seen.append(m.routing.taskId), events(broker).taskCompleted, name="h")
    app.declare()

    def publish(count: int, after: float = 0.0) -> None:
        time.sleep(after)
        for _ in range(count):
            task = slug()
            broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))

    publish(3)
    consumer = app.consumer()
    iterations = []
    consumer.on_iteration = lambda: iterations.append(1)
    try:
        with pytest.raises(socket.timeout):  # idle for the timeout: kombu raises socket.timeout
            for _ in consumer.consume(timeout=0.5):
                pass
        assert len(seen) == 3
        assert iterations
        later = threading.Thread(target=publish, args=(4, 0.5))
        later.start()
        list(consumer.consume(limit=2))  # returns after two events, with messages still coming
        later.join()
        assert 5 <= len(seen) < 7
    finally:
        consumer.connection.release()


def test_validate_parks_an_invalid_body_with_the_schema_error_and_handles_the_valid_one(broker, make_listener):
    pytest.importorskip("fastjsonschema")
    from tclisten.testing.factories import message_for

    app = make_listener(validate=True)
    handled = []
    app.on(events(broker).taskCompleted)(lambda message, ctx: handled.append(message.routing.taskId))
    app.declare()
    good, bad = message_for("QueueEvents.taskCompleted"), message_for("QueueEvents.taskCompleted")
    broker.publish("task-completed", good.routing_key, good.body)
    broker.publish("task-completed", bad.routing_key, dict(bad.body, workerId="no spaces allowed"))
    run_listener(app, lambda: broker.count(f"{app.queue_name}/parked") == 1 and len(handled) == 1)
    assert handled == [good.body["status"]["taskId"]]
    assert broker.count(app.queue_name) == 0
    (parked,) = app.parked()
    assert parked.task_id == bad.body["status"]["taskId"]
    (failure,) = parked.failures
    assert failure.type == "InvalidBody"
    assert "body does not match queue/v1/task-completed-message.json: body.workerId must match pattern" in failure.message
    assert failure.traceback == ""


def test_a_hook_that_raises_is_logged_and_changes_nothing(broker, make_listener, caplog):
    app = make_listener(retry={"max_attempts": 1})
    calls = []

    def broken(*args):
        raise RuntimeError("the tracing backend is down")

    app.add_hook(before=broken, after=broken, error=broken)

    @app.on(events(broker).taskCompleted, name="ok")
    def ok(message, ctx):
        calls.append(message.routing.taskId)

    app.declare()
    task = slug()
    broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
    with caplog.at_level(logging.ERROR, logger="tclisten.app"):
        run_listener(app, lambda: app.stats.acked == 1)
    assert calls == [task]
    assert (app.stats.retried, app.stats.parked, broker.count(f"{app.queue_name}/parked")) == (0, 0, 0)
    assert caplog.text.count("raised; ignored") == 2  # before and after
