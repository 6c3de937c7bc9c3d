"""A test kit for tclisten listeners: no broker, no Taskcluster account, the real loop.

:class:`ListenerTestKit` runs a listener's own consumer loop on kombu's in-memory transport
(a private broker per kit); :meth:`~ListenerTestKit.publish` sends Taskcluster-shaped messages
with real routing keys and CC routes through the listener's real bindings, and
:meth:`~ListenerTestKit.run_until_idle` consumes until every message is handled, retried
to the end or parked.  :class:`FakeTaskclusterService` is a loopback Taskcluster that
verifies Hawk, answers what the test says and records the calls; give it to the kit and
the handlers' ``ctx.queue`` & co. talk to it.  The message factories of
:mod:`tclisten.testing.factories` are re-exported here.

>>> from tclisten import Listener, QueueEvents
>>> app = Listener("doc-kit")
>>> @app.on(QueueEvents.taskFailed)
... def lookup(message, ctx):
...     ctx.logger.info("%s is %s", message.routing.taskId, ctx.queue.task(message.routing.taskId)["metadata"]["name"])
>>> with FakeTaskclusterService({"queue.task": {"metadata": {"name": "build"}}}) as tc, \\
...         ListenerTestKit(app, taskcluster=tc) as kit:
...     sent = kit.publish(QueueEvents.taskFailed, taskId="fN1SbArXTPSVFNUvaOlinQ")
...     _ = kit.run_until_idle()
...     [h.message.routing.taskId for h in kit.handled], [c.args for c in tc.calls]
(['fN1SbArXTPSVFNUvaOlinQ'], [{'taskId': 'fN1SbArXTPSVFNUvaOlinQ'}])

With pytest, the ``tclisten_kit`` and ``fake_taskcluster`` fixtures of
:mod:`tclisten.testing.pytest_plugin` do the setup and the cleanup.

The kit runs handlers inline, one at a time, whatever the listener's ``concurrency``: a
test sees a deterministic order.  Retries happen at once (the memory transport has no
delays), so ``run_until_idle`` returns after the last attempt.
"""

from __future__ import annotations

import inspect
import json
import logging
import secrets
import socket
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from kombu import Connection, Exchange, Producer
from kombu.transport import memory, virtual

from ..parked import ParkedMessage
from ..topics import resolve
from ..dispatch import Outcome
from ..exceptions import BindingError, ConfigError
from .factories import FactoryMessage, build_routing_key, factory_for, message_for
from .fakeserver import FakeTaskcluster
from ..matching import TopicMatcher

logger = logging.getLogger(__name__)

IDLE_AFTER = 0.02  # seconds without a delivery after which the kit's listener counts as idle

__all__ = ["Failure", "FakeTaskclusterService", "Handled", "ListenerTestKit", "read_records"]


# --------------------------------------------------------------------------- REST


class FakeTaskclusterService(FakeTaskcluster):
    """A :class:`~tclisten.testing.fakeserver.FakeTaskcluster` with one client whose access token
    is made at run time, answers given up front, and the client options that point at it.

    ``responses`` maps ``"service.function"`` (``"queue.task"``, ``"Queue.status"``) to an
    answer as :meth:`respond` takes it: a JSON body, a :class:`~tclisten.testing.fakeserver.Response`,
    or ``fn(call)``.  The client has ``scopes`` (default ``["*"]``); other keywords go to
    :class:`FakeTaskcluster`.

    >>> with FakeTaskclusterService({"queue.status": {"status": {"state": "failed"}}}) as tc:
    ...     from tclisten.taskcluster.client import Queue
    ...     Queue(tc.options).status("abc")["status"]["state"], tc.calls[0].client_id
    ('failed', 'tclisten-test')
    """

    def __init__(self, responses: Mapping[str, Any] | None = None, *, client_id: str = "tclisten-test",
                 scopes: Iterable[str] = ("*",), **kwargs: Any) -> None:
        if isinstance(scopes, str):
            raise ConfigError("scopes must be a list of scope strings, not one string")
        self.client_id = client_id
        self._access_token = secrets.token_urlsafe(32)  # never a committed secret
        clients = {client_id: {"accessToken": self._access_token, "scopes": list(scopes)},
                   **dict(kwargs.pop("clients", None) or {})}
        super().__init__(clients=clients, **kwargs)
        for key, answer in (responses or {}).items():
            service, dot, function = str(key).partition(".")
            if not dot:
                raise ConfigError(f"response key {key!r} must be 'service.function', e.g. 'queue.task'")
            self.respond(service, function, answer)

    @property
    def credentials(self) -> dict[str, str]:
        """``{"clientId", "accessToken"}`` of the generated client."""
        return {"clientId": self.client_id, "accessToken": self._access_token}

    @property
    def options(self) -> dict[str, Any]:
        """REST client options for this server: ``rootUrl`` and ``credentials`` (a new dict
        each time), for ``Listener(taskcluster=...)`` or ``Queue(...)``."""
        return {"rootUrl": self.root_url, "credentials": self.credentials}

    def __repr__(self) -> str:
        where = self.root_url if self._server is not None else "stopped"
        return f"<FakeTaskclusterService {where} client {self.client_id!r}>"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Handled:
    """One successful handler call: the handler's name and the message it got."""

    handler: str
    message: Any


