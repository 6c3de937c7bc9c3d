"""Naming an exchange: the one place that turns what a user wrote into what to bind.

Accepted everywhere an exchange is named (``@on``, YAML ``exchange:``, ``tclisten record
--exchange``, ``tclisten publish``, the test kit, the factories):

- a :class:`~tclisten.exchanges.Topic` (``QueueEvents.taskFailed``), or its name as text;
- a full Taskcluster exchange name (``exchange/taskcluster-queue/v1/task-failed``): the
  bundled Topic of that exchange;
- any other exchange name (``exchange/hgpushes/v2``, Mercurial pushes): a :class:`RawExchange`,
  bound with a raw routing-key pattern (``routing_key="mozilla-central.#"``); its messages
  have no routing-key layout, so ``message.routing`` is empty.

>>> resolve("QueueEvents.taskFailed").exchange
'exchange/taskcluster-queue/v1/task-failed'
>>> resolve("exchange/taskcluster-queue/v1/task-failed").name
'taskFailed'
>>> resolve("exchange/hgpushes/v2")
<RawExchange exchange/hgpushes/v2>
>>> resolve("QueueEvents.taskFailled")
Traceback (most recent call last):
...
tclisten.exceptions.BindingError: unknown exchange 'QueueEvents.taskFailled': did you mean 'QueueEvents.taskFailed'? expected <Service>Events.<exchange> such as QueueEvents.taskFailed, or a full exchange name such as exchange/hgpushes/v2
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from .exceptions import BindingError, did_you_mean
from .matching import check_pattern

__all__ = ["RawExchange", "binding_pattern", "resolve", "topic_names"]

EXCHANGE_PREFIX = "exchange/"


class RawExchange:
    """An exchange without a bundled reference: bound by a raw routing-key pattern."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.name = exchange
        self.fields: tuple[str, ...] = ()
        self.schema = None
        self.parse = None

    def pattern(self, **fields: Any) -> str:
        raise BindingError(f"{self.exchange} has no bundled reference, so no routing-key fields "
                           f"({', '.join(sorted(fields))}): give routing_key='<pattern>' instead")

    def raw_pattern(self, routing_key: str) -> str:
        return check_pattern(routing_key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawExchange) and other.exchange == self.exchange

    def __hash__(self) -> int:
        return hash(self.exchange)

    def __repr__(self) -> str:
        return f"<RawExchange {self.exchange}>"


@functools.lru_cache(maxsize=None)
def topic_names() -> dict[str, Any]:
    """Every bundled exchange, by ``Class.name`` and by full exchange name."""
    from .exchanges import exchanges_class
    from .taskcluster.references import ExchangesReference, bundled

    names: dict[str, Any] = {}
    for class_name, reference in bundled().items():
        if isinstance(reference, ExchangesReference):
            for name, topic in exchanges_class(class_name).topics().items():
                names[f"{class_name}.{name}"] = topic
                names[topic.exchange] = topic
    return names


def resolve(spec: Any) -> Any:
    """The Topic (or :class:`RawExchange`) that ``spec`` names; :class:`BindingError`
    (with a suggestion) when it names nothing."""
    if isinstance(spec, RawExchange):
        return spec
    if not isinstance(spec, str):
        if hasattr(spec, "exchange") and hasattr(spec, "pattern") and hasattr(spec, "route_pattern"):
            return spec
        raise BindingError(f"{spec!r} is not an exchange: give QueueEvents.taskCompleted, its name, "
                           "or a full exchange name such as exchange/hgpushes/v2")
    known = topic_names()
    topic = known.get(spec)
    if topic is not None:
        return topic
    if spec.startswith(EXCHANGE_PREFIX) and len(spec) > len(EXCHANGE_PREFIX):
        return RawExchange(spec)
    hint = did_you_mean(spec, [name for name in known if not name.startswith(EXCHANGE_PREFIX)])
    raise BindingError(f"unknown exchange {spec!r}: {hint}expected <Service>Events.<exchange> such as "
                       "QueueEvents.taskFailed, or a full exchange name such as exchange/hgpushes/v2")


def binding_pattern(topic: Any, *, route: str | None = None, routing_key: str | None = None,
                    fields: Mapping[str, Any] | None = None) -> str:
    """The binding pattern of one declaration: routing-key ``fields``, a CC ``route``, or a
    raw ``routing_key`` pattern (one of the three)."""
    given = [name for name, value in (("fields", fields), ("route", route), ("routing_key", routing_key))
             if value]
    if len(given) > 1:
        raise BindingError(f"{topic.exchange}: give one of routing-key fields, route= or routing_key=, "
                           f"not {' and '.join(given)}")
    if routing_key is not None:
        return check_pattern(routing_key)
    if isinstance(topic, RawExchange):
        if route is not None:
            return check_pattern(f"route.{route}")
        if fields:
            return topic.pattern(**fields)
        return "#"
    if route is not None:
        return str(topic.route_pattern(route))
    return str(topic.pattern(**dict(fields or {})))
