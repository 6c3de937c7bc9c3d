"""From a raw delivery to handler calls: routing, decoding, calling, and what came of it.

This stage is pure: no socket, no kombu.  The consumer feeds it deliveries and acts on the
:class:`Outcome` through :func:`tclisten.policy.decide`; ``Listener.dispatch`` and the replay
command use it directly.

A message re-enters the main queue from the listener's own exchange after a delay (a retry)
or from the parked queue (a requeue).  Its ``x-tclisten-*`` headers (:mod:`tclisten.headers`)
then restore its original exchange, routing key and CC keys, its attempt, and the handlers
that still have to succeed, so a retry re-runs only the handlers that failed.

>>> d = Dispatcher([Handler("h", lambda m, c: None)], [Binding("ex", "primary.#", "h")])
>>> d.dispatch("ex", "primary.a", b'{"k": 1}')
<Outcome ok>
>>> d.dispatch("ex", "other.a", b"{}").unmatched
"no binding matches exchange 'ex' routing key 'other.a'"
"""

from __future__ import annotations

import json
import linecache
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import headers as codec
from .exceptions import HandlerTimeout, InvalidBody
from .headers import FailureRecord, HeaderError, Provenance
from .matching import ExchangeMatcher
from .message import Message
from .policy import Facts, Failed, RetryPolicy, classify

logger = logging.getLogger(__name__)

__all__ = ["Binding", "Dispatcher", "Handler", "HandlerFailure", "Outcome", "error_text"]

Invoke = Callable[["Handler", Message], Any]


@dataclass(frozen=True)
class Binding:
    """One AMQP binding of the listener's queue and the handler it serves."""

    exchange: str
    pattern: str
    handler: str


@dataclass(eq=False)
class Handler:
    """A registered handler: the plain function, its name, the context it is given, and its
    own time limit and retry policy (None: the listener's)."""

    name: str
    fn: Callable[[Message, Any], Any]
    context: Any = None
    timeout: float | None = None
    retry: RetryPolicy | None = None
    timeout_set: bool = field(default=False, repr=False)  # timeout given on @on, even None
    validate: bool | None = None  # check bodies against their schema (None: the listener's)

    def __repr__(self) -> str:
        return f"<Handler {self.name}>"


@dataclass(frozen=True)
class HandlerFailure:
    """One handler that raised: ``error`` is one paragraph for logs and reasons; ``park``
    when retrying cannot help; ``delay`` when the handler asked for one (``Retry``)."""

    handler: str
    error: str
    record: FailureRecord
    park: bool = False
    delay: float | None = None


class Outcome:
    """What happened to one delivery.

    ``unhandleable`` is set when the message cannot be handled at all (undecodable body,
    unreadable headers); ``unmatched`` when no binding explains it; ``failed`` lists the
    handlers that raised; ``handlers`` are the handlers that were called.
    """

    __slots__ = ("message", "handlers", "failed", "unhandleable", "unmatched", "provenance")

    def __init__(self, provenance: Provenance | None = None, message: Message | None = None,
                 handlers: tuple[Handler, ...] = (), *, unhandleable: str | None = None,
                 unmatched: str | None = None) -> None:
        self.provenance = provenance
        self.message = message
        self.handlers = handlers
        self.failed: list[HandlerFailure] | None = None  # None while nothing failed: no allocation
        self.unhandleable = unhandleable
        self.unmatched = unmatched

    @property
    def ok(self) -> bool:
        return self.failed is None and self.unhandleable is None and self.unmatched is None

    @property
    def park_reason(self) -> str | None:
        """Why the message cannot be handled, or why no binding explains it."""
        return self.unhandleable or self.unmatched

    @property
    def handled(self) -> tuple[str, ...]:
        """The names of the handlers that succeeded."""
        failed = {f.handler for f in self.failed or ()}
        return tuple(h.name for h in self.handlers if h.name not in failed)

    @property
    def attempt(self) -> int:
        return self.provenance.attempt if self.provenance is not None else 1

    def facts(self) -> Facts:
        """What :func:`tclisten.policy.decide` needs of this outcome."""
        return Facts(attempt=self.attempt, unhandleable=self.unhandleable, unmatched=self.unmatched,
                     failures=tuple(Failed(f.handler, f.error, f.park, f.delay) for f in self.failed or ()))

    def __repr__(self) -> str:
        if self.ok:
            return "<Outcome ok>"
        if self.park_reason:
            return f"<Outcome not handled: {self.park_reason}>"
        return f"<Outcome failed: {[(f.handler, f.error) for f in self.failed or ()]}>"


