"""The AMQP headers tclisten reads and writes: one codec for the whole protocol.

A delivery straight from Taskcluster carries the publisher's ``CC`` header (its extra routing
keys).  A copy that tclisten re-publishes (a retry, a parked message, a requeue) carries
``x-tclisten-*`` headers instead, which restore where it came from and how far it got:

==========================  ==================================================================
``x-tclisten-exchange``     the exchange it was first published to
``x-tclisten-routing-key``  its primary routing key there
``x-tclisten-cc``           its CC keys there (the ``CC`` header itself is dropped from copies:
                            it would route the copy again)
``x-tclisten-attempt``      the attempt the copy is for (1 = the first handling)
``x-tclisten-handlers``     the handlers that still have to run; absent or empty means every
                            handler whose binding matches (a requeued message)
``x-tclisten-reason``       why it was retried or parked
``x-tclisten-failures``     the failures so far: handler, exception type, message, traceback
                            and time of each (the latest few)
``x-tclisten-parked-at``    when it was parked (seconds since the epoch)
``x-tclisten-redelivered``  the broker had delivered it before tclisten re-published it
==========================  ==================================================================

Only this module knows these names.

>>> headers = encode({"CC": ["route.x"]}, Provenance("ex", "primary.a", ("route.x",), attempt=2,
...                  handlers=("h",), reason="h: boom"))
>>> sorted(headers)[:3], "CC" in headers
(['x-tclisten-attempt', 'x-tclisten-cc', 'x-tclisten-exchange'], False)
>>> decode(headers).attempt, decode(headers).handlers
(2, ('h',))
>>> routes_of(("route.index.a", "other"))
('index.a',)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

__all__ = [
    "CC", "DELIVERY_COUNT", "FailureRecord", "HeaderError", "Provenance", "ROUTE_PREFIX",
    "cc_keys", "decode", "delivery_count", "encode", "routes_of",
]

CC = "CC"
DELIVERY_COUNT = "x-delivery-count"  # set by quorum queues: 0 on the first delivery
ROUTE_PREFIX = "route."

_PREFIX = "x-tclisten-"
EXCHANGE = _PREFIX + "exchange"
ROUTING_KEY = _PREFIX + "routing-key"
ORIGINAL_CC = _PREFIX + "cc"
ATTEMPT = _PREFIX + "attempt"
HANDLERS = _PREFIX + "handlers"
REASON = _PREFIX + "reason"
FAILURES = _PREFIX + "failures"
PARKED_AT = _PREFIX + "parked-at"
REDELIVERED = _PREFIX + "redelivered"

# A content header must fit in one frame (frame_max, 128 KiB by default): keep it small.
REASON_LIMIT = 4000
TRACEBACK_LIMIT = 3000
FAILURES_KEPT = 5


class HeaderError(ValueError):
    """``x-tclisten-*`` headers that cannot be read (the message is parked with this text)."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def cc_keys(headers: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The extra routing keys of a message (its ``CC`` header), as text."""
    if not headers:
        return ()
    cc = headers.get(CC)
    if not cc:
        return ()
    if isinstance(cc, (str, bytes, bytearray)):
        return (_text(cc),)
    keys = tuple(cc)
    if type(keys[0]) is str:  # py-amqp hands text: the common case costs one tuple
        return keys
    return tuple(_text(key) for key in keys)


