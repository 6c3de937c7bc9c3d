"""A listener on a 3-node cluster (the session's ``cluster`` fixture), connected with a failover
list: quorum queues keep serving when the node the listener is on stops (nothing confirmed is
lost, the same ``run()`` goes on), two listeners on two nodes share one queue exactly once,
a classic queue whose node stops is reported as such (and consumed again once it is back),
and no password of the failover list ever shows.

The figures are printed (``pytest -s``) as ``CLUSTER ...`` lines."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import uuid

import kombu
import pytest

from support.faultkit import Running, delete_entities, tally, wait_until
from support.listener_kit import GROUP, Broker, slug, task_key, task_status
from tclisten.app import Listener
from tclisten.exceptions import BrokerError
from tclisten.exchanges import QueueEvents


@pytest.fixture
def setup(cluster):
    """Taskcluster-like exchanges declared through node 3; what the test made is deleted
    afterwards through a node that runs (the test may stop one)."""
    b = Broker(cluster.urls[2])
    made: list = []
    yield b, made
    b.conn.release()
    queues = set(b.queues) | {q for app in made for q in app.queue_names()}
    exchanges = set(b.exchanges) | {app.topology.exchange.name for app in made}
    cluster.heal()
    delete_entities(cluster.urls[2], queues, exchanges)


def listener(setup, url, name=None, **options) -> tuple[Listener, list]:
    """A listener recording ``(taskId, redelivered, time)`` of every handled message."""
    b, made = setup
    options.setdefault("queue_type", "quorum")
    app = Listener(name or f"test-{uuid.uuid4().hex[:8]}", broker_url=url, declare_exchanges=True, **options)
    handled: list[tuple[str, bool, float]] = []

    @app.on(QueueEvents({"exchangePrefix": b.prefix}).taskCompleted)
    def record(message, ctx):
        time.sleep(0.001)
        handled.append((message.routing.taskId, message.redelivered, time.monotonic()))

    made.append(app)
    return app, handled


_errors_of = kombu.Connection("amqp://")
BROKER_ERRORS = tuple(_errors_of.connection_errors) + tuple(_errors_of.channel_errors) + (OSError,)


class ConfirmedPublisher:
    """Publishes ``count`` Taskcluster-style messages from a thread with publisher confirms;
    a publish that fails (its node went away) is tried again on a new connection.  Only
    confirmed taskIds are in ``confirmed``."""

    def __init__(self, url: str, exchange: str, count: int, interval: float = 0.0) -> None:
        self.url, self.exchange, self.count, self.interval = url, exchange, count, interval
        self.confirmed: list[str] = []
        self.failures = 0
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            tasks = [slug() for _ in range(self.count)]
            while tasks:
                try:
                    with kombu.Connection(self.url, connect_timeout=10,
                                          transport_options={"confirm_publish": True}) as conn:
                        producer = kombu.Producer(conn.channel())
                        while tasks:
                            task = tasks[0]
                            producer.publish(json.dumps(task_status(task, GROUP)).encode(), exchange=self.exchange,
                                             routing_key=task_key(task, GROUP), content_type="application/json",
                                             content_encoding="utf-8", delivery_mode=2, retry=False,
                                             timeout=30)
                            self.confirmed.append(tasks.pop(0))
                            if self.interval:
                                time.sleep(self.interval)
                except BROKER_ERRORS:
                    self.failures += 1  # unconfirmed: published again (it may be there twice)
                    time.sleep(0.5)
        except BaseException as exc:  # noqa: BLE001 - raised by join()
            self.errors.append(exc)

    def start(self) -> "ConfirmedPublisher":
        self.thread.start()
        return self

    def join(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the publisher did not finish"
        if self.errors:
            raise self.errors[0]


def nodes_serving(cluster, user: str = "guest", besides: int | None = None) -> list[int]:
    """The nodes with a client connection of ``user``, but node ``besides``."""
    return [i for i, node in enumerate(cluster) if i != besides and node.running()
            and any(c.get("user") == user for c in node.connections("user"))]


def largest_gap(times: list[float], after: float) -> float:
    times = sorted(t for t in times if t >= after)
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


# -- failover with quorum queues ---------------------------------------------------------------

def test_quorum_listener_survives_the_stop_of_its_node(cluster, setup, caplog):
    """2,000 confirmed messages through node 3 while the listener consumes on node 1 (the
    first of its failover list, and the leader of its quorum queues), which is stopped
    mid-stream: the same run() fails over to another node and handles every message."""
    caplog.set_level(logging.INFO)
    b, _ = setup
    app, handled = listener(setup, cluster.failover_url, prefetch=50)
    app.declare()
    total = 2000
    with Running(app, join_timeout=60) as running:
        wait_until(lambda: running.check() or app.stats.connected_now, 30, "the listener to consume")
        assert nodes_serving(cluster, besides=2) == [0]
        publisher = ConfirmedPublisher(cluster.urls[2], b.exchange("task-completed"), total).start()
        wait_until(lambda: running.check() or len(handled) >= 500, 60, "500 messages handled", interval=0.02)
        stopped_at = time.monotonic()
        cluster.stop_node(0)
        stop_took = time.monotonic() - stopped_at
        publisher.join()
        confirmed = set(publisher.confirmed)
        wait_until(lambda: running.check() or {t for t, _, _ in handled} >= confirmed, 90,
                   "every confirmed message handled", interval=0.1)
        wait_until(lambda: cluster[1].queue_counts(app.queue_name) == (0, 0), 30, "the queue to be empty",
                   interval=0.5)
        assert running.thread.is_alive()  # the same run(): no restart
        serving = nodes_serving(cluster, besides=2)
    result = tally(confirmed, [(t, r) for t, r, _ in handled])
    gap = largest_gap([t for _, _, t in handled], stopped_at - 1)
    print(f"\nCLUSTER failover (quorum): {result.line('node stop')} publish_retries={publisher.failures} "
          f"reconnects={app.stats.reconnects} stop_node={stop_took:.1f}s without_service={gap:.1f}s "
          f"now_on_node={serving}")
    assert result.lost == 0
    assert result.duplicates <= 50 + publisher.failures  # the prefetch window, and republished ones
    assert result.duplicates_not_redelivered <= publisher.failures
    assert app.stats.reconnects >= 1 and app.stats.parked == 0
    assert serving and 0 not in serving
    text = caplog.text + repr(app)
    assert "guest:guest" not in text and "guest:****@" in text


def test_two_listeners_on_two_nodes_share_one_quorum_queue_exactly_once(cluster, setup):
    b, _ = setup
    name = f"test-{uuid.uuid4().hex[:8]}"
    one, handled_one = listener(setup, cluster.urls[0], name, prefetch=10)
    two, handled_two = listener(setup, cluster.urls[1], name, prefetch=10)
    one.declare()
    total = 1000
    with Running(one) as first, Running(two) as second:
        wait_until(lambda: first.check() or second.check() or (one.stats.connected_now and two.stats.connected_now),
                   30, "both listeners to consume")
        assert cluster[0].queue_counts(one.queue_name)[0] == 0
        publisher = ConfirmedPublisher(cluster.urls[2], b.exchange("task-completed"), total).start()
        publisher.join()
        wait_until(lambda: first.check() or second.check() or len(handled_one) + len(handled_two) >= total, 60,
                   "every message handled", interval=0.05)
        time.sleep(0.5)  # a duplicate would show now
    result = tally(publisher.confirmed, [(t, r) for t, r, _ in handled_one + handled_two])
    print(f"\nCLUSTER competing consumers: {result.line('two nodes')} node1={len(handled_one)} "
          f"node2={len(handled_two)}")
    assert result.lost == 0 and result.duplicates == 0
    assert len(handled_one) >= 50 and len(handled_two) >= 50
    assert not {t for t, _, _ in handled_one} & {t for t, _, _ in handled_two}


# -- classic queues in a cluster ------------------------------------------------------------------

def test_a_classic_queue_whose_node_stops_is_reported_then_consumed_again(cluster, setup, caplog):
    caplog.set_level(logging.INFO)
    b, _ = setup
    app, handled = listener(setup, cluster.failover_url, queue_type="classic")
    app.declare()  # through node 1: the queue's home
    with Running(app, join_timeout=60) as running:
        wait_until(lambda: running.check() or app.stats.connected_now, 30, "the listener to consume")
        before = slug()
        b.publish("task-completed", task_key(before, GROUP), task_status(before, GROUP))
        wait_until(lambda: running.check() or handled, 20, "the first message")
        stopped_at = time.monotonic()
        cluster.stop_node(0)

        def reported():
            return [r for r in caplog.records if r.levelno == logging.ERROR and "home node" in r.getMessage()]

        wait_until(lambda: running.check() or reported(), 30, "the error about the home node")
        time.sleep(3)  # the outage goes on: how often is it said?
        errors = len(reported())
        outage = time.monotonic() - stopped_at
        starting_at = time.monotonic()
        cluster.start_node(0)
        started_in = time.monotonic() - starting_at
        wait_until(lambda: running.check() or app.stats.connected_now, 60, "the listener to consume again",
                   interval=0.1)
        resumed = time.monotonic() - starting_at
        after = slug()
        b.publish("task-completed", task_key(after, GROUP), task_status(after, GROUP))
        wait_until(lambda: running.check() or len(handled) == 2, 30, "the message after the node came back")
    message = reported()[0].getMessage()
    print(f"\nCLUSTER classic home node down: {errors} error line(s) in {outage:.1f} s; the node took "
          f"{started_in:.1f} s to start again, the listener consumed again {resumed:.1f} s after its start "
          f"began, reconnects={app.stats.reconnects}\n  {message}")
    assert [t for t, _, _ in handled] == [before, after]
    assert re.search(r"home node '[^']+' of durable queue 'queue/guest/test-[0-9a-f]+", message), message
    assert "queue_type='quorum' replicates it" in message
    assert errors <= 2 * outage + 2  # said at each reconnect attempt (about 1 s apart), not in a busy loop


# -- no password shows --------------------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_password_of_a_failover_list_shows(caplog):
    """Distinct passwords per URL (nothing listens there): the repr, the "connecting to" line
    and the error after the one try show none of them."""
    caplog.set_level(logging.DEBUG)
    passwords = ["first-s3cret", "second-s3cret", "third-s3cret"]
    urls = [f"amqp://guest:{pw}@127.0.0.1:{closed_port()}//" for pw in passwords]
    for given in (";".join(urls), urls):
        app = Listener("nopassword", broker_url=given)
        app.add_handler(lambda m, c: None, QueueEvents.taskCompleted, name="h")
        with pytest.raises(BrokerError) as failed:
            app.run(wait_for_broker=0)
        shown = "\n".join([repr(app), str(app.address), str(failed.value), caplog.text])
        assert not [pw for pw in passwords if pw in shown], shown
        assert "connecting to " + ";".join(u.replace(pw, "****") for u, pw in zip(urls, passwords)) in caplog.text
        assert repr(app).count("guest:****@") == 3
        caplog.clear()