def error_text(exc: BaseException, limit: int = 2000) -> str:
    """A one-paragraph description of a handler's exception for logs and park reasons."""
    if isinstance(exc, HandlerTimeout):
        return str(exc)
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()[:limit]


def _trace(exc: BaseException, text: str | None = None) -> str:
    """The traceback of a handler's exception for its failure record: file, line, function
    and source line of each frame, then ``text`` (the exception's own line).

    Walked by hand: ``traceback.format_exception`` computes every frame's column positions
    and parses its source with ``ast`` for Python 3.11's carets, and checks every file's
    modification time, which took 90 of a failing message's 240 µs here (bench P3b).  Source
    lines come from ``linecache`` as first read: the code that ran, even after a deploy
    replaced the files."""
    lines = ["Traceback (most recent call last):\n"]
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}\n')
        source = linecache.getline(code.co_filename, tb.tb_lineno, frame.f_globals).strip()
        if source:
            lines.append(f"    {source}\n")
        tb = tb.tb_next
    lines.append((text if text is not None else error_text(exc)) + "\n")
    return "".join(lines)


def call_handler(handler: Handler, message: Message) -> Any:
    """The default way a handler is called (the consumer wraps it with time limits, the
    listener with hooks)."""
    return handler.fn(message, handler.context)


