"""What happens to a delivery once its handlers ran: ack, retry later, or park.

The whole policy is :func:`decide`, a pure function of the delivery's :class:`Outcome`-like
facts; the consumer carries the decision out (:mod:`tclisten.ackwindow` is the only code that
acks).  Read it in a minute:

1. every handler succeeded: **ack**;
2. the message cannot be handled at all (its body is not JSON, its ``x-tclisten-*`` headers
   are unreadable): **park** with that reason;
3. no current binding explains it (a binding left by an older version raced the change):
   **ack** and count it, or park it when the listener keeps stale bindings
   (``prune_bindings=False``);
4. a handler raised :class:`~tclisten.exceptions.Park`, or an error that retrying cannot heal
   (a REST 4xx but 408/429, ``ConfigError``, ``CallError``, ``BindingError``,
   ``CredentialsError``): **park** at once;
5. otherwise, when the attempt is below ``max_attempts``: **retry** the failed handlers after
   the backoff delay (or the delay a handler asked for with
   :class:`~tclisten.exceptions.Retry`); at ``max_attempts``: **park**.

``max_attempts`` and the delays are those of the failed handlers' own policies
(``@on(..., retry={...})``), else the listener's; with several failed handlers the strictest
limit and the longest delay win.

>>> RetryPolicy(max_attempts=4, delay=1.0, backoff=2.0).delays()
(1.0, 2.0, 4.0)
>>> decide(Facts(attempt=1), RetryPolicy())
Ack()
>>> decide(Facts(attempt=1, failures=(Failed("h", "boom"),)), RetryPolicy())
RetryLater(delay=2.0, attempt=2, handlers=('h',), reason='h: boom')
>>> decide(Facts(attempt=5, failures=(Failed("h", "boom"),)), RetryPolicy(max_attempts=5))
ParkNow(reason='failed 5 attempts; h: boom', handlers=('h',))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from .exceptions import (
    BindingError, CallError, ConfigError, CredentialsError, Park, Retry, TaskclusterRestFailure,
)

__all__ = ["Ack", "Facts", "Failed", "ParkNow", "Quarantine", "RetryLater", "RetryPolicy", "classify", "decide",
           "redelivered"]

RETRY_KEYS = ("max_attempts", "delay", "backoff", "max_delay")
# 408 Request Timeout and 429 Too Many Requests heal by themselves; other 4xx do not.
TRANSIENT_STATUSES = (408, 429)
PERMANENT_ERRORS = (ConfigError, CallError, BindingError, CredentialsError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how late a failed handler is tried again.

    ``max_attempts`` counts every handling, the first included (1 = never retry); the wait
    before attempt ``n + 1`` is ``min(delay * backoff ** (n - 1), max_delay)`` seconds.
    """

    max_attempts: int = 5
    delay: float = 2.0
    backoff: float = 3.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ConfigError(f"retry max_attempts must be an integer >= 1, not {self.max_attempts!r}")
        for name in ("delay", "backoff", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"retry {name} must be a number >= 0, not {value!r}")
        if self.backoff < 1:
            raise ConfigError(f"retry backoff must be >= 1, not {self.backoff!r}")

    @classmethod
    def coerce(cls, value: "RetryPolicy | Mapping[str, Any] | None",
               base: "RetryPolicy | None" = None) -> "RetryPolicy":
        """A policy from a RetryPolicy, a mapping of its fields (missing ones from
        ``base``, else the defaults) or None (``base``, else the defaults)."""
        if value is None:
            return base or cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - set(RETRY_KEYS)
            if unknown:
                raise ConfigError(f"unknown retry option(s) {sorted(unknown)}; expected {', '.join(RETRY_KEYS)}")
            fields = {key: getattr(base, key) for key in RETRY_KEYS} if base is not None else {}
            return cls(**{**fields, **value})
        raise ConfigError(f"retry must be a RetryPolicy or a mapping, not {type(value).__name__}")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 = the first retry)."""
        return float(min(self.delay * self.backoff ** (attempt - 2), self.max_delay))

    def delays(self) -> tuple[float, ...]:
        return tuple(self.delay_before(n) for n in range(2, self.max_attempts + 1))


# -- what a handler's exception means ---------------------------------------------------------

@dataclass(frozen=True)
class Failed:
    """One handler's failure as the policy sees it: ``park`` when retrying cannot help,
    ``delay`` when the handler asked for one."""

    handler: str
    error: str
    park: bool = False
    delay: float | None = None


def classify(exc: BaseException) -> tuple[bool, float | None]:
    """``(park at once, retry delay asked for)`` for a handler's exception.

    >>> classify(Park("no payload")), classify(Retry(delay=30)), classify(OSError("reset"))
    ((True, None), (False, 30), (False, None))
    """
    if isinstance(exc, Park):
        return True, None
    if isinstance(exc, Retry):
        return False, exc.delay
    if isinstance(exc, TaskclusterRestFailure):
        status = exc.status_code or 0
        return 400 <= status < 500 and status not in TRANSIENT_STATUSES, None
    return isinstance(exc, PERMANENT_ERRORS), None


# -- the decision ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """What the policy needs to know of one delivery."""

    attempt: int
    failures: tuple[Failed, ...] = ()
    unhandleable: str | None = None  # why the message cannot be handled at all
    unmatched: str | None = None  # no current binding explains it: why


@dataclass(frozen=True)
class Ack:
    """Done: ack the delivery."""


@dataclass(frozen=True)
class RetryLater:
    """Re-publish for ``attempt`` after ``delay`` seconds, for ``handlers`` only; then ack."""

    delay: float
    attempt: int
    handlers: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class ParkNow:
    """Re-publish to the parked queue with ``reason``; then ack."""

    reason: str
    handlers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Quarantine:
    """Re-publish to the suspect queue (tried one at a time) for ``attempt``; then ack."""

    attempt: int
    reason: str = "redelivered without an outcome"


Decision = Union[Ack, RetryLater, ParkNow, Quarantine]


def decide(facts: Facts, policy: RetryPolicy, *, policy_of: Callable[[str], RetryPolicy] | None = None,
           park_unmatched: bool = False) -> Decision:
    """The fate of one delivery (see the module docstring for the rules, in order)."""
    if facts.unhandleable is not None:
        return ParkNow(facts.unhandleable)
    if facts.unmatched is not None:
        return ParkNow(facts.unmatched) if park_unmatched else Ack()
    if not facts.failures:
        return Ack()
    handlers = tuple(f.handler for f in facts.failures)
    reason = "; ".join(f"{f.handler}: {f.error}" for f in facts.failures)
    if any(f.park for f in facts.failures):
        return ParkNow(reason, handlers)
    policies = [policy_of(name) if policy_of else policy for name in handlers]
    limit = min(p.max_attempts for p in policies)
    if facts.attempt >= limit:
        return ParkNow(f"failed {facts.attempt} attempt{'s' if facts.attempt > 1 else ''}; {reason}", handlers)
    asked = [f.delay for f in facts.failures if f.delay is not None]
    delay = max(asked) if asked else max(p.delay_before(facts.attempt + 1) for p in policies)
    return RetryLater(float(delay), facts.attempt + 1, handlers, reason)


def redelivered(attempt: int, policy: RetryPolicy, *, delivery_count: int | None = None) -> Decision:
    """The fate of a delivery the broker delivered before without an outcome (the process
    that had it died, or stopped before acking it), before it runs again.

    A redelivery counts as an attempt, so a message that kills its process is parked after
    ``max_attempts`` deliveries instead of crashing it for ever.  Quorum queues count the
    deliveries of a copy (``delivery_count``, 1 on the first redelivery); classic queues do
    not, so the count travels in the copy.  The copy goes to the suspect queue, where
    redelivered messages are tried one at a time: the messages that were merely prefetched
    with the one that killed the process are counted once, not at every crash.

    >>> redelivered(1, RetryPolicy(max_attempts=5))
    Quarantine(attempt=2, reason='redelivered without an outcome')
    >>> redelivered(5, RetryPolicy(max_attempts=5))
    ParkNow(reason='delivered 5 times without an outcome (did the process die?)', handlers=())
    >>> redelivered(1, RetryPolicy(max_attempts=5), delivery_count=3)
    Quarantine(attempt=4, reason='redelivered without an outcome')
    """
    so_far = attempt + max((delivery_count or 1) - 1, 0)
    if so_far >= policy.max_attempts:
        return ParkNow(f"delivered {so_far} times without an outcome (did the process die?)")
    return Quarantine(so_far + 1)
