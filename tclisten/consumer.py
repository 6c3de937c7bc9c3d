"""The kombu consumer loop: deliveries in, handlers run, decisions carried out, acks out.

Built on :class:`kombu.mixins.ConsumerMixin` (reconnection with backoff, a restart limit,
the consumer context, ``consume(limit, timeout)``).  What it adds:

- **One thread owns the channel.**  Handlers may run on worker threads (``concurrency`` N > 1)
  but acks, retries and parking happen on the connection's thread, between two reads of the
  socket (kombu channels are not thread-safe).  With ``concurrency`` 1 handlers run on the
  connection's thread itself: handing each message to a worker costs more than a trivial
  handler (bench/RESULTS.md); the :mod:`~tclisten.watchdog` then sends heartbeats and due
  acks while a handler runs.
- **Acks** go through one :class:`~tclisten.ackwindow.AckWindow` per channel: batched in
  order, individually within a second when out of order.
- **Decisions** come from :func:`tclisten.policy.decide` (ack, retry later, park); a
  redelivered message is counted as an attempt first (:func:`tclisten.policy.redelivered`),
  so a message that kills its process ends parked instead of in a crash loop.
- **Stopping**: after :meth:`request_stop` no handler starts; deliveries not started go back
  to the queue at once; handlers that finish within the grace period are acked; past it (or
  at a second request) the loop leaves at once with the running deliveries unacked, which
  the broker delivers again.
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

from . import headers as codec
from .ackwindow import AckWindow, Slot
from .confirms import Confirms
from .dispatch import Dispatcher, Handler, HandlerFailure, Outcome, error_text
from .exceptions import HandlerTimeout
from .headers import FailureRecord, HeaderError, Provenance
from .message import Message
from .policy import Ack, Decision, ParkNow, Quarantine, RetryLater, RetryPolicy, decide, redelivered
from .stats import Stats
from .topology import DUE, PARKED, SUSPECT, Topology, retry_key
from .watchdog import HardStop, Running, Socket, Watchdog, alarm_main_thread

logger = logging.getLogger(__name__)

__all__ = ["HardStop", "ListenerConsumer"]

IDLE_WAIT = 1.0  # seconds one read of an idle socket may block (shorter with a heartbeat)
BUSY_WAIT = 0.01  # ... while deliveries are in handlers or acks are due
STOP_POLL = 0.05  # ... while a stop waits for running handlers


_UNKNOWN = Provenance("", "")


class Delivery:
    """One message between its arrival and its settlement."""

    __slots__ = ("message", "slot", "generation", "provenance", "outcome", "decision", "seconds", "claimed")

    def __init__(self, message: Any, slot: Slot, generation: int) -> None:
        self.message = message  # the kombu message (delivery tag, body, headers)
        self.slot = slot
        self.generation = generation
        self.provenance = _UNKNOWN  # read by _prepare, before anything else
        self.outcome: Outcome | None = None
        self.decision: Decision | None = None  # set before the handlers when they must not run
        self.seconds = 0.0  # time spent in handlers
        self.claimed = False  # settled by its worker or by the watchdog, never both


class ListenerConsumer(ConsumerMixin):
    """Consumes the listener's queue; see the module docstring for what it adds to kombu."""

    def __init__(self, connection: Any, *, dispatcher: Dispatcher, topology: Topology, main_queue: Any,
                 policy: RetryPolicy, prefetch: int, concurrency: int, grace_period: float, stats: Stats,
                 handler_timeout: float | None = None, policy_of: Callable[[str], RetryPolicy] | None = None,
                 park_unmatched: bool = False, backlog_warning: int | None = None,
                 backlog_interval: float = 30.0, ack_delay: float = 1.0, watch_interval: float = 0.2,
                 on_outcome: Callable[[Outcome], Any] | None = None,
                 describe_error: Callable[[BaseException], str] | None = None) -> None:
        self.connection = connection
        self.dispatcher = dispatcher
        self.topology = topology
        self.main_queue = main_queue
        self.policy = policy
        self.policy_of = policy_of
        self.park_unmatched = park_unmatched
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.inline = concurrency <= 1
        self.grace_period = grace_period
        self.handler_timeout = handler_timeout
        self.stats = stats
        self.backlog_warning = backlog_warning
        self.backlog_interval = backlog_interval
        self.ack_delay = ack_delay
        self.watch_interval = watch_interval
        self.on_outcome = on_outcome  # told every delivery's outcome (the test kit records them)
        self.describe_error = describe_error or (lambda exc: f"{type(exc).__name__}: {exc}")
        # Ack at least twice per prefetch window, so the broker never waits for us.
        self.ack_batch = max(1, min(500, prefetch // 2))
        self.stopping = False
        self.hard = False  # leave at once (second stop, grace over)
        self.unfinished = 0  # deliveries left unacked to the broker by the last stop
        self.loop_thread: threading.Thread | None = None
        self.pending_interrupt: type[BaseException] | None = None
        self._stop_at: float | None = None
        self._generation = 0
        self._window = AckWindow(batch=self.ack_batch)  # replaced by one per channel
        self._producer: Any = None  # a kombu Producer on a channel of its own, per connection
        self._confirms: Confirms | None = None  # every publish on the producer's channel
        self._channel: Any = None
        self._consumers: list = []
        self._socket: Socket | None = None  # inline on py-amqp: who may use the socket
        self._sock: Any = None  # the AMQP socket, when the transport has one
        self._raw: Any = None
        self._last_beat = 0.0
        self._sync_depth = 0  # >0 while the connection's thread waits for a broker reply
        self._delays_declared: set[int] = set()
        self._next_backlog_check = 0.0
        self._finished: SimpleQueue[Delivery] = SimpleQueue()
        self._deferred: deque[Delivery] = deque()  # to start once the loop has settled
        self._work: SimpleQueue[Delivery | None] = SimpleQueue()
        self._workers: list[Running] = []
        self._loop_running = Running(threading.current_thread())  # renewed by consume()
        self._workers_lock = threading.Lock()
        self._claims = threading.Lock()
        self._watchdog: Watchdog | None = None
        self._broker_errors = tuple(connection.connection_errors) + tuple(connection.channel_errors)

    # -- stopping ---------------------------------------------------------------------------

    @property
    def should_stop(self) -> bool:  # what ConsumerMixin asks
        return self.stopping

    @should_stop.setter
    def should_stop(self, value: bool) -> None:
        if value:
            self.request_stop()

    def request_stop(self, *, hard: bool = False) -> None:
        """Stop taking messages (thread-safe; from a signal handler too).  ``hard``, or a
        second request: leave at once."""
        if self.stopping and not hard:
            hard = True
        if not self.stopping:
            self.stopping = True
            self._stop_at = time.monotonic() + self.grace_period
        if hard:
            self.hard = True

    @property
    def channel(self) -> Any:
        """The channel consuming now (None before the first connection)."""
        return self._channel

    def grace_over(self, now: float) -> bool:
        return self.hard or (self._stop_at is not None and now > self._stop_at)

    def take_interrupt(self) -> type[BaseException] | None:
        """The exception a SIGALRM should raise on the connection's thread now, if any (only
        while a handler runs there)."""
        exc, self.pending_interrupt = self.pending_interrupt, None
        if exc is None or self._loop_running.handler is None:
            return None
        return exc

    def in_loop_handler(self) -> bool:
        return self._loop_running.handler is not None

    # -- kombu hooks --------------------------------------------------------------------------

    def get_consumers(self, Consumer: Any, channel: Any) -> list:
        """Prepare everything a delivery needs, then consume.

        Done here, before ``basic_consume``, because any synchronous call on the connection
        (a declare, opening a channel) dispatches deliveries that arrive meanwhile."""
        connection = channel.connection.client
        self._generation += 1
        self._window.forget()  # the channel is gone: the broker has them back
        driver = getattr(connection.transport, "driver_type", "")
        self._deferred.clear()
        self._window = AckWindow(batch=self.ack_batch, max_delay=self.ack_delay,
                                 each=driver not in ("amqp", "pyamqp"), on_ack=self._acked)
        for queue in self.topology.side_queues(self.policy.delays()):
            queue(channel).declare()
        self._delays_declared = {int(d * 1000) for d in self.policy.delays()}
        self._producer = Producer(connection.channel(), exchange=self.topology.exchange)
        self._confirms = Confirms(self._producer)
        self._channel = channel
        self._raw = connection.connection
        self._socket = Socket() if self.inline and hasattr(self._raw, "send_heartbeat") else None
        self._next_backlog_check = 0.0
        # RabbitMQ applies basic.qos to the consumers created after it: the suspect queue's
        # consumer takes one delivery at a time, the main queue's ``prefetch``.
        self._sync_depth += 1  # declares, qos and consume wait for replies (the loop's socket is not set yet)
        try:
            suspect = Consumer(queues=[self.topology.suspect_queue()], on_message=self._on_message,
                               prefetch_count=1, no_ack=False)
            suspect.consume()
            main = Consumer(queues=[self.main_queue], on_message=self._on_message, prefetch_count=self.prefetch,
                            no_ack=False)
        finally:
            self._sync_depth -= 1
        self._consumers = [suspect, main]
        return self._consumers

    def on_consume_ready(self, connection: Any, channel: Any, consumers: list, **kwargs: Any) -> None:
        self.stats.connected()  # the queue and its bindings exist again: say so only now
        logger.info("consuming %s (prefetch %d, concurrency %d)", self.topology.queue_name, self.prefetch,
                    self.concurrency)

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        self.stats.connected_now = False
        logger.warning("broker connection failed (%s); retrying in %.1f s", self.describe_error(exc), interval)

    def on_decode_error(self, message: Any, exc: Exception) -> None:  # pragma: no cover - we never decode
        logger.error("undecodable message: %s", exc)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        """Consume until stopped, reconnecting after broker errors (kombu's loop, with the
        errors said in full: a classic queue whose node is down names the node)."""
        self._start_workers()
        self._watchdog = Watchdog(self, interval=self.watch_interval, socket=None,
                                  alarm=alarm_main_thread).start()
        try:
            while not self.stopping:
                try:
                    if self.restart_limit.can_consume(_tokens):
                        for _ in self.consume(limit=None, **kwargs):
                            pass
                    else:
                        time.sleep(self.restart_limit.expected_time(_tokens))
                except self._broker_errors as exc:
                    self.stats.connected_now = False
                    self._lost(exc)
        finally:
            self._watchdog.close()
            self._stop_workers()

    def _lost(self, exc: BaseException) -> None:
        text = str(exc)
        if "home node" in text:
            logger.error("the broker cannot serve the queue: %s (a classic queue lives on one node and is "
                         "unusable while that node is down; queue_type='quorum' replicates it)", text)
        else:
            logger.warning("broker connection lost (%s: %s); reconnecting", type(exc).__name__, text)
        dropped = self._window.forget()
        if dropped:
            logger.info("%d unacked delivery(ies) go back to the queue with the lost channel", dropped)

    def consume(self, limit: int | None = None, timeout: float | None = None, safety_interval: float = IDLE_WAIT,
                **kwargs: Any) -> Iterator[None]:
        """kombu's contract: ``limit`` events at most, ``socket.timeout`` after ``timeout``
        idle seconds, ``on_iteration`` before each read."""
        self.loop_thread = threading.current_thread()
        if self._loop_running.thread is not self.loop_thread:
            self._loop_running = Running(self.loop_thread)
        with self.consumer_context(**kwargs) as (conn, channel, consumers):
            beat = getattr(conn.connection, "heartbeat", 0) or 0
            # py-amqp restarts its wait on every frame, the broker's heartbeats included: an
            # idle wait must be shorter than the heartbeat period to ever time out.
            idle = min(safety_interval, beat / 4) if beat else safety_interval
            self._sock = getattr(getattr(conn.connection, "transport", None), "sock", None)
            if self._watchdog is not None:
                self._watchdog.watch_socket(self._socket)
            events, idle_for, set_to, next_beat = 0, 0.0, None, 0.0
            try:
                while not self.stopping and (limit is None or events < limit):
                    self.on_iteration()
                    self._settle()
                    if self._deferred:
                        self._start_deferred()
                        self._settle()
                    wait = BUSY_WAIT if len(self._window) else idle
                    if self._sock is not None and wait != set_to:
                        # py-amqp sets and restores the socket's timeout around every frame
                        # unless it already has the one asked for: set it once per change
                        # (15-20 % of the client's CPU per message).
                        self._sock.settimeout(wait)
                        set_to = wait
                    try:
                        conn.drain_events(timeout=wait)
                        got = True
                    except socket.timeout:
                        self._window.flush(force=True)
                        idle_for += wait
                        if timeout and idle_for >= timeout:
                            raise
                        got = False
                    except OSError:
                        if not self.stopping:
                            raise
                        got = False
                    now = time.monotonic()
                    if now >= next_beat:
                        conn.heartbeat_check()
                        next_beat = now + 1.0
                    if now >= self._next_backlog_check:
                        with self._blocking():
                            self._check_backlog()
                        self._next_backlog_check = time.monotonic() + self.backlog_interval
                    if got:
                        events, idle_for = events + 1, 0.0
                        yield
            except HardStop:  # wherever a handler ran: a read, a confirm, a declare dispatches deliveries
                self.request_stop(hard=True)
            finally:
                self._restore_blocking()
            if self.stopping:
                self._stop(conn, consumers)
                self.stats.connected_now = False

    @contextmanager
    def _blocking(self) -> Iterator[None]:
        """Synchronous broker calls (declares, confirmed publishes) wait without a timeout.
        While one waits, the watchdog must not read from the socket (it would take the
        reply), even if a delivery dispatched meanwhile runs a handler."""
        self._sync_depth += 1
        sock = self._sock
        previous = sock.gettimeout() if sock is not None else None
        if sock is not None:
            sock.settimeout(None)
        try:
            yield
        finally:
            self._sync_depth -= 1
            if sock is not None:
                sock.settimeout(previous)

    def _restore_blocking(self) -> None:
        try:
            if self._sock is not None:
                self._sock.settimeout(None)
        except OSError:  # the socket is gone already
            pass

    def _check_backlog(self) -> None:
        """Read the queue's backlog from the broker; warn before Pulse's guardian acts."""
        ready = self._channel.queue_declare(self.topology.queue_name, passive=True).message_count
        self.stats.backlog = ready
        if self.backlog_warning and ready > self.backlog_warning:
            logger.warning("queue %s holds %d messages (warning threshold %d): the Pulse guardian deletes "
                           "queues that keep growing", self.topology.queue_name, ready, self.backlog_warning)

    # -- one delivery -------------------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        window = self._window
        slot = window.add(message)
        stats = self.stats
        stats.received += 1
        stats.last_delivery = time.time()
        if self.stopping:  # arrived during a synchronous call of the stop: never started
            window.give_back(slot)
            return
        delivery = Delivery(message, slot, self._generation)
        if not self._prepare(delivery):
            self._finished.put(delivery)  # decided without the handlers: carried out by the loop
            return
        if self._sync_depth or message.delivery_info.get("routing_key") == SUSPECT:
            # Never run a handler inside a broker call of ours (a copy published but its
            # original not yet acked, say), and a suspect (it may kill the process) only once
            # every copy and ack before it is done: the loop starts these after settling.
            self._deferred.append(delivery)
            return
        self._start(delivery)

    def _start(self, delivery: Delivery) -> None:
        if not self.inline:
            self._work.put(delivery)
            return
        self._handle(delivery, self._loop_running)
        if delivery.outcome is not None and delivery.outcome.ok:  # the common case, settled here
            self.stats.observe(delivery.seconds)
            self._window.done(delivery.slot)
        else:
            self._finished.put(delivery)  # retries and parking publish: not inside a callback

    def _start_deferred(self) -> None:
        deferred = self._deferred
        while deferred and not self.stopping:
            delivery = deferred.popleft()
            if delivery.generation == self._generation:
                self._start(delivery)

    def _prepare(self, delivery: Delivery) -> bool:
        """Read where the delivery comes from; False when it must not run (unreadable headers,
        or a redelivery that counts as an attempt first)."""
        message = delivery.message
        info = message.delivery_info
        try:
            delivery.provenance = self.dispatcher.origin(info.get("exchange", ""), info.get("routing_key", ""),
                                                         message.headers, redelivered=bool(info.get("redelivered")))
        except HeaderError as exc:
            delivery.decision = ParkNow(str(exc))
            return False
        if info.get("redelivered"):  # its process may have died on it: count it, try it alone
            delivery.decision = redelivered(delivery.provenance.attempt, self.policy,
                                            delivery_count=codec.delivery_count(message.headers))
            return False
        return True

    def _handle(self, delivery: Delivery, running: Running) -> None:
        """Run the handlers of one delivery (on a worker thread, or inline)."""
        message = delivery.message
        provenance = delivery.provenance
        started = time.perf_counter()
        running.begin(delivery)
        try:
            delivery.outcome = self.dispatcher.run(provenance, message.body, message.headers,
                                                   invoke=self._invoker(running))
        except HandlerTimeout:  # landed between two handlers: the ones left count as timed out
            delivery.outcome = self._timed_out(delivery, running)
        except Exception as exc:  # a delivery nothing foresaw must not stop the loop: park it
            logger.exception("cannot dispatch %s %s", provenance.exchange, provenance.routing_key)
            delivery.outcome = Outcome(provenance, unhandleable=f"cannot dispatch: {error_text(exc)}")
        finally:
            running.end()
        delivery.seconds = time.perf_counter() - started
        if self.on_outcome is not None:
            self.on_outcome(delivery.outcome)

    def _invoker(self, running: Running) -> Callable[[Handler, Message], Any]:
        """Calls one handler under its time limit, with the socket handed to the watchdog
        while it runs on the connection's thread."""
        call = self.dispatcher.invoke
        sock = self._socket if running is self._loop_running else None
        default = self.handler_timeout

        def invoke(handler: Handler, message: Message) -> Any:
            limit = handler.timeout if handler.timeout_set else default
            running.enter(handler, limit)
            if sock is not None:
                sock.release_for_handler()
            try:
                return call(handler, message)
            except HandlerTimeout:
                raise HandlerTimeout(limit or 0.0) from None  # with the real limit in its text
            finally:
                if sock is not None:
                    sock.reacquire()
                running.leave()

        return invoke

    def _timed_out(self, delivery: Delivery, running: Running) -> Outcome:
        """The outcome of a delivery whose handler timed out outside the handlers' own
        bookkeeping: every handler that did not finish failed."""
        provenance = delivery.provenance
        outcome = Outcome(provenance)
        matched = self.dispatcher.match(provenance.exchange, provenance.routing_key, provenance.cc)
        only = provenance.handlers
        limit = running.limit or self.handler_timeout or 0.0
        outcome.failed = []
        for handler in matched:
            if (only is not None and handler.name not in only) or handler.name in running.finished_handlers:
                continue
            text = f"timed out after {limit:g} s"
            record = FailureRecord(handler.name, "HandlerTimeout", text, "", time.time())
            outcome.failed.append(HandlerFailure(handler.name, text, record))
        return outcome

    # -- settling -----------------------------------------------------------------------------

    def _acked(self, count: int) -> None:
        self.stats.acked += count
        self.stats.last_ack = time.time()

    def _settle(self) -> None:
        """Carry out the decision of every finished delivery, then ack what is due.

        The copies of one pass (retries, parked ones) are published back to back and their
        confirms awaited once (:mod:`tclisten.confirms`); only then are their originals
        settled, and acked at once, not batched: were the process to die first, the broker
        would deliver the original again and the copy would run too."""
        finished = self._finished
        copied: list[Delivery] = []
        while not finished.empty():
            delivery = finished.get()
            if delivery.generation != self._generation:
                continue  # its channel is gone: the broker delivers it again
            if delivery.outcome is not None:
                self.stats.observe(delivery.seconds)
            try:
                with self._blocking():
                    if self._carry_out(delivery):
                        copied.append(delivery)
                        continue
            except self._broker_errors:
                raise  # the connection is gone: reconnect; the broker delivers it again
            except Exception:  # the copy could not be made: give the original back
                logger.exception("could not retry or park %s; returning it to the queue",
                                 delivery.message.delivery_info.get("routing_key"))
                self._window.give_back(delivery.slot)
                continue
            self._window.done(delivery.slot)
        if not copied:
            self._window.flush()
            return
        assert self._confirms is not None
        with self._blocking():
            refused = self._confirms.wait()  # a broker error: reconnect; the broker has the originals
        for delivery in copied:
            if delivery in refused:
                logger.error("the broker refused the copy of %s; returning it to the queue",
                             delivery.message.delivery_info.get("routing_key"))
                self._window.give_back(delivery.slot)
            else:
                self._window.done(delivery.slot)
        self._window.flush(force=True)
        # A synchronous call on the consuming channel returns once the broker has processed
        # the acks sent before it on that channel: a crash right after cannot lose them (a
        # dying process's last frames may be dropped with its connection).
        with self._blocking():
            self._channel.queue_declare(self.topology.suspect_name, passive=True)

    def _carry_out(self, delivery: Delivery) -> bool:
        """Carry out the delivery's decision; True when a copy was published."""
        decision = delivery.decision
        outcome = delivery.outcome
        if decision is None and outcome is not None:
            decision = decide(outcome.facts(), self.policy, policy_of=self.policy_of,
                              park_unmatched=self.park_unmatched)
        if decision is None or isinstance(decision, Ack):
            if outcome is not None and outcome.unmatched:
                self.stats.count("unmatched")
                logger.warning("acked a message no binding explains (a binding the code no longer declares?): "
                               "%s", outcome.unmatched)
            return False
        records = tuple(f.record for f in (outcome.failed or ())) if outcome is not None else ()
        provenance = delivery.provenance if delivery.provenance is not _UNKNOWN else self._provenance_of(
            delivery.message)
        if isinstance(decision, Quarantine):
            self._republish(delivery, SUSPECT, provenance.next(attempt=decision.attempt, reason=decision.reason,
                                                               redelivered=True))
            self.stats.count("redelivered")
            return True
        if isinstance(decision, RetryLater):
            self._republish(delivery, self._retry_key(decision.delay), provenance.next(
                attempt=decision.attempt, handlers=decision.handlers or provenance.handlers,
                reason=decision.reason, failures=records,
                redelivered=provenance.redelivered or bool(delivery.message.delivery_info.get("redelivered"))))
            self.stats.count("retried")
            return True
        self._republish(delivery, PARKED, provenance.next(
            handlers=decision.handlers or provenance.handlers, reason=decision.reason, failures=records,
            parked_at=int(time.time())))
        self.stats.count("parked")
        logger.warning("parked %s %s (attempt %d): %s", provenance.exchange, provenance.routing_key,
                       provenance.attempt, decision.reason.splitlines()[0] if decision.reason else "")
        return True

    @staticmethod
    def _provenance_of(message: Any) -> Provenance:
        """Where an unreadable copy came from, as far as the delivery itself tells."""
        info = message.delivery_info
        return Provenance(info.get("exchange", ""), info.get("routing_key", ""), codec.cc_keys(message.headers))

    def _retry_key(self, delay: float) -> str:
        if delay <= 0 or self._window.each:  # virtual transports have no TTL: retry at once
            return DUE
        ms = int(delay * 1000)
        if ms not in self._delays_declared:  # a delay a handler asked for (Retry(delay=...))
            self.topology.delay_queue(ms)(self._producer.channel).declare()
            self._delays_declared.add(ms)
        return retry_key(delay)

    def _republish(self, delivery: Delivery, routing_key: str, provenance: Provenance) -> None:
        """Publish the delivery's copy; its confirm is awaited by :meth:`_settle`."""
        message = delivery.message
        assert self._confirms is not None
        self._confirms.publish(delivery, message.body, routing_key=routing_key,
                               headers=codec.encode(message.headers, provenance),
                               content_type=message.content_type or "application/json",
                               content_encoding=message.content_encoding or "utf-8")

    # -- the watchdog's calls ----------------------------------------------------------------

    def running(self) -> list[Running]:
        with self._workers_lock:
            return [*self._workers, self._loop_running]

    def beat(self) -> None:
        """While a handler runs on the connection's thread (the watchdog holds the socket):
        return prefetched deliveries once a stop was asked for, send due acks and heartbeats."""
        if self.stopping and self._consumers and not self._sync_depth:
            with self._blocking():
                self._cancel_consumers()
        self._window.flush()
        now = time.monotonic()
        beat = getattr(self._raw, "heartbeat", 0) or 0
        if beat and now - self._last_beat >= max(0.5, beat / 4):
            self._raw.send_heartbeat()
            self._last_beat = now

    def abandon(self, running: Running) -> None:
        """A worker thread ignored its interruption: settle its delivery as timed out and put
        a new worker in its place."""
        delivery = running.delivery
        if delivery is not None and self._claim(delivery):
            delivery.outcome = self._timed_out(delivery, running)
            self._finished.put(delivery)
        with self._workers_lock:
            if running in self._workers:
                self._workers.remove(running)
        self._start_worker(len(self._workers))

    def _claim(self, delivery: Delivery) -> bool:
        with self._claims:
            if delivery.claimed:
                return False
            delivery.claimed = True
            return True

    # -- workers and stopping ---------------------------------------------------------------

    def _start_workers(self) -> None:
        if not self.inline:
            for index in range(self.concurrency):
                self._start_worker(index)

    def _start_worker(self, index: int) -> None:
        thread = threading.Thread(name=f"tclisten-worker-{index}", daemon=True)
        running = Running(thread)
        thread.run = lambda: self._work_loop(running)  # type: ignore[method-assign]
        with self._workers_lock:
            self._workers.append(running)
        thread.start()

    def _work_loop(self, running: Running) -> None:
        work = self._work
        while not running.abandoned:
            try:
                delivery = work.get()
                if delivery is None:
                    return
                if delivery.generation != self._generation:
                    continue  # delivered on a connection since lost: the broker delivers it again
                self._handle(delivery, running)
                if not running.abandoned and self._claim(delivery):
                    self._finished.put(delivery)
            except HandlerTimeout:  # an interruption that landed after its handler returned
                continue

    def _stop_workers(self) -> None:
        with self._workers_lock:
            workers, self._workers = self._workers, []
        for _ in workers:
            self._work.put(None)

    def _cancel_consumers(self) -> None:
        """Stop the broker's deliveries; those it sent meanwhile arrive before the
        cancel-ok and are given back at once (``_on_message`` while stopping)."""
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            try:
                consumer.cancel()
            except Exception:  # the connection may already be gone
                logger.debug("cancel failed", exc_info=True)

    def _return_unstarted(self) -> None:
        """Give the broker back the deliveries no handler has started, at once (a later
        multiple ack never covers them: the window acks only settled deliveries)."""
        returned = 0
        while self._deferred:
            self._window.give_back(self._deferred.popleft().slot)
            returned += 1
        while True:
            try:
                delivery = self._work.get_nowait()  # a worker may take one meanwhile: fine
            except Empty:
                break
            if delivery is None or delivery.generation != self._generation:
                continue
            if self._claim(delivery):
                self._window.give_back(delivery.slot)
                returned += 1
        if returned:
            logger.info("returned %d unstarted message(s) to the queue", returned)

    def _stop(self, conn: Any, consumers: list) -> None:
        """Stop taking messages, let running handlers finish within the grace period, ack
        what finished; what is still unfinished goes back to the queue with the channel.
        After a hard stop only the acks of what finished are sent (no reads: a handler may
        have been interrupted in the middle of a broker call)."""
        if self.hard:
            try:
                self._window.flush(force=True)
            except Exception:  # the connection may be gone: the broker redelivers, nothing is lost
                logger.debug("acks at a hard stop failed", exc_info=True)
            self.unfinished = self._window.unsettled
            logger.warning("stopped at once with %d unfinished message(s); the broker will deliver them "
                           "again", self.unfinished)
            return
        self._cancel_consumers()
        self._return_unstarted()
        while self._window.unsettled and not self.grace_over(time.monotonic()):
            self._settle()
            if not self._window.unsettled:
                break
            try:
                conn.drain_events(timeout=STOP_POLL)
            except socket.timeout:
                pass
        self._settle()
        self._window.flush(force=True)
        self.unfinished = self._window.unsettled
        if self.unfinished:
            logger.warning("stopping with %d unfinished message(s); the broker will deliver them again",
                           self.unfinished)
