"""Moving a listener's queues to the other queue type (classic <-> quorum), losing no message.

RabbitMQ cannot change the type of a queue: it must be deleted and declared again, and
deleting a queue deletes its messages.  :func:`migrate` moves them out and back, one queue at
a time (main, parked, bindings, then the delay queues), through a temporary durable queue
``<name>/migrating``, using only what a Pulse user may do (configure and write its own
``queue/<user>/...`` and ``exchange/<user>/...``, read any exchange: it never publishes to
the default exchange).  For each queue:

1. declare the temporary queue, bound to the listener's own exchange under a key of its own,
   bind it to everything that feeds the queue (for the main queue: every Taskcluster binding
   and the key of due retries; for a side queue: its key), and unbind the queue from them:
   from then on new messages wait in the temporary queue;
2. move the queue's messages into it: ``basic.get``, publish a copy through the listener's
   exchange (``mandatory``, publisher confirms), and ack the original only once confirmed;
3. delete the queue, refusing while it has consumers (every listener must be stopped: a
   running one would declare its queues again with the old type), and only once it is empty;
4. declare it with the new type and the listener's own arguments, bind it, unbind the
   temporary queue, and move the messages back the same way;
5. unbind the temporary queue, move what arrived meanwhile, and delete it only when empty.

What the move does to messages:

* **Taskcluster messages become copies from the listener's exchange** carrying their origin
  in ``x-tclisten-*`` headers (as a retry does, :mod:`tclisten.headers`), so handlers see the
  same exchange, routing key and routes; the body and AMQP properties are kept.
* **Attempts are kept.**  A message the old main (or suspect) queue had delivered without an
  outcome (its ``redelivered`` flag, or a quorum queue's ``x-delivery-count``) carries that
  in ``x-tclisten-attempt``; the new queue delivers it as a first delivery of that attempt.
  Deliveries of the other queues are not handlings (listing parked messages fetches them)
  and are not counted.
* **Delay queues start over**: a message waiting for a retry waits its whole delay again.
* **At least once.**  There is no atomic way to move a binding: a message published in the
  instant between binding one queue and unbinding the other (twice per binding) can reach
  both, and is then handled twice, as Pulse's own at-least-once delivery may do anyway.
* **Interrupted?  Run it again**: a temporary queue left behind is found and emptied into the
  queue of the new type.

>>> plan_key("queue/me/x") == plan_key("queue/me/x"), plan_key("queue/me/x").startswith("migrating.")
(True, True)
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import amqp
from kombu import Exchange

from . import headers as codec
from .declare import explain_queue_error, read_bindings_state
from .exceptions import BrokerError, ConfigError
from .headers import HeaderError, Provenance
from .topology import DUE, Topology

logger = logging.getLogger(__name__)

__all__ = ["SUFFIX", "carried_headers", "migrate", "plan_key"]

SUFFIX = "/migrating"
CONFIRM_TIMEOUT = 60.0
WINDOW = 500  # copies published ahead of their confirms
SETTLE = 0.3  # seconds for messages routed before an unbind to reach the queue
DELETE_TRIES = 20

Pair = tuple[str, str]  # (exchange, routing key or pattern)


def plan_key(queue_name: str, direction: str = "out") -> str:
    """The routing key of the listener's exchange that reaches only one queue during its move
    (``out``: the temporary queue, ``back``: the queue of the new type)."""
    return f"migrating.{hashlib.sha1(queue_name.encode()).hexdigest()[:16]}.{direction}"


def carried_headers(headers: Mapping[str, Any] | None, delivery_info: Mapping[str, Any],
                    own_exchange: str, *, attempts: bool = True) -> dict[str, Any]:
    """The headers of a moved copy: the provenance of a message from a Taskcluster exchange
    (its copy comes from the listener's exchange) and, with ``attempts`` (a queue whose
    deliveries are handlings: the main and suspect queues), the deliveries the old queue made
    without an outcome counted into its attempt.  Pure.

    >>> h = carried_headers({"CC": ["route.a"], "x-delivery-count": 2},
    ...                     {"exchange": "ex", "routing_key": "primary.x", "redelivered": True}, "own")
    >>> h["x-tclisten-exchange"], h["x-tclisten-attempt"], h["x-tclisten-cc"], "CC" in h
    ('ex', 3, ['route.a'], False)
    >>> carried_headers(h, {"exchange": "own", "routing_key": "k", "redelivered": True}, "own",
    ...                 attempts=False) == h
    True
    """
    kept = dict(headers or {})
    count = (codec.delivery_count(kept) or 0) if attempts else 0
    redelivered = bool(delivery_info.get("redelivered")) and attempts
    exchange = delivery_info.get("exchange", "") or ""
    provenance: Provenance | None
    if exchange == own_exchange:
        try:
            provenance = codec.decode(kept)
        except HeaderError:
            provenance = None  # left as it is: the listener parks it with the reason
        if provenance is None:  # the bindings record, or unreadable: only the broker's count goes
            kept.pop(codec.DELIVERY_COUNT, None)
            return kept
    else:
        provenance = Provenance(exchange, delivery_info.get("routing_key", "") or "", codec.cc_keys(kept))
    if count:  # quorum: delivered ``count`` times before, without an outcome
        provenance = provenance.next(attempt=provenance.attempt + count, redelivered=True)
    elif redelivered:  # classic: what the consumer would do first (policy.redelivered)
        provenance = provenance.next(attempt=provenance.attempt + 1, redelivered=True)
    return codec.encode(kept, provenance)


@dataclass(frozen=True)
class _Plan:
    """One queue to move: its entity with the new type, and the bindings that feed it."""

    entity: Any  # kombu Queue, new type
    feeds: tuple[Pair, ...]  # bindings the queue keeps
    stale: tuple[Pair, ...] = ()  # bindings the old queue may have that are not kept
    handled: bool = False  # its deliveries are handlings: a redelivery is an attempt

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def temp(self) -> str:
        return self.name + SUFFIX


def migrate(app: Any, queue_type: str, *, log: Callable[[str], Any] = print) -> dict[str, int]:
    """Move every queue of ``app`` (a :class:`~tclisten.app.Listener`, stopped) to
    ``queue_type`` (``"classic"`` or ``"quorum"``), losing no message; returns how many
    messages each queue holds afterwards, moved through its temporary queue (0 for a queue
    already of that type, or not there).  ``log`` gets one line per step.

    Raises :class:`~tclisten.exceptions.BrokerError` when a queue has consumers (stop the
    listener first) or the broker refuses a step; running it again resumes.

    >>> from tclisten import Listener
    >>> migrate(Listener("x", broker_url="memory://"), "quorum")
    Traceback (most recent call last):
    ...
    tclisten.exceptions.ConfigError: migrate needs a RabbitMQ broker, not memory://
    """
    old = app.topology
    if getattr(app, "address", None) is not None and app.address.memory:
        raise ConfigError("migrate needs a RabbitMQ broker, not memory://")
    new = Topology(old.user, old.name, queue_arguments=old.queue_arguments, queue_type=queue_type)
    conn = app.connection()
    # confirms are awaited for a window of copies at a time (:class:`_Confirms`), not one by one
    conn.transport_options = {**(conn.transport_options or {}), "confirm_publish": False}
    try:
        conn.ensure_connection(max_retries=3)
        mover = _Mover(conn, new, log)
        plans = mover.plans(app)
        mover.check_unused(plans)
        mover.check_exchanges(plans)
        Exchange(new.exchange.name, "direct", durable=True)(mover.channel).declare()
        counts: dict[str, int] = {}
        for plan in plans:
            try:
                counts[plan.name] = mover.migrate_one(plan)
            except BrokerError:
                raise
            except tuple(conn.connection_errors) + tuple(conn.channel_errors) as exc:
                raise BrokerError(f"migrating {plan.name!r}: {type(exc).__name__}: {exc}; no message is lost: "
                                  "run the migration again, it resumes", queue=plan.name) from exc
        return counts
    finally:
        conn.release()


class _Mover:
    """The broker side of a migration, on one connection."""

    def __init__(self, conn: Any, topology: Topology, log: Callable[[str], Any]) -> None:
        self.conn = conn
        self.topology = topology
        self.target = topology.queue_type
        self.exchange = topology.exchange.name
        self.log = log
        self.errors = tuple(conn.channel_errors)
        self._channel: Any = None
        self._confirms: _Confirms | None = None
        self._last_beat = 0.0

    @property
    def channel(self) -> Any:
        """The working channel (a new one after a refusal closed the last)."""
        if self._channel is None or not getattr(self._channel, "is_open", True):
            self._channel = self.conn.channel()
        return self._channel

    def renew_channel(self) -> None:
        """Work on a new channel from now on.  A RabbitMQ 3.10 channel remembers the type of
        every queue it used: once the queue is deleted and declared with the other type,
        publishing to it on the same channel crashes the channel and closes the connection
        (INTERNAL_ERROR, ``function_clause`` in ``rabbit_classic_queue:update``; measured)."""
        channel, self._channel = self._channel, None
        if channel is not None:
            try:
                channel.close()
            except Exception:  # noqa: BLE001 - already closed
                pass

    def _probe(self, action: Callable[[Any], Any]) -> Any:
        """Run ``action(channel)`` on a throwaway channel; a refusal closes only that one."""
        channel = self.conn.channel()
        try:
            return action(channel)
        finally:
            try:
                channel.close()
            except Exception:  # noqa: BLE001 - already closed by the refusal
                pass

    # -- planning ----------------------------------------------------------------------

    def plans(self, app: Any) -> list[_Plan]:
        own = self.exchange
        current = tuple(dict.fromkeys((b.exchange, b.pattern) for b in app.bindings))
        recorded = self._recorded_bindings()
        main_feeds = (*current, (own, DUE))
        if not app.prune_bindings:  # the listener keeps bindings the code dropped: so does the move
            main_feeds = tuple(dict.fromkeys((*main_feeds, *sorted(recorded))))
        stale = tuple(sorted(set(recorded) - set(main_feeds)))
        plans = [_Plan(self.topology.main_queue([]), main_feeds, stale, handled=True)]
        consumed = {getattr(self.topology, "suspect_name", None)}  # the side queue the consumer reads
        for queue in self.topology.side_queues(app.retry_delays()):
            plans.append(_Plan(queue, ((own, queue.routing_key),), handled=queue.name in consumed))
        names = [plan.name for plan in plans]
        if sorted(names) != sorted(app.queue_names()):  # pragma: no cover - the topology's own promise
            raise BrokerError(f"the queues planned {names} are not the listener's {app.queue_names()}")
        return plans

    def _recorded_bindings(self) -> set[Pair]:
        if self.inspect(self.topology.bindings_name) is None:
            return set()
        channel = self.conn.channel()
        try:
            return set(read_bindings_state(channel, self.topology).pairs)
        finally:
            channel.close()  # the record goes back to its queue

    def check_unused(self, plans: Iterable[_Plan]) -> None:
        for plan in plans:
            for name in (plan.name, plan.temp):
                found = self.inspect(name)
                if found is not None and found[1]:
                    raise self._in_use(name, found[1])

    @staticmethod
    def _in_use(name: str, consumers: int | None = None) -> BrokerError:
        many = f"{consumers} consumer(s)" if consumers else "consumers"
        return BrokerError(f"queue {name!r} has {many}: stop every listener using it before migrating "
                           "(a running listener would declare its queues again with the old type)", queue=name)

    def check_exchanges(self, plans: Iterable[_Plan]) -> None:
        names = sorted({exchange for plan in plans for exchange, _ in plan.feeds if exchange != self.exchange})
        for name in names:
            try:
                self._probe(lambda ch: Exchange(name, "topic", durable=True, passive=True)(ch).declare())
            except self.errors as exc:
                raise BrokerError(f"exchange {name!r} the listener binds to does not exist ({exc}); nothing "
                                  "was moved", exchange=name) from exc

    # -- one queue -----------------------------------------------------------------------

    def migrate_one(self, plan: _Plan) -> int:
        found = self.inspect(plan.name)
        temp = self.inspect(plan.temp)
        if found is None and temp is None:
            self.log(f"{plan.name}: not there; the listener declares it at its next start")
            return 0
        current = self.type_of(plan) if found is not None else None
        if current == self.target and temp is None:
            self.log(f"{plan.name}: already a {self.target} queue")
            return 0
        out_key, back_key = plan_key(plan.name, "out"), plan_key(plan.name, "back")
        temp_quorum = self.declare_temp(plan.temp)
        self.bind(plan.temp, [(self.exchange, out_key)])
        if temp is not None and temp[0]:
            self.log(f"{plan.name}: {temp[0]} message(s) in {plan.temp}, left by an interrupted migration, "
                     "move too")
        if found is not None and current != self.target:
            self.switch(plan.feeds, to=plan.temp, away_from=plan.name)
            self.unbind(plan.name, plan.stale, missing_ok=True)
            out = self.move(plan.name, out_key, attempts=plan.handled)
            out += self.delete(plan.name, quorum=current == "quorum", drain_key=out_key, attempts=plan.handled)
            self.log(f"{plan.name}: {out} message(s) moved to {plan.temp}; the {current} queue is deleted")
        self.declare(plan.entity)
        self.bind(plan.name, [(self.exchange, back_key)])
        self.switch(plan.feeds, to=plan.name, away_from=plan.temp)
        moved = self.move(plan.temp, back_key)
        self.unbind(plan.temp, [(self.exchange, out_key)])
        moved += self.delete(plan.temp, quorum=temp_quorum, drain_key=back_key)
        self.unbind(plan.name, [(self.exchange, back_key)])
        self.log(f"{plan.name}: now a {self.target} queue; {moved} message(s) moved back")
        return moved

    def inspect(self, name: str) -> tuple[int, int] | None:
        """(messages ready, consumers) of a queue, None when there is none."""
        try:
            ok = self._probe(lambda ch: ch.queue_declare(queue=name, passive=True))
        except self.errors:
            return None
        return int(ok.message_count), int(ok.consumer_count)

    def type_of(self, plan: _Plan) -> str:
        """The existing queue's type: the target when declaring it with the new type works."""
        try:
            self._probe(lambda ch: plan.entity(ch).queue_declare())
            return self.target
        except self.errors as exc:
            error = explain_queue_error(plan.entity, exc)
            current = getattr(error, "current_type", None)
            if current is None:
                raise error from exc
            return current

    def declare_temp(self, name: str) -> bool:
        """Declare the temporary queue (classic: it can be deleted only if empty); True when
        one of another type was already there (a quorum queue: no if-empty delete)."""
        try:
            self._probe(lambda ch: ch.queue_declare(queue=name, durable=True, auto_delete=False))
            return False
        except self.errors as exc:
            if "x-queue-type" not in str(exc):
                raise BrokerError(f"cannot declare the temporary queue {name!r}: {exc}", queue=name) from exc
            return True

    def declare(self, entity: Any) -> None:
        try:
            self._probe(lambda ch: entity(ch).queue_declare())
        except self.errors as exc:
            raise explain_queue_error(entity, exc) from exc

    def bind(self, queue: str, pairs: Iterable[Pair]) -> None:
        for exchange, key in pairs:
            self.channel.queue_bind(queue=queue, exchange=exchange, routing_key=key)

    def unbind(self, queue: str, pairs: Iterable[Pair], *, missing_ok: bool = False) -> None:
        for exchange, key in pairs:
            if not missing_ok:
                self.channel.queue_unbind(queue=queue, exchange=exchange, routing_key=key)
                continue
            try:
                self._probe(lambda ch: ch.queue_unbind(queue=queue, exchange=exchange, routing_key=key))
            except self.errors:
                logger.debug("no binding %s %r of %s to remove", exchange, key, queue)

    def switch(self, pairs: Iterable[Pair], *, to: str, away_from: str) -> None:
        """Move each binding from one queue to the other, one at a time, so that for each the
        window where a message reaches both (or, the other way round, neither) is one round trip."""
        for exchange, key in pairs:
            self.channel.queue_bind(queue=to, exchange=exchange, routing_key=key)
            self.channel.queue_unbind(queue=away_from, exchange=exchange, routing_key=key)

    def move(self, source: str, routing_key: str, *, attempts: bool = False) -> int:
        """Move every message of ``source`` to where ``routing_key`` routes on the listener's
        exchange: get, publish a copy, and ack the originals once their copies are confirmed
        (up to :data:`WINDOW` copies await their confirms at a time).  ``attempts``: the
        source's deliveries were handlings (see :func:`carried_headers`)."""
        channel = self.channel
        confirms = self._confirms_of(channel)
        moved = 0
        batch: list[int] = []  # delivery tags of the originals whose copies await confirms
        while True:
            self._beat()
            message = channel.basic_get(queue=source, no_ack=False)
            if message is not None:
                confirms.publish(amqp.Message(message.body, **self._properties(message, attempts)),
                                 exchange=self.exchange, routing_key=routing_key)
                batch.append(message.delivery_tag)
            if batch and (message is None or len(batch) >= WINDOW):
                try:
                    confirms.wait(self.conn, CONFIRM_TIMEOUT)
                except Exception as exc:
                    self.renew_channel()  # the originals go back to ``source``
                    raise BrokerError(f"could not move messages of {source!r} ({exc}); they stay there (some "
                                      "may have been copied too): run the migration again", queue=source) from exc
                channel.basic_ack(batch[-1], multiple=True)
                moved += len(batch)
                batch = []
            if message is None:
                return moved

    def _confirms_of(self, channel: Any) -> "_Confirms":
        if self._confirms is None or self._confirms.channel is not channel:
            self._confirms = _Confirms(channel)
        return self._confirms

    def _properties(self, message: Any, attempts: bool) -> dict[str, Any]:
        properties = dict(message.properties)
        properties["application_headers"] = carried_headers(
            properties.get("application_headers"), message.delivery_info, self.exchange, attempts=attempts)
        user_id = properties.get("user_id")
        if user_id is not None and user_id != self.topology.user:
            properties.pop("user_id")  # the broker refuses a user_id that is not the publisher's
        return properties

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= 1.0:
            self._last_beat = now
            self.conn.heartbeat_check()

    def delete(self, name: str, *, quorum: bool, drain_key: str, attempts: bool = False) -> int:
        """Delete a queue that receives nothing any more, once it is empty and unused: moves
        (to ``drain_key``) what arrived after the last move; returns how many."""
        moved = 0
        for _ in range(DELETE_TRIES):
            time.sleep(SETTLE)  # messages routed before the last unbind land
            moved += self.move(name, drain_key, attempts=attempts)
            if quorum:  # quorum queues have no if-unused/if-empty delete: check, then delete
                found = self.inspect(name)
                if found is None:
                    self.renew_channel()
                    return moved
                if found[1]:
                    raise self._in_use(name, found[1])
                if found[0]:
                    continue
                self.channel.queue_delete(queue=name)
                self.renew_channel()
                return moved
            try:
                self._probe(lambda ch: ch.queue_delete(queue=name, if_unused=True, if_empty=True))
                self.renew_channel()
                return moved
            except self.errors as exc:
                if "in use" in str(exc):
                    raise self._in_use(name) from exc
                if "not empty" not in str(exc):
                    raise BrokerError(f"cannot delete queue {name!r}: {exc}", queue=name) from exc
        raise BrokerError(f"queue {name!r} keeps receiving messages although nothing is bound to it any more; "
                          "run the migration again", queue=name)


