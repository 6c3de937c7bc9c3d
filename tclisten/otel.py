"""OpenTelemetry tracing: a span per handler call, and one per REST call inside it.

``pip install 'tclisten[otel]'``, then ``instrument(app)`` before ``app.run()``:

>>> from tclisten import Listener
>>> from tclisten.otel import instrument
>>> app = Listener("traced")
>>> tracing = instrument(app)  # the global tracer provider, unless tracer_provider= is given
>>> tracing.active
True
>>> tracing.uninstrument()

Each handler call is a CONSUMER span ``tclisten handler <name>`` (``messaging.*`` attributes,
``tclisten.listener``, ``tclisten.handler``, ``tclisten.attempt``, ``taskcluster.task_id``),
current while the handler runs; it ends with status ERROR and the exception recorded when
the handler raises.  Each REST call of the Taskcluster clients is a CLIENT span
``<Client> <function>`` (``Queue task``): a child of the handler span when a handler makes
it, traced with that listener's tracer provider (elsewhere: the latest instrumented
listener's).  No credential reaches an attribute: URLs go through
:func:`tclisten.redact.scrub_url` and no header is recorded.
"""

from __future__ import annotations

import threading
import urllib.parse
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:
    raise ImportError(f"tclisten.otel needs OpenTelemetry ({exc}): pip install 'tclisten[otel]'") from None

from . import __version__
from .taskcluster import client
from .taskcluster.client import RestCall

if TYPE_CHECKING:
    from contextvars import Token

    from .app import Listener
    from .dispatch import Handler
    from .message import Message

__all__ = ["Instrumentation", "instrument", "uninstrument"]

_lock = threading.Lock()
_instrumented: weakref.WeakKeyDictionary[Listener, Instrumentation] = weakref.WeakKeyDictionary()
_active: list[Instrumentation] = []  # the latest last: its tracer traces REST calls outside handlers
_local = threading.local()


@dataclass
class _Running:
    """A handler span on this thread's stack, until its ``after`` or ``error`` hook."""

    owner: Instrumentation
    handler: Handler
    message: Message
    span: trace.Span
    token: Token[otel_context.Context]


def _stack() -> list[_Running]:
    stack: list[_Running] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class Instrumentation:
    """What :func:`instrument` did to one listener: its hook and its tracer.

    >>> from tclisten import Listener
    >>> tracing = instrument(Listener("traced-too"))
    >>> tracing.uninstrument(); tracing.active
    False
    """

    def __init__(self, app: Listener, tracer: trace.Tracer) -> None:
        self.listener = app.name
        self.tracer = tracer
        self.active = False
        self.hook = app.add_hook(before=self._before, after=self._after, error=self._error)

    def uninstrument(self) -> None:
        """Stop tracing this listener (its hook stays, idle); the REST observer goes with the
        last active instrumentation.  Spans already open still end."""
        with _lock:
            self.active = False
            if self in _active:
                _active.remove(self)
            if not _active:
                client.call_observers = tuple(o for o in client.call_observers if o is not _RestSpan)

    def _before(self, handler: Handler, message: Message) -> None:
        if not self.active:
            return
        span = self.tracer.start_span(f"tclisten handler {handler.name}", kind=SpanKind.CONSUMER,
                                      attributes=self._attributes(handler, message))
        token = otel_context.attach(trace.set_span_in_context(span))
        _stack().append(_Running(self, handler, message, span, token))

    def _after(self, handler: Handler, message: Message, result: Any) -> None:
        running = self._pop(handler, message)
        if running is not None:
            _close(running.span, running.token, None)

    def _error(self, handler: Handler, message: Message, exc: BaseException) -> None:
        running = self._pop(handler, message)
        if running is not None:
            _close(running.span, running.token, exc)

    def _pop(self, handler: Handler, message: Message) -> _Running | None:
        """This call's entry.  Entries above it are calls made inside it whose ``after`` or
        ``error`` never came (another hook raised first): closed first, so every context is
        detached in order."""
        stack = _stack()
        for index in range(len(stack) - 1, -1, -1):
            running = stack[index]
            if running.owner is self and running.handler is handler and running.message is message:
                for stale in reversed(stack[index + 1:]):
                    _close(stale.span, stale.token, None, "the handler call ended without its hooks")
                del stack[index:]
                return running
        return None

    def _attributes(self, handler: Handler, message: Message) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "messaging.system": "rabbitmq", "messaging.operation.type": "process",
            "messaging.destination.name": message.exchange,
            "messaging.rabbitmq.destination.routing_key": message.routing_key,
            "tclisten.listener": self.listener, "tclisten.handler": handler.name,
            "tclisten.attempt": message.attempt}
        try:
            task_id = message.routing.get("taskId")
        except ValueError:  # a key its exchange cannot have published: the handler hears of it
            task_id = None
        if task_id and task_id != "_":
            attributes["taskcluster.task_id"] = task_id
        return attributes

    def __repr__(self) -> str:
        return f"<Instrumentation of {self.listener!r}{'' if self.active else ' (inactive)'}>"


