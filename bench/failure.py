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

Two more candidates measure a proposed change to ``tclisten/consumer.py`` (a monkeypatch in
their own process; nothing is edited): ``proposal-ok`` and ``proposal-failing`` run with every
delivery already in the frame buffer dispatched by one ``drain_events`` (see
``profile_dispatch.py``, ``batch-drain``) and, for the copies, pipelined publisher confirms:
``_settle`` publishes the copies of every finished delivery without waiting, then waits once for
all their confirms, then acks their originals (one ``queue_declare`` round trip per batch, as
now per copy); and failure records whose traceback is formatted without Python 3.11's caret
lines (``traceback.format_exception`` parses each frame's source with ``ast`` for them).

>>> CANDIDATES
('tclisten-ok', 'tclisten-failing', 'proposal-ok', 'proposal-failing')
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bench import common
from bench.dispatch import handle
from bench.probe import Probe

CANDIDATES = ("tclisten-ok", "tclisten-failing", "proposal-ok", "proposal-failing")
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


def pipelined_confirms() -> None:
    """The proposal for ``ListenerConsumer._settle`` / ``_republish``, as a monkeypatch: copies
    are published without waiting, their confirms awaited once per settle pass (a nack raises,
    as a refused copy does now: the originals go back to the queue)."""
    from amqp import spec
    from amqp.exceptions import MessageNacked

    from tclisten.consumer import ListenerConsumer

    def pipelined_channel(self: Any) -> Any:
        channel = self._producer.channel
        state = getattr(channel, "_tclisten_confirms", None)
        if state is None:
            state = channel._tclisten_confirms = {"published": 0, "outstanding": set(), "nacked": False}
            if not channel._confirm_selected:
                channel._confirm_selected = True
                channel.confirm_select()

            def publish(*args: Any, **kwargs: Any) -> Any:
                kwargs.pop("confirm_timeout", None)
                result = channel._basic_publish(*args, **kwargs)
                state["published"] += 1
                state["outstanding"].add(state["published"])
                return result

            def acked(tag: int, multiple: bool) -> None:
                outstanding = state["outstanding"]
                if multiple:
                    state["outstanding"] = {t for t in outstanding if t > tag}
                else:
                    outstanding.discard(tag)

            def nacked(tag: int, multiple: bool) -> None:
                state["nacked"] = True
                acked(tag, multiple)

            channel.basic_publish = publish
            channel.events["basic_ack"].add(acked)
            channel.events["basic_nack"].add(nacked)
        return channel, state

    def _settle(self: Any) -> None:
        finished = self._finished
        copied: list = []
        while not finished.empty():
            delivery = finished.get()
            if delivery.generation != self._generation:
                continue
            if delivery.outcome is not None:
                self.stats.observe(delivery.seconds)
            try:
                with self._blocking():
                    pipelined_channel(self)
                    if self._carry_out(delivery):
                        copied.append(delivery)
                        continue
            except self._broker_errors:
                raise
            except Exception:
                self._window.give_back(delivery.slot)
                continue
            self._window.done(delivery.slot)
        if copied:
            channel, state = pipelined_channel(self)
            with self._blocking():
                while state["outstanding"]:
                    channel.wait([spec.Basic.Ack, spec.Basic.Nack])
            if state["nacked"]:
                state["nacked"] = False
                for delivery in copied:
                    self._window.give_back(delivery.slot)
                raise MessageNacked("a copy was refused")
            for delivery in copied:
                self._window.done(delivery.slot)
        self._window.flush(force=bool(copied))
        if copied:
            with self._blocking():
                self._channel.queue_declare(self.topology.suspect_name, passive=True)

    ListenerConsumer._settle = _settle  # type: ignore[method-assign]


def plain_tracebacks() -> None:
    """The proposal for ``Dispatcher._failed``: the failure record's traceback without
    Python 3.11's caret lines (``^^^^``), which ``traceback.format_exception`` computes by
    parsing every frame's source line with ``ast``: same files, lines, functions and source."""
    import traceback as real
    import types

    import tclisten.dispatch as dispatch_module

    def format_exception(exc: BaseException) -> list[str]:
        frames = [(f.filename, f.lineno, f.name, f.line) for f in real.extract_tb(exc.__traceback__)]
        return (["Traceback (most recent call last):\n"] + real.StackSummary.from_list(frames).format()
                + real.format_exception_only(type(exc), exc))

    shim = types.SimpleNamespace(**{name: getattr(real, name) for name in dir(real) if not name.startswith("__")})
    shim.format_exception = format_exception
    dispatch_module.traceback = shim  # type: ignore[assignment]


def consume_proposal(queue: str, count: int, prefetch: int = PREFETCH, fail: bool = False) -> dict[str, Any]:
    from bench import profile_dispatch

    profile_dispatch.apply_variant("batch-drain")
    pipelined_confirms()
    plain_tracebacks()
    return consume(queue, count, prefetch, fail=fail)


def consume_proposal_failing(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    return consume_proposal(queue, count, prefetch, fail=True)


def consumer_for(candidate: str) -> Any:
    if candidate == "tclisten-ok":
        return consume
    if candidate == "tclisten-failing":
        return consume_failing
    if candidate == "proposal-ok":
        return consume_proposal
    if candidate == "proposal-failing":
        return consume_proposal_failing
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
