"""Counters of a running listener, cheap enough for the per-message path.

>>> stats = Stats()
>>> stats.received += 1
>>> stats.snapshot()["received"]
1
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["Stats"]


class Stats:
    """What the listener did; plain attributes, all updated on the connection's thread."""

    def __init__(self) -> None:
        self.started = time.time()
        self.received = 0
        self.acked = 0
        self.retried = 0
        self.parked = 0
        self.redelivered = 0  # delivered again without an outcome: counted, tried alone
        self.unmatched = 0  # acked although no binding explains them (a stale binding raced a deploy)
        self.unfinished = 0  # left unacked to the broker by the last stop
        self.reconnects = -1  # the first connection is not a reconnect
        self.handler_calls = 0
        self.handler_seconds = 0.0
        self.last_connected: float | None = None
        self.connected_now = False
        self.last_delivery: float | None = None  # time.time() of the latest delivery
        self.last_ack: float | None = None
        self.backlog: int | None = None  # messages ready in the queue, at the last check

    def count(self, name: str, amount: int = 1) -> None:
        setattr(self, name, getattr(self, name) + amount)

    def connected(self) -> None:
        self.reconnects += 1
        self.last_connected = time.time()
        self.connected_now = True

    def healthy(self, stall_after: float = 300.0, now: float | None = None) -> tuple[bool, str]:
        """Liveness tied to real consumption: connected, and when messages wait in the queue,
        some were acked within ``stall_after`` seconds."""
        now = time.time() if now is None else now
        if not self.connected_now:
            return False, "not connected to the broker"
        if self.backlog:
            since = max(self.last_ack or 0.0, self.last_connected or 0.0)
            if now - since > stall_after:
                return False, f"{self.backlog} message(s) waiting and no ack for {now - since:.0f} s"
        return True, "consuming"

    def observe(self, seconds: float) -> None:
        """One delivery's time in handlers (called on the connection's thread only)."""
        self.handler_calls += 1
        self.handler_seconds += seconds

    def snapshot(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "acked": self.acked,
            "retried": self.retried,
            "parked": self.parked,
            "redelivered": self.redelivered,
            "unmatched": self.unmatched,
            "unfinished": self.unfinished,
            "reconnects": max(self.reconnects, 0),
            "handler_calls": self.handler_calls,
            "handler_seconds": self.handler_seconds,
            "backlog": self.backlog,
            "last_delivery": self.last_delivery,
            "last_ack": self.last_ack,
            "connected": self.connected_now,
        }
