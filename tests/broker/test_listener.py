"""The listener on the real broker: bindings, dispatch, retries, parking, nothing lost."""

from __future__ import annotations

import re
import threading
import uuid

import pytest

from support.listener_kit import GROUP, run_listener, slug, task_key, task_status
from tclisten.app import Listener
from tclisten.exceptions import BindingError, BrokerError, ConfigError
from tclisten.exchanges import QueueEvents

OTHER_GROUP = "Bf0d4GHkRDiNL3lL3DpJTw"


def events(broker):
    return QueueEvents({"exchangePrefix": broker.prefix})


def test_handler_gets_routing_fields_body_and_routes(broker, make_listener):
    app = make_listener()
    seen = []

    @app.on(events(broker).taskCompleted, taskGroupId=GROUP)
    def completed(message, ctx):
        seen.append(message)

    app.declare()
    task = slug()
    broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP), routes=("index.a.b",))
    broker.publish("task-completed", task_key(slug(), OTHER_GROUP), task_status("x", OTHER_GROUP))
    run_listener(app, lambda: seen)
    message = seen[0]
    assert message.routing.taskId == task and message.routing["taskGroupId"] == GROUP
    assert message.routing.reserved == "_"
    assert message.body["status"]["taskId"] == task
    assert message.routes == ("index.a.b",)
    assert message.exchange == broker.prefix + "task-completed"
    assert message.attempt == 1 and not message.redelivered
    assert len(seen) == 1
    assert broker.count(app.queue_name) == 0


def test_cc_route_binding(broker, make_listener):
    app = make_listener()
    seen = []
    app.add_handler(lambda m, ctx: seen.append(m.routes), events(broker).taskCompleted, route="index.project.foo.#",
                    name="routes")
    assert app.bindings[0].pattern == "route.index.project.foo.#"
    app.declare()
    broker.publish("task-completed", task_key(slug(), GROUP), task_status("a", GROUP), routes=("index.other.x",))
    broker.publish("task-completed", task_key(slug(), GROUP), task_status("b", GROUP),
                   routes=("index.project.foo.bar", "tc-treeherder.v2.x"))
    run_listener(app, lambda: seen)
    assert seen == [("index.project.foo.bar", "tc-treeherder.v2.x")]


def test_each_handler_once_even_when_several_bindings_match(broker, make_listener):
    app = make_listener()
    calls = {"a": 0, "b": 0, "failed": 0}
    ev = events(broker)

    @app.on(ev.taskCompleted, taskGroupId=GROUP)
    @app.on(ev.taskCompleted, route="index.#")
    @app.on(ev.taskCompleted)
    def a(message, ctx):
        calls["a"] += 1

    @app.on(ev.taskCompleted, taskGroupId=GROUP)
    def b(message, ctx):
        calls["b"] += 1

    @app.on(ev.taskFailed)
    def failed(message, ctx):
        calls["failed"] += 1

    assert len(app.bindings) == 5 and len(app.handlers) == 3
    app.declare()
    broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP), routes=("index.x",))
    broker.publish("task-failed", task_key(slug(), GROUP), task_status("t", GROUP, "failed"))
    run_listener(app, lambda: calls["a"] and calls["b"] and calls["failed"])
    assert calls == {"a": 1, "b": 1, "failed": 1}
    assert broker.count(app.queue_name) == 0


def test_failures_are_retried_then_parked_and_can_be_requeued(broker, make_listener):
    app = make_listener()
    attempts = []
    lock = threading.Lock()
    fixed = threading.Event()

    @app.on(events(broker).taskFailed)
    def flaky(message, ctx):
        with lock:
            attempts.append(message.attempt)
        if not fixed.is_set():
            raise RuntimeError("infrastructure is down")

    app.declare()
    broker.publish("task-failed", task_key(slug(), GROUP), task_status("t", GROUP, "failed"), routes=("r.1",))
    run_listener(app, lambda: broker.count(f"{app.queue_name}/parked") == 1)
    assert attempts == [1, 2, 3]
    parked = app.parked()
    assert len(parked) == 1
    assert parked[0].attempts == 3 and "infrastructure is down" in parked[0].reason
    assert parked[0].exchange == broker.prefix + "task-failed" and parked[0].routes == ("r.1",)
    assert parked[0].handlers == ("test_listener.flaky",) or parked[0].handlers[0].endswith("flaky")
    assert broker.count(f"{app.queue_name}/parked") == 1  # listing leaves them parked

    fixed.set()
    attempts.clear()
    assert app.requeue_parked() == 1
    again = Listener(app.name, broker_url=broker.url, declare_exchanges=True, retry=app.retry)
    again.add_handler(flaky, events(broker).taskFailed)
    run_listener(again, lambda: attempts)
    assert attempts == [1]
    assert broker.count(app.queue_name) == 0 and broker.count(f"{app.queue_name}/parked") == 0