@dataclass(frozen=True)
class Failure:
    """One failed handler call: the handler's name, the message, the error text."""

    handler: str
    message: Any
    error: str


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The message records of a ``.json`` file (one record) or a ``.jsonl`` file (one per
    line), as ``tclisten record`` writes and ``examples/messages`` holds them.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "one.jsonl")
    >>> _ = open(path, "w").write(json.dumps(message_for("QueueEvents.taskFailed").as_record()) + "\\n")
    >>> read_records(path)[0]["exchange"]
    'exchange/taskcluster-queue/v1/task-failed'
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = [json.loads(text)]
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON message records ({exc})", file=str(path)) from exc
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not {"exchange", "routing_key", "body"} <= set(record):
            raise ConfigError(f"{path}: record {index} needs exchange, routing_key and body", file=str(path))
    return records


# --------------------------------------------------------------------------- the broker


def private_memory_transport() -> type:
    """A kombu memory transport class with a broker of its own that routes like RabbitMQ.

    kombu keeps the state of ``memory://`` (exchanges, bindings, queues) in class
    attributes shared by the whole process; a subclass with fresh ones isolates each kit,
    so tests cannot see each other's messages.  Where kombu's memory broker and RabbitMQ
    differ, this one does what RabbitMQ does: topic patterns match as RabbitMQ matches them
    (:class:`~tclisten.matching.TopicMatcher`: ``*`` is exactly one word, ``#`` zero or
    more, where kombu's regexes let ``*`` span words and ``#`` need one), the ``CC``
    header's keys route the message too (once per queue, however many keys match), and a
    message no binding matches is dropped.
    """

    class Channel(memory.Channel):
        events: defaultdict[str, set[Any]] = defaultdict(set)
        queues: dict = {}
        deadletter_queue = None  # unroutable messages are dropped, as RabbitMQ does
        matchers: dict = {}  # bindings of a topic exchange -> their TopicMatcher

        def _lookup(self, exchange: str, routing_key: str, default: Any = None) -> list:
            found = self.state.exchanges.get(exchange) if exchange else None
            if found is None or found["type"] != "topic":
                return super()._lookup(exchange, routing_key, default)
            table = tuple(found["table"])  # (pattern, kombu's regex, queue) per binding
            matcher = self.matchers.get(table)
            if matcher is None:
                matcher = TopicMatcher()
                for pattern, _, queue in table:
                    matcher.add(pattern, queue)
                if len(self.matchers) > 100:
                    self.matchers.clear()
                self.matchers[table] = matcher
            return list(matcher.match(routing_key))

        def basic_publish(self, message: Any, exchange: str, routing_key: str, **kwargs: Any) -> Any:
            cc = (message.get("headers") or {}).get("CC")
            if not exchange or not cc:
                return super().basic_publish(message, exchange, routing_key, **kwargs)
            self._inplace_augment_message(message, exchange, routing_key)
            keys = [routing_key, *([cc] if isinstance(cc, str) else cc)]
            queues: set[str] = set()
            for key in keys:
                queues.update(self._lookup(exchange, key))
            for queue in sorted(queues):
                self._put(queue, message, **kwargs)
            return None

    class Transport(memory.Transport):
        global_state = virtual.BrokerState()

    Transport.Channel = Channel
    return Transport


