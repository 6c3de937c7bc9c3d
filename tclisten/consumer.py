"""The kombu consumer loop: deliveries in, handlers run, batched acks out.

Built on :class:`kombu.mixins.ConsumerMixin`, which gives reconnection with backoff, a
restart limit and the consumer context.  ``consume`` is overridden because tclisten's loop
must do three things kombu's does not:

- settle finished deliveries between two reads of the socket (handlers may run on worker
  threads, and kombu channels are not thread-safe, so acks and re-publishes happen here, on
  the connection's own thread);
- ack in batches (``basic_ack(multiple=True)`` for a contiguous run of finished deliveries),
  which halves the broker's work per message;
- poll quickly while handlers are in flight, so their acks are not held back by an idle
  socket, and stop gracefully (in-flight handlers finish within a grace period).

With ``concurrency`` 1 (the default) handlers run on the connection's own thread: handing
each message to a worker thread costs more than a trivial handler (bench/RESULTS.md).  A
:class:`_HeartbeatGuard` then keeps the connection alive while a handler runs long: it sends
heartbeat frames from its own thread, only while the connection's thread is inside a handler
and so not touching the socket.  With ``concurrency`` N > 1 a pool of N worker threads runs
handlers, and the connection's thread does all the I/O.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from contextlib import contextmanager
from queue import Empty, SimpleQueue
from typing import Any, Callable, Iterator

from kombu import Producer
from kombu.mixins import ConsumerMixin

from .dispatch import HEADER, Dispatcher, Outcome, error_text
from .retry import DUE, PARKED, RetryPolicy, Topology
from .stats import Stats

logger = logging.getLogger(__name__)

__all__ = ["ListenerConsumer"]


class HardStop(BaseException):
    """Raised from a second stop signal to leave the loop at once (unacked messages stay
    with the broker, so nothing is lost)."""


class _Delivery:
    """One message between its arrival and its ack."""

    __slots__ = ("message", "generation", "outcome", "done", "seconds")

    def __init__(self, message: Any, generation: int) -> None:
        self.message = message  # the kombu message (delivery tag, body, headers)
        self.generation = generation
        self.outcome: Outcome | None = None
        self.done = False
        self.seconds = 0.0  # time spent in handlers


class _HeartbeatGuard:
    """Sends AMQP heartbeats while a handler runs on the connection's thread.

    The connection's thread holds ``lock`` whenever it may touch the socket and lets go of
    it only around handler calls (``enter``/``leave``); this thread sends a heartbeat frame
    only while it holds the lock, so the two never use the socket at once.  When a stop was
    asked for and the grace period is over while a handler still runs, ``on_grace_expired``
    is called (the listener then stops at once, as on a second signal).
    """

    def __init__(self, send: Callable[[], None], interval: float, consumer: "ListenerConsumer") -> None:
        self._send = send
        self._interval = interval
        self._consumer = consumer
        self.lock = threading.Lock()
        self.lock.acquire()
        self._busy = False
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tclisten-heartbeat", daemon=True)
        self._thread.start()

    def enter(self) -> None:
        self._busy = True
        self.lock.release()

    def leave(self) -> None:
        self.lock.acquire()
        self._busy = False

    def close(self) -> None:
        self._closed.set()

    def _run(self) -> None:
        while not self._closed.wait(self._interval):
            if not self._busy or not self.lock.acquire(blocking=False):
                continue
            try:
                if self._busy and not self._closed.is_set():
                    self._send()
            except Exception:  # the connection is failing: the loop will see it
                logger.debug("heartbeat while a handler runs failed", exc_info=True)
            finally:
                self.lock.release()
            self._consumer._check_grace()


class ListenerConsumer(ConsumerMixin):
    """Consumes the listener's queue; see the module docstring for what it adds to kombu."""

    def __init__(self, connection: Any, *, dispatcher: Dispatcher, topology: Topology, main_queue: Any,
                 policy: RetryPolicy, prefetch: int, concurrency: int, grace_period: float,
                 stats: Stats, backlog_warning: int | None = None, backlog_interval: float = 30.0) -> None:
        self.connection = connection
        self.dispatcher = dispatcher
        self.topology = topology
        self.main_queue = main_queue
        self.policy = policy
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.grace_period = grace_period
        self.stats = stats
        self.backlog_warning = backlog_warning
        self.backlog_interval = backlog_interval
        self._next_backlog_check = 0.0
        self._channel: Any = None
        self.inline = concurrency <= 1
        self.on_grace_expired: Callable[[], None] | None = None
        self._stop_at: float | None = None
        self._guard: _HeartbeatGuard | None = None
        self._sock: Any = None  # the AMQP socket, when the transport has one
        self._broker_errors = tuple(connection.connection_errors) + tuple(connection.channel_errors)
        self.should_stop = False
        # Ack at least twice per prefetch window, so the broker never waits for us.
        self.ack_batch = max(1, min(500, prefetch // 2))
        self._generation = 0
        self._inflight: deque[_Delivery] = deque()
        self._finished: SimpleQueue[_Delivery] = SimpleQueue()
        self._work: SimpleQueue[_Delivery | None] = SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._producer: Producer | None = None
        self._ack_each = False
        self._ackable = 0  # finished deliveries at the head of _inflight not yet acked
        self._last_done: _Delivery | None = None

    @property
    def should_stop(self) -> bool:
        return self._should_stop

    @should_stop.setter
    def should_stop(self, value: bool) -> None:
        self._should_stop = value
        if value and self._stop_at is None:
            self._stop_at = time.monotonic() + self.grace_period

    def _check_grace(self) -> None:
        if (self._stop_at is not None and time.monotonic() > self._stop_at
                and self.on_grace_expired is not None):
            logger.warning("grace period over with a handler still running: stopping at once")
            callback, self.on_grace_expired = self.on_grace_expired, None
            callback()

    # -- kombu hooks ------------------------------------------------------------------

    def get_consumers(self, Consumer: Any, channel: Any) -> list:
        """Prepare everything a delivery needs, then consume.

        Done here, before ``basic_consume``, because any synchronous call on the connection
        (a declare, opening a channel) dispatches deliveries that arrive meanwhile."""
        connection = channel.connection.client
        self.on_consume_end(connection, channel)  # a guard left by a failed start
        self._generation += 1
        self._inflight.clear()
        self._ackable = 0
        # Virtual transports (memory://) ignore ``multiple``: ack every message there.
        self._ack_each = getattr(connection.transport, "driver_type", "") not in ("amqp", "pyamqp")
        for queue in self.topology.side_queues(self.policy):
            queue(channel).declare()
        self._producer = Producer(connection.channel(), exchange=self.topology.exchange)
        self._channel = channel
        self._next_backlog_check = 0.0
        raw = connection.connection
        beat = getattr(raw, "heartbeat", 0) or connection.heartbeat or 0
        if self.inline and beat and hasattr(raw, "send_heartbeat"):
            self._guard = _HeartbeatGuard(raw.send_heartbeat, max(0.5, beat / 4), self)
        return [Consumer(queues=[self.main_queue], on_message=self._on_message,
                         prefetch_count=self.prefetch, no_ack=False)]

    def on_consume_ready(self, connection: Any, channel: Any, consumers: list, **kwargs: Any) -> None:
        self.stats.connected()  # the queue and its bindings exist again: say so only now
        logger.info("consuming %s (prefetch %d, concurrency %d)", self.topology.queue_name, self.prefetch,
                    self.concurrency)

    def on_consume_end(self, connection: Any, channel: Any) -> None:
        if self._guard is not None:
            self._guard.close()
            self._guard = None

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        self.stats.connected_now = False
        logger.warning("broker connection failed (%s); retrying in %.1f s", exc, interval)

    def on_decode_error(self, message: Any, exc: Exception) -> None:  # pragma: no cover - we never decode
        logger.error("undecodable message: %s", exc)

    def _check_backlog(self) -> None:
        """Read the queue's backlog from the broker; warn before Pulse's guardian acts."""
        ready = self._channel.queue_declare(self.topology.queue_name, passive=True).message_count
        self.stats.backlog = ready
        if self.backlog_warning and ready > self.backlog_warning:
            logger.warning("queue %s holds %d messages (warning threshold %d): the Pulse guardian deletes "
                           "queues that keep growing", self.topology.queue_name, ready, self.backlog_warning)

    # -- the loop -----------------------------------------------------------------------

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        self._start_workers()
        try:
            super().run(_tokens, **kwargs)
        finally:
            self._stop_workers()

    def consume(self, limit: int | None = None, timeout: float | None = None, safety_interval: float = 1,
                **kwargs: Any):
        with self.consumer_context(**kwargs) as (conn, channel, consumers):
            next_beat = 0.0
            # py-amqp restarts its wait on every frame, the broker's heartbeats included
            # (every heartbeat/2 s): an idle wait must be shorter than that to ever time out.
            beat = getattr(conn.connection, "heartbeat", 0) or 0
            idle_wait = min(safety_interval, beat / 4) if beat else safety_interval
            # py-amqp sets and restores the socket's timeout around every frame it reads
            # unless the socket already has the timeout asked for: give it that timeout here,
            # once per change (15-20 % of the client's CPU per message), and go back to
            # blocking for synchronous calls (see _blocking).
            self._sock = getattr(getattr(conn.connection, "transport", None), "sock", None)
            set_to = None
            try:
                while not self.should_stop:
                    self._settle()
                    wait = 0.01 if self._inflight else idle_wait
                    if self._sock is not None and wait != set_to:
                        self._sock.settimeout(wait)
                        set_to = wait
                    try:
                        conn.drain_events(timeout=wait)
                    except socket.timeout:
                        self._flush_acks()
                        conn.heartbeat_check()
                        next_beat = time.monotonic() + 1.0
                    except OSError:
                        if not self.should_stop:
                            raise
                    else:
                        now = time.monotonic()
                        if now >= next_beat:
                            conn.heartbeat_check()
                            next_beat = now + 1.0
                    if time.monotonic() >= self._next_backlog_check:
                        with self._blocking():
                            self._check_backlog()
                        self._next_backlog_check = time.monotonic() + self.backlog_interval
                    yield
            finally:
                self._restore_blocking()
            self._stop_gracefully(conn, consumers)
            self.stats.connected_now = False

    @contextmanager
    def _blocking(self) -> Iterator[None]:
        """Synchronous broker calls (declares, confirmed publishes) wait without a timeout."""
        sock = self._sock
        if sock is None:
            yield
            return
        previous = sock.gettimeout()
        sock.settimeout(None)
        try:
            yield
        finally:
            sock.settimeout(previous)

    def _restore_blocking(self) -> None:
        try:
            if self._sock is not None:
                self._sock.settimeout(None)
        except OSError:  # the socket is gone already
            pass

    def _on_message(self, message: Any) -> None:
        delivery = _Delivery(message, self._generation)
        self._inflight.append(delivery)
        stats = self.stats
        stats.received += 1
        stats.last_delivery = time.time()
        if not self.inline:
            self._work.put(delivery)
            return
        guard = self._guard
        if guard is None:
            self._handle(delivery)
        else:
            guard.enter()
            try:
                self._handle(delivery)
            finally:
                guard.leave()
        if delivery.outcome.ok:  # the common case, settled here without a queue
            stats.observe(delivery.seconds)
            delivery.done = True
            self._advance()
        else:
            self._finished.put(delivery)  # retries and parking publish: not inside a callback

    def _handle(self, delivery: _Delivery) -> None:
        """Run the handlers of one delivery (on a worker thread, or inline)."""
        message = delivery.message
        started = time.perf_counter()
        info = message.delivery_info
        try:
            delivery.outcome = self.dispatcher.dispatch(info.get("exchange", ""), info.get("routing_key", ""),
                                                        message.body, message.headers,
                                                        redelivered=bool(info.get("redelivered")))
        except Exception as exc:  # a delivery nothing foresaw must not stop the loop: park it
            logger.exception("cannot dispatch %s %s", info.get("exchange"), info.get("routing_key"))
            delivery.outcome = Outcome(park_reason=f"cannot dispatch: {error_text(exc)}")
        delivery.seconds = time.perf_counter() - started

    # -- settling ---------------------------------------------------------------------

    def _settle(self) -> None:
        """Act on every finished delivery, then ack the finished head of the window."""
        finished = self._finished
        while not finished.empty():
            delivery = finished.get()
            if delivery.generation != self._generation:
                continue  # its channel is gone; the broker redelivers it
            self.stats.observe(delivery.seconds)
            try:
                with self._blocking():
                    self._conclude(delivery)
            except self._broker_errors:
                raise  # the connection is gone: reconnect; the broker delivers it again
            except Exception:  # the copy was refused (a nack, say): give the original back
                logger.exception("could not retry or park %s; returning it to the queue",
                                 delivery.message.delivery_info.get("routing_key"))
                self._inflight.remove(delivery)  # never part of a multiple ack once rejected
                delivery.message.reject(requeue=True)
                continue
            delivery.done = True
        self._advance()

    def _advance(self) -> None:
        """Move the finished head of the window to the ack batch; flush a full batch."""
        inflight = self._inflight
        while inflight and inflight[0].done:
            head = inflight.popleft()
            if self._ack_each:
                head.message.ack()
                self.stats.acked += 1
            else:
                self._last_done = head
                self._ackable += 1
        if self._ackable >= self.ack_batch:
            self._flush_acks()

    def _flush_acks(self) -> None:
        """The ack policy, in one place: ack only a contiguous run of finished deliveries.

        A delivery is finished when every matching handler succeeded, or when it was
        re-published for a retry or parked (with publisher confirms).  One
        ``basic_ack(multiple=True)`` of the last of the run acks the whole run; a delivery
        still in a handler stops the run, so nothing unfinished is ever acked.
        """
        if self._ackable:
            self._last_done.message.ack(multiple=True)
            self.stats.acked += self._ackable
            self.stats.last_ack = time.time()
            self._ackable = 0

    def _conclude(self, delivery: _Delivery) -> None:
        """Retry or park a delivery whose handling did not succeed."""
        outcome = delivery.outcome
        if outcome is None or outcome.ok:
            return
        message = delivery.message
        if outcome.park_reason is not None:
            self._republish(message, outcome, PARKED, attempt=self._attempt_of(message, outcome),
                            reason=outcome.park_reason, handlers=())
            self.stats.count("parked")
            logger.warning("parked %s: %s", message.delivery_info.get("routing_key"), outcome.park_reason)
            return
        attempt = outcome.message.attempt
        failed = tuple(name for name, _ in outcome.failed)
        reason = "; ".join(f"{name}: {text}" for name, text in outcome.failed)
        if attempt < self.policy.max_attempts:
            delay = self.policy.delay_before(attempt + 1)
            self._republish(message, outcome, Topology.retry_key(delay), attempt=attempt + 1, reason=reason,
                            handlers=failed)
            self.stats.count("retried")
        else:
            self._republish(message, outcome, PARKED, attempt=attempt, reason=reason, handlers=failed)
            self.stats.count("parked")
            logger.error("parked %s after %d attempts: %s", outcome.message.routing_key, attempt, reason)

    @staticmethod
    def _attempt_of(message: Any, outcome: Outcome) -> int:
        if outcome.message is not None:
            return outcome.message.attempt
        try:
            return int((message.headers or {}).get(HEADER.ATTEMPT) or 1)
        except (TypeError, ValueError):  # the very reason it is being parked, maybe
            return 1

    def _republish(self, message: Any, outcome: Outcome, routing_key: str, *, attempt: int, reason: str,
                   handlers: tuple[str, ...]) -> None:
        info = message.delivery_info
        headers = dict(message.headers or {})
        headers.pop("CC", None)  # the CC keys would route the copy again
        headers.pop("x-death", None)
        if HEADER.EXCHANGE not in headers:  # first re-publish: remember where it came from
            headers[HEADER.EXCHANGE] = info.get("exchange", "")
            headers[HEADER.ROUTING_KEY] = info.get("routing_key", "")
            headers[HEADER.CC] = list(outcome.cc)
        headers[HEADER.ATTEMPT] = attempt
        headers[HEADER.HANDLERS] = list(handlers)
        headers[HEADER.REASON] = reason[:4000]
        if routing_key == PARKED:
            headers[HEADER.PARKED_AT] = int(time.time())
        if routing_key.startswith("retry.") and self._ack_each:
            routing_key = DUE  # virtual transports have no TTL or dead-lettering: retry at once
        self._producer.publish(message.body, routing_key=routing_key, headers=headers,
                               content_type=message.content_type or "application/json",
                               content_encoding=message.content_encoding or "utf-8",
                               delivery_mode=2, retry=False)

    # -- workers and stopping -------------------------------------------------------------

    def _start_workers(self) -> None:
        if self.inline:
            return
        for index in range(self.concurrency):
            worker = threading.Thread(target=self._work_loop, name=f"tclisten-worker-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def _work_loop(self) -> None:
        work = self._work
        while True:
            delivery = work.get()
            if delivery is None:
                return
            if delivery.generation != self._generation:
                continue  # delivered on a connection since lost: the broker delivers it again
            self._handle(delivery)
            self._finished.put(delivery)

    def _stop_workers(self) -> None:
        for _ in self._workers:
            self._work.put(None)
        self._workers.clear()

    def _return_unstarted(self) -> None:
        """Give the broker back the deliveries no worker has started, at once (another
        consumer may take them).  Workers take deliveries in arrival order, so every one
        returned here comes after every started one, and a later ``ack(multiple=True)`` of a
        started delivery never covers them."""
        returned = []
        while True:
            try:
                delivery = self._work.get_nowait()  # a worker may take one meanwhile: fine
            except Empty:
                break
            if delivery is None:
                continue
            if delivery.generation != self._generation:
                continue  # its channel is gone: the broker has it back already
            returned.append(delivery)
        for delivery in returned:
            self._inflight.remove(delivery)
            delivery.message.reject(requeue=True)
        if returned:
            logger.info("returned %d unstarted message(s) to the queue", len(returned))

    def _stop_gracefully(self, conn: Any, consumers: list) -> None:
        """Stop taking messages, let in-flight handlers finish within the grace period, ack
        them; what is still unfinished goes back to the queue when the channel closes."""
        for consumer in consumers:
            try:
                consumer.cancel()
            except Exception:  # the connection may already be gone
                logger.debug("cancel failed", exc_info=True)
        self._return_unstarted()
        deadline = self._stop_at or time.monotonic() + self.grace_period
        while self._inflight and time.monotonic() < deadline:
            self._settle()
            if not self._inflight:
                break
            try:
                conn.drain_events(timeout=0.05)
            except socket.timeout:
                pass
        self._settle()
        self._flush_acks()
        if self._inflight:
            logger.warning("stopping with %d unfinished message(s); the broker will deliver them again",
                           len(self._inflight))
