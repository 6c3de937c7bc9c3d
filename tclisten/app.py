"""The Listener: handlers declared with ``@on``, one durable Pulse queue, one loop.

>>> from tclisten import Listener, QueueEvents
>>> app = Listener("my-reactor", broker_url="amqp://guest:guest@127.0.0.1:5672//")
>>> @app.on(QueueEvents.taskFailed, taskGroupId="fWxWbBvDQS2Q4XXc9U-Hnw")
... def retry_infra_failures(message, ctx):
...     ctx.logger.info("task %s failed", message.routing.taskId)
>>> app.queue_name
'queue/guest/my-reactor'
>>> [(b.exchange, b.pattern) for b in app.bindings]
[('exchange/taskcluster-queue/v1/task-failed', 'primary.*.*.*.*.*.*.*.fWxWbBvDQS2Q4XXc9U-Hnw.#')]

``app.run()`` blocks, consuming until SIGINT/SIGTERM or ``app.stop()``.
"""

from __future__ import annotations

import _thread
import json
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

from kombu import Connection, Exchange, Producer, binding

from .context import ClientPool, Context
from .dispatch import HEADER, Binding, Dispatcher, Handler, Outcome
from .exceptions import BindingError, BrokerError, ConfigError
from .retry import DUE, RetryPolicy, Topology
from .stats import Stats

logger = logging.getLogger(__name__)

__all__ = ["Listener", "ParkedMessage", "default_listener", "on", "run"]

F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*$")
PULSE_HOST = "pulse.mozilla.org"
OVERFLOW_POLICIES = ("drop-head", "reject-publish", "reject-publish-dlx")


