"""What a handler receives: one Pulse message, decoded once.

>>> from tclisten.message import Message
>>> msg = Message("exchange/taskcluster-queue/v1/task-completed", "primary.abc.0", {"version": 1},
...               cc=("route.index.project.x",))
>>> msg.body["version"], msg.routes
(1, ('index.project.x',))
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from .headers import routes_of

__all__ = ["Message", "Routing"]


class Routing(Mapping[str, str]):
    """The routing key split into the exchange's named words.

    Read a word as an attribute or an item: ``message.routing.taskId`` or
    ``message.routing["taskId"]``.  The multi-word word (``reserved``) holds the rest of the
    key joined by ``.``.
    """

    __slots__ = ("_fields",)
    _fields: dict[str, str]

    def __init__(self, fields: Mapping[str, str]) -> None:
        object.__setattr__(self, "_fields", dict(fields))

    def __getitem__(self, name: str) -> str:
        return self._fields[name]

    def __getattr__(self, name: str) -> str:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"routing key has no word {name!r}; it has {sorted(self._fields)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Routing is read-only")

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Routing({self._fields!r})"


class Message:
    """One delivery, as handlers see it.

    Attributes: ``exchange``, ``routing_key`` (the primary key, as published), ``body`` (the
    decoded JSON), ``cc`` (the extra routing keys), ``routes`` (the task's CC routes without
    the ``route.`` prefix),
    ``redelivered`` (the broker delivered it before), ``attempt`` (1 on first handling, then
    2, 3, ... on tclisten's own retries), ``headers`` (the AMQP headers), and ``routing``,
    the routing key parsed into named words (computed on first use).
    """

    __slots__ = ("exchange", "routing_key", "body", "cc", "redelivered", "attempt", "headers",
                 "_parse", "_routing")

    def __init__(self, exchange: str, routing_key: str, body: Any, *, cc: tuple[str, ...] = (),
                 redelivered: bool = False, attempt: int = 1, headers: Mapping[str, Any] | None = None,
                 parse: Callable[[str], Mapping[str, str]] | None = None) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.body = body
        self.cc = cc
        self.redelivered = redelivered
        self.attempt = attempt
        self.headers = headers if headers is not None else {}
        self._parse = parse
        self._routing: Routing | None = None

    @property
    def routes(self) -> tuple[str, ...]:
        """The task's routes: the message's CC keys without their ``route.`` prefix."""
        return routes_of(self.cc)

    @property
    def routing(self) -> Routing:
        """The routing key's named words; empty for an exchange without a reference."""
        if self._routing is None:
            self._routing = Routing(self._parse(self.routing_key) if self._parse is not None else {})
        return self._routing

    def __repr__(self) -> str:
        return (f"<Message {self.exchange} {self.routing_key!r} attempt={self.attempt}"
                f"{' redelivered' if self.redelivered else ''}>")
