"""Retry delays and the broker objects that hold waiting and parked messages.

Everything lives under the names Pulse lets a user own::

    exchange/<user>/<name>                 direct exchange of the listener (retries, requeues, parking)
    queue/<user>/<name>                    the main queue (Taskcluster bindings + key "due")
    queue/<user>/<name>/retry/<ms>         one delay queue per retry delay: x-message-ttl=<ms>,
                                           dead-lettered back to the listener's exchange, key "due"
    queue/<user>/<name>/parked             messages that failed every attempt or could not be handled

A failed message is re-published (with publisher confirms) to the delay queue of its next
attempt, then acked; after its last attempt it is parked instead.  Waiting happens in the
broker, so a failing message never blocks the others and survives a restart of the listener.

>>> RetryPolicy(max_attempts=4, delay=1.0, backoff=2.0).delays()
(1.0, 2.0, 4.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from kombu import Exchange, Queue

from .exceptions import ConfigError

__all__ = ["RetryPolicy", "Topology"]

DUE = "due"
PARKED = "parked"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how late a failed handler is tried again.

    ``max_attempts`` counts every handling, the first included (1 = never retry); the wait
    before attempt ``n + 1`` is ``min(delay * backoff ** (n - 1), max_delay)`` seconds.
    """

    max_attempts: int = 5
    delay: float = 2.0
    backoff: float = 3.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ConfigError(f"retry max_attempts must be an integer >= 1, not {self.max_attempts!r}")
        for name in ("delay", "backoff", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"retry {name} must be a number >= 0, not {value!r}")
        if self.backoff < 1:
            raise ConfigError(f"retry backoff must be >= 1, not {self.backoff!r}")

    @classmethod
    def coerce(cls, value: "RetryPolicy | Mapping[str, Any] | None") -> "RetryPolicy":
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"max_attempts", "delay", "backoff", "max_delay"}
            if unknown:
                raise ConfigError(f"unknown retry option(s) {sorted(unknown)}; expected max_attempts, "
                                  "delay, backoff, max_delay")
            return cls(**value)
        raise ConfigError(f"retry must be a RetryPolicy or a mapping, not {type(value).__name__}")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 = the first retry)."""
        return min(self.delay * self.backoff ** (attempt - 2), self.max_delay)

    def delays(self) -> tuple[float, ...]:
        return tuple(self.delay_before(n) for n in range(2, self.max_attempts + 1))


class Topology:
    """The names and kombu entities of one listener's queues and exchange."""

    def __init__(self, user: str, name: str, *, queue_arguments: Mapping[str, Any] | None = None) -> None:
        self.user = user
        self.name = name
        self.queue_name = f"queue/{user}/{name}"
        self.parked_name = f"{self.queue_name}/parked"
        self.exchange = Exchange(f"exchange/{user}/{name}", "direct", durable=True)
        self.queue_arguments = dict(queue_arguments or {})

    def main_queue(self, bindings: list) -> Queue:
        """The durable queue with every Taskcluster binding plus the key of due retries."""
        from kombu import binding

        return Queue(self.queue_name, bindings=[*bindings, binding(self.exchange, routing_key=DUE)],
                     durable=True, auto_delete=False, queue_arguments=self.queue_arguments or None)

    def parked_queue(self) -> Queue:
        return Queue(self.parked_name, self.exchange, routing_key=PARKED, durable=True, auto_delete=False)

    def delay_queue(self, delay_ms: int) -> Queue:
        return Queue(f"{self.queue_name}/retry/{delay_ms}", self.exchange, routing_key=f"retry.{delay_ms}",
                     durable=True, auto_delete=False,
                     queue_arguments={"x-message-ttl": delay_ms,
                                      "x-dead-letter-exchange": self.exchange.name,
                                      "x-dead-letter-routing-key": DUE})

    def side_queues(self, policy: RetryPolicy) -> list[Queue]:
        delays = sorted({int(d * 1000) for d in policy.delays()})
        return [self.parked_queue(), *(self.delay_queue(ms) for ms in delays)]

    @staticmethod
    def retry_key(delay: float) -> str:
        return f"retry.{int(delay * 1000)}"
