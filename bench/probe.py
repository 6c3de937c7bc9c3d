"""A per-message probe that every consumer candidate calls the same way.

It records wall-clock time and this process's CPU time at the first message and when the
expected count is reached, so every candidate is timed over the same window: from the first
message reaching user code to the last one handled.

>>> p = Probe(2)
>>> p.hit(), p.hit()
(False, True)
>>> p.result()["messages"]
2
"""

from __future__ import annotations

import os
import time
from typing import Any


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Probe:
    """Counts handled messages; ``hit()`` returns True once ``expected`` have been seen."""

    __slots__ = ("expected", "count", "t0", "t1", "cpu0", "cpu1")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.t0 = self.t1 = self.cpu0 = self.cpu1 = 0.0

    def hit(self) -> bool:
        count = self.count = self.count + 1
        if count == 1:
            self.t0 = time.perf_counter()
            self.cpu0 = time.process_time()
        if count == self.expected:
            self.t1 = time.perf_counter()
            self.cpu1 = time.process_time()
            return True
        return count > self.expected

    @property
    def done(self) -> bool:
        return self.count >= self.expected

    def result(self, **extra: Any) -> dict[str, Any]:
        """Throughput and client CPU per message over the first-to-last window."""
        window = self.t1 - self.t0
        handled = max(self.count - 1, 1)
        out = {
            "messages": self.count,
            "seconds": window,
            "msg_per_s": (self.expected - 1) / window if window > 0 else float("nan"),
            "cpu_us_per_msg": (self.cpu1 - self.cpu0) / handled * 1e6,
            "rss_mib": _rss_bytes() / 2**20,
        }
        out.update(extra)
        return out
