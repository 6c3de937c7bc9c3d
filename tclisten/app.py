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

import contextlib
import inspect
import logging
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, TypeVar

from kombu import Connection, Exchange, Queue, binding

from . import options as opts
from .broker import BrokerAddress, connect, describe_error, wait_for_broker
from .context import ClientPool, Context
from .declare import declare_listener
from .dispatch import Binding, Dispatcher, Handler, Outcome, call_handler
from .exceptions import BindingError, ConfigError, did_you_mean
from .message import Message
from .parked import ParkedMessage, ParkedQueue, Selector
from .policy import RetryPolicy
from .redact import scrub_url
from .stats import Stats
from .taskcluster import schemas
from .topics import binding_pattern, resolve
from .topology import Topology

logger = logging.getLogger(__name__)

__all__ = ["EXIT_UNFINISHED", "Hook", "Listener", "StopSummary", "default_listener", "inspecting", "on", "run"]

F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*$")
_UNSET: Any = object()
# words that end the names of a listener's side queues: no listener name may contain them
_SIDE_WORDS = frozenset({"retry", "parked", "bindings", "suspect", "migrating"})  # ``timeout=`` not given to @on: the listener's handler_timeout
#: Exit status of a process stopped by a signal that left running deliveries to the broker
#: (the grace period ran out, or a second signal): they will be delivered again.
EXIT_UNFINISHED = 75  # EX_TEMPFAIL
_CLIENT_ATTRIBUTES = frozenset({"auth", "github", "hooks", "index", "notify", "object", "purge_cache", "queue",
                                "scheduler", "secrets", "web_server", "worker_manager", "client"})


@dataclass(frozen=True)
class StopSummary:
    """What a run did, returned by :meth:`Listener.run`.  ``unfinished``: deliveries left
    to the broker when it stopped (they will be delivered again)."""

    received: int = 0
    acked: int = 0
    retried: int = 0
    parked: int = 0
    unmatched: int = 0
    unfinished: int = 0

    @property
    def clean(self) -> bool:
        return self.unfinished == 0

    @property
    def exit_status(self) -> int:
        return 0 if self.clean else EXIT_UNFINISHED

    def __str__(self) -> str:
        text = (f"received {self.received}, acked {self.acked}, retried {self.retried}, parked {self.parked}"
                + (f", unmatched {self.unmatched}" if self.unmatched else ""))
        return text + (f"; {self.unfinished} unfinished, left to the broker" if self.unfinished
                       else "; nothing left unfinished")


@dataclass(frozen=True)
class Hook:
    """Called around every handler call: ``before(handler, message)``, ``after(handler,
    message, result)``, ``error(handler, message, exc)`` (the exception then goes on).  A
    hook that raises is logged and ignored."""

    before: Callable[[Handler, Message], Any] | None = None
    after: Callable[[Handler, Message, Any], Any] | None = None
    error: Callable[[Handler, Message, BaseException], Any] | None = None


_inspecting = threading.local()


@contextlib.contextmanager
def inspecting() -> Iterator[None]:
    """While a target is loaded for inspection (``tclisten bindings``, ``parked``, ...),
    ``run()`` called at import time returns at once instead of consuming."""
    depth = getattr(_inspecting, "depth", 0)
    _inspecting.depth = depth + 1
    try:
        yield
    finally:
        _inspecting.depth = depth


def _is_inspecting() -> bool:
    return getattr(_inspecting, "depth", 0) > 0


