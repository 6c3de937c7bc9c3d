"""The broker objects of one listener: names, kinds and arguments, as kombu entities.

Everything lives under the names Pulse lets a user own::

    exchange/<user>/<name>                 direct exchange of the listener (retries, requeues, parking)
    queue/<user>/<name>                    the main queue (Taskcluster bindings + key "due")
    queue/<user>/<name>/retry/<ms>         one delay queue per retry delay: x-message-ttl=<ms>,
                                           dead-lettered back to the listener's exchange, key "due"
    queue/<user>/<name>/parked             messages that failed every attempt or could not be handled
    queue/<user>/<name>/suspect            redelivered messages (their process may have died on them),
                                           consumed one at a time (prefetch 1)
    queue/<user>/<name>/bindings           one message: the bindings the last start declared

A failed message is re-published (with publisher confirms) to the delay queue of its next
attempt, then acked; waiting happens in the broker, so a failing message never blocks the
others and survives a restart of the listener.  With ``queue_type="quorum"`` the main, delay,
parked and bindings queues are quorum queues (replicated across a cluster's nodes).

>>> t = Topology("guest", "my-reactor")
>>> t.queue_name, t.parked_name, t.exchange.name
('queue/guest/my-reactor', 'queue/guest/my-reactor/parked', 'exchange/guest/my-reactor')
>>> t.delay_queue(2000).queue_arguments["x-message-ttl"]
2000
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from kombu import Exchange, Queue, binding

from .exceptions import ConfigError

__all__ = ["DUE", "PARKED", "QUEUE_TYPES", "SUSPECT", "Topology", "retry_key"]

DUE = "due"  # the key under which retries and requeues re-enter the main queue
PARKED = "parked"
SUSPECT = "suspect"
BINDINGS = "bindings"
QUEUE_TYPES = ("classic", "quorum")
# Quorum queues of RabbitMQ 3.10 overflow by dropping the head or refusing the publish only.
QUORUM_OVERFLOW = ("drop-head", "reject-publish")


def retry_key(delay: float) -> str:
    """The routing key of the delay queue that holds a message for ``delay`` seconds."""
    return f"retry.{int(delay * 1000)}"


class Topology:
    """The names and kombu entities of one listener's queues and exchange."""

    def __init__(self, user: str, name: str, *, queue_arguments: Mapping[str, Any] | None = None,
                 queue_type: str = "classic") -> None:
        if queue_type not in QUEUE_TYPES:
            raise ConfigError(f"queue_type must be one of {', '.join(QUEUE_TYPES)}, not {queue_type!r}")
        arguments = dict(queue_arguments or {})
        if queue_type == "quorum" and arguments.get("x-overflow") not in (None, *QUORUM_OVERFLOW):
            raise ConfigError(f"overflow {arguments['x-overflow']!r} is not supported by quorum queues; "
                              f"use one of {', '.join(QUORUM_OVERFLOW)}")
        self.user = user
        self.name = name
        self.queue_type = queue_type
        self.queue_name = f"queue/{user}/{name}"
        self.parked_name = f"{self.queue_name}/parked"
        self.bindings_name = f"{self.queue_name}/bindings"
        self.suspect_name = f"{self.queue_name}/suspect"
        self.exchange = Exchange(f"exchange/{user}/{name}", "direct", durable=True)
        self.queue_arguments = arguments

    def _typed(self, arguments: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        typed = dict(arguments or {})
        if self.queue_type == "quorum":
            typed["x-queue-type"] = "quorum"
        return typed or None

    def main_queue(self, bindings: Iterable[binding] = ()) -> Queue:
        """The durable queue with every Taskcluster binding plus the key of due retries."""
        return Queue(self.queue_name, bindings=[*bindings, binding(self.exchange, routing_key=DUE)],
                     durable=True, auto_delete=False, queue_arguments=self._typed(self.queue_arguments))

    def parked_queue(self) -> Queue:
        return Queue(self.parked_name, self.exchange, routing_key=PARKED, durable=True, auto_delete=False,
                     queue_arguments=self._typed())

    def suspect_queue(self) -> Queue:
        """Redelivered messages, each counted as an attempt, tried one at a time: when one of
        them kills its process, only it is delivered again (and counted again), not the
        messages that happened to be prefetched with it."""
        return Queue(self.suspect_name, self.exchange, routing_key=SUSPECT, durable=True, auto_delete=False,
                     queue_arguments=self._typed())

    def bindings_queue(self) -> Queue:
        """Holds one message: the bindings the listener declared at its last start (AMQP
        cannot list a queue's bindings, so the listener keeps them on the broker itself)."""
        return Queue(self.bindings_name, self.exchange, routing_key=BINDINGS, durable=True, auto_delete=False,
                     queue_arguments=self._typed())

    def delay_queue(self, delay_ms: int) -> Queue:
        return Queue(f"{self.queue_name}/retry/{delay_ms}", self.exchange, routing_key=f"retry.{delay_ms}",
                     durable=True, auto_delete=False,
                     queue_arguments=self._typed({"x-message-ttl": delay_ms,
                                                  "x-dead-letter-exchange": self.exchange.name,
                                                  "x-dead-letter-routing-key": DUE}))

    def side_queues(self, delays: Iterable[float]) -> list[Queue]:
        """The parked, suspect and bindings queues and one delay queue per distinct delay (seconds)."""
        distinct = sorted({int(d * 1000) for d in delays})
        return [self.parked_queue(), self.suspect_queue(), self.bindings_queue(),
                *(self.delay_queue(ms) for ms in distinct)]

    def all_queue_names(self, delays: Iterable[float]) -> list[str]:
        return [self.queue_name, *(q.name for q in self.side_queues(delays))]

    def __repr__(self) -> str:
        return f"<Topology {self.queue_name} ({self.queue_type})>"