def test_a_retry_reruns_only_the_handlers_that_failed(broker, make_listener):
    app = make_listener()
    calls = {"steady": 0, "flaky": 0}

    @app.on(events(broker).taskCompleted)
    def steady(message, ctx):
        calls["steady"] += 1

    @app.on(events(broker).taskCompleted)
    def flaky(message, ctx):
        calls["flaky"] += 1
        if message.attempt == 1:
            raise ValueError("first time fails")

    app.declare()
    broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    run_listener(app, lambda: calls["flaky"] == 2)
    assert calls == {"steady": 1, "flaky": 2}
    assert broker.count(app.queue_name) == 0 and broker.count(f"{app.queue_name}/parked") == 0


@pytest.mark.parametrize("prune", [True, False], ids=["pruning", "keeping-stale-bindings"])
def test_undecodable_is_parked_and_unexplained_is_acked_and_counted(broker, make_listener, prune):
    """The parked queue is for failures: a message no current binding explains (one that raced
    a deploy) is acked and counted, unless the listener keeps stale bindings, which parks it."""
    app = make_listener(prune_bindings=prune)
    seen = []
    app.add_handler(lambda m, ctx: seen.append(m), events(broker).taskCompleted, taskGroupId=GROUP, name="h")
    app.declare()
    # a binding left on the queue by an earlier version of the listener: nothing explains it now
    with broker.conn.channel() as channel:
        channel.queue_bind(app.queue_name, broker.exchange("task-failed"), "#")
    broker.publish("task-completed", task_key(slug(), GROUP), None, raw=b"\xff not json")
    broker.publish("task-failed", task_key(slug(), GROUP), task_status("t", GROUP, "failed"))
    broker.publish("task-completed", task_key(slug(), GROUP), task_status("ok", GROUP))
    parked = 1 if prune else 2
    run_listener(app, lambda: seen and app.stats.received == 3 and broker.count(f"{app.queue_name}/parked") == parked)
    reasons = sorted(p.reason for p in app.parked())
    assert reasons[0].startswith("body is not JSON")
    if prune:
        assert app.stats.unmatched == 1
    else:
        assert reasons[1].startswith("no binding matches exchange")
    assert len(seen) == 1
    assert broker.count(app.queue_name) == 0


def test_concurrent_handlers(broker, make_listener):
    app = make_listener(concurrency=4, prefetch=20)
    seen = set()
    lock = threading.Lock()

    @app.on(events(broker).taskCompleted)
    def handler(message, ctx):
        with lock:
            seen.add(message.routing.taskId)

    app.declare()
    tasks = [slug() for _ in range(200)]
    for task in tasks:
        broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
    run_listener(app, lambda: len(seen) == len(tasks))
    assert seen == set(tasks)
    assert broker.count(app.queue_name) == 0


def test_missing_exchange_is_a_clear_error(broker_url):
    app = Listener(f"test-{uuid.uuid4().hex[:8]}", broker_url=broker_url)
    app.add_handler(lambda m, c: None, QueueEvents({"exchangePrefix": "exchange/nobody-here/v1/"}).taskFailed, name="h")
    with pytest.raises(BrokerError, match="exchange 'exchange/nobody-here/v1/task-failed' does not exist"):
        app.declare()


def test_queue_declared_with_other_arguments_is_a_clear_error(broker, make_listener):
    app = make_listener()
    app.add_handler(lambda m, c: None, events(broker).taskFailed, name="h")
    app.declare()
    changed = Listener(app.name, broker_url=broker.url, declare_exchanges=True, max_length=10)
    changed.add_handler(lambda m, c: None, events(broker).taskFailed, name="h")
    with pytest.raises(BrokerError, match="cannot declare queue .* with arguments"):
        changed.declare()


def test_declaration_errors_and_frozen_registration(broker, make_listener):
    app = make_listener()
    with pytest.raises(BindingError):
        app.on(QueueEvents.taskFailed, noSuchField="x")
    with pytest.raises(BindingError):
        app.on(QueueEvents.taskFailed, taskId="a.b")
    with pytest.raises(BindingError):
        app.on("QueueEvents.taskFailled")

    def h(message, ctx):
        pass

    assert app.on(QueueEvents.taskFailed, taskGroupId=GROUP)(h) is h
    with pytest.raises(BindingError, match="bound twice"):
        app.on(QueueEvents.taskFailed, taskGroupId=GROUP)(h)
    with pytest.raises(ConfigError):
        Listener("bad name")
    with pytest.raises(ConfigError):
        Listener("x", prefetch=1, concurrency=4)
    app.add_handler(h, events(broker).taskCompleted, name="h")
    app.declare()
    refused = []

    def try_to_add_while_running() -> bool:
        if not app.stats.connected_now:
            return False
        with pytest.raises(ConfigError, match="running"):
            app.on(QueueEvents.taskCompleted)(h)
        refused.append(True)
        return True

    run_listener(app, try_to_add_while_running)
    assert refused


