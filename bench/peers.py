"""Peer frameworks as benchmark candidates: FastStream's ``RabbitBroker`` subscriber and
nameko's ``@consume``, each with its own defaults, on the same pre-published messages.

Both are optional (``pip install 'tclisten[bench]'``): :func:`missing` names what is not
installed, and the benchmarks then report the row as "not installed" instead of failing.

- ``faststream``: ``RabbitBroker(url)`` with a ``@broker.subscriber(RabbitQueue(name,
  durable=True, routing_key=...), RabbitExchange(<the bench exchange>, type=TOPIC,
  durable=True))`` handler taking the decoded ``dict`` body.  Its defaults: no prefetch limit
  (``basic.qos`` is not sent), one ack per message after the handler, FastStream's access log at
  INFO (two lines per message, "Received" and "Processed"; written to /dev/null here so that the
  terminal is not what is measured).
- ``faststream-tuned``: the same with ``Channel(prefetch_count=1000)`` and no access log
  (``logger=None``): what a user who reads FastStream's docs on throughput would do (not a target).
- ``nameko``: a service with ``@consume(Queue(...))`` run by ``ServiceRunner`` under
  eventlet's monkey patch, as ``nameko run`` does; defaults: ``max_workers`` 10, which is
  also its prefetch; one ack per message after its worker greenlet finishes.

>>> sorted(CANDIDATES)
['faststream', 'faststream-tuned', 'nameko']
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

from bench import common
from bench.probe import Probe

CANDIDATES = {"faststream": "faststream", "faststream-tuned": "faststream", "nameko": "nameko"}


def missing(candidate: str) -> str | None:
    """The distribution a peer candidate needs and lacks, or None."""
    module = CANDIDATES.get(candidate)
    if module is None:
        return None
    needs = [module] + (["aio_pika"] if module == "faststream" else ["eventlet"] if module == "nameko" else [])
    for name in needs:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def _handle(body: Any) -> Any:
    from bench import dispatch  # looked up per call: the memory benchmark swaps it for its sampler

    return dispatch.handle(body)


def _quiet_stderr() -> None:
    """FastStream's access log goes to the standard streams: to /dev/null with them."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


# --------------------------------------------------------------------------------------------
# FastStream


def consume_faststream(queue: str, count: int, prefetch: int = 0, tuned: bool = False) -> dict[str, Any]:
    """FastStream's RabbitBroker subscriber until ``count`` messages were handled (``prefetch``
    is unused unless ``tuned``: the default sends no basic.qos)."""
    import asyncio

    from faststream.rabbit import Channel, ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue

    _quiet_stderr()
    probe = Probe(count)
    url = common.consume_url()
    options: dict[str, Any] = {}
    if tuned:
        options["logger"] = None  # no access log (log_level= only sets the level it logs at)
    broker = RabbitBroker(url, **options)
    exchange = RabbitExchange(common.EXCHANGE, type=ExchangeType.TOPIC, durable=True)
    rqueue = RabbitQueue(queue, durable=True, routing_key=common.BINDING_KEYS[0])
    done = asyncio.Event()
    subscribe: dict[str, Any] = {"channel": Channel(prefetch_count=prefetch or 1000)} if tuned else {}

    @broker.subscriber(rqueue, exchange, **subscribe)
    async def on_message(body: dict) -> None:
        _handle(body)
        if probe.hit():
            done.set()

    async def main() -> None:
        await broker.start()
        await done.wait()
        for _ in range(3):  # let the last ack (written after the handler returns) go out first
            await asyncio.sleep(0)
        await broker.stop()

    asyncio.run(main())
    probe.t1 = time.perf_counter()
    probe.cpu1 = time.process_time()
    return probe.result(max_rss_mib=common.max_rss_mib())


def consume_faststream_tuned(queue: str, count: int, prefetch: int = 1000) -> dict[str, Any]:
    return consume_faststream(queue, count, prefetch, tuned=True)


# --------------------------------------------------------------------------------------------
# nameko


def consume_nameko(queue: str, count: int, prefetch: int = 0) -> dict[str, Any]:
    """nameko's ``@consume`` until ``count`` messages were handled (``prefetch`` unused:
    nameko's is ``max_workers``, 10 by default)."""
    import warnings

    warnings.simplefilter("ignore")  # eventlet's deprecation notice
    import eventlet

    eventlet.monkey_patch()
    from eventlet.event import Event
    from kombu import Exchange, Queue
    from nameko.messaging import consume
    from nameko.runners import ServiceRunner

    probe = Probe(count)
    done = Event()
    kqueue = Queue(queue, exchange=Exchange(common.EXCHANGE, "topic", durable=True),
                   routing_key=common.BINDING_KEYS[0], durable=True)

    class BenchService:
        name = "tclisten_bench"

        @consume(queue=kqueue)
        def on_message(self, body: dict) -> None:
            _handle(body)
            if probe.hit() and not done.ready():
                done.send(True)

    config: dict[str, Any] = {"AMQP_URI": common.consume_url()}
    tls = common.tls_options()
    if tls:
        config["AMQP_SSL"] = tls
    runner = ServiceRunner(config)
    runner.add_service(BenchService)
    runner.start()
    done.wait()
    runner.stop()  # waits for running workers; their acks go out before the connection closes
    probe.t1 = time.perf_counter()
    probe.cpu1 = time.process_time()
    return probe.result(max_rss_mib=common.max_rss_mib())


CONSUMERS = {"faststream": consume_faststream, "faststream-tuned": consume_faststream_tuned,
             "nameko": consume_nameko}