def scrub_url(url: str) -> str:
    """A broker URL safe to log: the password replaced by ``****``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:****@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class ParkedMessage:
    """A message in the parked queue, with why and after how many attempts it was parked."""

    exchange: str
    routing_key: str
    body: Any
    reason: str
    attempts: int
    handlers: tuple[str, ...]
    routes: tuple[str, ...]
    parked_at: int | None

    @classmethod
    def from_message(cls, message: Any) -> "ParkedMessage":
        """Read a kombu message of the parked queue."""
        headers = message.headers or {}
        text = lambda value: value.decode() if isinstance(value, bytes) else str(value)  # noqa: E731
        try:
            body = json.loads(message.body)
        except ValueError:
            body = message.body
        return cls(
            exchange=text(headers.get(HEADER.EXCHANGE, "")), routing_key=text(headers.get(HEADER.ROUTING_KEY, "")),
            body=body, reason=text(headers.get(HEADER.REASON, "")), attempts=int(headers.get(HEADER.ATTEMPT) or 1),
            handlers=tuple(text(h) for h in headers.get(HEADER.HANDLERS) or ()),
            routes=tuple(text(k)[6:] for k in headers.get(HEADER.CC) or () if text(k).startswith("route.")),
            parked_at=headers.get(HEADER.PARKED_AT))


class Listener:
    """A Pulse listener: handlers, the queue that feeds them, and the loop.

    Broker: ``broker_url`` (or ``TCLISTEN_BROKER_URL``), else Pulse credentials
    (``pulse_username``/``pulse_password``/``pulse_host`` or ``PULSE_USERNAME``,
    ``PULSE_PASSWORD``, ``PULSE_HOST``; AMQP over TLS on 5671, certificate verified).
    ``concurrency=1`` runs handlers one at a time on the connection's thread (a heartbeat
    guard keeps the connection alive through long handlers; 0 means the same); N > 1 runs
    them on a pool of N worker threads.  ``prefetch`` must be at least ``concurrency``.
    ``taskcluster`` holds the options of the REST clients handlers get (``rootUrl``,
    ``credentials``, ...; missing ones come from ``TASKCLUSTER_*``).  ``health_port``
    serves ``/healthz`` and ``/metrics`` on 127.0.0.1 while the listener runs (0: any port).
    """

    def __init__(self, name: str, *, broker_url: str | None = None, pulse_username: str | None = None,
                 pulse_password: str | None = None, pulse_host: str | None = None,
                 taskcluster: Mapping[str, Any] | None = None, prefetch: int = 200, concurrency: int = 1,
                 retry: RetryPolicy | Mapping[str, Any] | None = None, max_length: int | None = None,
                 overflow: str | None = None, expires: int | None = None, backlog_warning: int | None = None,
                 declare_exchanges: bool = False, heartbeat: int = 60, grace_period: float = 30.0,
                 health_port: int | None = None, config: Mapping[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not _NAME.match(name) or "/retry/" in name or name.endswith("/parked"):
            raise ConfigError(f"listener name {name!r} must be words of letters, digits, '.', '_', '-' "
                              "separated by '/'")
        _check_int("prefetch", prefetch, 1)
        _check_int("concurrency", concurrency, 0)
        _check_int("heartbeat", heartbeat, 0)
        for option, value in (("max_length", max_length), ("expires", expires), ("backlog_warning", backlog_warning)):
            if value is not None:
                _check_int(option, value, 1)
        if health_port is not None:
            _check_int("health_port", health_port, 0)
        if overflow is not None and overflow not in OVERFLOW_POLICIES:
            raise ConfigError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}")
        if prefetch < concurrency:
            raise ConfigError(f"prefetch ({prefetch}) must be at least concurrency ({concurrency})")
        self.name = name
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.retry = RetryPolicy.coerce(retry)
        self.heartbeat = heartbeat
        self.grace_period = float(grace_period)
        self.declare_exchanges = declare_exchanges
        self.backlog_warning = backlog_warning
        self.health_port = health_port
        self.config = dict(config or {})
        self._queue_arguments = {key: value for key, value in (
            ("x-max-length", max_length), ("x-overflow", overflow), ("x-expires", expires)) if value is not None}
        self._broker_url, self._user, self._ssl = _broker(broker_url, pulse_username, pulse_password, pulse_host)
        self._clients = ClientPool(taskcluster)
        self._handlers: list[Handler] = []
        self._bindings: list[Binding] = []
        self._topics: dict[str, Any] = {}  # exchange name -> Topic (routing-key layout)
        self._dispatcher: Dispatcher | None = None
        self._frozen = False
        self._consumer: Any = None
        self._health: Any = None
        self._stop_requested = False
        self.stats = Stats()

    def __repr__(self) -> str:
        return f"<Listener {self.name!r} {len(self._handlers)} handler(s) on {scrub_url(self._broker_url or '')}>"

    # -- declaring handlers ---------------------------------------------------------

    def on(self, topic: Any, *, route: str | None = None, **fields: Any) -> Callable[[F], F]:
        """Decorator: call the function for messages of ``topic`` matching ``fields`` (or the
        CC ``route``).  Returns the function unchanged; stack several ``@on`` freely."""
        topic, pattern = _compile(topic, route, fields)  # errors now, not at the first message

        def decorator(fn: F) -> F:
            self._register(fn, topic, pattern, None)
            return fn

        return decorator

    def add_handler(self, fn: Callable[..., Any], topic: Any, *, route: str | None = None,
                    name: str | None = None, **fields: Any) -> Binding:
        """Bind ``fn(message, ctx)`` to ``topic``; what ``@on`` does.  Errors surface here,
        not when a message arrives."""
        topic, pattern = _compile(topic, route, fields)
        return self._register(fn, topic, pattern, name)

    def _register(self, fn: Callable[..., Any], topic: Any, pattern: str, name: str | None) -> Binding:
        if self._frozen:
            raise ConfigError(f"listener {self.name!r} is running: handlers can no longer be added")
        if not callable(fn):
            raise BindingError(f"handler {fn!r} is not callable")
        handler_name = name or f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        handler = next((h for h in self._handlers if h.name == handler_name), None)
        if handler is None:
            handler = Handler(handler_name, fn, Context(
                self._clients, logger=logging.getLogger(f"tclisten.handler.{handler_name}"),
                config=self.config, listener=self.name, handler=handler_name))
            self._handlers.append(handler)
        elif handler.fn is not fn:
            raise BindingError(f"two different handlers are named {handler_name!r}; pass name=")
        new = Binding(topic.exchange, pattern, handler_name)
        if new in self._bindings:
            raise BindingError(f"handler {handler_name} is bound twice to {topic.exchange} {pattern!r}")
        self._bindings.append(new)
        self._topics.setdefault(topic.exchange, topic)
        self._dispatcher = None
        return new

    @property
    def clients(self) -> ClientPool:
        """The REST clients handlers get (``ctx.queue`` & co.), shared by all handlers."""
        return self._clients

    @property
    def bindings(self) -> list[Binding]:
        return list(self._bindings)

    @property
    def handlers(self) -> list[Handler]:
        return list(self._handlers)

    @property
    def queue_name(self) -> str:
        return self.topology.queue_name

    @property
    def topology(self) -> Topology:
        return Topology(self._user or "<pulse user>", self.name, queue_arguments=self._queue_arguments)

    @property
    def queue(self) -> Any:
        """The kombu ``Queue`` this listener consumes, with every binding."""
        seen: dict[tuple[str, str], Any] = {}
        for b in self._bindings:
            seen.setdefault((b.exchange, b.pattern), binding(
                Exchange(b.exchange, "topic", durable=True, passive=not self.declare_exchanges),
                routing_key=b.pattern))
        return self.topology.main_queue(list(seen.values()))

    # -- dispatching without a broker -------------------------------------------------

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            self._dispatcher = Dispatcher(
                self._handlers, self._bindings, own_exchange=self.topology.exchange.name,
                parsers={name: topic.parse for name, topic in self._topics.items()})
        return self._dispatcher

    def dispatch(self, exchange: str, routing_key: str, body: Any, headers: Mapping[str, Any] | None = None,
                 *, redelivered: bool = False) -> Outcome:
        """Run one message through the bindings and handlers, in this thread, no broker."""
        return self.dispatcher.dispatch(exchange, routing_key, body, headers, redelivered=redelivered)

    # -- the broker ----------------------------------------------------------------------

    def connection(self) -> Connection:
        """A new kombu connection to the listener's broker (publisher confirms on)."""
        if not self._broker_url:
            raise ConfigError("no broker: give broker_url= (or TCLISTEN_BROKER_URL), or Pulse credentials "
                              "(PULSE_USERNAME and PULSE_PASSWORD)")
        options: dict[str, Any] = {"confirm_publish": True}
        if self._broker_url.startswith("memory:"):
            options["polling_interval"] = 0.05  # kombu polls virtual transports; stop promptly
        elif hasattr(socket, "TCP_USER_TIMEOUT"):
            # py-amqp's default (1 s) drops the connection whenever a busy broker is slow to
            # read; heartbeats already find dead peers.
            options["socket_settings"] = {socket.TCP_USER_TIMEOUT: 30_000}
        return Connection(self._broker_url, heartbeat=self.heartbeat, ssl=self._ssl or False, connect_timeout=15,
                          transport_options=options)

    def declare(self, connection: Connection | None = None) -> None:
        """Check the exchanges and declare the queues, turning the broker's refusals into
        errors that say what to do."""
        own = connection is None
        conn = connection or self.connection()
        try:
            conn.ensure_connection(max_retries=3)
            exchanges = sorted({b.exchange for b in self._bindings})
            for name in exchanges:
                with conn.channel() as channel:
                    try:
                        Exchange(name, "topic", durable=True, passive=not self.declare_exchanges)(channel).declare()
                    except conn.channel_errors as exc:
                        raise BrokerError(f"exchange {name!r} does not exist on {scrub_url(self._broker_url)} "
                                          f"({exc}); bind to an existing exchange, or pass declare_exchanges=True "
                                          "on a local broker", exchange=name) from exc
            with conn.channel() as channel:
                queues = [self.queue, *self.topology.side_queues(self.retry)]
                for queue in queues:
                    try:
                        queue(channel).declare()
                    except conn.channel_errors as exc:
                        raise BrokerError(
                            f"cannot declare queue {queue.name!r} with arguments {queue.queue_arguments or {}}: "
                            f"{exc}. If it exists with other arguments, delete it (tclisten keeps no state "
                            "in it but pending messages) or use the same options", queue=queue.name) from exc
        finally:
            if own:
                conn.release()

    def _declare_own(self, channel: Any) -> None:
        """The listener's own queues and exchange, without touching Taskcluster's exchanges
        (parked messages can be managed while those are unreachable).  The main queue is
        declared so that a requeued message always has somewhere to go."""
        for queue in (self.topology.main_queue([]), *self.topology.side_queues(self.retry)):
            queue(channel).declare()

    def consumer(self, connection: Connection | None = None, **overrides: Any) -> Any:
        """The kombu consumer loop for this listener (what ``run`` drives); ``overrides``
        replace its settings (the test kit runs handlers inline with no grace period)."""
        from .consumer import ListenerConsumer

        settings: dict[str, Any] = dict(
            dispatcher=self.dispatcher, topology=self.topology, main_queue=self.queue, policy=self.retry,
            prefetch=self.prefetch, concurrency=self.concurrency, grace_period=self.grace_period,
            stats=self.stats, backlog_warning=self.backlog_warning)
        settings.update(overrides)
        return ListenerConsumer(connection or self.connection(), **settings)

    def run(self) -> None:
        """Consume until stopped (SIGINT/SIGTERM, or ``stop()``); blocking."""
        from .consumer import HardStop

        if not self._handlers:
            raise ConfigError(f"listener {self.name!r} has no handlers")
        self._frozen = True
        logger.info("listener %s connecting to %s", self.name, scrub_url(self._broker_url or ""))
        self.declare()  # on a connection of its own, closed again: the loop opens its own
        self._consumer = self.consumer()
        self._consumer.should_stop = self._stop_requested
        restore = self._install_signal_handlers()
        health = None
        try:
            if self.health_port is not None:
                from .health import HealthServer

                health = self._health = HealthServer(self, port=self.health_port).start()
            self._consumer.run()
        except HardStop:
            logger.warning("listener %s stopped at once; unacked messages stay with the broker", self.name)
        finally:
            restore()
            if health is not None:
                health.stop()
            self._consumer.connection.release()
            self._consumer = None
            self._stop_requested = False  # a later run() starts afresh
        logger.info("listener %s stopped: %s", self.name, self.stats.snapshot())

    def stop(self) -> None:
        """Ask the loop to stop after in-flight handlers finish (thread-safe)."""
        self._stop_requested = True
        if self._consumer is not None:
            self._consumer.should_stop = True

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        from .consumer import HardStop

        def handle(signum: int, frame: Any) -> None:
            if self._stop_requested:
                raise HardStop()
            logger.info("signal %d: stopping after in-flight handlers (again to stop at once)", signum)
            self.stop()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        if self._consumer is not None:
            # a handler on this thread outlasting the grace period: act as a second signal
            self._consumer.on_grace_expired = lambda: _thread.interrupt_main(signal.SIGTERM)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # -- parked messages -----------------------------------------------------------------

    def parked(self, limit: int | None = None) -> list[ParkedMessage]:
        """The parked messages (they stay parked)."""
        found: list[ParkedMessage] = []
        with self.connection() as conn:
            with conn.channel() as channel:
                self._declare_own(channel)
                queue = self.topology.parked_queue()(channel)
                while limit is None or len(found) < limit:
                    message = queue.get(no_ack=False)
                    if message is None:
                        break
                    found.append(ParkedMessage.from_message(message))
                # closing the channel returns every fetched message to the parked queue
        return found

    def requeue_parked(self, limit: int | None = None) -> int:
        """Put parked messages back into the main queue for another round of attempts."""
        moved = 0
        with self.connection() as conn:
            with conn.channel() as channel:
                self._declare_own(channel)
                queue = self.topology.parked_queue()(channel)
                producer = Producer(channel, exchange=self.topology.exchange)
                while limit is None or moved < limit:
                    message = queue.get(no_ack=False)
                    if message is None:
                        break
                    headers = dict(message.headers or {})
                    headers[HEADER.ATTEMPT] = 1
                    for key in (HEADER.REASON, HEADER.PARKED_AT, "x-death"):
                        headers.pop(key, None)
                    producer.publish(message.body, routing_key=DUE, headers=headers, delivery_mode=2,
                                     content_type=message.content_type or "application/json",
                                     content_encoding=message.content_encoding or "utf-8")
                    message.ack()
                    moved += 1
        return moved


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, not {value!r}")