def test_passwords_never_in_repr(broker_url):
    app = Listener("x", broker_url="amqp://user:s3cret-pass@127.0.0.1:5672//")
    assert "s3cret" not in repr(app) and "****" in repr(app)
    assert app.queue_name == "queue/user/x"


def test_handler_calls_taskcluster_with_hawk_through_ctx(broker, make_listener):
    """The first slice end to end: broker -> loop -> handler -> Hawk-signed REST call."""
    from tclisten.testing.fakeserver import FakeTaskcluster

    token = uuid.uuid4().hex  # made at run time, never a committed secret
    with FakeTaskcluster(clients={"reactor": {"accessToken": token, "scopes": ["queue:rerun-task:*", "*"]}}) as tc:
        app = make_listener(taskcluster={"rootUrl": tc.root_url,
                                         "credentials": {"clientId": "reactor", "accessToken": token}})
        task = slug()
        tc.respond("queue", "task", {"taskGroupId": GROUP, "metadata": {"name": "build"}})
        looked_up = []

        @app.on(events(broker).taskFailed, taskGroupId=GROUP)
        def retry_infra_failures(message, ctx):
            looked_up.append(ctx.queue.task(message.routing.taskId)["metadata"]["name"])

        app.declare()
        broker.publish("task-failed", task_key(task, GROUP), task_status(task, GROUP, "failed"))
        run_listener(app, lambda: looked_up)
        assert looked_up == ["build"]
        call = tc.calls_to("queue", "task")[0]
        assert call.args == {"taskId": task} and call.client_id == "reactor"
        assert token not in repr(app) and token not in repr(app.handlers[0].context)


def test_health_endpoint_while_running(broker, make_listener):
    import json
    import urllib.request

    app = make_listener(health_port=0)
    seen = []
    app.add_handler(lambda m, c: seen.append(m), events(broker).taskCompleted, name="h")
    app.declare()
    broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    answers = []

    def probe() -> bool:
        if not seen or app.stats.acked < 1:
            return False
        port = app.health.port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as reply:
            answers.append((reply.status, json.load(reply)))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as reply:
            answers.append(reply.read().decode())
        return True

    run_listener(app, probe)
    assert answers[0][0] == 200
    assert re.search(r"^tclisten_messages_received_total({[^}]*})? 1(\.0)?$", answers[1], re.M)


def test_a_long_handler_on_the_connection_thread_keeps_the_connection(broker, make_listener):
    """concurrency=1 runs handlers on the connection's thread; the heartbeat guard keeps the
    connection alive through a handler three times longer than the heartbeat interval."""
    app = make_listener(heartbeat=2, concurrency=1, prefetch=4)
    assert app.concurrency == 1
    done = []

    @app.on(events(broker).taskCompleted)
    def slow(message, ctx):
        import time
        time.sleep(6)
        done.append(message.redelivered)

    app.declare()
    broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    run_listener(app, lambda: done and app.stats.acked == 1, timeout=30)
    assert done == [False] and app.stats.reconnects == 0
    assert broker.count(app.queue_name) == 0


def test_pulse_credentials_from_the_environment(monkeypatch):
    """No broker URL: Pulse over TLS on 5671 with a verified certificate; the Pulse user
    names the queue; the password stays out of every repr."""
    import ssl

    monkeypatch.delenv("TCLISTEN_BROKER_URL", raising=False)
    monkeypatch.setenv("PULSE_USERNAME", "ci-bot")
    monkeypatch.setenv("PULSE_PASSWORD", "pa/ss:word")
    monkeypatch.delenv("PULSE_HOST", raising=False)
    app = Listener("reactor")
    assert app.queue_name == "queue/ci-bot/reactor"
    assert app.topology.exchange.name == "exchange/ci-bot/reactor"
    conn = app.connection()
    assert (conn.hostname, conn.port, conn.userid, conn.password) == ("pulse.mozilla.org", 5671, "ci-bot", "pa/ss:word")
    # py-amqp ignores an SSLContext: the verification is given as its options (chain and host name)
    assert conn.ssl == {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "pulse.mozilla.org"}
    assert "pa/ss" not in repr(app) and "pa%2Fss" not in repr(app)
    monkeypatch.setenv("PULSE_HOST", "pulse.example.org")
    assert Listener("reactor").connection().hostname == "pulse.example.org"


