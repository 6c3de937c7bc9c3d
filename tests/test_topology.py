"""The pure core without a broker: queue topology, binding compilation, options, routing."""

from __future__ import annotations

import inspect

import pytest

from tclisten.app import Listener
from tclisten.dispatch import Binding, Dispatcher, Handler
from tclisten.exceptions import BindingError, ConfigError
from tclisten.exchanges import QueueEvents
from tclisten.headers import Provenance, decode, encode
from tclisten.options import OPTIONS
from tclisten.topics import RawExchange, binding_pattern, resolve
from tclisten.topology import Topology, retry_key


def test_every_queue_of_a_listener_is_named_under_its_pulse_user():
    t = Topology("me", "ci/reactor")
    names = [q.name for q in t.side_queues([2.0, 6.0, 2.0])]
    assert names == ["queue/me/ci/reactor/parked", "queue/me/ci/reactor/suspect", "queue/me/ci/reactor/bindings",
                     "queue/me/ci/reactor/retry/2000", "queue/me/ci/reactor/retry/6000"]
    assert t.exchange.name == "exchange/me/ci/reactor"
    assert retry_key(2.0) == "retry.2000"
    delay = t.delay_queue(2000)
    assert delay.queue_arguments == {"x-message-ttl": 2000, "x-dead-letter-exchange": "exchange/me/ci/reactor",
                                     "x-dead-letter-routing-key": "due"}


def test_quorum_queues_carry_their_type_and_refuse_what_they_do_not_support():
    t = Topology("me", "r", queue_type="quorum", queue_arguments={"x-max-length": 10})
    assert t.main_queue().queue_arguments == {"x-max-length": 10, "x-queue-type": "quorum"}
    assert all(q.queue_arguments["x-queue-type"] == "quorum" for q in t.side_queues([1.0]))
    with pytest.raises(ConfigError, match="not supported by quorum queues"):
        Topology("me", "r", queue_type="quorum", queue_arguments={"x-overflow": "reject-publish-dlx"})
    with pytest.raises(ConfigError, match="queue_type must be one of classic, quorum"):
        Topology("me", "r", queue_type="stream")


def test_binding_compilation_from_fields_routes_and_raw_patterns():
    topic = resolve("QueueEvents.taskFailed")
    assert binding_pattern(topic, fields={"taskGroupId": "G"}) == "primary.*.*.*.*.*.*.*.G.#"
    assert binding_pattern(topic, route="index.#") == "route.index.#"
    assert binding_pattern(topic, routing_key="primary.#") == "primary.#"
    with pytest.raises(BindingError, match="not route and routing_key"):
        binding_pattern(topic, route="x", routing_key="y")
    raw = resolve("exchange/hgpushes/v2")
    assert raw == RawExchange("exchange/hgpushes/v2")
    assert binding_pattern(raw) == "#"
    assert resolve(QueueEvents.taskFailed) is QueueEvents.taskFailed


def test_listener_defaults_are_the_declared_options():
    parameters = inspect.signature(Listener).parameters
    for name, option in OPTIONS.items():
        if name in parameters:
            assert parameters[name].default == option.default, name


def test_the_dispatcher_routes_retries_to_the_handlers_that_failed_only():
    calls = []
    handlers = [Handler(n, lambda m, c, n=n: calls.append((n, m.attempt))) for n in ("a", "b")]
    exchange = QueueEvents.taskFailed.exchange
    d = Dispatcher(handlers, [Binding(exchange, "#", "a"), Binding(exchange, "primary.#", "b")],
                   own_exchange="exchange/me/r")
    copy = encode({}, Provenance(exchange, "primary.t.0", attempt=3, handlers=("b",)))
    outcome = d.dispatch("exchange/me/r", "due", b"{}", copy)
    assert outcome.ok
    assert calls == [("b", 3)]
    assert decode(copy).handlers == ("b",)
    assert d.dispatch(exchange, "primary.t.0", b"not json").unhandleable.startswith("body is not JSON")
    assert d.dispatch("exchange/other", "x", b"{}").unmatched.startswith("no binding matches")
