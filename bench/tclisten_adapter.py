"""How the benchmarks build and drive a ``tclisten.Listener``: in one place, so that an API
change in tclisten means one edit here.

The listener gets the same three bindings as the baseline consumers (``common.BINDING_KEYS``)
on the bench's own exchange, declared through ``QueueEvents({"exchangePrefix": ...})``.

>>> app = build("bench-doc", lambda body: None)
>>> app.queue_name
'queue/guest/bench-doc'
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Callable

from bench import common
from bench.probe import Probe

logger = logging.getLogger(__name__)


class _BenchTopic:
    """A stand-in for ``QueueEvents(...).taskCompleted`` while tclisten.exchanges is not
    there: the three bench patterns only."""

    exchange = common.EXCHANGE
    _patterns = {
        ("provisionerId", common.PROVISIONER_A): common.BINDING_KEYS[0],
        ("taskGroupId", common.GROUP_G): common.BINDING_KEYS[1],
    }
    _words = ("routingKeyKind", "taskId", "runId", "workerGroup", "workerId", "provisionerId",
              "workerType", "schedulerId", "taskGroupId", "reserved")

    def pattern(self, **fields: str) -> str:
        ((name, value),) = fields.items()
        return self._patterns[(name, value)]

    def route_pattern(self, route: str) -> str:
        return f"route.{route}"

    def parse(self, routing_key: str) -> dict[str, str]:
        words = routing_key.split(".")
        return dict(zip(self._words, words[:9] + [".".join(words[9:])]))


def topic() -> Any:
    """``taskCompleted`` of the bench exchange prefix."""
    try:
        from tclisten.exchanges import QueueEvents
    except ImportError:
        return _BenchTopic()
    return QueueEvents({"exchangePrefix": common.EXCHANGE_PREFIX}).taskCompleted


def listener_name(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:8]}"


def queue_name(kind: str) -> str:
    return f"queue/{common.BROKER_USER}/{listener_name(kind)}"


def name_of(queue: str) -> str:
    prefix = f"queue/{common.BROKER_USER}/"
    if not queue.startswith(prefix):
        raise ValueError(f"{queue!r} is not a listener queue ({prefix}<name>)")
    return queue[len(prefix):]


def build(name: str, handle: Callable[[Any], Any], *, prefetch: int = 1000, concurrency: int = 1,
          after: Callable[[Any], None] | None = None, bindings: int = 3, consuming: bool = False,
          **options: Any) -> Any:
    """A Listener ``name`` with the three bench handlers; each calls ``handle(message.body)``
    and then ``after(app)``.  ``consuming``: on :func:`bench.common.consume_url` (TLS when
    the benchmark says so: tclisten verifies the certificate, the CA comes from
    ``SSL_CERT_FILE``), else on the broker the bench publishes to.  ``options`` go to the
    Listener (``retry=``, ...)."""
    from tclisten.app import Listener

    url = common.consume_url() if consuming else common.BROKER_URL
    app = Listener(name, broker_url=url, prefetch=prefetch, concurrency=concurrency,
                   declare_exchanges=True, **options)
    completed = topic()

    def by_provisioner(message: Any, ctx: Any) -> None:
        handle(message.body)
        if after is not None:
            after(app)

    def by_group(message: Any, ctx: Any) -> None:
        handle(message.body)
        if after is not None:
            after(app)

    def by_route(message: Any, ctx: Any) -> None:
        handle(message.body)
        if after is not None:
            after(app)

    app.on(completed, provisionerId=common.PROVISIONER_A)(by_provisioner)
    app.on(completed, taskGroupId=common.GROUP_G)(by_group)
    app.on(completed, route=f"{common.INDEX_ROUTE}.#")(by_route)
    patterns = sorted(b.pattern for b in app.bindings)
    if patterns != sorted(common.BINDING_KEYS):
        raise RuntimeError(f"tclisten bound {patterns}, the baselines bind {sorted(common.BINDING_KEYS)}")
    return app


def declare(queue: str) -> None:
    """Declare the listener's queues (main, parked, retry) as ``run()`` would, so messages
    can be pre-published before it starts."""
    build(name_of(queue), lambda body: None).declare()


def delete(queue: str) -> None:
    """Delete every queue and the exchange a listener on ``queue`` declared."""
    app = build(name_of(queue), lambda body: None)
    topology = app.topology
    names = app.queue_names()
    conn = common.connect()
    try:
        channel = conn.channel()
        for name in names:
            channel.queue_delete(name)
        channel.exchange_delete(topology.exchange.name)
    finally:
        conn.close()


def consume(queue: str, count: int, prefetch: int, handle: Callable[[Any], Any],
            concurrency: int = 1) -> dict[str, Any]:
    """Run a listener on ``queue`` until ``count`` messages were handled; return the probe's
    figures.  The clock stops when ``run()`` returns, i.e. after tclisten's final ack."""
    probe = Probe(count)
    lock = threading.Lock()

    def after(app: Any) -> None:
        if concurrency > 1:
            with lock:  # handlers run on several threads
                done = probe.hit()
        else:
            done = probe.hit()
        if done:
            app.stop()

    app = build(name_of(queue), handle, prefetch=prefetch, concurrency=concurrency, after=after, consuming=True)
    app.run()
    probe.t1 = time.perf_counter()
    probe.cpu1 = time.process_time()
    return probe.result(max_rss_mib=common.max_rss_mib())
