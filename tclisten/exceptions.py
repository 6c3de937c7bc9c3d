"""Every error tclisten raises, under one base.

::

    TclistenError
     ├── TaskclusterFailure                  (the 2015 client's base, kept)
     │    ├── TaskclusterRestFailure         a REST call answered with an error
     │    │    └── TaskclusterAuthFailure    ... with 401 or 403
     │    ├── TaskclusterConnectionError     no answer after every retry
     │    ├── TaskclusterTopicExchangeFailure (+ ValueError) bad routing-key arguments
     │    │    └── BindingError              a handler declaration that cannot bind
     │    └── CallError (+ TypeError)        a REST method called the wrong way
     ├── ReferenceFormatError (+ ValueError) a malformed API or exchanges reference
     ├── ConfigError (+ ValueError)          a bad option or configuration file
     ├── CredentialsError (+ ValueError)     unusable Taskcluster credentials
     └── BrokerError                         the broker refused what the listener needs

    Park, Retry                             raised by a handler to park its message at once
                                            or retry it after a given delay (control flow,
                                            not errors: they subclass Exception only)
     └── InvalidBody                        a body that fails its exchange's schema
                                            (validate=True): parked, the handler not called

Context travels in attributes (``status_code``, ``method``, ``url``, ...), never only in
the text, and every exception pickles with its attributes.  No message ever contains an
access token or a password.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable


class TclistenError(Exception):
    """Base of every tclisten error; keyword arguments become attributes.

    >>> err = TclistenError("boom", url="https://tc.example.com")
    >>> err.url
    'https://tc.example.com'
    """

    def __init__(self, message: str = "", **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.__dict__.update(context)

    def __reduce__(self):  # pickles with the context attributes
        return (self.__class__, (self.message,), dict(self.__dict__))

    def __str__(self) -> str:
        return self.message


class TaskclusterFailure(TclistenError):
    """Base of the errors the 2015 Taskcluster client defined (name kept)."""


class TaskclusterRestFailure(TaskclusterFailure):
    """A REST call got an error answer.

    Attributes: ``status_code``, ``message`` (the server's), ``method``, ``url``,
    ``request_id`` (``x-for-request-id`` or ``x-request-id`` of the answer), ``body``
    (the decoded error body, or None).
    """

    status_code: int | None = None
    method: str | None = None
    url: str | None = None
    request_id: str | None = None
    body: Any = None

    def __str__(self) -> str:
        where = " ".join(str(part) for part in (self.status_code, (self.method or "").upper(), self.url) if part)
        if self.request_id:
            where += f", request id {self.request_id}"
        return f"{self.message} ({where})" if where else self.message


class TaskclusterAuthFailure(TaskclusterRestFailure):
    """The server refused the credentials or the scopes (401 or 403)."""


class TaskclusterConnectionError(TaskclusterFailure):
    """No usable answer after every retry (connection errors, timeouts or 5xx)."""


class TaskclusterTopicExchangeFailure(TaskclusterFailure, ValueError):
    """Routing-key arguments that do not fit the exchange's routing key."""


class BindingError(TaskclusterTopicExchangeFailure):
    """A handler declaration that cannot become an AMQP binding."""


class CallError(TaskclusterFailure, TypeError):
    """A REST method called with arguments that do not fit its signature."""


class ReferenceFormatError(TclistenError, ValueError):
    """A malformed API or exchanges reference; names the file and the entry."""


class ConfigError(TclistenError, ValueError):
    """A misspelled option, a bad value, or a bad configuration file."""


class CredentialsError(TclistenError, ValueError):
    """Taskcluster credentials that cannot be used or issued."""


class BrokerError(TclistenError):
    """The broker refused what the listener needs (a missing exchange, a queue
    declared elsewhere with other arguments, permissions)."""


class Park(Exception):
    """Raised by a handler: park this message now, with ``reason``, without retrying.

    >>> raise Park("task definition has no payload")      # doctest: +SKIP
    """

    def __init__(self, reason: str = "parked by the handler") -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidBody(Park):
    """A body that does not match its exchange's JSON schema (``validate=True``): the message
    is parked with the schema error and the handler is not called."""


class Retry(Exception):
    """Raised by a handler: try this message again after ``delay`` seconds (None: the
    listener's backoff), counting an attempt; parked once ``max_attempts`` is reached.

    >>> raise Retry(delay=60, reason="the artifact is not uploaded yet")   # doctest: +SKIP
    """

    def __init__(self, delay: float | None = None, reason: str = "retry asked by the handler") -> None:
        if delay is not None and (not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0):
            raise ConfigError(f"Retry delay must be a number of seconds >= 0, not {delay!r}")
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


def did_you_mean(word: str, choices: Iterable[str], *, known: bool = False) -> str:
    """The hint of an error about a misspelled ``word``: ``"did you mean 'x'? "`` when one
    of ``choices`` is close, else ``""`` (or, with ``known=True``, ``"known: a, b, c. "``).

    >>> did_you_mean("taskFailled", ["taskFailed", "taskCompleted"])
    "did you mean 'taskFailed'? "
    >>> did_you_mean("zzz", ["a", "b"], known=True)
    'known: a, b. '
    """
    options = [str(choice) for choice in choices]
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}? "
    return f"known: {', '.join(options)}. " if known and options else ""


class HandlerTimeout(BaseException):
    """Raised inside a handler that reached its time limit (``handler_timeout``).

    A BaseException, as ``KeyboardInterrupt`` is, so that a handler's own ``except Exception``
    does not swallow it: the delivery then counts as failed ("timed out after N s")."""

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(f"timed out after {seconds:g} s")
        self.seconds = seconds