class ListenerTestKit:
    """Runs a :class:`~tclisten.app.Listener`'s real consumer loop on a private in-memory
    broker.  Use it as a context manager (or call :meth:`close`).

    ``taskcluster``: a :class:`FakeTaskclusterService` (or any client options mapping) the
    listener's REST clients use while the kit is open; the listener's own options come back
    on :meth:`close`.

    After :meth:`run_until_idle`: ``outcomes`` (one :class:`~tclisten.dispatch.Outcome` per
    delivery, retries included), ``handled`` (:class:`Handled`), ``failures``
    (:class:`Failure`), ``parked`` (:class:`~tclisten.app.ParkedMessage`), ``published``.
    """

    def __init__(self, app: Any, *, taskcluster: Any = None, polling_interval: float = 0.005) -> None:
        if not getattr(app, "handlers", None):
            raise ConfigError(f"{app!r} has no handlers to test")
        self.app = app
        self.outcomes: list[Outcome] = []
        self.published: list[FactoryMessage] = []
        self._parked: list[Any] = []
        self._transport = private_memory_transport()
        self._conn = Connection("memory://localhost/", transport=self._transport,
                                transport_options={"polling_interval": polling_interval})
        self._declared: set[str] = set()
        self._restore_clients: Any = None
        if taskcluster is not None:
            options = taskcluster.options if hasattr(taskcluster, "options") else taskcluster
            self._restore_clients = app.clients.swap(options)
        # the publisher owns the exchanges: declare them as Taskcluster would, then the queues
        for exchange in sorted({b.exchange for b in app.bindings}):
            self._declare_exchange(exchange)
        app.declare(self._conn)

    # -- publishing -----------------------------------------------------------------------

    def _declare_exchange(self, name: str) -> None:
        if name not in self._declared:
            Exchange(name, "topic", durable=True)(self._conn.default_channel).declare()
            self._declared.add(name)

    def publish(self, topic: Any, body: Mapping[str, Any] | None = None, *, routes: Iterable[str] = (),
                headers: Mapping[str, Any] | None = None, **fields: Any) -> FactoryMessage:
        """Publish one message of ``topic`` (``QueueEvents.taskFailed``, a bound
        ``QueueEvents({...}).taskFailed`` or ``"QueueEvents.taskFailed"``) and return it.

        Without ``body``, the message comes from :func:`~tclisten.testing.factories.message_for`
        and ``fields`` are its overrides (``taskId=``, ``taskGroupId=``, ``runId=``,
        ``reasonResolved=``, ...): body and routing key agree.  With ``body``, ``fields``
        are routing-key words only; required words not given get the factory's values and
        optional ones ``_``.  ``routes`` become the ``CC`` header (``route.<route>``).
        """
        topic = resolve(topic)
        if body is None:
            made = message_for(f"{topic.service}.{topic.name}", routes=list(routes), **fields)
            message = FactoryMessage(topic.exchange, made.routing_key, made.body, made.headers)
        else:
            unknown = sorted(set(fields) - set(topic.fields))
            if unknown:
                raise BindingError(f"{topic.service}.{topic.name} has no routing-key word {unknown}; "
                                   f"the words are {', '.join(topic.fields)}")
            key = build_routing_key(topic.entry, _routing_words(topic, fields))
            cc = [f"route.{route}" for route in ([routes] if isinstance(routes, str) else routes)]
            message = FactoryMessage(topic.exchange, key, dict(body), {"CC": cc} if cc else {})
        if headers:
            message = FactoryMessage(message.exchange, message.routing_key, message.body,
                                     {**message.headers, **headers})
        return self.publish_message(message)

    def publish_message(self, message: FactoryMessage | Mapping[str, Any]) -> FactoryMessage:
        """Publish a :class:`FactoryMessage` or a record (``exchange``, ``routing_key``,
        ``body``, ``headers``) exactly as given, the way Taskcluster's queue publishes."""
        if not isinstance(message, FactoryMessage):
            message = FactoryMessage(message["exchange"], message["routing_key"], dict(message["body"]),
                                     dict(message.get("headers") or {}))
        self._declare_exchange(message.exchange)
        Producer(self._conn.default_channel).publish(
            json.dumps(message.body).encode("utf-8"), exchange=message.exchange,
            routing_key=message.routing_key, headers=dict(message.headers),
            content_type="application/json", content_encoding="utf-8", delivery_mode=2, retry=False)
        self.published.append(message)
        return message

    # -- running ------------------------------------------------------------------------

    def pending(self) -> int:
        """Messages waiting in the listener's main queue."""
        return self._conn.default_channel.queue_declare(self.app.queue_name, passive=True).message_count

    def run_until_idle(self, *, timeout: float = 30.0) -> list[Outcome]:
        """Run the listener's consumer loop until its queue is empty and every delivery
        is settled (acked, retried or parked); return this run's outcomes.

        ``timeout`` only guards against a handler that keeps publishing: it raises
        :class:`TimeoutError` then.
        """
        app = self.app
        first = len(self.outcomes)
        consumer = app.consumer(self._conn, on_outcome=self.outcomes.append, concurrency=0, grace_period=0.0)
        deadline = time.monotonic() + timeout
        while True:
            try:
                # kombu's contract: consume() raises socket.timeout once the queue stayed
                # quiet for ``timeout`` seconds; every delivery before is settled by then
                for _ in consumer.consume(timeout=IDLE_AFTER, safety_interval=IDLE_AFTER / 4):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"listener {app.name!r} still busy after {timeout} s "
                                           f"({len(self.outcomes) - first} deliveries, {self.pending()} waiting)")
            except socket.timeout:
                if self.pending() == 0:
                    break
        return self.outcomes[first:]

    # -- results ------------------------------------------------------------------------

    @property
    def handled(self) -> list[Handled]:
        """Every successful handler call, in order."""
        return [Handled(name, o.message) for o in self.outcomes for name in o.handled]

    @property
    def failures(self) -> list[Failure]:
        """Every handler call that raised, in order, with the error text."""
        return [Failure(f.handler, o.message, f.error) for o in self.outcomes for f in o.failed or ()]

    def handled_by(self, handler: Any) -> list[Any]:
        """The messages one handler (its function or its name) handled successfully."""
        name = handler if isinstance(handler, str) else next(
            (h.name for h in self.app.handlers if h.fn is handler), None)
        if name is None:
            raise ConfigError(f"{handler!r} is not a handler of {self.app.name!r}")
        return [h.message for h in self.handled if h.handler == name]

    @property
    def parked(self) -> list[Any]:
        """The messages parked so far (with reason and attempts), oldest first."""
        queue = self.app.topology.parked_queue()(self._conn.default_channel)
        while True:
            message = queue.get(no_ack=True)
            if message is None:
                return list(self._parked)
            self._parked.append(ParkedMessage.from_message(message))

    @property
    def stats(self) -> Any:
        return self.app.stats

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Release the broker and give the listener its own REST options back."""
        if self._restore_clients is not None:
            self._restore_clients()
            self._restore_clients = None
        self._conn.release()

    def __enter__(self) -> "ListenerTestKit":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ListenerTestKit {self.app.name!r} {len(self.published)} published {len(self.outcomes)} handled>"


def _routing_words(topic: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields``, plus a factory-made value for each required word left out."""
    required = [w.name for w in topic.routing_key if w.required and w.constant is None]
    if all(name in fields for name in required):
        return dict(fields)
    factory = factory_for(f"{topic.service}.{topic.name}")
    accepted = inspect.signature(factory).parameters
    made = factory(**{k: v for k, v in fields.items() if k in accepted})
    words = topic.parse(made.routing_key)
    return {**{name: words[name] for name in required}, **fields}