class _Confirms:
    """Publisher confirms of one channel, awaited for a window of publishes at a time; a
    copy the broker returns (``mandatory``: nothing routes it) or refuses fails the window."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.published = 0
        self.outstanding: set[int] = set()
        self.failure: str | None = None
        channel.confirm_select()
        channel.events["basic_ack"].add(self._ack)
        channel.events["basic_nack"].add(self._nack)
        channel.events["basic_return"].add(self._returned)

    def publish(self, message: Any, *, exchange: str, routing_key: str) -> None:
        self.channel.basic_publish(message, exchange=exchange, routing_key=routing_key, mandatory=True)
        self.published += 1
        self.outstanding.add(self.published)

    def wait(self, conn: Any, timeout: float) -> None:
        """Return once every copy published is confirmed; BrokerError otherwise."""
        deadline = time.monotonic() + timeout
        while self.outstanding and self.failure is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerError(f"{len(self.outstanding)} copy(ies) not confirmed within {timeout:g} s")
            try:
                conn.drain_events(timeout=min(left, 1.0))
            except socket.timeout:
                continue
        if self.failure is not None:
            raise BrokerError(self.failure)

    def _settled(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.outstanding = {t for t in self.outstanding if t > tag}
        else:
            self.outstanding.discard(tag)

    def _ack(self, tag: int, multiple: bool = False) -> None:
        self._settled(tag, multiple)

    def _nack(self, tag: int, multiple: bool = False, requeue: bool = False) -> None:
        self._settled(tag, multiple)
        self.failure = "the broker refused a copy (nack)"

    def _returned(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        self.failure = f"the broker returned a copy: nothing routes {routing_key!r} on {exchange!r} ({exc})"
