"""Worker processes: ``tclisten run TARGET --workers N`` (or ``workers: N`` in YAML).

One listener runs on one connection's thread, so a CPU-bound handler uses one core at most.
N processes, each running the same listener, share its durable queue as competing consumers:
the broker hands each message to one of them.  This module is the supervisor:

- starts N processes with the ``spawn`` start method (a fork after kombu, sockets or threads
  exist is unsafe), each building its listener afresh with ``build()`` (which must therefore
  be picklable: :class:`TargetBuilder` is) and calling ``run()``;
- waits for the broker once, before starting them, as a single ``tclisten run`` does (a
  refused login or a broker still unreachable after ``wait_for_broker`` is the same error);
- restarts a worker that dies unexpectedly (killed, crashed, or exited while no stop was asked
  for) after a capped backoff (1, 2, 4 ... 30 s; back to 1 s once a worker ran for a minute),
  logging each death with its status; a worker exiting with 2 (the configuration is wrong)
  stops all of them: restarting cannot help;
- on SIGTERM/SIGINT forwards the signal to every worker (each stops taking messages and
  finishes its running handlers within its ``grace_period``), and forwards a second signal
  again, which is each worker's "stop at once".  Workers run in process groups of their own,
  so a Ctrl-C on the terminal reaches them once, through the supervisor, not twice; and they
  are told SIGTERM should the supervisor itself die (``PR_SET_PDEATHSIG``);
- returns 0 when every worker stopped cleanly, 75 (:data:`tclisten.app.EXIT_UNFINISHED`) when
  any left deliveries to the broker (a grace period ran out, a second signal, or a worker
  killed during the stop), 1 when a worker failed during the stop, 2 after a configuration error.

A fixed ``health_port`` P becomes P, P+1, ... P+N-1 (one per worker; 0 stays "any free port").

>>> TargetBuilder("examples/listener.yaml", {"prefetch": 50})
TargetBuilder('examples/listener.yaml', overrides=['prefetch'])
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .app import EXIT_UNFINISHED, Listener, wait_for
from .exceptions import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["EXIT_CONFIG", "TargetBuilder", "run_workers"]

EXIT_CONFIG = 2
EXIT_FAILURE = 1
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a worker that ran this long before dying restarts after BACKOFF_FIRST again
_PR_SET_PDEATHSIG = 1
#: A worker killed by a stop signal's default action died before it installed its handler
#: (before it took any message), so it left nothing unfinished.
_EARLY_DEATHS = frozenset({-signal.SIGTERM, -signal.SIGINT})


class TargetBuilder:
    """``build()`` for :func:`run_workers` from a ``tclisten run`` target: loads the target
    (YAML file, module or script) with the run's overrides and returns its listener.
    Picklable, so a spawned worker process can call it."""

    def __init__(self, target: str, overrides: Mapping[str, Any] | None = None) -> None:
        self.target = target
        self.overrides = dict(overrides or {})

    def __call__(self) -> Listener:
        from .cli.targets import load_target

        return load_target(self.target, overrides=self.overrides)[0]

    def __repr__(self) -> str:
        return f"TargetBuilder({self.target!r}, overrides={sorted(self.overrides)})"


# -- in the worker process ---------------------------------------------------------------------


class _EarlyStop(BaseException):
    """A stop signal before the listener consumes: nothing was received, nothing to finish."""


def _die_with_parent() -> None:
    """Be sent SIGTERM (a graceful stop) when the supervisor dies, however it dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        logger.debug("prctl(PR_SET_PDEATHSIG) unavailable", exc_info=True)