class Listener:
    """A Pulse listener: handlers, the queue that feeds them, and the loop.

    Broker: ``broker_url`` (one URL, or several for failover: ``"url1;url2"`` or a list; or
    ``TCLISTEN_BROKER_URL``), else Pulse credentials (``pulse_username``/``pulse_password``/
    ``pulse_host`` or ``PULSE_*``; AMQP over TLS on 5671, certificate verified).
    ``concurrency=1`` runs handlers one at a time on the connection's thread (0 means the
    same); N > 1 runs them on a pool of N worker threads.  ``prefetch`` must be at least
    ``concurrency``.  ``taskcluster`` holds the options of the REST clients handlers get.
    Every option is declared, with its default and limits, in :mod:`tclisten.options`.
    """

    def __init__(self, name: str, *, broker_url: str | list[str] | None = None, pulse_username: str | None = None,
                 pulse_password: str | None = None, pulse_host: str | None = None,
                 taskcluster: Mapping[str, Any] | None = None, prefetch: int = 200, concurrency: int = 1,
                 retry: RetryPolicy | Mapping[str, Any] | None = None, max_length: int | None = None,
                 overflow: str | None = None, expires: int | None = None, backlog_warning: int | None = None,
                 declare_exchanges: bool = False, heartbeat: int = 60, grace_period: float = 30.0,
                 handler_timeout: float | None = 1500.0, queue_type: str = "classic",
                 prune_bindings: bool = True, validate: bool = False, health_port: int | None = None,
                 health_host: str = "127.0.0.1", config: Mapping[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"listener name {name!r} must be words of letters, digits, '.', '_', '-' "
                              "separated by '/'")
        if _SIDE_WORDS & set(name.split("/")[1:]):
            raise ConfigError(f"listener name {name!r}: {', '.join(sorted(_SIDE_WORDS))} after a '/' name the "
                              "side queues of another listener")
        given = dict(broker_url=broker_url, pulse_username=pulse_username, pulse_password=pulse_password,
                     pulse_host=pulse_host, prefetch=prefetch, concurrency=concurrency, max_length=max_length,
                     overflow=overflow, expires=expires, backlog_warning=backlog_warning,
                     declare_exchanges=declare_exchanges, heartbeat=heartbeat, grace_period=grace_period,
                     handler_timeout=handler_timeout, queue_type=queue_type, prune_bindings=prune_bindings,
                     validate=validate, health_port=health_port, health_host=health_host)
        for option, value in given.items():
            opts.check(option, value)
        if prefetch < concurrency:
            raise ConfigError(f"prefetch ({prefetch}) must be at least concurrency ({concurrency})")
        if validate:
            schemas.require_checker()
        self.name = name
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.retry = RetryPolicy.coerce(retry)
        self.heartbeat = heartbeat
        self.grace_period = float(grace_period)
        self.handler_timeout = None if handler_timeout is None else float(handler_timeout)
        self.declare_exchanges = declare_exchanges
        self.prune_bindings = prune_bindings
        self.validate = validate
        self.backlog_warning = backlog_warning
        self.health_port = health_port
        self.health_host = health_host
        self.queue_type = queue_type
        self.config = dict(config or {})
        self._queue_arguments = {key: value for key, value in (
            ("x-max-length", max_length), ("x-overflow", overflow), ("x-expires", expires)) if value is not None}
        self.address = BrokerAddress.resolve(broker_url, pulse_username=pulse_username,
                                             pulse_password=pulse_password, pulse_host=pulse_host)
        self.topology  # noqa: B018 - checks queue_type against the queue options now
        self._clients = ClientPool(taskcluster)
        self._handlers: list[Handler] = []
        self._bindings: list[Binding] = []
        self._topics: dict[str, Any] = {}  # exchange name -> Topic (routing-key layout)
        self._hooks: list[Hook] = []
        self._dispatcher: Dispatcher | None = None
        self._frozen = False
        self._consumer: Any = None
        self._stop_requested = False
        self.health: Any = None  # the HealthServer while running with health_port
        self.stats = Stats()

    def configure(self, **options: Any) -> "Listener":
        """Change options after construction (``tclisten run --prefetch ...`` does), checked
        as the constructor checks them; nothing changes when one does not fit."""
        if self._frozen:
            raise ConfigError(f"listener {self.name!r} is running: its options can no longer change")
        known = {"broker_url", "prefetch", "concurrency", "heartbeat", "grace_period", "handler_timeout",
                 "queue_type", "prune_bindings", "validate", "health_port", "health_host", "backlog_warning",
                 "declare_exchanges"}
        for name, value in options.items():
            if name not in known:
                raise ConfigError(f"option {name!r} cannot be changed after construction; "
                                  f"{did_you_mean(name, sorted(known))}".rstrip("; "))
            opts.check(name, value)
        if options.get("validate"):
            schemas.require_checker()
        new = {name: value for name, value in options.items() if name != "broker_url"}
        for name in ("grace_period", "handler_timeout"):
            if new.get(name) is not None:
                new[name] = float(new[name])
        if "broker_url" in options:
            new["address"] = BrokerAddress.resolve(options["broker_url"])
        if new.get("prefetch", self.prefetch) < new.get("concurrency", self.concurrency):
            raise ConfigError(f"prefetch ({new.get('prefetch', self.prefetch)}) must be at least concurrency "
                              f"({new.get('concurrency', self.concurrency)})")
        Topology("check", self.name, queue_arguments=self._queue_arguments,
                 queue_type=new.get("queue_type", self.queue_type))
        for name, value in new.items():
            setattr(self, name, value)
        self._dispatcher = None
        return self

    def __repr__(self) -> str:
        where = scrub_url(self.address.urls) if self.address else "no broker"
        return f"<Listener {self.name!r} {len(self._handlers)} handler(s) on {where}>"

    # -- declaring handlers ---------------------------------------------------------

    def on(self, topic: Any, *, route: str | None = None, routing_key: str | None = None,
           name: str | None = None, timeout: float | None = _UNSET,
           retry: RetryPolicy | Mapping[str, Any] | None = None, validate: bool | None = None,
           **fields: Any) -> Callable[[F], F]:
        """Decorator: call the function for messages of ``topic`` matching routing-key
        ``fields``, a CC ``route``, or a raw ``routing_key`` pattern (any Pulse exchange).
        ``timeout``, ``retry`` and ``validate`` override the listener's for this handler.
        Returns the function unchanged; stack several ``@on`` freely."""
        resolved, pattern = self._compile(topic, route, routing_key, fields, validate)  # errors now

        def decorator(fn: F) -> F:
            self._register(fn, resolved, pattern, name, timeout, retry, validate)
            return fn

        return decorator

    def add_handler(self, fn: Callable[..., Any], topic: Any, *, route: str | None = None,
                    routing_key: str | None = None, name: str | None = None, timeout: float | None = _UNSET,
                    retry: RetryPolicy | Mapping[str, Any] | None = None, validate: bool | None = None,
                    **fields: Any) -> Binding:
        """Bind ``fn(message, ctx)`` to ``topic``; what ``@on`` does.  Errors surface here,
        not when a message arrives."""
        resolved, pattern = self._compile(topic, route, routing_key, fields, validate)
        return self._register(fn, resolved, pattern, name, timeout, retry, validate)

    @staticmethod
    def _compile(topic: Any, route: str | None, routing_key: str | None,
                 fields: Mapping[str, Any], validate: bool | None = None) -> tuple[Any, str]:
        resolved = resolve(topic)
        pattern = binding_pattern(resolved, route=route, routing_key=routing_key, fields=fields)
        if validate is not None:
            opts.check("validate", validate)
        if validate:
            schemas.require_checker()
            if _schema_of(resolved) is None:
                raise BindingError(f"validate=True: {resolved.exchange} has no bundled JSON schema to check "
                                   "bodies against")
        return resolved, pattern

    def _register(self, fn: Callable[..., Any], topic: Any, pattern: str, name: str | None,
                  timeout: Any, retry: Any, validate: bool | None = None) -> Binding:
        if self._frozen:
            raise ConfigError(f"listener {self.name!r} is running: handlers can no longer be added")
        _check_callable(fn)
        if timeout is not _UNSET:
            opts.check("handler_timeout", timeout)

        handler_name = name or f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        handler = next((h for h in self._handlers if h.name == handler_name), None)
        if handler is None:
            handler = Handler(handler_name, fn, Context(
                self._clients, logger=logging.getLogger(f"tclisten.handler.{handler_name}"),
                config=self.config, listener=self.name, handler=handler_name))
            self._handlers.append(handler)
        elif handler.fn is not fn:
            raise BindingError(f"two different handlers are named {handler_name!r}; pass name=")
        if timeout is not _UNSET:
            handler.timeout, handler.timeout_set = timeout, True
        if retry is not None:
            handler.retry = RetryPolicy.coerce(retry, base=self.retry)
        if validate is not None:
            handler.validate = validate
        new = Binding(topic.exchange, pattern, handler_name)
        if new in self._bindings:
            raise BindingError(f"handler {handler_name} is bound twice to {topic.exchange} {pattern!r}")
        self._bindings.append(new)
        self._topics.setdefault(topic.exchange, topic)
        self._dispatcher = None
        return new

    def add_hook(self, hook: Hook | None = None, *, before: Callable[..., Any] | None = None,
                 after: Callable[..., Any] | None = None, error: Callable[..., Any] | None = None) -> Hook:
        """Call ``before``/``after``/``error`` around every handler call (tracing, metrics,
        error reporting), in the order added (``after`` in reverse)."""
        if self._frozen:
            raise ConfigError(f"listener {self.name!r} is running: hooks can no longer be added")
        hook = hook or Hook(before=before, after=after, error=error)
        for part in (hook.before, hook.after, hook.error):
            if part is not None and not callable(part):
                raise ConfigError(f"hook {part!r} is not callable")
        self._hooks.append(hook)
        self._dispatcher = None
        return hook

    @property
    def running_consumer(self) -> Any:
        """The consumer loop while :meth:`run` runs (its ``connection`` is kombu's), else None."""
        return self._consumer

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
        user = self.address.user if self.address else "<pulse user>"
        return Topology(user, self.name, queue_arguments=self._queue_arguments, queue_type=self.queue_type)

    def retry_delays(self) -> list[float]:
        """Every delay a retry of this listener may wait (the listener's and the handlers' own)."""
        policies = [self.retry, *(h.retry for h in self._handlers if h.retry is not None)]
        return sorted({d for p in policies for d in p.delays()})

    def queue_names(self) -> list[str]:
        """Every queue of this listener: main, parked, bindings, and one per retry delay."""
        return self.topology.all_queue_names(self.retry_delays())

    @property
    def queue(self) -> Queue:
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
            validating = self._validating()
            checks = {}
            for exchange in {b.exchange for b in self._bindings if b.handler in validating}:
                path = _schema_of(self._topics[exchange])
                if path is None:  # only the listener's validate=True reaches here: @on refuses it
                    logger.warning("validate=True: %s has no bundled JSON schema; its bodies are not checked",
                                   exchange)
                else:
                    checks[exchange] = schemas.body_check(path)
            self._dispatcher = Dispatcher(
                self._handlers, self._bindings, own_exchange=self.topology.exchange.name,
                parsers={name: topic.parse for name, topic in self._topics.items() if topic.parse},
                invoke=_with_hooks(tuple(self._hooks)), listener=self.name,
                checks=checks, validating=validating)
        return self._dispatcher

    def _validating(self) -> frozenset[str]:
        """The handlers whose bodies are checked against their schema."""
        return frozenset(h.name for h in self._handlers
                         if (self.validate if h.validate is None else h.validate))

    def dispatch(self, exchange: str, routing_key: str, body: Any, headers: Mapping[str, Any] | None = None,
                 *, redelivered: bool = False) -> Outcome:
        """Run one message through the bindings and handlers, in this thread, no broker."""
        return self.dispatcher.dispatch(exchange, routing_key, body, headers, redelivered=redelivered)

    def policy_of(self, handler_name: str) -> RetryPolicy:
        handler = next((h for h in self._handlers if h.name == handler_name), None)
        return handler.retry if handler is not None and handler.retry is not None else self.retry

    # -- the broker ----------------------------------------------------------------------

    def _require_address(self) -> BrokerAddress:
        if self.address is None:
            raise ConfigError("no broker: give broker_url= (or TCLISTEN_BROKER_URL), or Pulse credentials "
                              "(PULSE_USERNAME and PULSE_PASSWORD)")
        return self.address

    def connection(self) -> Connection:
        """A new kombu connection to the listener's broker (publisher confirms on, failover
        across its URLs, buffered frame reads)."""
        return connect(self._require_address(), heartbeat=self.heartbeat)

    def declare(self, connection: Connection | None = None) -> list[tuple[str, str]]:
        """Check the exchanges, declare the queues, remove stale bindings (returned), turning
        the broker's refusals into errors that say what to do."""
        own = connection is None
        conn = connection or self.connection()
        try:
            conn.ensure_connection(max_retries=3)
            return declare_listener(
                conn, topology=self.topology, main_queue=self.queue,
                side_queues=self.topology.side_queues(self.retry_delays()),
                exchanges=[b.exchange for b in self._bindings], declare_exchanges=self.declare_exchanges,
                pairs={(b.exchange, b.pattern) for b in self._bindings}, prune=self.prune_bindings,
                where=self.address.everywhere() if self.address else "the broker")
        finally:
            if own:
                conn.release()

    def _declare_own(self, channel: Any) -> None:
        """The listener's own queues and exchange, without touching Taskcluster's exchanges
        (parked messages can be managed while those are unreachable).  The main queue is
        declared so that a requeued message always has somewhere to go."""
        for queue in (self.topology.main_queue([]), *self.topology.side_queues(self.retry_delays())):
            queue(channel).declare()

    def consumer(self, connection: Connection | None = None, **overrides: Any) -> Any:
        """The kombu consumer loop for this listener (what ``run`` drives); ``overrides``
        replace its settings (the test kit runs handlers inline with no grace period)."""
        from .consumer import ListenerConsumer

        settings: dict[str, Any] = dict(
            dispatcher=self.dispatcher, topology=self.topology, main_queue=self.queue, policy=self.retry,
            policy_of=self.policy_of, prefetch=self.prefetch, concurrency=self.concurrency,
            grace_period=self.grace_period, handler_timeout=self.handler_timeout, stats=self.stats,
            backlog_warning=self.backlog_warning, park_unmatched=not self.prune_bindings,
            describe_error=(lambda exc: describe_error(exc, self.address)) if self.address else None)
        settings.update(overrides)
        return ListenerConsumer(connection or self.connection(), **settings)

    def run(self, *, wait_for_broker: float | None = None,
            on_health: Callable[[str], Any] | None = None) -> StopSummary:
        """Consume until stopped (SIGINT/SIGTERM, or :meth:`stop`); blocking.

        Waits for the broker first (capped backoff, each attempt logged; at most
        ``wait_for_broker`` seconds, None: for ever).  Returns what it did.  Stopped by a
        signal with deliveries left unfinished (the grace period ran out, or a second
        signal), it exits the process with :data:`EXIT_UNFINISHED` instead."""
        if _is_inspecting():
            logger.debug("listener %s is being inspected: not consuming", self.name)
            return StopSummary()
        from .logs import configure

        configure()
        if not self._handlers:
            raise ConfigError(f"listener {self.name!r} has no handlers")
        address = self._require_address()
        self._frozen = True
        self._warn_without_root_url()
        logger.info("listener %s starting: %d binding(s), queue %s (%s), connecting to %s", self.name,
                    len(self._bindings), self.queue_name, self.queue_type, scrub_url(address.urls))
        for b in self._bindings:
            logger.info("  %s %s -> %s", b.exchange, b.pattern, b.handler)
        wait_for(address, heartbeat=self.heartbeat, limit=wait_for_broker)
        self.declare()  # on a connection of its own, closed again: the loop opens its own
        self._consumer = self.consumer()
        if self._stop_requested:
            self._consumer.request_stop()
        signalled: list[int] = []
        restore = self._install_signal_handlers(signalled)
        try:
            if self.health_port is not None:
                from .health import HealthServer

                self.health = HealthServer(self, host=self.health_host, port=self.health_port).start()
                if on_health is not None:
                    on_health(self.health.url)
            self._consumer.run()
        finally:
            restore()
            if self.health is not None:
                self.health.stop()
                self.health = None
            self.stats.unfinished = self._consumer.unfinished
            self._consumer.connection.release()
            self._consumer = None
            self._stop_requested = False  # a later run() starts afresh
        summary = self._summary()
        logger.info("listener %s stopped: %s", self.name, summary)
        if signalled and not summary.clean:
            exit_ = SystemExit(summary.exit_status)
            exit_.summary = summary  # type: ignore[attr-defined]
            raise exit_
        return summary

    def _summary(self) -> StopSummary:
        s = self.stats
        return StopSummary(received=s.received, acked=s.acked, retried=s.retried, parked=s.parked,
                           unmatched=s.unmatched, unfinished=s.unfinished)

    def stop(self) -> None:
        """Ask the loop to stop: no handler starts, running ones get the grace period
        (thread-safe; a second call stops at once)."""
        self._stop_requested = True
        if self._consumer is not None:
            self._consumer.request_stop()

    def _install_signal_handlers(self, signalled: list[int]) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        from .watchdog import HardStop

        def on_stop_signal(signum: int, frame: Any) -> None:
            signalled.append(signum)
            consumer = self._consumer
            if consumer is None or not consumer.stopping:
                logger.info("signal %d: no new handler starts; running ones get %g s (again to stop at once)",
                            signum, self.grace_period)
                self.stop()
                return
            logger.warning("signal %d again: stopping at once; unfinished messages stay with the broker", signum)
            consumer.request_stop(hard=True)
            if consumer.in_loop_handler():
                raise HardStop()

        def on_alarm(signum: int, frame: Any) -> None:  # the watchdog interrupting a handler
            consumer = self._consumer
            exc = consumer.take_interrupt() if consumer is not None else None
            if exc is not None:
                raise exc()

        previous = {sig: signal.signal(sig, on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_alarm)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _warn_without_root_url(self) -> None:
        if self._clients.has_root_url() or os.environ.get("TASKCLUSTER_ROOT_URL"):
            return
        users = [h.name for h in self._handlers if _CLIENT_ATTRIBUTES & set(getattr(
            getattr(h.fn, "__code__", None), "co_names", ()))]
        if users:
            logger.warning("handler(s) %s use ctx REST clients but no Taskcluster rootUrl is set "
                           "(taskcluster={'rootUrl': ...} or TASKCLUSTER_ROOT_URL): their calls will fail",
                           ", ".join(users))

    # -- parked messages -----------------------------------------------------------------

    @property
    def parked_queue(self) -> ParkedQueue:
        """The listener's parked messages: ``list``, ``requeue`` and ``drop`` them."""
        return ParkedQueue(self.topology, self.connection, self._declare_own)

    def parked(self, limit: int | None = None, where: Selector | None = None) -> list[ParkedMessage]:
        """The parked messages (they stay parked)."""
        return self.parked_queue.list(limit, where)

    def requeue_parked(self, limit: int | None = None, where: Selector | None = None) -> int:
        """Put parked messages back into the main queue for another round of attempts."""
        return self.parked_queue.requeue(where, limit)

    def drop_parked(self, limit: int | None = None, where: Selector | None = None) -> int:
        """Delete parked messages for good."""
        return self.parked_queue.drop(where, limit)


def wait_for(address: BrokerAddress, *, heartbeat: int, limit: float | None) -> None:
    """:func:`tclisten.broker.wait_for_broker`, skipped for the in-memory transport."""
    if not address.memory:
        wait_for_broker(address, heartbeat=heartbeat, limit=limit)


def _check_callable(fn: Any) -> None:
    """A handler must take ``(message, ctx)``: refused at declaration, not at the first message."""
    if not callable(fn):
        raise BindingError(f"handler {fn!r} is not callable")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin or C callable without a signature: trust it
    try:
        signature.bind(None, None)
    except TypeError:
        raise BindingError(f"handler {getattr(fn, '__qualname__', fn)!r} cannot be called as fn(message, ctx): "
                           f"its signature is {signature}") from None


def _schema_of(topic: Any) -> str | None:
    """The bundled schema of a topic's messages; None for raw exchanges and 2015 ones."""
    reference = getattr(topic, "reference", None)
    return schemas.bundled_path(reference.service_name, topic.schema) if reference is not None else None


def _with_hooks(hooks: tuple[Hook, ...]) -> Callable[[Handler, Message], Any]:
    """The handler call, wrapped by the listener's hooks (no wrapping without hooks).

    A hook that raises is logged and otherwise ignored: a tracing or metrics bug must not
    turn a handled message into a retry (its handler would run again)."""
    if not hooks:
        return call_handler

    def call(part: Callable[..., Any], *args: Any) -> None:
        try:
            part(*args)
        except Exception:
            logger.exception("hook %r raised; ignored", part)

    def invoke(handler: Handler, message: Message) -> Any:
        for hook in hooks:
            if hook.before is not None:
                call(hook.before, handler, message)
        try:
            result = handler.fn(message, handler.context)
        except BaseException as exc:
            for hook in hooks:
                if hook.error is not None:
                    call(hook.error, handler, message, exc)
            raise
        for hook in reversed(hooks):
            if hook.after is not None:
                call(hook.after, handler, message, result)
        return result

    return invoke


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


def on(topic: Any, *, route: str | None = None, routing_key: str | None = None, name: str | None = None,
       timeout: float | None = _UNSET, retry: RetryPolicy | Mapping[str, Any] | None = None,
       validate: bool | None = None, **fields: Any) -> Callable[[F], F]:
    """``@tclisten.on(...)``: declare a handler on the script's default listener."""
    return default_listener().on(topic, route=route, routing_key=routing_key, name=name, timeout=timeout,
                                 retry=retry, validate=validate, **fields)


def run(*, wait_for_broker: float | None = None) -> StopSummary:
    """Run the script's default listener (blocking)."""
    return default_listener().run(wait_for_broker=wait_for_broker)
