"""Declaring a listener's broker objects, and keeping its bindings true to the code.

At every start the listener checks (or declares) the exchanges it binds to, declares its
queues with their bindings, and removes the bindings of its queue that the code no longer
declares.  AMQP cannot list a queue's bindings, and Pulse users have no management API, so
the declared set is kept on the broker itself: one message in the listener's own
``queue/<user>/<name>/bindings``, replaced at each start.  A listener that has no such
message yet (its first start, or an older tclisten) prunes nothing that time.

The broker's refusals become :class:`~tclisten.exceptions.BrokerError` saying what to do: a
missing exchange, a queue declared with other arguments, a queue of the other type (with
the way out: ``tclisten migrate``), a classic queue whose node is down.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Iterable

from kombu import Exchange, Producer

from .exceptions import BrokerError

logger = logging.getLogger(__name__)

__all__ = ["BindingState", "declare_listener", "explain_queue_error", "read_bindings_state"]

STATE_VERSION = 1
Pair = tuple[str, str]  # (exchange, pattern)

_TYPE = re.compile(r"inequivalent arg 'x-queue-type'.*?received (?:the value '(\w+)'|none).*?"
                   r"current is (?:the value '(\w+)'|none)", re.S)


def explain_queue_error(queue: Any, exc: BaseException) -> BrokerError:
    """What to do about a refused queue declaration."""
    text = str(exc)
    found = _TYPE.search(text)
    if found:
        wanted, current = found.group(1) or "classic", found.group(2) or "classic"
        return BrokerError(
            f"queue {queue.name!r} exists as a {current} queue, but the listener declares a {wanted} queue: "
            f"move its messages with `tclisten migrate TARGET --queue-type {wanted}` (none is lost), "
            f"or keep queue_type={current!r}", queue=queue.name, current_type=current, wanted_type=wanted)
    if "home node" in text:
        return BrokerError(f"queue {queue.name!r} is unusable: {text} (a classic queue lives on one node; "
                           "queue_type='quorum' replicates it across the cluster)", queue=queue.name)
    return BrokerError(
        f"cannot declare queue {queue.name!r} with arguments {queue.queue_arguments or {}}: {text}. If it "
        "exists with other arguments, delete it (`tclisten delete TARGET`; tclisten keeps no state in it but "
        "pending messages) or use the same options", queue=queue.name)


class BindingState:
    """The bindings a listener declared at its last start, as kept on the broker."""

    def __init__(self, pairs: Iterable[Pair], messages: list[Any] | None = None) -> None:
        self.pairs = set(pairs)
        self.messages = messages or []  # the fetched (unacked) state messages

    @classmethod
    def decode(cls, bodies: Iterable[Any]) -> set[Pair]:
        pairs: set[Pair] = set()
        for body in bodies:
            try:
                data = json.loads(body)
                pairs.update((str(ex), str(pattern)) for ex, pattern in data.get("bindings", ()))
            except (ValueError, TypeError, AttributeError):
                logger.warning("ignored an unreadable bindings record in the listener's bindings queue")
        return pairs


def read_bindings_state(channel: Any, topology: Any) -> BindingState:
    """The recorded bindings; the state messages stay unacked (returned when the channel
    closes, unless :func:`write_bindings_state` replaces them)."""
    queue = topology.bindings_queue()(channel)
    messages = []
    while True:
        message = queue.get(no_ack=False)
        if message is None:
            break
        messages.append(message)
    return BindingState(BindingState.decode(m.body for m in messages), messages)


def write_bindings_state(channel: Any, topology: Any, pairs: Iterable[Pair], old: BindingState) -> None:
    """Replace the recorded bindings: publish the new record (confirmed), then ack the old."""
    body = json.dumps({"version": STATE_VERSION, "bindings": sorted(pairs)})
    Producer(channel, exchange=topology.exchange).publish(
        body, routing_key="bindings", delivery_mode=2, content_type="application/json")
    for message in old.messages:
        message.ack()


def _exchange_exists(connection: Any, name: str) -> bool:
    try:
        with connection.channel() as channel:
            Exchange(name, "topic", durable=True, passive=True)(channel).declare()
        return True
    except connection.channel_errors:
        return False


def declare_listener(connection: Any, *, topology: Any, main_queue: Any, side_queues: list[Any],
                     exchanges: Iterable[str], declare_exchanges: bool, pairs: set[Pair], prune: bool,
                     where: str) -> list[Pair]:
    """Check or declare the exchanges, declare the queues and bindings, prune stale bindings.
    Returns the bindings removed."""
    for name in sorted(set(exchanges)):
        with connection.channel() as channel:
            try:
                Exchange(name, "topic", durable=True, passive=not declare_exchanges)(channel).declare()
            except connection.channel_errors as exc:
                raise BrokerError(f"exchange {name!r} does not exist on {where} ({exc}); bind to an existing "
                                  "exchange, or pass declare_exchanges=True on a local broker", exchange=name) from exc
    with connection.channel() as channel:
        for queue in [main_queue, *side_queues]:
            try:
                queue(channel).declare()
            except connection.channel_errors as exc:
                raise explain_queue_error(queue, exc) from exc
    with connection.channel() as channel:
        state = read_bindings_state(channel, topology)
        stale = sorted(state.pairs - pairs) if prune else []
        for exchange, pattern in stale:
            if _exchange_exists(connection, exchange):
                channel.queue_unbind(topology.queue_name, exchange, pattern)
            logger.info("removed binding %s %r of %s: the code no longer declares it", exchange, pattern,
                        topology.queue_name)
        write_bindings_state(channel, topology, pairs if prune else pairs | state.pairs, state)
    return stale
