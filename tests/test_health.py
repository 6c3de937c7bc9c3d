"""Health and metrics (tclisten.health, Stats.healthy) and Pulse queue hygiene: max-length,
overflow and expiry reaching the broker, the backlog warning, and a clear error for a queue
declared elsewhere with other arguments."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from types import SimpleNamespace

import pytest
from kombu import Queue

from support.faultkit import Running, queue_counts, wait_until
from support.listener_kit import Broker, task_key, task_status, GROUP, slug
from tclisten.app import Listener
from tclisten.exceptions import BrokerError, ConfigError
from tclisten.exchanges import QueueEvents
from tclisten.health import HealthServer, families, render_metrics
from tclisten.stats import Stats

def make_listener(broker: Broker, name: str | None = None, **options) -> Listener:
    broker.exchange("task-completed")  # the listener declares it too: make sure it is cleaned up
    options.setdefault("retry", {"max_attempts": 2, "delay": 0.05})
    app = Listener(name or f"test-{uuid.uuid4().hex[:8]}", broker_url=broker.url, declare_exchanges=True, **options)
    broker.forget_listener(app)
    return app


def events(broker: Broker) -> QueueEvents:
    return QueueEvents({"exchangePrefix": broker.prefix})


def get(url: str, method: str = "GET") -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


# -- Stats.healthy ----------------------------------------------------------------------------

def test_healthy_needs_a_connection_and_acks_while_messages_wait():
    stats = Stats()
    assert stats.healthy(60, now=1000.0) == (False, "not connected to the broker")
    stats.connected()
    stats.last_connected = 1000.0
    assert stats.healthy(60, now=1010.0) == (True, "consuming")
    stats.backlog = 0  # an idle queue is healthy however long nothing arrives
    assert stats.healthy(60, now=99999.0)[0]
    stats.backlog = 40  # messages wait: the window starts at the last ack or connection
    assert stats.healthy(60, now=1059.0)[0]
    ok, reason = stats.healthy(60, now=1061.0)
    assert not ok
    assert reason == "40 message(s) waiting and no ack for 61 s"
    stats.last_ack = 1050.0
    assert stats.healthy(60, now=1100.0)[0]
    assert not stats.healthy(60, now=1111.0)[0]
    stats.connected_now = False
    assert stats.healthy(60, now=1051.0) == (False, "not connected to the broker")


# -- the exposition format ---------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"\})? '
                     r'(-?[0-9.e+-]+|NaN|[+-]Inf)$')


def parse_exposition(text: str) -> dict[str, float]:
    """A strict reader of the text format 0.0.4: every sample after its HELP and TYPE."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, f"HELP twice for {name}"
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "summary", "histogram", "untyped")
            assert name in helps
            types[name] = kind
        else:
            match = _SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name = match.group(1)
            base = re.sub(r"_(sum|count)$", "", name) if name not in types else name
            assert base in types, f"{name} has no TYPE line before it"
            if types[base] == "counter":
                assert name.endswith("_total")
            samples[name + (match.group(2) or "")] = float(match.group(3))
    return samples


def busy_stats() -> Stats:
    stats = Stats()
    stats.connected()
    stats.connected()  # one reconnect
    stats.received, stats.acked, stats.retried, stats.parked = 120, 110, 7, 2
    stats.observe(0.25)
    stats.observe(0.5)
    stats.backlog = 12
    stats.last_ack = stats.last_delivery = time.time()
    return stats


def test_metrics_text_is_valid_exposition_with_every_counter():
    samples = parse_exposition(render_metrics(busy_stats()))
    assert samples["tclisten_messages_received_total"] == 120
    assert samples["tclisten_messages_acked_total"] == 110
    assert samples["tclisten_messages_retried_total"] == 7
    assert samples["tclisten_messages_parked_total"] == 2
    assert samples["tclisten_reconnects_total"] == 1
    assert samples["tclisten_handler_seconds_sum"] == 0.75
    assert samples["tclisten_handler_seconds_count"] == 2
    assert samples["tclisten_queue_backlog"] == 12
    assert samples["tclisten_connected"] == 1
    assert samples["tclisten_healthy"] == 1
    fresh = parse_exposition(render_metrics(Stats()))
    assert fresh["tclisten_reconnects_total"] == 0
    assert fresh["tclisten_connected"] == 0
    assert "tclisten_queue_backlog" not in fresh  # unknown until the first check: no sample


