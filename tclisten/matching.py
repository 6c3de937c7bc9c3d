"""Match routing keys against AMQP topic binding patterns, exactly as RabbitMQ does.

The broker tells a queue that *some* binding matched a message; it does not say which.  A
listener with many handlers on one queue has to find out again, once per message and per
routing key (the primary key plus each CC route), so this is on the per-message path.

Semantics (checked against RabbitMQ 3.10, see ``tests/test_matching_broker.py``):

- keys and patterns are split on ``.``; an empty word is a word (``a..b`` has three words,
  ``a.`` two), except that the empty string has **no** words at all;
- ``*`` matches exactly one word, ``#`` zero or more words; every other pattern word must
  equal the key word.

So ``''`` matches only the patterns ``''`` and ``#`` (and ``#.#`` ...), never ``*``.

How it is fast: the patterns form a trie of words (RabbitMQ's own structure), and the set of
trie nodes a key can be in after each word is turned into a deterministic state *lazily*,
the first time it is needed.  Each state knows the literal words that lead somewhere
specific; any other word (a unique taskId, say) takes the state's single ``other``
transition.  Matching a key is then ``str.split`` plus one dict lookup per word, whatever
the number of bindings, and the answer is a tuple the matcher already holds (no allocation).

>>> m = TopicMatcher()
>>> m.add("primary.*.#", "any-task")
>>> m.add("route.index.#", "indexed")
>>> m.match("primary.fQGgk0ZbTSOcE6gWAqqH7g.0._")
('any-task',)
>>> m.match("route.index.project.foo")
('indexed',)
>>> m.match("other")
()
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Hashable, Iterable, Iterator

from .exceptions import BindingError

logger = logging.getLogger(__name__)

__all__ = ["TopicMatcher", "ExchangeMatcher", "split_words", "topic_matches"]

#: AMQP short strings (routing keys, binding keys) hold at most 255 bytes.
MAX_KEY_BYTES = 255

#: Deterministic states kept before the cache is dropped and rebuilt; it only grows past a
#: few hundred with thousands of distinct literal words in bindings.
MAX_STATES = 20000

_WILDCARDS = ("*", "#")


def split_words(key: str) -> list[str]:
    """Split a routing key or pattern into words the way RabbitMQ does.

    >>> split_words("a..b"), split_words("a."), split_words("")
    (['a', '', 'b'], ['a', ''], [])
    """
    return key.split(".") if key else []


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether one binding ``pattern`` matches ``routing_key`` (simple, for one-off checks).

    >>> topic_matches("primary.*.#", "primary.abc"), topic_matches("*", "")
    (True, False)
    """
    m = TopicMatcher()
    m.add(pattern, True)
    return bool(m.match(routing_key))


def check_pattern(pattern: Any) -> str:
    if not isinstance(pattern, str):
        raise BindingError(f"a binding pattern must be a str, not {type(pattern).__name__}",
                           pattern=pattern)
    if len(pattern.encode("utf-8")) > MAX_KEY_BYTES:
        raise BindingError(f"binding pattern {pattern[:40]!r}... is longer than "
                           f"{MAX_KEY_BYTES} bytes", pattern=pattern)
    return pattern


class _Node:
    """A trie node: the pattern words so far.  ``loops`` is true for a node reached by a
    ``#`` edge, which may swallow any further word."""

    __slots__ = ("children", "ends", "loops")

    def __init__(self, loops: bool = False) -> None:
        self.children: dict[str, _Node] = {}
        self.ends: list[Hashable] = []  # values of the patterns that end here
        self.loops = loops


class _State:
    """A deterministic state: the set of trie nodes a key prefix can be in.

    ``trans`` maps each literal word that some node has an edge for to the next state
    (``None`` until first used); ``other`` is the next state for every other word (``None``
    until first used); ``values`` is what a key ending here matches, in insertion order.
    """

    __slots__ = ("nodes", "trans", "other", "values")

    def __init__(self, nodes: frozenset, values: tuple) -> None:
        self.nodes = nodes
        self.values = values
        self.other: _State | None = None
        self.trans: dict[str, _State | None] = dict.fromkeys(
            word for node in nodes for word in node.children if word not in _WILDCARDS)