def _compile(topic: Any, route: str | None, fields: Mapping[str, Any]) -> tuple[Any, str]:
    """The Topic and the binding pattern of one declaration."""
    topic = _resolve_topic(topic)
    if route is not None:
        if fields:
            raise BindingError(f"{topic!r}: give routing-key fields or route=, not both")
        return topic, topic.route_pattern(route)
    return topic, topic.pattern(**fields)


def _resolve_topic(topic: Any) -> Any:
    """Accept a Topic, or its dotted name (``"QueueEvents.taskFailed"``)."""
    if isinstance(topic, str):
        from .exchanges import exchanges_class

        service, _, entry = topic.partition(".")
        try:
            topic = getattr(exchanges_class(service), entry)
        except (KeyError, AttributeError, ValueError) as exc:
            raise BindingError(f"unknown exchange {topic!r}: expected <Service>Events.<exchange>, "
                               "e.g. QueueEvents.taskFailed") from exc
    if not (hasattr(topic, "exchange") and hasattr(topic, "pattern") and hasattr(topic, "route_pattern")):
        raise BindingError(f"{topic!r} is not an exchange entry such as QueueEvents.taskCompleted")
    return topic


def _broker(url: str | None, username: str | None, password: str | None,
            host: str | None) -> tuple[str | None, str | None, ssl.SSLContext | None]:
    """The broker URL, the user that names the queue, and the TLS context (Pulse)."""
    url = url or os.environ.get("TCLISTEN_BROKER_URL")
    if url:
        parts = urllib.parse.urlsplit(url)
        user = urllib.parse.unquote(parts.username) if parts.username else "guest"
        context = ssl.create_default_context() if parts.scheme in ("amqps", "pyamqps") else None
        return url, user, context
    username = username or os.environ.get("PULSE_USERNAME")
    password = password or os.environ.get("PULSE_PASSWORD")
    host = host or os.environ.get("PULSE_HOST") or PULSE_HOST
    if not username or not password:
        return None, username, None
    quote = urllib.parse.quote
    return f"amqps://{quote(username, safe='')}:{quote(password, safe='')}@{host}:5671/", username, \
        ssl.create_default_context()


# -- scripts: a module-level listener ---------------------------------------------------

_default: Listener | None = None
_default_lock = threading.Lock()


def default_listener() -> Listener:
    """The listener behind module-level ``tclisten.on`` / ``tclisten.run``, named after the
    script (``TCLISTEN_NAME`` overrides)."""
    global _default
    with _default_lock:
        if _default is None:
            main = sys.modules.get("__main__")
            script = os.path.splitext(os.path.basename(getattr(main, "__file__", "") or "tclisten"))[0]
            name = os.environ.get("TCLISTEN_NAME") or re.sub(r"[^A-Za-z0-9._-]", "-", script) or "tclisten"
            _default = Listener(name)
        return _default


def on(topic: Any, *, route: str | None = None, **fields: Any) -> Callable[[F], F]:
    """``@tclisten.on(...)``: declare a handler on the script's default listener."""
    return default_listener().on(topic, route=route, **fields)


def run() -> None:
    """Run the script's default listener (blocking)."""
    default_listener().run()