def _worker_main(build: Callable[[], Listener], index: int, wait_for_broker: float | None,
                 log_level: str | None, log_format: str | None, health_port: int | None) -> None:
    """One worker: build the listener, run it, exit with its status (0, 75, 1, 2)."""
    try:
        os.setpgid(0, 0)  # the terminal's Ctrl-C reaches the supervisor only; it forwards it
    except OSError:
        pass
    _die_with_parent()
    app: Listener | None = None

    def early(signum: int, frame: Any) -> None:
        # Until Listener.run() installs its own handlers (and again after it restored ours).
        if app is not None and getattr(app, "_consumer", None) is not None:
            app.stop()
            return
        raise _EarlyStop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, early)
    if os.getppid() == 1:  # the supervisor died before PR_SET_PDEATHSIG was set
        sys.exit(0)
    from . import logs

    logs.configure(log_level or "INFO", log_format or "text", force=True)
    _tag_log_lines(index, log_format)
    try:
        app = build()
        if health_port:
            app.health_port = health_port + index
        summary = app.run(wait_for_broker=wait_for_broker)
        status = summary.exit_status
        text = str(summary)
    except _EarlyStop:
        if app is None or not app.stats.received:
            sys.exit(0)
        status, text = _status_of(app)
    except SystemExit as exc:  # a signalled stop left work unfinished (Listener.run raises it)
        if exc.code != EXIT_UNFINISHED or app is None:
            raise
        status, text = _status_of(app)
    except ConfigError as exc:
        logger.error("worker %d: %s", index, exc)
        sys.exit(EXIT_CONFIG)
    except Exception as exc:  # noqa: BLE001 - one line, like the command; the supervisor decides
        logger.error("worker %d failed: %s: %s", index, type(exc).__name__, exc,
                     exc_info=logger.isEnabledFor(logging.DEBUG))
        sys.exit(EXIT_FAILURE)
    for sig in (signal.SIGTERM, signal.SIGINT):  # stopped: a late forwarded signal changes nothing
        signal.signal(sig, signal.SIG_IGN)
    logger.info("worker %d (pid %d) stopped with exit status %d: %s", index, os.getpid(), status, text,
                extra={"tclisten": {"worker": index, "exit_status": status}})
    sys.exit(status)


def _tag_log_lines(index: int, log_format: str | None) -> None:
    """Every line of the worker names it: ``[worker 1]`` in text, ``"worker": 1`` in JSON."""

    def tag(record: logging.LogRecord) -> bool:
        context = getattr(record, "tclisten", None)
        record.tclisten = {**context, "worker": index} if isinstance(context, dict) else {"worker": index}
        return True

    from .logs import TEXT_FORMAT

    for handler in logging.getLogger().handlers:
        if getattr(handler, "_tclisten_handler", False):
            handler.addFilter(tag)
            if log_format != "json":
                handler.setFormatter(logging.Formatter(TEXT_FORMAT.replace("%(name)s", f"%(name)s [worker {index}]")))


def _status_of(app: Listener) -> tuple[int, str]:
    s = app.stats
    from .app import StopSummary

    summary = StopSummary(received=s.received, acked=s.acked, retried=s.retried, parked=s.parked,
                          unmatched=s.unmatched, unfinished=s.unfinished)
    return summary.exit_status, str(summary)


# -- in the supervisor ---------------------------------------------------------------------------