def test_no_broker_configured_is_a_clear_error(monkeypatch):
    for name in ("TCLISTEN_BROKER_URL", "PULSE_USERNAME", "PULSE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    app = Listener("reactor")
    with pytest.raises(ConfigError, match="no broker"):
        app.connection()


def test_broker_url_from_the_environment_names_the_queue(monkeypatch):
    monkeypatch.setenv("TCLISTEN_BROKER_URL", "amqp://someone:secret@127.0.0.1:5672//")
    assert Listener("x").queue_name == "queue/someone/x"


def test_broker_connections_tolerate_a_slow_broker(broker_url):
    """py-amqp's 1 s TCP_USER_TIMEOUT would drop the connection while a busy broker is slow
    to read; the listener's connections allow 30 s (heartbeats find dead peers)."""
    import socket

    if not hasattr(socket, "TCP_USER_TIMEOUT"):
        pytest.skip("no TCP_USER_TIMEOUT on this platform")
    with Listener("x", broker_url=broker_url).connection() as conn:
        conn.connect()
        sock = conn.connection.transport.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 30_000


def test_malformed_retry_headers_and_dispatch_failures_park_and_the_loop_goes_on(broker, make_listener):
    """A copy on the listener's own exchange with unreadable tclisten headers, and a delivery
    the dispatcher itself fails on: both parked with the reason; the next message is handled."""
    from kombu import Producer

    app = make_listener()
    seen = []
    app.add_handler(lambda m, c: seen.append(m.routing.taskId), events(broker).taskCompleted, name="h")
    app.declare()
    Producer(broker.channel).publish(
        b"{}", exchange=app.topology.exchange.name, routing_key="due", content_type="application/json",
        headers={"x-tclisten-exchange": broker.prefix + "task-completed", "x-tclisten-routing-key": "x",
                 "x-tclisten-attempt": "not a number"})
    original = app.dispatcher.run

    def run(provenance, body, headers=None, **kw):
        if "explode" in (body.decode() if isinstance(body, bytes) else str(body)):
            raise RuntimeError("a bug in dispatch")
        return original(provenance, body, headers, **kw)

    app.dispatcher.run = run
    broker.publish("task-completed", task_key(slug(), GROUP), None, raw=b'{"explode": 1}')
    good = slug()
    broker.publish("task-completed", task_key(good, GROUP), task_status(good, GROUP))
    run_listener(app, lambda: seen and broker.count(f"{app.queue_name}/parked") == 2)
    reasons = sorted(p.reason for p in app.parked())
    assert reasons[0].startswith("cannot dispatch: RuntimeError: a bug in dispatch")
    assert reasons[1].startswith("malformed x-tclisten-* headers")
    assert seen == [good] and broker.count(app.queue_name) == 0


def test_a_refused_retry_copy_returns_the_original_to_the_queue(broker, make_listener):
    """When the broker refuses the retry copy (a nack: here a full queue with
    ``reject-publish`` bound to the same key), the original is not acked: it goes back to the
    queue and comes again marked redelivered, which counts as an attempt: the second attempt
    runs then.  (The delay queue took the refused copy too, as RabbitMQ does when one of two
    queues refuses: it waits there for 30 s, past the test.)"""
    from kombu import Queue

    from tclisten.topology import retry_key

    app = make_listener(retry={"max_attempts": 3, "delay": 30})
    calls = []

    @app.on(events(broker).taskFailed)
    def flaky(message, ctx):
        calls.append((message.attempt, message.redelivered))
        if message.attempt == 1:
            raise RuntimeError("fails on the first attempt")

    app.declare()
    trap = f"{app.queue_name}-trap"
    broker.queues.add(trap)
    first_retry = retry_key(app.retry.delays()[0])
    Queue(trap, app.topology.exchange, routing_key=first_retry,
          queue_arguments={"x-max-length": 1, "x-overflow": "reject-publish"})(broker.channel).declare()
    broker.channel.basic_publish(broker.channel.prepare_message(b"full"), exchange="",
                                 routing_key=trap)  # the trap is full: it refuses every copy
    broker.publish("task-failed", task_key(slug(), GROUP), task_status("t", GROUP, "failed"))
    run_listener(app, lambda: (2, True) in calls)
    assert calls == [(1, False), (2, True)]
    assert broker.count(trap) == 1
    assert broker.count(app.queue_name) == 0 and broker.count(f"{app.queue_name}/parked") == 0
    assert broker.count(f"{app.queue_name}/retry/30000") == 1