def routes_of(cc: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The task routes among CC keys: those starting with ``route.``, without it."""
    return tuple(key[len(ROUTE_PREFIX):] for key in cc if key.startswith(ROUTE_PREFIX))


def delivery_count(headers: Mapping[str, Any] | None) -> int | None:
    """How often a quorum queue delivered this message before (None on classic queues)."""
    if not headers:
        return None
    count = headers.get(DELIVERY_COUNT)
    if count is None or isinstance(count, bool):
        return None
    try:
        return int(count)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class FailureRecord:
    """One failed handling: which handler, what it raised, and when."""

    handler: str
    type: str
    message: str
    traceback: str = ""
    at: float = field(default_factory=time.time)

    def to_header(self) -> dict[str, Any]:
        return {"handler": self.handler, "type": self.type, "message": self.message[:REASON_LIMIT],
                "traceback": self.traceback[-TRACEBACK_LIMIT:], "at": float(self.at)}

    @classmethod
    def from_header(cls, value: Any) -> "FailureRecord":
        if not isinstance(value, Mapping):
            raise HeaderError(f"{FAILURES} entries must be tables, not {type(value).__name__}")
        try:
            return cls(handler=_text(value.get("handler", "")), type=_text(value.get("type", "")),
                       message=_text(value.get("message", "")), traceback=_text(value.get("traceback", "")),
                       at=float(value.get("at") or 0.0))
        except (TypeError, ValueError) as exc:
            raise HeaderError(f"{FAILURES}: {exc}") from None


@dataclass(frozen=True)
class Provenance:
    """Where a message came from and how far it got: what the ``x-tclisten-*`` headers say
    (or, for a delivery straight from Taskcluster, what its delivery says)."""

    exchange: str
    routing_key: str
    cc: tuple[str, ...] = ()
    attempt: int = 1
    handlers: tuple[str, ...] | None = None  # None: every handler whose binding matches
    reason: str = ""
    failures: tuple[FailureRecord, ...] = ()
    parked_at: int | None = None
    redelivered: bool = False

    def next(self, **changes: Any) -> "Provenance":
        """A copy with ``changes``; ``failures=`` given are added to the kept ones."""
        added = changes.pop("failures", ())
        if added:
            changes["failures"] = (*self.failures, *added)[-FAILURES_KEPT:]
        return replace(self, **changes)


def decode(headers: Mapping[str, Any] | None) -> Provenance | None:
    """The provenance of a tclisten copy, or None for a message tclisten never re-published.

    Raises :class:`HeaderError` when the headers are there but cannot be read."""
    if not headers or EXCHANGE not in headers:
        return None
    try:
        attempt = int(headers.get(ATTEMPT) or 1)
        handlers = tuple(_text(name) for name in headers.get(HANDLERS) or ())
        failures = tuple(FailureRecord.from_header(item) for item in headers.get(FAILURES) or ())
        parked_at = headers.get(PARKED_AT)
        return Provenance(
            exchange=_text(headers[EXCHANGE]), routing_key=_text(headers.get(ROUTING_KEY, "")),
            cc=tuple(_text(key) for key in headers.get(ORIGINAL_CC) or ()), attempt=attempt,
            handlers=handlers or None, reason=_text(headers.get(REASON, "")), failures=failures,
            parked_at=int(parked_at) if parked_at is not None else None,
            redelivered=bool(headers.get(REDELIVERED)))
    except HeaderError:
        raise
    except (TypeError, ValueError) as exc:
        raise HeaderError(f"malformed x-tclisten-* headers: {exc}") from None


def encode(headers: Mapping[str, Any] | None, provenance: Provenance) -> dict[str, Any]:
    """The headers of a re-published copy: the original's own headers (but ``CC`` and the
    broker's dead-lettering and delivery-count records) plus the provenance."""
    out = {key: value for key, value in (headers or {}).items()
           if key not in (CC, "x-death", DELIVERY_COUNT, "x-first-death-exchange", "x-first-death-queue",
                          "x-first-death-reason") and not key.startswith(_PREFIX)}
    out[EXCHANGE] = provenance.exchange
    out[ROUTING_KEY] = provenance.routing_key
    out[ORIGINAL_CC] = list(provenance.cc)
    out[ATTEMPT] = provenance.attempt
    if provenance.handlers:
        out[HANDLERS] = list(provenance.handlers)
    if provenance.reason:
        out[REASON] = provenance.reason[:REASON_LIMIT]
    if provenance.failures:
        out[FAILURES] = [failure.to_header() for failure in provenance.failures]
    if provenance.parked_at is not None:
        out[PARKED_AT] = provenance.parked_at
    if provenance.redelivered:
        out[REDELIVERED] = True
    return out
