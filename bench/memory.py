"""Benchmark: a backlog drained after downtime, and resident memory along the way
(100,000 messages waiting in the queue; fewer in quick mode).

Each candidate's queue is filled while nothing consumes it (the listener was down), then the
candidate starts in a fresh process and drains it; its handler samples the process's RSS
(``/proc/self/statm``) after every tenth of the run, and the peak RSS (``ru_maxrss``) is taken
at the end.  Growth is the RSS at the end minus the RSS at the first sample past both the
first tenth and twice the prefetch window (start-up, first allocations and a full window of
prefetched messages are behind us by then).  Targets for tclisten: growth under 1 MiB (flat),
and the drain time against the peers (ratios of drain times, same round).

>>> s = Sampler(10)
>>> for _ in range(10):
...     _ = s({"status": {"taskId": "x"}})
>>> len(s.samples)
10
"""

from __future__ import annotations

import gc
from typing import Any

from bench import common
from bench.dispatch import handle

CANDIDATES = ("tclisten", "pyamqp-batched", "kombu-mixin", "faststream", "nameko")
BASELINE = "tclisten"
PREFETCH = 1000
TARGET_GROWTH_MIB = 1.0


class Sampler:
    """The handler: does the trivial work and samples RSS every tenth of ``count`` calls."""

    def __init__(self, count: int, warm: int = 2 * PREFETCH) -> None:
        self.count = count
        self.warm = warm
        self.step = max(count // 10, 1)
        self.calls = 0
        self.samples: list[tuple[int, int]] = []

    def __call__(self, body: dict) -> str:
        self.calls += 1
        if self.calls % self.step == 0 or self.calls == self.count:
            self.samples.append((self.calls, common.rss_bytes()))
        return handle(body)

    def result(self, extra: dict[str, Any]) -> dict[str, Any]:
        warm = [(calls, rss) for calls, rss in self.samples if calls >= self.warm] or self.samples[-1:]
        reference_at, first = warm[0]
        last = self.samples[-1][1]
        out = dict(extra)
        out.update({
            "reference_after": reference_at,
            "rss_reference_mib": first / 2**20,
            "rss_end_mib": last / 2**20,
            "growth_mib": (last - first) / 2**20,
            "samples_mib": [round(rss / 2**20, 2) for _, rss in self.samples],
            "gc_objects": len(gc.get_objects()),
        })
        return out


def consume_tclisten(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    from bench import tclisten_adapter

    sampler = Sampler(count)
    figures = tclisten_adapter.consume(queue, count, prefetch, sampler, concurrency=1)
    return sampler.result(figures)


def _sampled(consumer: Any, queue: str, count: int, prefetch: int) -> dict[str, Any]:
    """Run a dispatch-benchmark consumer whose handler is ``bench.dispatch.handle`` with the
    sampler in its place (this process only)."""
    import bench.dispatch as dispatch

    sampler = Sampler(count)
    dispatch.handle = sampler  # the consumers look it up at every call
    figures = consumer(queue, count, prefetch)
    return sampler.result(figures)


def consume_kombu_mixin(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    import bench.dispatch as dispatch

    return _sampled(dispatch.consume_kombu_mixin, queue, count, prefetch)


def consume_pyamqp_batched(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    import bench.dispatch as dispatch

    return _sampled(dispatch.consume_pyamqp_batched, queue, count, prefetch)


def consume_faststream(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    from bench import peers

    return _sampled(peers.consume_faststream, queue, count, prefetch)


def consume_nameko(queue: str, count: int, prefetch: int = PREFETCH) -> dict[str, Any]:
    from bench import peers

    return _sampled(peers.consume_nameko, queue, count, prefetch)


CONSUMERS = {"tclisten": consume_tclisten, "kombu-mixin": consume_kombu_mixin,
             "pyamqp-batched": consume_pyamqp_batched, "faststream": consume_faststream, "nameko": consume_nameko}


def consumer_for(candidate: str) -> Any:
    try:
        return CONSUMERS[candidate]
    except KeyError:
        raise ValueError(f"unknown memory candidate {candidate!r}; choose from {CANDIDATES}") from None
