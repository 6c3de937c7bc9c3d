"""``tclisten run TARGET``: overrides, logging, the run itself, the stop summary, the exit status.

Logging is on by default: INFO as text on stderr, or what ``--log-level``/``--log-format``,
``TCLISTEN_LOG_LEVEL``/``TCLISTEN_LOG_FORMAT`` or the YAML file's ``logging`` section say
(in that order).  With ``json`` every line on stderr is one JSON object, the stop summary and
a fatal error included.  The exit status is the summary's: 0, or 75 when the stop left
deliveries to the broker (they will be delivered again).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import logging
import os
import sys
from typing import Any, Mapping

from .. import logs
from ..app import EXIT_UNFINISHED, StopSummary
from ..redact import scrub_url
from .overrides import collect, listener_values
from .targets import UsageError, load_target

logger = logging.getLogger("tclisten.cli")

__all__ = ["cmd_run", "configure_logging", "emit"]


def configure_logging(level: str, fmt: str | None) -> None:
    """Log to stderr at ``level`` in ``fmt`` (text or json; None: as before), replacing what
    was set before."""
    logs.configure(level, fmt, force=True)
    # Listener.run() calls logs.configure() again, which lifts a root level of WARNING to
    # INFO: the level set on the handler itself keeps an asked-for WARNING.
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_tclisten_handler", False):
            handler.setLevel(level.upper())


def emit(text: str, fmt: str | None, level: int = logging.INFO, **context: Any) -> None:
    """One line on stderr whatever the log level: ``tclisten: text``, or a JSON object when
    the log format is json (so that every line stays one object)."""
    if fmt == "json":
        record = logging.LogRecord("tclisten.cli", level, __file__, 0, text, None, None)
        record.tclisten = context
        print(logs.JsonFormatter().format(record), file=sys.stderr, flush=True)
    else:
        print(f"tclisten: {text}", file=sys.stderr, flush=True)


def summary_of(app: Any) -> StopSummary:
    """The summary of a run that ended by ``SystemExit`` (a signalled stop left work unfinished)."""
    s = app.stats
    return StopSummary(received=s.received, acked=s.acked, retried=s.retried, parked=s.parked,
                       unmatched=s.unmatched, unfinished=s.unfinished)


def _settings(app: Any) -> str:
    timeout = "none" if app.handler_timeout is None else f"{app.handler_timeout:g} s"
    health = "" if app.health_port is None else f", health on {app.health_host}:{app.health_port or 'any free port'}"
    where = scrub_url(app.address.urls) if app.address else "no broker"
    return (f"listener {app.name}: prefetch {app.prefetch}, concurrency {app.concurrency}, grace_period "
            f"{app.grace_period:g} s, handler_timeout {timeout}, queue_type {app.queue_type}{health}; broker {where}")


def cmd_run(args: argparse.Namespace) -> int:
    values = collect(args, os.environ)
    level, fmt = values.get("log_level"), values.get("log_format")
    configure_logging(level or "INFO", fmt or "text")
    args.log_format_active = fmt or "text"
    app, config = load_target(args.target, overrides=listener_values(values))
    if config is not None and (config.log_level or config.log_format):  # the file's, where the run is silent
        level, fmt = level or config.log_level, fmt or config.log_format
        configure_logging(level or "INFO", fmt or "text")
        args.log_format_active = fmt or "text"
    workers = values.get("workers") or (config.workers if config is not None else None) or 1
    if workers > 1:
        return _run_workers(args, values, workers)
    logger.info("%s", _settings(app))
    try:
        summary = app.run(wait_for_broker=values.get("wait_for_broker"))
    except SystemExit as exc:  # a signal stopped it with work left to the broker
        if exc.code != EXIT_UNFINISHED:
            raise
        summary = summary_of(app)
    emit(f"exit status {summary.exit_status}: listener {app.name} stopped: {summary}", args.log_format_active,
         logging.INFO if summary.clean else logging.WARNING,
         **dataclasses.asdict(summary), exit_status=summary.exit_status)
    return summary.exit_status


def _run_workers(args: argparse.Namespace, values: Mapping[str, Any], workers: int) -> int:
    """Several processes on the listener's queue, through ``tclisten.workers`` when installed."""
    if importlib.util.find_spec("tclisten.workers") is None:
        raise UsageError(f"workers {workers}: this installation cannot start worker processes (tclisten.workers "
                         f"is missing); start {workers} copies of `tclisten run` instead: they share the queue")
    workers_module = importlib.import_module("tclisten.workers")
    # Picklable (workers are spawned, not forked): loads the target again in each worker.
    build = workers_module.TargetBuilder(args.target, listener_values(values))
    return int(workers_module.run_workers(build, workers, wait_for_broker=values.get("wait_for_broker")))
