"""From a raw delivery to handler calls: routing, decoding and the retry bookkeeping.

This stage is pure: no socket, no kombu.  The consumer feeds it deliveries and acts on the
:class:`Outcome` (ack, retry later, park); ``Listener.dispatch`` and the replay command use
it directly.

A message re-enters the main queue from the listener's own exchange after a delay (a retry)
or from the parked queue (a requeue).  It then carries ``x-tclisten-*`` headers that restore
its original exchange, routing key and CC routes, its attempt number, and the handlers that
still have to succeed, so a retry re-runs only the handlers that failed.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from .matching import TopicMatcher
from .message import Message

logger = logging.getLogger(__name__)

__all__ = ["Binding", "Dispatcher", "Handler", "Outcome", "HEADER"]


class HEADER:
    """The headers tclisten adds to retried and parked copies of a message."""

    EXCHANGE = "x-tclisten-exchange"
    ROUTING_KEY = "x-tclisten-routing-key"
    CC = "x-tclisten-cc"
    ATTEMPT = "x-tclisten-attempt"
    HANDLERS = "x-tclisten-handlers"
    REASON = "x-tclisten-reason"
    PARKED_AT = "x-tclisten-parked-at"


@dataclass(frozen=True)
class Binding:
    """One AMQP binding of the listener's queue and the handler it serves."""

    exchange: str
    pattern: str
    handler: str


@dataclass(eq=False)
class Handler:
    """A registered handler: the plain function, its name, and the context it is given."""

    name: str
    fn: Callable[[Message, Any], Any]
    context: Any = None

    def __repr__(self) -> str:
        return f"<Handler {self.name}>"


class Outcome:
    """What happened to one delivery.

    ``park_reason`` is set when the message cannot be handled at all (undecodable body, no
    binding explains it); ``failed`` lists the handlers that raised, with the error text;
    ``handlers`` are the handlers that were called.  A message is finished (ackable) when
    ``ok``, or once it has been re-published for a retry or parked.
    """

    __slots__ = ("message", "handlers", "failed", "park_reason", "cc")

    def __init__(self, message: Message | None = None, handlers: tuple[Handler, ...] = (),
                 failed: list[tuple[str, str]] | None = None, park_reason: str | None = None,
                 cc: tuple[str, ...] = ()) -> None:
        self.message = message
        self.handlers = handlers
        self.failed = failed  # None while nothing failed: the common case allocates nothing
        self.park_reason = park_reason
        self.cc = cc

    @property
    def ok(self) -> bool:
        return self.failed is None and self.park_reason is None

    @property
    def handled(self) -> tuple[str, ...]:
        """The names of the handlers that succeeded."""
        failed = {name for name, _ in self.failed or ()}
        return tuple(h.name for h in self.handlers if h.name not in failed)

    def __repr__(self) -> str:
        state = "ok" if self.ok else (f"parked: {self.park_reason}" if self.park_reason else f"failed: {self.failed}")
        return f"<Outcome {state}>"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def cc_keys(headers: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The extra routing keys of a message (its ``CC`` header), as text."""
    if not headers:
        return ()
    cc = headers.get("CC")
    if not cc:
        return ()
    if isinstance(cc, (str, bytes)):
        return (_text(cc),)
    keys = tuple(cc)
    if type(keys[0]) is str:  # py-amqp hands text: the common case costs one tuple
        return keys
    return tuple(_text(key) for key in keys)


def error_text(exc: BaseException, limit: int = 2000) -> str:
    """A one-paragraph description of a handler's exception for logs and park reasons."""
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()[:limit]


class Dispatcher:
    """Routes deliveries to handlers; one per listener, frozen once built.

    ``parsers`` maps an exchange name to the function that splits its routing keys into
    named words (``Topic.parse``); ``own_exchange`` is where retries and requeues come from.
    """

    def __init__(self, handlers: Sequence[Handler], bindings: Iterable[Binding], *,
                 parsers: Mapping[str, Callable[[str], Mapping[str, str]]] | None = None,
                 own_exchange: str | None = None) -> None:
        self.handlers = tuple(handlers)
        self._by_name = {h.name: h for h in self.handlers}
        self._matchers: dict[str, TopicMatcher] = {}
        for binding in bindings:
            matcher = self._matchers.get(binding.exchange)
            if matcher is None:
                matcher = self._matchers[binding.exchange] = TopicMatcher()
            matcher.add(binding.pattern, self._by_name[binding.handler])
        self._parsers = dict(parsers or {})
        self.own_exchange = own_exchange

    # -- routing ------------------------------------------------------------------

    def match(self, exchange: str, routing_key: str, cc: Sequence[str] = ()) -> tuple[Handler, ...]:
        """Every handler with a binding that matches the key or one of the CC keys, once each,
        in the order of their first binding."""
        matcher = self._matchers.get(exchange)
        if matcher is None:
            return ()
        if cc:
            return matcher.match_many((routing_key, *cc))
        return matcher.match(routing_key)

    # -- one delivery ---------------------------------------------------------------

    def dispatch(self, exchange: str, routing_key: str, body: bytes | str | Any,
                 headers: Mapping[str, Any] | None = None, *, redelivered: bool = False) -> Outcome:
        """Decode one delivery and call every matching handler; never raises for a handler."""
        attempt = 1
        only: list[str] | None = None
        if exchange == self.own_exchange and headers and HEADER.EXCHANGE in headers:
            try:
                exchange = _text(headers[HEADER.EXCHANGE])
                routing_key = _text(headers.get(HEADER.ROUTING_KEY, ""))
                cc = tuple(_text(k) for k in headers.get(HEADER.CC) or ())
                attempt = int(headers.get(HEADER.ATTEMPT) or 1)
                names = [_text(n) for n in headers.get(HEADER.HANDLERS) or ()]
            except (TypeError, ValueError) as exc:
                return Outcome(park_reason=f"malformed x-tclisten-* headers: {exc}")
            only = names or None
        else:
            cc = cc_keys(headers)

        handlers = self.match(exchange, routing_key, cc)
        if only is not None:
            handlers = tuple(h for h in handlers if h.name in only)
        if not handlers:
            why = (f"no handler left of {only} for" if only is not None else "no binding matches")
            return Outcome(park_reason=f"{why} exchange {exchange!r} routing key {routing_key!r}", cc=cc)

        if isinstance(body, (bytes, bytearray, str)):
            try:
                decoded = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                return Outcome(park_reason=f"body is not JSON: {exc}", cc=cc)
        else:
            decoded = body  # already decoded (replay, tests)

        message = Message(exchange, routing_key, decoded, cc=cc, redelivered=redelivered,
                          attempt=attempt, headers=headers, parse=self._parsers.get(exchange))
        outcome = Outcome(message, handlers, cc=cc)
        for handler in handlers:
            try:
                handler.fn(message, handler.context)
            except Exception as exc:  # a handler's failure must never reach the loop
                logger.warning("handler %s failed on %s %s (attempt %d): %s", handler.name, exchange,
                               routing_key, attempt, error_text(exc, 500))
                if outcome.failed is None:
                    outcome.failed = []
                outcome.failed.append((handler.name, error_text(exc)))
        return outcome