def test_metrics_carry_the_listener_name_escaped():
    source = SimpleNamespace(stats=busy_stats(), name='odd "name" \\ here\nx')
    text = render_metrics(source)
    parse_exposition(text)
    assert 'tclisten_messages_acked_total{listener="odd \\"name\\" \\\\ here\\nx"} 110' in text.splitlines()
    with pytest.raises(ConfigError, match="Listener or a Stats"):
        render_metrics(object())


def test_prometheus_client_reads_the_text_and_the_collector_agrees():
    prometheus_client = pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    from tclisten.health import register_collector

    source = SimpleNamespace(stats=busy_stats(), name="reactor")
    ours = {(s.name, s.value) for f in text_string_to_metric_families(render_metrics(source)) for s in f.samples}
    registry = prometheus_client.CollectorRegistry()
    register_collector(source, registry)
    theirs = {(s.name, s.value) for f in text_string_to_metric_families(
        prometheus_client.generate_latest(registry).decode()) for s in f.samples}
    assert ours == theirs
    assert ("tclisten_messages_received_total", 120.0) in theirs
    names = {f.name for f in families(source.stats)}
    assert "tclisten_handler_seconds" in names


# -- HealthServer ----------------------------------------------------------------------------------

@pytest.mark.parametrize("prometheus", [False, None], ids=["stdlib", "auto"])
def test_health_server_answers_healthz_and_metrics(prometheus):
    stats = Stats()
    with HealthServer(stats, prometheus=prometheus) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.port > 0
        status, headers, body = get(server.url + "/healthz")
        assert status == 503
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body)["reason"] == "not connected to the broker"
        stats.connected()
        stats.received, stats.acked = 5, 5
        status, _, body = get(server.url + "/healthz")
        answer = json.loads(body)
        assert status == 200
        assert answer["healthy"]
        assert answer["reason"] == "consuming"
        assert answer["acked"] == 5
        status, headers, body = get(server.url + "/metrics")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        if prometheus is False:
            samples = parse_exposition(body.decode())
            assert samples["tclisten_messages_acked_total"] == 5
            assert samples["tclisten_connected"] == 1
        else:
            assert b"tclisten_messages_acked_total 5" in body
        status, _, body = get(server.url + "/healthz", method="HEAD")
        assert status == 200
        assert body == b""
        status, _, body = get(server.url + "/nope")
        assert status == 404
        assert b"/healthz" in body
        with pytest.raises(ConfigError, match="cannot serve health"):
            HealthServer(stats, port=server.port).start()
    assert "not serving" in repr(server)


def test_health_server_rejects_bad_options():
    with pytest.raises(ConfigError, match="port"):
        HealthServer(Stats(), port=70000)
    with pytest.raises(ConfigError, match="stall_after"):
        HealthServer(Stats(), stall_after=0)
    with pytest.raises(ConfigError, match="Listener or a Stats"):
        HealthServer({"received": 1})


