"""The ack policy on its own: outcome facts in, ack / retry(delay) / park(reason) out."""

from __future__ import annotations

import pytest

from tclisten.exceptions import (BindingError, CallError, ConfigError, CredentialsError, Park, Retry,
                                 TaskclusterRestFailure)
from tclisten.policy import (Ack, Facts, Failed, ParkNow, Quarantine, RetryLater, RetryPolicy, classify, decide,
                             redelivered)

POLICY = RetryPolicy(max_attempts=3, delay=2.0, backoff=3.0, max_delay=10.0)


def test_success_is_acked():
    assert decide(Facts(attempt=1), POLICY) == Ack()


def test_an_unhandleable_message_is_parked_with_its_reason():
    assert decide(Facts(attempt=2, unhandleable="body is not JSON"), POLICY) == ParkNow("body is not JSON")


def test_an_unexplained_message_is_acked_unless_stale_bindings_are_kept():
    facts = Facts(attempt=1, unmatched="no binding matches")
    assert decide(facts, POLICY) == Ack()
    assert decide(facts, POLICY, park_unmatched=True) == ParkNow("no binding matches")


def test_a_failure_is_retried_with_backoff_for_the_failed_handlers_only():
    first = decide(Facts(attempt=1, failures=(Failed("a", "boom"),)), POLICY)
    assert first == RetryLater(delay=2.0, attempt=2, handlers=("a",), reason="a: boom")
    second = decide(Facts(attempt=2, failures=(Failed("a", "boom"),)), POLICY)
    assert second == RetryLater(delay=6.0, attempt=3, handlers=("a",), reason="a: boom")


def test_the_last_attempt_parks():
    decision = decide(Facts(attempt=3, failures=(Failed("a", "boom"), Failed("b", "bust"))), POLICY)
    assert decision == ParkNow("failed 3 attempts; a: boom; b: bust", ("a", "b"))


def test_a_permanent_failure_parks_at_once():
    decision = decide(Facts(attempt=1, failures=(Failed("a", "404"), Failed("b", "x"))), POLICY)
    assert isinstance(decision, RetryLater)
    decision = decide(Facts(attempt=1, failures=(Failed("a", "404", park=True), Failed("b", "x"))), POLICY)
    assert decision == ParkNow("a: 404; b: x", ("a", "b"))


def test_a_delay_asked_for_wins_and_the_strictest_handler_policy_limits():
    facts = Facts(attempt=1, failures=(Failed("a", "later", delay=60.0), Failed("b", "x")))
    assert decide(facts, POLICY).delay == 60.0
    strict = {"a": RetryPolicy(max_attempts=1), "b": POLICY}
    decision = decide(Facts(attempt=1, failures=(Failed("a", "x"), Failed("b", "y"))), POLICY,
                      policy_of=strict.__getitem__)
    assert isinstance(decision, ParkNow)


@pytest.mark.parametrize("exc, expected", [
    (Park("no payload"), (True, None)),
    (Retry(delay=30), (False, 30)),
    (Retry(), (False, None)),
    (TaskclusterRestFailure("gone", status_code=404), (True, None)),
    (TaskclusterRestFailure("bad", status_code=400), (True, None)),
    (TaskclusterRestFailure("no", status_code=403), (True, None)),
    (TaskclusterRestFailure("slow", status_code=408), (False, None)),
    (TaskclusterRestFailure("busy", status_code=429), (False, None)),
    (TaskclusterRestFailure("down", status_code=503), (False, None)),
    (ConfigError("no rootUrl"), (True, None)),
    (CallError("bad call"), (True, None)),
    (BindingError("bad binding"), (True, None)),
    (CredentialsError("bad credentials"), (True, None)),
    (OSError("connection reset"), (False, None)),
    (RuntimeError("bug"), (False, None)),
])
def test_what_an_exception_means(exc, expected):
    assert classify(exc) == expected


def test_redeliveries_count_as_attempts_then_park():
    assert redelivered(1, POLICY) == Quarantine(2)
    assert redelivered(2, POLICY) == Quarantine(3)
    assert redelivered(3, POLICY) == ParkNow("delivered 3 times without an outcome (did the process die?)")


def test_quorum_delivery_counts_feed_the_attempt():
    assert redelivered(1, POLICY, delivery_count=1) == Quarantine(2)
    assert redelivered(1, POLICY, delivery_count=2) == Quarantine(3)
    assert isinstance(redelivered(1, POLICY, delivery_count=3), ParkNow)


def test_a_retry_policy_is_checked_and_merged():
    with pytest.raises(ConfigError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigError, match="unknown retry option"):
        RetryPolicy.coerce({"max_atempts": 3})
    merged = RetryPolicy.coerce({"max_attempts": 2}, base=POLICY)
    assert (merged.max_attempts, merged.delay, merged.max_delay) == (2, 2.0, 10.0)
    assert POLICY.delays() == (2.0, 6.0)
    with pytest.raises(ConfigError, match="Retry delay"):
        Retry(delay=-1)
