"""Benchmark 2: I/O-bound handlers (each sleeps 20 ms) with 16 concurrent workers.

Candidates, on the same pre-published messages and queue layout as the dispatch benchmark:

- ``tclisten``: ``Listener(concurrency=16)``; the handler sleeps 20 ms.  Target: 95 % of
  the ceiling, 16 / 20 ms = 800 msg/s, i.e. 760 msg/s;
- ``kombu-threadpool``: what a careful user writes by hand: a ``ConsumerMixin`` that hands
  each message to a ``ThreadPoolExecutor(16)`` and acks finished ones on the connection
  thread (kombu channels are not thread-safe), polling every 5 ms.

>>> CANDIDATES
('kombu-threadpool', 'tclisten')
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue
from typing import Any, Callable

from bench import common
from bench.dispatch import handle
from bench.probe import Probe

CANDIDATES = ("kombu-threadpool", "tclisten")
BASELINE = "kombu-threadpool"
CONCURRENCY = 16
SLEEP = 0.020
PREFETCH = 200
TARGET_MSG_PER_S = 0.95 * CONCURRENCY / SLEEP  # 95 % of the ceiling: 760 msg/s


def handle_io(body: dict) -> str:
    """The handler: a 20 ms wait, as for a REST call or a database write."""
    time.sleep(SLEEP)
    return handle(body)


def consume_tclisten(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    from bench import tclisten_adapter

    return tclisten_adapter.consume(queue, count, prefetch, handle_io, concurrency=CONCURRENCY)


def consume_kombu_threadpool(queue: str, count: int, prefetch: int = PREFETCH,
                             binding_keys: tuple[str, ...] = common.BINDING_KEYS) -> dict[str, Any]:
    import kombu
    from kombu.mixins import ConsumerMixin

    probe = Probe(count)
    finished: SimpleQueue = SimpleQueue()
    pool = ThreadPoolExecutor(CONCURRENCY)
    exchange = kombu.Exchange(common.EXCHANGE, "topic", durable=True)
    kqueue = kombu.Queue(queue, durable=True, auto_delete=False,
                         bindings=[kombu.binding(exchange, routing_key=k) for k in binding_keys])

    def work(body: dict, message: Any) -> None:
        handle_io(body)
        finished.put(message)

    class Worker(ConsumerMixin):
        def __init__(self, connection: kombu.Connection) -> None:
            self.connection = connection

        def get_consumers(self, Consumer: Callable, channel: Any) -> list:
            return [Consumer(queues=[kqueue], callbacks=[self.on_message], accept=["json"],
                             prefetch_count=prefetch)]

        def on_message(self, body: dict, message: Any) -> None:
            pool.submit(work, body, message)

        def on_iteration(self) -> None:
            while True:
                try:
                    message = finished.get_nowait()
                except Empty:
                    return
                message.ack()
                if probe.hit():
                    self.should_stop = True

    try:
        with kombu.Connection(common.consume_url(), ssl=common.tls_options() or False) as conn:
            Worker(conn).run(safety_interval=0.005)
            probe.t1 = time.perf_counter()
            probe.cpu1 = time.process_time()
    finally:
        pool.shutdown(wait=True)
    return probe.result(max_rss_mib=common.max_rss_mib())


def consumer_for(candidate: str) -> Callable[..., dict[str, Any]]:
    if candidate == "tclisten":
        return consume_tclisten
    if candidate == "kombu-threadpool":
        return consume_kombu_threadpool
    raise ValueError(f"unknown I/O-bound candidate {candidate!r}; choose from {CANDIDATES}")
