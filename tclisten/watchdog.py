"""The watchdog: a thread that looks after the loop while handlers run.

Handlers may run long, hang, or outlive a stop's grace period, and at ``concurrency`` 1 they
run on the connection's own thread, which then cannot look after anything else.  Every
``interval`` the watchdog:

- interrupts a handler that reached its time limit (:class:`~tclisten.exceptions.HandlerTimeout`):
  in the main thread with a real ``SIGALRM`` (it interrupts ``time.sleep`` and socket waits,
  as a timer signal does), in another thread with an asynchronous exception (what Dramatiq's
  TimeLimit does; it lands at the thread's next bytecode).  A worker thread still stuck
  ``ABANDON_AFTER`` seconds later is abandoned: its delivery counts as timed out and a new
  worker takes its place; the old thread's result, if it ever comes, is thrown away;
- stops a handler on the connection's thread once a stop's grace period is over, the way a
  second signal does (:class:`HardStop`);
- while a handler runs on the connection's thread, sends the AMQP heartbeats and the acks
  that are due, holding :attr:`Socket.lock` so the two threads never use the socket at once.

It is independent of the heartbeat: with ``heartbeat=0``, or on ``memory://``, it still
enforces time limits and the grace period.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import threading
import time
from typing import Any, Callable

from .exceptions import HandlerTimeout

logger = logging.getLogger(__name__)

__all__ = ["ABANDON_AFTER", "HardStop", "Running", "Socket", "Watchdog", "interrupt_thread"]

ABANDON_AFTER = 5.0  # seconds a worker thread gets to honour an interruption


class HardStop(BaseException):
    """Leaves the loop at once (a second signal, or a grace period run out): what is
    finished is acked, what is unfinished stays with the broker, so nothing is lost."""


def interrupt_thread(thread: threading.Thread, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` in ``thread`` at its next bytecode (CPython's asynchronous
    exceptions).  False when the thread is gone."""
    ident = thread.ident
    if ident is None or not thread.is_alive():
        return False
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
    return bool(done)


class Socket:
    """Who may use the connection's socket now.

    The connection's thread holds :attr:`lock` whenever it may touch the socket and lets go
    only while it runs a handler (:meth:`release_for_handler` / :meth:`reacquire`); another
    thread writes a frame only while it holds the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.in_handler = False

    def release_for_handler(self) -> None:
        self.in_handler = True
        self.lock.release()

    def reacquire(self) -> None:
        self.lock.acquire()
        self.in_handler = False


class Running:
    """What one thread is running now: which delivery, which handler, since when, and until
    when it may."""

    __slots__ = ("thread", "delivery", "handler", "started", "deadline", "interrupted", "abandoned",
                 "limit", "finished_handlers")

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.delivery: Any = None
        self.handler: Any = None
        self.started = 0.0
        self.deadline: float | None = None
        self.limit: float | None = None
        self.interrupted = False
        self.abandoned = False
        self.finished_handlers: list[str] = []

    def begin(self, delivery: Any) -> None:
        self.delivery = delivery
        self.finished_handlers = []

    def enter(self, handler: Any, limit: float | None) -> None:
        self.started = time.monotonic()
        self.limit = limit
        self.deadline = self.started + limit if limit else None
        self.interrupted = False
        self.handler = handler

    def leave(self) -> None:
        if self.handler is not None:
            self.finished_handlers.append(self.handler.name)
        self.handler = None
        self.deadline = None

    def end(self) -> None:
        self.delivery = None
        self.handler = None
        self.deadline = None


class Watchdog:
    """See the module docstring.  ``consumer`` provides ``running()`` (the Running records),
    ``grace_over()``, ``abandon(running)``, and ``beat()`` (heartbeat and due acks, called
    with the socket lock held)."""

    def __init__(self, consumer: Any, *, interval: float, socket: Socket | None,
                 alarm: Callable[[], bool]) -> None:
        self._consumer = consumer
        self._interval = interval
        self._socket = socket
        self._alarm = alarm  # interrupts the main thread with a real signal; False if it cannot
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tclisten-watchdog", daemon=True)

    def watch_socket(self, socket: Socket | None) -> None:
        """The socket owner of the connection now in use (a new one per connection)."""
        self._socket = socket

    def start(self) -> "Watchdog":
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()

    def _run(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                self._round(time.monotonic())
            except Exception:  # the watchdog must outlive whatever it looks at
                logger.exception("watchdog round failed")

    def _round(self, now: float) -> None:
        consumer = self._consumer
        for running in consumer.running():
            if running.handler is None:
                continue
            if running.thread is threading.main_thread() or running.thread is consumer.loop_thread:
                self._watch_loop_thread(running, now)
            else:
                self._watch_worker(running, now)
        socket = self._socket
        if socket is not None and socket.in_handler and socket.lock.acquire(blocking=False):
            try:
                if socket.in_handler and not self._closed.is_set():
                    consumer.beat()
            finally:
                socket.lock.release()

    def _watch_loop_thread(self, running: Running, now: float) -> None:
        if self._consumer.grace_over(now) and not running.interrupted:
            logger.warning("grace period over while %s still runs: stopping at once", running.handler.name)
            running.interrupted = True
            self._interrupt_loop_thread(running, HardStop)
        elif running.deadline is not None and now >= running.deadline and not running.interrupted:
            logger.error("handler %s reached its time limit (%g s): interrupting it", running.handler.name,
                         running.limit)
            running.interrupted = True
            self._interrupt_loop_thread(running, HandlerTimeout)

    def _interrupt_loop_thread(self, running: Running, exc_type: type[BaseException]) -> None:
        self._consumer.pending_interrupt = exc_type
        if running.thread is threading.main_thread() and self._alarm():
            return
        if not interrupt_thread(running.thread, exc_type):
            logger.error("cannot interrupt %s on the connection's thread", running.handler.name)

    def _watch_worker(self, running: Running, now: float) -> None:
        if running.abandoned or running.deadline is None or now < running.deadline:
            return
        if not running.interrupted:
            logger.error("handler %s reached its time limit (%g s): interrupting it", running.handler.name,
                         running.limit)
            running.interrupted = True
            interrupt_thread(running.thread, HandlerTimeout)
        elif now >= running.deadline + ABANDON_AFTER:
            logger.error("handler %s ignores its interruption: abandoning its thread", running.handler.name)
            running.abandoned = True
            self._consumer.abandon(running)


def alarm_main_thread() -> bool:
    """Send the main thread a real SIGALRM (it interrupts blocking calls)."""
    try:
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGALRM)
        return True
    except (OSError, ValueError):
        return False