def test_health_of_a_running_listener_follows_consumption(broker):
    """Live: 200 while consuming, 503 when messages wait and nothing is acked for the stall
    window, 200 again once acks flow, 503 after the listener stops."""
    app = make_listener(broker, prefetch=2, concurrency=2)
    gate = threading.Event()
    done = []

    @app.on(events(broker).taskCompleted)
    def handler(message, ctx):
        gate.wait(30)
        done.append(message.routing.taskId)

    app.declare()
    for _ in range(10):
        task = slug()
        broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
    with HealthServer(app, stall_after=0.5, prometheus=False) as server:
        with Running(app) as running:
            # the first backlog check at connection time sees 8 waiting; nothing can be acked
            status, _, body = wait_until(
                lambda: running.check() or (lambda r: r if r[0] == 503 and b"waiting" in r[2] else None)(
                    get(server.url + "/healthz")), 20, "a stalled listener to be unhealthy")
            # 8 once the broker has pushed the prefetched two (10 if the first check came earlier)
            assert re.match(r"(8|9|10) message\(s\) waiting and no ack for", json.loads(body)["reason"])
            gate.set()
            wait_until(lambda: len(done) == 10 and app.stats.acked == 10, 20, "every message acked")
            status, _, body = get(server.url + "/healthz")
            assert status == 200, body
            samples = parse_exposition(get(server.url + "/metrics")[2].decode())
            label = f'{{listener="{app.name}"}}'
            assert samples["tclisten_messages_acked_total" + label] == 10
            assert samples["tclisten_handler_seconds_count" + label] == 10
        status, _, body = get(server.url + "/healthz")
        assert status == 503
        assert json.loads(body)["reason"] == "not connected to the broker"


# -- queue hygiene -----------------------------------------------------------------------------------

def test_max_length_overflow_and_expiry_reach_the_broker(broker):
    app = make_listener(broker, max_length=5, overflow="drop-head", expires=3_600_000)
    app.add_handler(lambda m, c: None, events(broker).taskCompleted, name="h")
    app.declare()
    tasks = [slug() for _ in range(8)]
    for task in tasks:
        broker.publish("task-completed", task_key(task, GROUP), task_status(task, GROUP))
    assert broker.count(app.queue_name) == 5  # drop-head kept the newest five
    with broker.conn.channel() as channel:
        message = channel.basic_get(app.queue_name)
        assert json.loads(message.body)["status"]["taskId"] == tasks[3]
    with broker.conn.channel() as channel:  # declaring it again with the same arguments is accepted ...
        app.queue(channel).declare()
        with pytest.raises(broker.conn.channel_errors, match="x-max-length"):  # ... with others, refused
            Queue(app.queue_name, durable=True, auto_delete=False,
                  queue_arguments={**app.queue.queue_arguments, "x-max-length": 6})(channel).declare()
    assert app.queue.queue_arguments == {"x-max-length": 5, "x-overflow": "drop-head", "x-expires": 3600000}


def test_reject_publish_overflow_refuses_messages_beyond_max_length(broker):
    app = make_listener(broker, max_length=3, overflow="reject-publish")
    app.add_handler(lambda m, c: None, events(broker).taskCompleted, name="h")
    app.declare()
    for _ in range(3):
        broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    from amqp.exceptions import MessageNacked

    with pytest.raises(MessageNacked):  # the broker nacks the publisher confirm
        broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    broker.conn.release()  # a nack leaves the helper's channel unusable; reopen for cleanup
    broker.conn = type(broker.conn)(broker.url, transport_options={"confirm_publish": True})
    broker.channel = broker.conn.channel()
    assert broker.count(app.queue_name) == 3