@dataclass
class _Slot:
    """One worker position: its current process, and how soon it may be restarted."""

    index: int
    process: Any = None
    started: float = 0.0
    backoff: float = BACKOFF_FIRST
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class _Supervisor:
    def __init__(self, build: Callable[[], Listener], workers: int, wait_for_broker: float | None,
                 health_port: int | None) -> None:
        self.build = build
        self.wait_for_broker = wait_for_broker
        self.health_port = health_port
        self.context = multiprocessing.get_context("spawn")
        self.slots = [_Slot(i) for i in range(workers)]
        self.signals: list[int] = []
        self.config_error = False
        root = logging.getLogger()
        self.log_level = logging.getLevelName(root.getEffectiveLevel())
        from .logs import JsonFormatter

        ours = [h for h in root.handlers if getattr(h, "_tclisten_handler", False)]
        self.log_format = "json" if ours and isinstance(ours[0].formatter, JsonFormatter) else "text"

    # signals: forwarded at once, from the handler (it runs on the main thread between waits)
    def on_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)
        again = len(self.signals) > 1
        if again:
            logger.warning("signal %d again: forwarding it, every worker stops at once", signum)
        else:
            logger.info("signal %d: forwarding it to %d worker(s); they finish their running handlers", signum,
                        sum(1 for s in self.slots if self._alive(s)))
        for slot in self.slots:
            slot.restart_at = None
            if self._alive(slot):
                try:
                    os.kill(slot.process.pid, signum)
                except ProcessLookupError:
                    pass

    @property
    def stopping(self) -> bool:
        return bool(self.signals) or self.config_error

    @staticmethod
    def _alive(slot: _Slot) -> bool:
        return slot.process is not None and slot.process.exitcode is None

    def start(self, slot: _Slot) -> None:
        process = self.context.Process(
            target=_worker_main, name=f"tclisten-worker-{slot.index}",
            args=(self.build, slot.index, self.wait_for_broker, self.log_level, self.log_format,
                  self.health_port))
        process.start()
        slot.process, slot.started, slot.restart_at = process, time.monotonic(), None
        logger.info("worker %d started (pid %d)", slot.index, process.pid)

    def reaped(self, slot: _Slot) -> None:
        """``slot``'s process has ended: record it, and restart it unless stopping."""
        process = slot.process
        process.join()
        code = process.exitcode
        slot.exit_codes.append(code)
        if self.stopping:
            return
        ran = time.monotonic() - slot.started
        if code == EXIT_CONFIG:
            logger.error("worker %d (pid %d) exited with status 2 (the configuration is wrong): stopping all "
                         "workers", slot.index, process.pid)
            self.config_error = True
            for other in self.slots:
                other.restart_at = None
                if self._alive(other):
                    os.kill(other.process.pid, signal.SIGTERM)
            return
        if ran >= STABLE_AFTER:
            slot.backoff = BACKOFF_FIRST
        delay = slot.backoff
        slot.backoff = min(slot.backoff * 2, BACKOFF_MAX)
        slot.restart_at = time.monotonic() + delay
        logger.warning("worker %d (pid %d) %s after %.1f s; restarting it in %.0f s (its unacked messages go "
                       "back to the queue)", slot.index, process.pid, _describe(code), ran, delay,
                       extra={"tclisten": {"worker": slot.index, "exit_status": code}})

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self.slots:
                if self.stopping:
                    break
                self.start(slot)
            while True:
                running = {slot.process.sentinel: slot for slot in self.slots if self._alive(slot)}
                due = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
                if not running and not due:
                    break
                timeout = max(0.0, min(due) - time.monotonic()) if due else None
                ready = multiprocessing.connection.wait(list(running), timeout) if running else []
                if not running and timeout:
                    time.sleep(timeout)
                for sentinel in ready:
                    self.reaped(running[sentinel])
                now = time.monotonic()
                for slot in self.slots:
                    if slot.restart_at is not None and slot.restart_at <= now and not self.stopping:
                        self.start(slot)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            self._terminate_leftovers()
        return self.exit_status()

    def _terminate_leftovers(self) -> None:
        """Only after an error in the supervisor itself: stop what still runs, gracefully."""
        for slot in self.slots:
            if self._alive(slot):
                os.kill(slot.process.pid, signal.SIGTERM)
        for slot in self.slots:
            if slot.process is not None:
                slot.process.join()

    def exit_status(self) -> int:
        if self.config_error:
            return EXIT_CONFIG
        last = [0 if slot.exit_codes[-1] in _EARLY_DEATHS else slot.exit_codes[-1]
                for slot in self.slots if slot.exit_codes]
        statuses = ", ".join(f"worker {s.index} {_describe(s.exit_codes[-1])}" for s in self.slots if s.exit_codes)
        if any(code not in (0, EXIT_UNFINISHED) and code > 0 for code in last):
            status = EXIT_FAILURE
        elif any(code != 0 for code in last):
            status = EXIT_UNFINISHED  # a worker killed during the stop left its deliveries too
        else:
            status = 0
        logger.log(logging.INFO if status == 0 else logging.WARNING, "workers stopped, exit status %d: %s",
                   status, statuses or "none started", extra={"tclisten": {"exit_status": status}})
        return status


def run_workers(build: Callable[[], Listener], workers: int, *, wait_for_broker: float | None = None) -> int:
    """Run ``workers`` processes, each ``build().run(wait_for_broker=...)``, until SIGTERM or
    SIGINT; returns the exit status (0, 75, 1 or 2; see the module docstring).

    ``build`` is called once here first (errors in the target surface before any process
    starts, and the broker is waited for once), then once in every worker process, so it must
    be picklable: a module-level function, a :class:`TargetBuilder`, a ``functools.partial``.

    >>> run_workers(lambda: None, 0)
    Traceback (most recent call last):
    ...
    tclisten.exceptions.ConfigError: workers must be at least 1, not 0
    """
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be at least 1, not {workers!r}")
    try:
        pickle.dumps(build)
    except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing
        raise ConfigError(f"workers {workers}: {build!r} cannot be sent to a worker process ({exc}); pass a "
                          "module-level function or tclisten.workers.TargetBuilder(target)") from None
    app = build()
    address = app.address
    if address is None:
        app.connection()  # raises the ConfigError that says how to name a broker
        raise ConfigError(f"listener {app.name!r} has no broker")
    wait_for(address, heartbeat=app.heartbeat, limit=wait_for_broker)
    logger.info("listener %s: starting %d worker processes on queue %s", app.name, workers, app.queue_name)
    return _Supervisor(build, workers, wait_for_broker, app.health_port).run()