class TopicMatcher:
    """Patterns with values; :meth:`match` gives the values whose pattern matches a key.

    A value added under several patterns that match the same key is returned once; the
    values come in the order they were first added.  Values must be hashable (they are
    compared with ``==``).  :meth:`add` and :meth:`remove` may be called at any time,
    including between matches, and from several threads (a match running while another thread
    adds gives the answer of either the old or the new bindings for each pattern).

    >>> m = TopicMatcher()
    >>> m.add("primary.*.*.*.*.*.*.*.tg1.#", "group")
    >>> m.add("#", "all")
    >>> m.add("primary.#", "all")
    >>> m.match("primary.t1.0.wg.wi.prov.wt.sched.tg1._")
    ('group', 'all')
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bindings: dict[tuple[str, Hashable], None] = {}  # (pattern, value), ordered
        self._order: dict[Hashable, int] = {}  # value -> rank of its first add
        self._rebuild()

    # ------------------------------------------------------------------ building

    def add(self, pattern: str, value: Hashable) -> None:
        """Bind ``pattern`` to ``value`` (adding the same pair twice changes nothing).

        Raises :class:`BindingError` for a pattern that is not a str or is over 255 bytes,
        and ``TypeError`` for an unhashable value.
        """
        check_pattern(pattern)
        hash(value)
        with self._lock:
            if (pattern, value) in self._bindings:
                return
            self._bindings[(pattern, value)] = None
            self._order.setdefault(value, len(self._order))
            self._insert(pattern, value)
            self._reset_states()

    def remove(self, pattern: str, value: Hashable) -> bool:
        """Unbind ``pattern`` from ``value``; False when that pair was not bound."""
        with self._lock:
            if (pattern, value) not in self._bindings:
                return False
            del self._bindings[(pattern, value)]
            if all(v != value for _, v in self._bindings):
                del self._order[value]
            self._rebuild()
            return True

    def clear(self) -> None:
        """Remove every binding."""
        with self._lock:
            self._bindings.clear()
            self._order.clear()
            self._rebuild()

    def bindings(self) -> list[tuple[str, Hashable]]:
        """The ``(pattern, value)`` pairs, in the order they were added."""
        return list(self._bindings)

    def __len__(self) -> int:
        return len(self._bindings)

    def __iter__(self) -> Iterator[tuple[str, Hashable]]:
        return iter(self.bindings())

    def __repr__(self) -> str:
        return f"<TopicMatcher {len(self._bindings)} bindings>"

    @property
    def cached_states(self) -> int:
        """How many deterministic states are cached now (what the matcher's memory grows
        with; at most :data:`MAX_STATES`, then the cache starts afresh).

        >>> m = TopicMatcher()
        >>> m.add("a.#", 1)
        >>> m.match("a.b") and m.cached_states > 0
        True
        """
        return len(self._states)

    def _insert(self, pattern: str, value: Hashable) -> None:
        """Add the pattern's words to the trie; its last node ends with ``value``."""
        node = self._root
        for word in split_words(pattern):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node(loops=word == "#")
            node = child
        node.ends.append(value)

    def _rebuild(self) -> None:
        self._root = _Node()
        for pattern, value in self._bindings:
            self._insert(pattern, value)
        self._reset_states()

    def _reset_states(self) -> None:
        """Forget every state (the whole graph, which ``_start`` keeps reachable)."""
        self._states: dict[frozenset, _State] = {}
        self._start = self._state_for({self._root})

    # ------------------------------------------------------------------ states

    def _state_for(self, nodes: set) -> _State:
        """The state for ``nodes`` plus every node reachable through ``#`` edges (a ``#``
        may match zero words)."""
        stack = list(nodes)
        closed = set(nodes)
        while stack:
            hashed = stack.pop().children.get("#")
            if hashed is not None and hashed not in closed:
                closed.add(hashed)
                stack.append(hashed)
        key = frozenset(closed)
        state = self._states.get(key)
        if state is None:
            if len(self._states) >= MAX_STATES:
                logger.debug("topic matcher: %s states cached, starting afresh", len(self._states))
                self._reset_states()
                state = self._states.get(key)
                if state is not None:  # the start state
                    return state
            state = _State(key, self._values_of(key))
            self._states[key] = state
        return state

    def _values_of(self, nodes: frozenset) -> tuple:
        found = {value for node in nodes for value in node.ends}
        order = self._order
        return tuple(sorted(found, key=lambda v: order.get(v, len(order))))

    def _advance(self, state: _State, word: str) -> _State:
        """Compute (and remember) the transition of ``state`` on ``word``.

        Locked: :meth:`add` changes trie nodes in place.  Only new transitions get here, so
        the lock is off the steady-state path."""
        with self._lock:
            return self._advance_locked(state, word)

    def _advance_locked(self, state: _State, word: str) -> _State:
        literal = word in state.trans
        following = set()
        for node in state.nodes:
            if literal:
                child = node.children.get(word)
                if child is not None:
                    following.add(child)
            star = node.children.get("*")
            if star is not None:
                following.add(star)
            if node.loops:
                following.add(node)
        nxt = self._state_for(following)
        if literal:
            state.trans[word] = nxt
        else:
            state.other = nxt
        return nxt

    # ------------------------------------------------------------------ matching

    def match(self, routing_key: str) -> tuple:
        """The values whose pattern matches ``routing_key``, each once, in insertion order.

        >>> m = TopicMatcher(); m.add("a.*", 1); m.add("a.#", 2); m.add("a.b", 1)
        >>> m.match("a.b"), m.match("a"), m.match("a.b.c")
        ((1, 2), (2,), (2,))
        """
        state = self._start
        if routing_key:
            for word in routing_key.split("."):
                nxt = state.trans.get(word, state.other)
                if nxt is None:
                    nxt = self._advance(state, word)
                elif not nxt.nodes:  # no pattern can match any more
                    return ()
                state = nxt
        return state.values

    def match_many(self, routing_keys: Iterable[str]) -> tuple:
        """The values matching any of ``routing_keys`` (a message's primary key and its
        CC routes), each once, in insertion order.

        >>> m = TopicMatcher(); m.add("route.a", "A"); m.add("primary.#", "P")
        >>> m.match_many(["primary.x", "route.a"])
        ('A', 'P')
        """
        result: tuple = ()
        merged: set | None = None
        for key in routing_keys:
            values = self.match(key)
            if not values or values is result:
                continue
            if not result:
                result = values
            else:
                if merged is None:
                    merged = set(result)
                merged.update(values)
        if merged is not None and len(merged) > len(result):
            order = self._order
            result = tuple(sorted(merged, key=lambda v: order.get(v, len(order))))
        return result


