"""Benchmark 1: dispatch throughput of pre-published Taskcluster messages.

Candidates (each consumes the same N pre-published task-completed messages from a durable
queue with the same 3 bindings, in a fresh process):

- ``tclisten``: ``tclisten.Listener`` with three ``@app.on`` handlers, ``concurrency=1`` (the
  default), prefetch 1000; the row every ratio is taken against;
- ``pyamqp-batched``: raw, unpatched py-amqp, ``json.loads``, acks batched with
  ``multiple=True`` every ``prefetch // 2`` messages, the same prefetch (the ceiling for a
  Python consumer on this stack);
- ``kombu-mixin``: what users write today: a ``kombu.mixins.ConsumerMixin`` whose
  ``Consumer(callbacks=[on_message], accept=["json"])`` lets kombu decode the JSON body,
  calls the handler and acks each message (prefetch 1000 too);
- ``faststream``, ``faststream-tuned``, ``nameko``: the peer frameworks with their own
  defaults (:mod:`bench.peers`), "not installed" when they are missing;
- ``tclisten-proposals``: tclisten with two changes proposed for its hot path applied as
  monkeypatches in its own process (nothing edited; ``profile_dispatch.py``: ``batch-drain``,
  ``light-message``), no target: what they would give, measured in the same rounds;
- by hand (``consumer_for``): ``kombu-lean`` (the mixin with a raw ``on_message`` and
  ``json.loads``), ``tclisten-inline`` (``concurrency=0``), ``tclisten-c2`` (two threads).

Every handler does the same trivial work (reads the taskId).  The window timed is from the
first message reaching the handler to the N-th one handled and acked (see probe.py).
The consume URL is :func:`bench.common.consume_url` (the TLS benchmark points it at an
``amqps://`` listener).

>>> CANDIDATES[0]
'tclisten'
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from bench import common, peers
from bench.probe import Probe

logger = logging.getLogger(__name__)

CANDIDATES = ("tclisten", "pyamqp-batched", "kombu-mixin", "faststream", "faststream-tuned", "nameko",
              "tclisten-proposals")
BASELINE = "tclisten"
PREFETCH = 1000
#: tclisten's throughput over each peer's, same round: what the brief asks for.
TARGETS = {"pyamqp-batched": 1.0, "kombu-mixin": 1.8, "faststream": 3.0}


def handle(body: dict) -> str:
    """The trivial handler every candidate calls."""
    return body["status"]["taskId"]


# --------------------------------------------------------------------------------------------
# consumers (each runs in a fresh process)


def consume_kombu_mixin(queue: str, count: int, prefetch: int = PREFETCH, lean: bool = False,
                        binding_keys: tuple[str, ...] = common.BINDING_KEYS) -> dict[str, Any]:
    """A hand-written kombu ConsumerMixin that acks each message."""
    import kombu
    from kombu.mixins import ConsumerMixin

    probe = Probe(count)
    exchange = kombu.Exchange(common.EXCHANGE, "topic", durable=True)
    kqueue = kombu.Queue(queue, durable=True, auto_delete=False,
                         bindings=[kombu.binding(exchange, routing_key=k) for k in binding_keys])

    class Worker(ConsumerMixin):
        def __init__(self, connection: kombu.Connection) -> None:
            self.connection = connection

        def get_consumers(self, Consumer: Callable, channel: Any) -> list:
            if lean:
                return [Consumer(queues=[kqueue], on_message=self.on_raw, prefetch_count=prefetch)]
            return [Consumer(queues=[kqueue], callbacks=[self.on_message], accept=["json"],
                             prefetch_count=prefetch)]

        def on_message(self, body: dict, message: Any) -> None:
            handle(body)
            message.ack()
            if probe.hit():
                self.should_stop = True

        def on_raw(self, message: Any) -> None:
            handle(json.loads(message.body))
            message.ack()
            if probe.hit():
                self.should_stop = True

    with kombu.Connection(common.consume_url(), ssl=common.tls_options() or False) as conn:
        Worker(conn).run()
        probe.t1 = time.perf_counter()  # the loop has returned: every ack is on the wire
        probe.cpu1 = time.process_time()
    return probe.result(max_rss_mib=common.max_rss_mib())


def consume_pyamqp_batched(queue: str, count: int, prefetch: int = PREFETCH,
                           batch: int | None = None) -> dict[str, Any]:
    """Raw py-amqp: decode, handle, ack every ``batch`` deliveries with multiple=True."""
    batch = batch or max(prefetch // 2, 1)
    probe = Probe(count)
    conn = common.connect(consume=True)
    channel = conn.channel()
    channel.basic_qos(0, prefetch, False)
    state = {"unacked": 0, "last": 0}

    def on_message(message: Any) -> None:
        handle(json.loads(message.body))
        state["last"] = message.delivery_tag
        state["unacked"] += 1
        if state["unacked"] >= batch:
            channel.basic_ack(state["last"], multiple=True)
            state["unacked"] = 0
        probe.hit()

    channel.basic_consume(queue, callback=on_message)
    while not probe.done:
        conn.drain_events(timeout=30)
    if state["unacked"]:
        channel.basic_ack(state["last"], multiple=True)
    # Stop the clock after the last ack is on the wire, as the per-message candidates do.
    probe.t1 = time.perf_counter()
    probe.cpu1 = time.process_time()
    conn.close()
    return probe.result(max_rss_mib=common.max_rss_mib())


def consume_tclisten(queue: str, count: int, prefetch: int = PREFETCH, concurrency: int = 1) -> dict[str, Any]:
    """tclisten.Listener with the three bindings as three handlers."""
    from bench import tclisten_adapter

    return tclisten_adapter.consume(queue, count, prefetch, handle, concurrency=concurrency)


def consume_tclisten_proposals(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    """tclisten with the two proposed changes that keep every guarantee, applied in this
    process only (``profile_dispatch.py``: ``batch-drain`` and ``light-message``)."""
    from bench import profile_dispatch

    profile_dispatch.apply_variant("batch-drain")
    profile_dispatch.apply_variant("light-message")
    return consume_tclisten(queue, count, prefetch)


def _consume_tclisten_inline(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    return consume_tclisten(queue, count, prefetch, concurrency=0)


def _consume_tclisten_c2(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    return consume_tclisten(queue, count, prefetch, concurrency=2)


def consumer_for(candidate: str) -> Callable[..., dict[str, Any]]:
    if candidate == "kombu-mixin":
        return consume_kombu_mixin
    if candidate == "kombu-lean":
        return _consume_kombu_lean
    if candidate == "pyamqp-batched":
        return consume_pyamqp_batched
    if candidate == "tclisten":
        return consume_tclisten
    if candidate == "tclisten-proposals":
        return consume_tclisten_proposals
    if candidate == "tclisten-inline":
        return _consume_tclisten_inline
    if candidate == "tclisten-c2":
        return _consume_tclisten_c2
    if candidate in peers.CONSUMERS:
        return peers.CONSUMERS[candidate]
    raise ValueError(f"unknown dispatch candidate {candidate!r}; choose from {CANDIDATES}")


def _consume_kombu_lean(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    return consume_kombu_mixin(queue, count, prefetch, lean=True)


# --------------------------------------------------------------------------------------------
# the round driver (runs in the parent)


def is_tclisten(candidate: str) -> bool:
    return candidate.startswith("tclisten")


def queue_name_for(candidate: str) -> str:
    if is_tclisten(candidate):
        from bench import tclisten_adapter

        return tclisten_adapter.queue_name(candidate)
    return common.unique(f"bench-{candidate}")


def prepare(candidates: tuple[str, ...], queues: dict[str, str] | None = None) -> dict[str, str]:
    """Declare one queue per candidate (same bindings, empty) and return their names.

    Names go into ``queues`` as they are declared, so that ``cleanup(queues)`` in a
    ``finally`` also deletes what was declared before a failure.
    """
    queues = {} if queues is None else queues
    for candidate in candidates:
        queues[candidate] = name = queues.get(candidate) or queue_name_for(candidate)
        common.retrying(_declare, candidate, name)
    return queues


def _declare(candidate: str, name: str) -> None:
    if is_tclisten(candidate):
        from bench import tclisten_adapter

        tclisten_adapter.declare(name)
    else:
        conn = common.connect()
        try:
            common.declare_queue(conn.channel(), name, common.BINDING_KEYS)
        finally:
            conn.close()
    common.purge(name)


def run_one(candidate: str, queue: str, messages: list[common.BenchMessage],
            prefetch: int = PREFETCH, timeout: float = 300.0,
            consumer: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """Pre-publish ``messages`` into ``queue`` alone, then consume them (see ``consume_one``)."""
    common.retrying(common.purge, queue)
    common.publish(messages, [queue])
    return consume_one(candidate, queue, len(messages), prefetch, timeout, consumer)


class RoundDisturbed(RuntimeError):
    """A candidate left messages in its queue: with a healthy broker that does not happen, so
    the broker was most likely restarted under it (redeliveries counted twice)."""


def run_round(order: list[str], queues: dict[str, str], messages: list[common.BenchMessage],
              prefetch: int = PREFETCH, timeout: float = 300.0,
              consumer_for: Callable[[str], Callable[..., dict[str, Any]]] = consumer_for,
              strict: bool = False) -> dict[str, dict]:
    """One interleaved round: publish ``messages`` once into every candidate's queue (they
    share the bindings, so the broker fans each message out), then let each candidate of
    ``order`` consume its copy in a fresh process.

    Publishing once per round instead of once per candidate makes a round several times
    shorter; the queues waiting their turn hold the same messages, and the rotating order
    spreads that over the candidates.  ``strict``: raise :class:`RoundDisturbed` when a
    candidate left messages behind (so the caller can run the round again).
    """
    names = [queues[c] for c in order]
    for name in names:
        common.purge(name)
    common.publish(messages, names)
    results = {}
    for candidate in order:
        results[candidate] = consume_one(candidate, queues[candidate], len(messages), prefetch, timeout,
                                         consumer_for(candidate))
        if strict and results[candidate]["left_in_queue"]:
            raise RoundDisturbed(f"{candidate} left {results[candidate]['left_in_queue']} messages")
    return results


def run_round_robust(order: list[str], queues: dict[str, str], messages: list[common.BenchMessage],
                     **kwargs: Any) -> dict[str, dict]:
    """``run_round``, again (up to twice) when a broker restart disturbed it or it failed;
    the last attempt keeps whatever it measured, messages left behind included."""
    for _ in range(2):
        try:
            return run_round(order, queues, messages, strict=True, **kwargs)
        except Exception as exc:
            logger.warning("round disturbed (%s: %s); running it again in 5 s", exc.__class__.__name__,
                           (str(exc).strip().splitlines() or [""])[-1])
            time.sleep(5)
    return run_round(order, queues, messages, **kwargs)


def consume_one(candidate: str, queue: str, count: int, prefetch: int, timeout: float,
                consumer: Callable[..., dict[str, Any]] | None) -> dict[str, Any]:
    """Consume ``count`` pre-published messages with ``candidate`` (or with
    ``consumer(queue, count, prefetch)``) in a fresh process; check the queue was left empty
    and add the broker's CPU per message."""
    broker0 = common.broker_cpu_seconds()
    result = common.in_subprocess(consumer or consumer_for(candidate), queue, count, prefetch, timeout=timeout)
    broker1 = common.broker_cpu_seconds()
    if broker0 is not None and broker1 is not None:
        result["broker_cpu_us_per_msg"] = (broker1 - broker0) / count * 1e6
    left = common.depth(queue)
    result["left_in_queue"] = left
    if left:
        logger.warning("%s left %d messages unacked in %s", candidate, left, queue)
        common.purge(queue)
    return result


def cleanup(queues: dict[str, str]) -> None:
    """Delete the candidates' queues (and everything a listener declared)."""
    for candidate, name in queues.items():
        try:
            if is_tclisten(candidate):
                from bench import tclisten_adapter

                common.retrying(tclisten_adapter.delete, name)
            else:
                common.retrying(common.delete_queue, name)
        except Exception:  # best effort: report, carry on deleting the others
            logger.exception("could not delete %s", name)
