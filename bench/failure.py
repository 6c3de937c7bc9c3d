"""Benchmark: the failure path.  Every handler raises, so every message costs a retry copy
(published to the listener's delay queue with publisher confirms) and then the ack of its
original; against the same listener whose handlers succeed, in the same round.

Two tclisten candidates on queues of their own, the same pre-published messages, the same
listener settings (prefetch 1000, ``concurrency=1``, ``retry={"max_attempts": 3, "delay":
600}``: the copies wait 10 minutes in ``.../retry/600000``, far longer than the run, and are
deleted with the queues):

- ``tclisten-ok``: the handlers read the taskId and return;
- ``tclisten-failing``: the handlers read the taskId and raise ``RuntimeError``.

Timed from the first handler call to ``run()`` returning, i.e. after the last copy was
confirmed and the last original acked.  Goal: the failing path at >= 0.5x the throughput of
the succeeding one.

``pyamqp-copies`` is the same work done by hand on raw py-amqp, the floor of any failure path
that keeps a failed message as a persistent, confirmed copy: for each delivery a copy of its
body with a failure-record header table of the same size is published to the same delay queue
(confirm mode, the copies of every 64 deliveries published back to back, then one wait for all
their confirms), then the batch's originals are acked with one ``multiple`` ack.

One more candidate measures a proposed change (a monkeypatch in its own process; nothing is
edited): ``lean-failing`` records each failure without its traceback (type, message, time
only), so the copy's ``x-tclisten-*`` headers shrink from about 1 KB to about 200 bytes: what the
traceback's share of the copy costs the broker and the client.

>>> CANDIDATES
('tclisten-ok', 'tclisten-failing', 'pyamqp-copies', 'lean-failing')
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from bench import common
from bench.dispatch import handle
from bench.probe import Probe

CANDIDATES = ("tclisten-ok", "tclisten-failing", "pyamqp-copies", "lean-failing")
BASELINE = "tclisten-ok"
PREFETCH = 1000
RETRY = {"max_attempts": 3, "delay": 600}
TARGET = 0.5


class Failing(RuntimeError):
    """What the failing handlers raise."""


def consume(queue: str, count: int, prefetch: int = PREFETCH, fail: bool = False) -> dict[str, Any]:
    from bench import tclisten_adapter

    logging.getLogger("tclisten.dispatch").setLevel(logging.CRITICAL)  # one error line per failure otherwise
    probe = Probe(count)
    holder: dict[str, Any] = {}

    def handler(body: Any) -> None:
        handle(body)
        if probe.hit():
            holder["app"].stop()
        if fail:
            raise Failing("the bench's handlers fail")

    app = holder["app"] = tclisten_adapter.build(tclisten_adapter.name_of(queue), handler, prefetch=prefetch,
                                                 consuming=True, retry=RETRY)
    summary = app.run()
    probe.t1 = time.perf_counter()
    probe.cpu1 = time.process_time()
    return probe.result(retried=summary.retried, acked=summary.acked, max_rss_mib=common.max_rss_mib())


def consume_failing(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    return consume(queue, count, prefetch, fail=True)


def consume_pyamqp_copies(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    """Raw py-amqp doing the failing path's broker work: copy, confirm, then ack."""
    import amqp
    from amqp import spec

    from bench import tclisten_adapter
    from tclisten.topology import retry_key

    app = tclisten_adapter.build(tclisten_adapter.name_of(queue), lambda body: None, retry=RETRY)
    exchange = app.topology.exchange.name
    routing_key = retry_key(app.retry.delays()[0])  # where tclisten's first retry goes
    record = {"handler": "bench.failure.handler", "type": "Failing", "message": "bench.failure.Failing: "
              "the bench's handlers fail", "traceback": "  File \"bench/failure.py\", line 1, in handler\n" * 12,
              "at": time.time()}
    probe = Probe(count)
    conn = common.connect(consume=True)
    channel = conn.channel()
    publisher = conn.channel()
    publisher.confirm_select()
    outstanding: set[int] = set()
    published = 0

    def confirmed(tag: int, multiple: bool) -> None:
        outstanding.difference_update([n for n in outstanding if n <= tag] if multiple else [tag])

    publisher.events["basic_ack"].add(confirmed)
    channel.basic_qos(0, prefetch, False)
    batch: list[Any] = []
    channel.basic_consume(queue, callback=batch.append)
    received = 0
    while not probe.done:
        conn.drain_events(timeout=30)
        if len(batch) < 64 and received + len(batch) < count:  # copies go out 64 at a time
            continue
        received += len(batch)
        for message in batch:
            handle(json.loads(message.body))
            probe.hit()
            headers = dict(message.properties.get("application_headers") or {}, **{"x-failures": [record]})
            copy = amqp.Message(message.body, content_type="application/json", content_encoding="utf-8",
                                application_headers=headers, delivery_mode=2)
            publisher._basic_publish(copy, exchange=exchange, routing_key=routing_key)
            published += 1
            outstanding.add(published)
        while outstanding:
            publisher.wait([spec.Basic.Ack, spec.Basic.Nack])
        if batch:
            channel.basic_ack(batch[-1].delivery_tag, multiple=True)
        batch.clear()
    # The clock stops once the last copy is confirmed and its original acked, as for tclisten.
    probe.t1 = time.perf_counter()
    probe.cpu1 = time.process_time()
    conn.close()
    return probe.result(max_rss_mib=common.max_rss_mib())


def consume_lean_failing(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    import tclisten.dispatch as dispatch_module

    dispatch_module._trace = lambda exc, text=None: ""  # type: ignore[assignment]
    return consume(queue, count, prefetch, fail=True)


def consumer_for(candidate: str) -> Any:
    if candidate == "tclisten-ok":
        return consume
    if candidate == "tclisten-failing":
        return consume_failing
    if candidate == "pyamqp-copies":
        return consume_pyamqp_copies
    if candidate == "lean-failing":
        return consume_lean_failing
    raise ValueError(f"unknown failure-path candidate {candidate!r}; choose from {CANDIDATES}")


def declare(queue: str) -> None:
    from bench import tclisten_adapter

    tclisten_adapter.build(tclisten_adapter.name_of(queue), lambda body: None, retry=RETRY).declare()


def delete(queue: str) -> None:
    """The listener's queues, its delay queue for RETRY included, and its exchange."""
    from bench import tclisten_adapter

    app = tclisten_adapter.build(tclisten_adapter.name_of(queue), lambda body: None, retry=RETRY)
    conn = common.connect()
    try:
        channel = conn.channel()
        for name in app.queue_names():
            channel.queue_delete(name)
        channel.exchange_delete(app.topology.exchange.name)
    finally:
        conn.close()


def retry_depth(queue: str) -> int:
    """Copies waiting in the delay queue of the listener on ``queue``."""
    from bench import tclisten_adapter

    app = tclisten_adapter.build(tclisten_adapter.name_of(queue), lambda body: None, retry=RETRY)
    delayed = [name for name in app.queue_names() if "/retry/" in name]
    return sum(common.depth(name) for name in delayed)