class Dispatcher:
    """Routes deliveries to handlers; one per listener, frozen once built.

    ``parsers`` maps an exchange name to the function that splits its routing keys into
    named words (``Topic.parse``); ``own_exchange`` is where retries and requeues come from;
    ``invoke`` calls one handler (:func:`call_handler` unless wrapped); ``checks`` maps an
    exchange name to its body check (:func:`tclisten.taskcluster.schemas.body_check`), run
    once per message before the handlers named in ``validating``.
    """

    def __init__(self, handlers: Sequence[Handler], bindings: Iterable[Binding], *,
                 parsers: Mapping[str, Callable[[str], Mapping[str, str]]] | None = None,
                 own_exchange: str | None = None, invoke: Invoke = call_handler,
                 listener: str = "", checks: Mapping[str, Callable[[Any], str | None]] | None = None,
                 validating: Iterable[str] = ()) -> None:
        self.handlers = tuple(handlers)
        by_name = {h.name: h for h in self.handlers}
        self._matcher = ExchangeMatcher()
        for binding in bindings:
            self._matcher.add(binding.exchange, binding.pattern, by_name[binding.handler])
        self._parsers = dict(parsers or {})
        self.own_exchange = own_exchange
        self.invoke = invoke
        self.listener = listener
        self._checks = dict(checks or {})
        self._validating = frozenset(validating)

    @property
    def checked_exchanges(self) -> tuple[str, ...]:
        """The exchanges whose bodies are checked against a schema, sorted."""
        return tuple(sorted(self._checks))

    # -- routing ------------------------------------------------------------------

    def match(self, exchange: str, routing_key: str, cc: Sequence[str] = ()) -> tuple[Handler, ...]:
        """Every handler with a binding that matches the key or one of the CC keys, once each,
        in the order of their first binding."""
        return self._matcher.match(exchange, routing_key, cc)

    def origin(self, exchange: str, routing_key: str, headers: Mapping[str, Any] | None,
               *, redelivered: bool = False) -> Provenance:
        """Where a delivery comes from: its ``x-tclisten-*`` provenance when it is a copy from
        the listener's own exchange, else the delivery itself.  Raises :class:`HeaderError`."""
        if exchange == self.own_exchange:
            found = codec.decode(headers)
            if found is not None:
                return found
        return Provenance(exchange, routing_key, codec.cc_keys(headers), redelivered=redelivered)

    # -- one delivery ---------------------------------------------------------------

    def dispatch(self, exchange: str, routing_key: str, body: bytes | str | Any,
                 headers: Mapping[str, Any] | None = None, *, redelivered: bool = False) -> Outcome:
        """Decode one delivery and call every matching handler; never raises for a handler."""
        try:
            provenance = self.origin(exchange, routing_key, headers, redelivered=redelivered)
        except HeaderError as exc:
            return Outcome(unhandleable=str(exc))
        return self.run(provenance, body, headers, redelivered=redelivered)

    def run(self, provenance: Provenance, body: bytes | str | Any, headers: Mapping[str, Any] | None = None,
            *, redelivered: bool = False, attempt: int | None = None, invoke: Invoke | None = None) -> Outcome:
        """Call the handlers of a delivery whose provenance is known (``attempt`` overrides
        the provenance's: quorum queues count redeliveries; ``invoke`` the way handlers are
        called: the consumer adds time limits)."""
        exchange, routing_key, cc = provenance.exchange, provenance.routing_key, provenance.cc
        handlers = self.match(exchange, routing_key, cc)
        only = provenance.handlers
        if only is not None:
            handlers = tuple(h for h in handlers if h.name in only)
        if not handlers:
            why = f"no handler left of {list(only)} for" if only is not None else "no binding matches"
            return Outcome(provenance, unmatched=f"{why} exchange {exchange!r} routing key {routing_key!r}")
        if isinstance(body, (bytes, bytearray, str)):
            try:
                decoded = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                return Outcome(provenance, unhandleable=f"body is not JSON: {exc}")
        else:
            decoded = body  # already decoded (replay, tests)
        message = Message(exchange, routing_key, decoded, cc=cc,
                          redelivered=redelivered or provenance.redelivered,
                          attempt=attempt or provenance.attempt, headers=headers,
                          parse=self._parsers.get(exchange))
        outcome = Outcome(provenance, message, handlers)
        call = invoke or self.invoke
        invalid: str | None = None
        checked = False
        for handler in handlers:
            if self._validating and handler.name in self._validating and exchange in self._checks:
                if not checked:
                    invalid, checked = self._checks[exchange](decoded), True
                if invalid is not None:
                    self._failed(outcome, handler, message, InvalidBody(invalid))
                    continue
            try:
                call(handler, message)
            except (Exception, HandlerTimeout) as exc:  # a handler's failure never reaches the loop
                self._failed(outcome, handler, message, exc)
        return outcome

    def _failed(self, outcome: Outcome, handler: Handler, message: Message, exc: BaseException) -> None:
        park, delay = classify(exc)
        text = error_text(exc)
        untraced = isinstance(exc, (HandlerTimeout, InvalidBody))  # no handler frame to show
        trace = "" if untraced else _trace(exc, text)
        logger.error("handler %s %s on %s %s (attempt %d): %s", handler.name,
                     "not called" if isinstance(exc, InvalidBody) else "failed", message.exchange,
                     message.routing_key, message.attempt, text[:500],
                     exc_info=None if untraced else exc,
                     extra={"tclisten": {"listener": self.listener, "handler": handler.name,
                                         "exchange": message.exchange, "routing_key": message.routing_key,
                                         "attempt": message.attempt}})
        record = FailureRecord(handler.name, type(exc).__name__, text, trace, time.time())
        if outcome.failed is None:
            outcome.failed = []
        outcome.failed.append(HandlerFailure(handler.name, text, record, park, delay))