def _close(span: trace.Span, token: Token[otel_context.Context], exc: BaseException | None,
           broken: str | None = None, *, error_type: str | None = None) -> None:
    """Record how the call ended (``error_type``: the status code of an error answer), make
    the span's parent current again, end the span."""
    try:
        if exc is not None:
            span.record_exception(exc)
            span.set_attribute("error.type", error_type or f"{type(exc).__module__}.{type(exc).__qualname__}")
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        elif broken is not None:
            span.set_status(Status(StatusCode.ERROR, broken))
    finally:
        otel_context.detach(token)
        span.end()


class _RestSpan:
    """The REST observer (:data:`tclisten.taskcluster.client.call_observers`): a CLIENT span
    around one call, current while it runs."""

    __slots__ = ("call", "span", "token")

    def __init__(self, call: RestCall) -> None:
        self.call = call
        self.span: trace.Span | None = None
        self.token: Token[otel_context.Context] | None = None

    def __enter__(self) -> None:
        tracer = _tracer()
        if tracer is None:
            return
        call = self.call
        self.span = tracer.start_span(f"{call.client} {call.name}" if call.name else f"HTTP {call.method}",
                                      kind=SpanKind.CLIENT, attributes=_rest_attributes(call))
        self.token = otel_context.attach(trace.set_span_in_context(self.span))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        span, token, status = self.span, self.token, self.call.status_code
        if span is None or token is None:
            return
        span.set_attribute("tclisten.rest.attempts", self.call.attempts)
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        _close(span, token, exc, error_type=str(status) if status is not None and status >= 400 else None)


def _tracer() -> trace.Tracer | None:
    """The tracer of the handler running on this thread, else the latest instrumented
    listener's (None: no listener is)."""
    stack = _stack()
    if stack:
        return stack[-1].owner.tracer
    latest = _active[-1:]
    return latest[0].tracer if latest else None


def _rest_attributes(call: RestCall) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(call.url)
    attributes: dict[str, Any] = {
        "http.request.method": call.method, "url.full": call.url,
        "server.address": parts.hostname or "", "taskcluster.service": call.service,
        "taskcluster.function": call.name}
    try:
        attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        pass
    return attributes


def instrument(app: Listener, tracer_provider: trace.TracerProvider | None = None) -> Instrumentation:
    """Trace ``app``'s handler calls, and the REST calls of every client in this process.

    ``tracer_provider``: None for OpenTelemetry's global one.  Call before ``app.run()``
    (hooks cannot be added to a running listener); again on the same listener, it switches
    the provider and returns the same :class:`Instrumentation`.
    """
    tracer = trace.get_tracer("tclisten", __version__, tracer_provider=tracer_provider)
    with _lock:
        found = _instrumented.get(app)
        if found is None:
            found = _instrumented[app] = Instrumentation(app, tracer)
        found.tracer = tracer
        found.active = True
        if found in _active:
            _active.remove(found)
        _active.append(found)
        if _RestSpan not in client.call_observers:
            client.call_observers = (*client.call_observers, _RestSpan)
    return found


def uninstrument(app: Listener | None = None) -> None:
    """Undo :func:`instrument` for ``app`` (None: every listener)."""
    if app is None:
        for each in _active[:]:
            each.uninstrument()
        return
    found = _instrumented.get(app)
    if found is not None:
        found.uninstrument()
