"""Parked messages: read them, put them back for another round, or drop them.

The parked queue (``queue/<user>/<name>/parked``) holds what failed every attempt or could
not be handled, each with its reason and the failures that led there (exception type,
message, traceback and time of each), in its ``x-tclisten-*`` headers (:mod:`tclisten.headers`).

Reading never consumes: messages are fetched unacked, and those not selected go back to the
queue, in their places, when the channel closes.  A body that is not JSON (or JSON too deep
to decode) is shown raw; headers that cannot be read give a record whose reason says so.

>>> select(position=2)(ParkedMessage(position=2, exchange="", routing_key="", body={}))
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from kombu import Connection, Producer

from . import headers as codec
from .headers import FailureRecord, HeaderError, Provenance
from .topology import DUE, Topology

__all__ = ["ParkedMessage", "ParkedQueue", "select"]

Selector = Callable[["ParkedMessage"], bool]


@dataclass(frozen=True)
class ParkedMessage:
    """A message in the parked queue, with why and after how many attempts it was parked."""

    exchange: str
    routing_key: str
    body: Any
    reason: str = ""
    attempts: int = 1
    handlers: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    parked_at: int | None = None
    failures: tuple[FailureRecord, ...] = ()
    position: int = 0  # 1 for the oldest
    raw: bool = False  # the body could not be decoded: shown as text
    provenance: Provenance | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_message(cls, message: Any, position: int = 0) -> "ParkedMessage":
        """Read a kombu message of the parked queue; never raises for what it holds."""
        body, raw = _decode_body(message.body)
        info = getattr(message, "delivery_info", {}) or {}
        try:
            provenance = codec.decode(message.headers) or Provenance(info.get("exchange", ""),
                                                                     info.get("routing_key", ""))
            reason = provenance.reason
        except HeaderError as exc:
            provenance, reason = None, f"unreadable x-tclisten-* headers: {exc}"
        if provenance is None:
            return cls(exchange=info.get("exchange", ""), routing_key=info.get("routing_key", ""), body=body,
                       reason=reason, position=position, raw=raw)
        return cls(exchange=provenance.exchange, routing_key=provenance.routing_key, body=body, reason=reason,
                   attempts=provenance.attempt, handlers=provenance.handlers or (),
                   routes=codec.routes_of(provenance.cc), parked_at=provenance.parked_at,
                   failures=provenance.failures, position=position, raw=raw, provenance=provenance)

    @property
    def task_id(self) -> str | None:
        """The taskId of a Taskcluster task message (``status.taskId``), else None."""
        body: dict[str, Any] = self.body if isinstance(self.body, dict) else {}
        status = body.get("status")
        found = (status.get("taskId") if isinstance(status, dict) else None) or body.get("taskId")
        return found if isinstance(found, str) else None

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``--json`` output."""
        return {"position": self.position, "exchange": self.exchange, "routing_key": self.routing_key,
                "task_id": self.task_id, "reason": self.reason, "attempts": self.attempts,
                "handlers": list(self.handlers), "routes": list(self.routes), "parked_at": self.parked_at,
                "failures": [asdict(f) for f in self.failures], "body": self.body, "raw_body": self.raw}


def _decode_body(body: Any) -> tuple[Any, bool]:
    if not isinstance(body, (bytes, bytearray, str)):
        return body, False
    try:
        return json.loads(body), False
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deep to decode is shown raw too
        text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
        return text, True


def select(*, position: int | None = None, task_id: str | None = None, handler: str | None = None,
           reason: str | None = None, exchange: str | None = None) -> Selector:
    """A filter of parked messages: every criterion given must hold (none given: all)."""

    def chosen(item: ParkedMessage) -> bool:
        return ((position is None or item.position == position)
                and (task_id is None or item.task_id == task_id)
                and (handler is None or handler in item.handlers
                     or any(f.handler == handler for f in item.failures))
                and (reason is None or reason in item.reason)
                and (exchange is None or item.exchange == exchange))

    return chosen


class ParkedQueue:
    """The parked messages of one listener, on a connection made by ``connect()``.

    ``declare(channel)`` declares the listener's own queues (never Taskcluster's exchanges,
    so parked messages can be managed while those are unreachable)."""

    def __init__(self, topology: Topology, connect: Callable[[], Connection],
                 declare: Callable[[Any], None]) -> None:
        self.topology = topology
        self._connect = connect
        self._declare = declare

    def list(self, limit: int | None = None, where: Selector | None = None) -> list[ParkedMessage]:
        """The parked messages (they stay parked)."""
        found: list[ParkedMessage] = []
        for item, _ in self._walk(where, limit):
            found.append(item)
        return found

    def requeue(self, where: Selector | None = None, limit: int | None = None) -> int:
        """Put the selected parked messages back into the main queue for another round of
        attempts (from attempt 1, for the handlers that had failed); returns how many."""
        return self._move(where, limit, requeue=True)

    def drop(self, where: Selector | None = None, limit: int | None = None) -> int:
        """Delete the selected parked messages for good; returns how many."""
        return self._move(where, limit, requeue=False)

    def _walk(self, where: Selector | None, limit: int | None,
              act: Callable[[ParkedMessage, Any, Producer], None] | None = None) -> Iterable[tuple[ParkedMessage, Any]]:
        with self._connect() as conn, conn.channel() as channel:
            self._declare(channel)
            queue = self.topology.parked_queue()(channel)
            producer = Producer(channel, exchange=self.topology.exchange)
            position = 0
            taken = 0
            while limit is None or taken < limit:
                message = queue.get(no_ack=False)
                if message is None:
                    break
                position += 1
                item = ParkedMessage.from_message(message, position)
                if where is not None and not where(item):
                    continue  # left unacked: back in its place when the channel closes
                taken += 1
                if act is not None:
                    act(item, message, producer)
                yield item, message
            # closing the channel returns every fetched, unsettled message to the parked queue

    def _move(self, where: Selector | None, limit: int | None, *, requeue: bool) -> int:
        def act(item: ParkedMessage, message: Any, producer: Producer) -> None:
            if requeue:
                provenance = (item.provenance or Provenance(item.exchange, item.routing_key)).next(
                    attempt=1, reason="", parked_at=None)
                producer.publish(message.body, routing_key=DUE, headers=codec.encode(message.headers, provenance),
                                 delivery_mode=2, content_type=message.content_type or "application/json",
                                 content_encoding=message.content_encoding or "utf-8")
            message.ack()

        return sum(1 for _ in self._walk(where, limit, act))