def _as_str(key: str | bytes) -> str:
    return key.decode("utf-8", "replace") if isinstance(key, (bytes, bytearray)) else key


class ExchangeMatcher:
    """One :class:`TopicMatcher` per exchange: what a listener with one queue bound to
    several exchanges needs to dispatch a message.

    >>> m = ExchangeMatcher()
    >>> m.add("exchange/taskcluster-queue/v1/task-completed", "primary.#", "done")
    >>> m.add("exchange/taskcluster-queue/v1/task-completed", "route.index.#", "indexed")
    >>> m.match("exchange/taskcluster-queue/v1/task-completed", "primary.t.0",
    ...         cc=[b"route.index.foo"])
    ('done', 'indexed')
    >>> m.match("exchange/taskcluster-queue/v1/task-failed", "primary.t.0")
    ()
    """

    def __init__(self) -> None:
        self._matchers: dict[str, TopicMatcher] = {}

    def add(self, exchange: str, pattern: str, value: Hashable) -> None:
        """Bind ``pattern`` on ``exchange`` to ``value``."""
        if not isinstance(exchange, str) or not exchange:
            raise BindingError(f"exchange must be a non-empty str, not {exchange!r}",
                               exchange=exchange)
        matcher = self._matchers.get(exchange)
        if matcher is None:
            matcher = self._matchers[exchange] = TopicMatcher()
        matcher.add(pattern, value)

    def remove(self, exchange: str, pattern: str, value: Hashable) -> bool:
        """Unbind; False when that binding did not exist."""
        matcher = self._matchers.get(exchange)
        if matcher is None or not matcher.remove(pattern, value):
            return False
        if not len(matcher):
            del self._matchers[exchange]
        return True

    def matcher(self, exchange: str) -> TopicMatcher | None:
        """The matcher of one exchange, or None when nothing is bound on it."""
        return self._matchers.get(exchange)

    def exchanges(self) -> list[str]:
        """The exchanges that have at least one binding, in the order first bound."""
        return list(self._matchers)

    def bindings(self) -> list[tuple[str, str, Hashable]]:
        """Every ``(exchange, pattern, value)``, grouped by exchange."""
        return [(ex, pattern, value) for ex, m in self._matchers.items()
                for pattern, value in m.bindings()]

    def __len__(self) -> int:
        return sum(len(m) for m in self._matchers.values())

    def __repr__(self) -> str:
        return f"<ExchangeMatcher {len(self._matchers)} exchanges, {len(self)} bindings>"

    def match(self, exchange: str, routing_key: str,
              cc: Iterable[str | bytes] | None = ()) -> tuple:
        """The values bound on ``exchange`` that match ``routing_key`` or one of the ``cc``
        keys (the message's ``CC`` header as received: full keys, str or bytes), each once,
        in insertion order."""
        matcher = self._matchers.get(exchange)
        if matcher is None:
            return ()
        if not cc:
            return matcher.match(routing_key)
        return matcher.match_many([routing_key, *map(_as_str, cc)])
