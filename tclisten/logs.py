"""Logging for a running listener: on by default, as text or one JSON object per line.

A library import never configures logging.  ``Listener.run()``, ``tclisten.run()`` and
``tclisten run`` call :func:`configure` first, which adds a handler to the root logger only
when the program has configured none (INFO, so the start, the bindings, connects,
disconnects, the stop and every parked message show, and handlers' ``ctx.logger`` lines
too).  ``log_format="json"`` writes one object per line with the listener, handler,
exchange, routing key, taskId and attempt of the record when it concerns a message.

>>> import io, logging
>>> stream = io.StringIO()
>>> handler = logging.StreamHandler(stream)
>>> handler.setFormatter(JsonFormatter())
>>> log = logging.getLogger("tclisten.doc"); log.addHandler(handler); log.propagate = False
>>> log.warning("parked %s", "x", extra={"tclisten": {"handler": "h", "routing_key": "primary.T.0"}})
>>> sorted(json.loads(stream.getvalue()))
['handler', 'level', 'logger', 'message', 'routing_key', 'time']
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from .exceptions import ConfigError
from .options import LOG_FORMATS, LOG_LEVELS

__all__ = ["JsonFormatter", "TEXT_FORMAT", "configure"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_OURS = "_tclisten_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the message's context
    (``extra={"tclisten": {...}}``) and the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        context = getattr(record, "tclisten", None)
        if isinstance(context, dict):
            data.update({key: value for key, value in context.items() if value not in (None, "")})
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class _Stderr(logging.StreamHandler):
    """Logs to whatever ``sys.stderr`` is at the time (redirections and tests swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(level: str | None = None, fmt: str | None = None, *, force: bool = False) -> bool:
    """Send log records to stderr when the program has not configured logging (or always
    with ``force``, as the command line does).  Returns whether a handler was added or set."""
    if level is not None and level.upper() not in LOG_LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    if fmt is not None and fmt not in LOG_FORMATS:
        raise ConfigError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    root = logging.getLogger()
    ours = next((h for h in root.handlers if getattr(h, _OURS, False)), None)
    if ours is None and root.handlers and not force:
        return False  # the program's own logging: leave it alone
    added = ours is None
    if ours is None:
        ours = _Stderr()
        setattr(ours, _OURS, True)
        root.addHandler(ours)
    if fmt is not None or ours.formatter is None:
        ours.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    if level is not None:
        root.setLevel(level.upper())
    elif added and root.level in (logging.WARNING, logging.NOTSET):
        root.setLevel(logging.INFO)  # the first time only: a level set since is the program's
    return True
