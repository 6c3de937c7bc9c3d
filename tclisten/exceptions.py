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

Context travels in attributes (``status_code``, ``method``, ``url``, ...), never only in
the text, and every exception pickles with its attributes.  No message ever contains an
access token or a password.
"""

from __future__ import annotations

from typing import Any


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