def test_queue_with_other_arguments_is_a_clear_error_from_run_not_a_crash_loop(broker):
    first = make_listener(broker)
    first.add_handler(lambda m, c: None, events(broker).taskCompleted, name="h")
    first.declare()
    changed = Listener(first.name, broker_url=broker.url, declare_exchanges=True, max_length=100,
                       expires=60_000, retry=first.retry)
    changed.add_handler(lambda m, c: None, events(broker).taskCompleted, name="h")
    errors = []
    thread = threading.Thread(target=lambda: _capture(changed.run, errors), daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "run() kept retrying instead of raising"
    changed.stop()
    assert len(errors) == 1, errors
    assert isinstance(errors[0], BrokerError), errors
    assert "x-max-length" in str(errors[0]) or "inequivalent" in str(errors[0])
    assert errors[0].queue == first.queue_name
    assert queue_counts(broker.url, first.queue_name) == (0, 0)  # untouched, nobody consuming


def _capture(fn, errors: list) -> None:
    try:
        fn()
    except BaseException as exc:
        errors.append(exc)


def test_backlog_warning_is_logged_every_interval(broker, caplog):
    """The consumer reads the queue's depth every ``backlog_interval`` seconds and warns past
    ``backlog_warning`` (the interval set through Listener.consumer: Listener itself does not take it)."""

    app = make_listener(broker, backlog_warning=10)
    gate = threading.Event()
    app.add_handler(lambda m, c: gate.wait(30), events(broker).taskCompleted, name="h")
    app.declare()
    for _ in range(30):
        broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    caplog.set_level(logging.WARNING, logger="tclisten.consumer")
    stats = Stats()
    conn = app.connection()
    consumer = app.consumer(conn, prefetch=5, concurrency=2, grace_period=0.1, stats=stats,
                            backlog_warning=10, backlog_interval=0.2)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        warnings = lambda: [r for r in caplog.records if "warning threshold 10" in r.getMessage()]  # noqa: E731
        wait_until(lambda: len(warnings()) >= 3, 20, "three backlog warnings")
        assert stats.backlog == 25  # 30 less the prefetched five
        assert f"queue {app.queue_name} holds 25 messages" in warnings()[-1].getMessage()
    finally:
        gate.set()
        consumer.should_stop = True
        thread.join(20)
        conn.release()
    assert not thread.is_alive()


def test_listener_warns_about_the_backlog_when_it_connects(broker, caplog):
    app = make_listener(broker, backlog_warning=5, prefetch=2, concurrency=2)
    seen = []
    gate = threading.Event()

    @app.on(events(broker).taskCompleted)
    def handler(message, ctx):
        gate.wait(20)
        seen.append(message)

    app.declare()
    for _ in range(12):
        broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    caplog.set_level(logging.WARNING, logger="tclisten.consumer")
    warned = lambda: any("warning threshold 5" in r.getMessage() for r in caplog.records)  # noqa: E731
    with Running(app):
        wait_until(warned, 20, "the backlog warning")
        gate.set()
        wait_until(lambda: len(seen) == 12, 20, "every message")
    assert app.stats.backlog >= 10  # 12 less at most the prefetched two


# -- Listener(health_port=...) ----------------------------------------------------------------------

def test_listener_serves_health_and_metrics_while_it_runs(broker):
    app = make_listener(broker, health_port=0, concurrency=2, prefetch=4)
    seen = []
    app.add_handler(lambda m, c: seen.append(m), events(broker).taskCompleted, name="h")
    app.declare()
    for _ in range(3):
        broker.publish("task-completed", task_key(slug(), GROUP), task_status("t", GROUP))
    with Running(app) as running:
        wait_until(lambda: running.check() or len(seen) == 3 and app.stats.acked == 3, 20, "three messages acked")
        url = app.health.url  # port 0: the one the OS chose
        status, _, body = get(url + "/healthz")
        assert status == 200
        assert json.loads(body)["listener"] == app.name
        samples = parse_exposition(get(url + "/metrics")[2].decode())
        assert samples[f'tclisten_messages_acked_total{{listener="{app.name}"}}'] == 3
    with pytest.raises(OSError):  # stopped with the listener
        urllib.request.urlopen(url + "/healthz", timeout=2)


def test_health_port_in_use_is_a_clear_error_that_leaves_the_signal_handlers_alone(broker):
    import signal

    with HealthServer(Stats(), prometheus=False) as busy:
        app = make_listener(broker, health_port=busy.port)
        app.add_handler(lambda m, c: None, events(broker).taskCompleted, name="h")
        before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with pytest.raises(ConfigError, match="cannot serve health"):
                app.run()  # in the main thread, where run() installs its signal handlers
            after = {sig: signal.getsignal(sig) for sig in before}
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
    assert after == before
