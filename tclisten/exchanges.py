"""Taskcluster's Pulse exchanges as classes: routing-key patterns to bind, keys to parse.

One class per exchanges reference (``QueueEvents``, ``SchedulerEvents``, ``AuthEvents``, ...),
built from :func:`tclisten.taskcluster.references.bundled` on first use and cached, or from any
:class:`~tclisten.taskcluster.references.ExchangesReference` with :func:`exchanges_class`.  Each exchange
of the reference is a :class:`Topic` attribute of the class:

>>> from tclisten.exchanges import QueueEvents
>>> QueueEvents.taskCompleted
<Topic QueueEvents.taskCompleted>
>>> QueueEvents.taskCompleted.exchange
'exchange/taskcluster-queue/v1/task-completed'
>>> QueueEvents.taskCompleted.pattern(taskGroupId="fQGgk0ZbTSOcE6gWAqqH7g")
'primary.*.*.*.*.*.*.*.fQGgk0ZbTSOcE6gWAqqH7g.#'

Called on an instance, as with the 2015 client (and today's official one), a topic gives the
binding as a dict; the instance's ``exchangePrefix`` option moves every exchange:

>>> QueueEvents({"exchangePrefix": "exchange/tc-staging/v1/"}).taskCompleted(taskId="abc")
{'exchange': 'exchange/tc-staging/v1/task-completed', 'routingKeyPattern': 'primary.abc.*.*.*.*.*.*.*.#'}

Pattern rules: constant words are filled in, a missing single word becomes ``*`` and a
missing multi-word one ``#``; ``*`` and ``#`` may be given as values.  Everything else that
cannot bind raises :class:`~tclisten.exceptions.BindingError` naming the exchange and the word.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from .exceptions import BindingError, ConfigError, ReferenceFormatError, TaskclusterTopicExchangeFailure
from .taskcluster.references import Exchange, ExchangesReference, RoutingKeyWord, bundled

logger = logging.getLogger(__name__)

__all__ = [
    "AuthEvents",
    "ExchangesClient",
    "GithubEvents",
    "HooksEvents",
    "NotifyEvents",
    "QueueEvents",
    "SchedulerEvents",
    "Topic",
    "WorkerManagerEvents",
    "cc_routes",
    "exchanges_class",
]

#: AMQP short strings (routing keys, binding keys) hold at most 255 bytes.
MAX_KEY_BYTES = 255

#: The prefix Taskcluster puts before each of a task's routes in the ``CC`` header.
ROUTE_PREFIX = "route."

#: Options of the official clients an exchanges class accepts and ignores (one options
#: dict is often shared by every client of a program).
_IGNORED_OPTIONS = frozenset({"rootUrl", "credentials", "maxRetries", "signedUrlExpiration",
                              "authorizedScopes", "baseUrl"})


def _join_exchange(prefix: str, exchange: str) -> str:
    # the official clients' rule: exactly one '/' between prefix and exchange
    return f"{prefix.rstrip('/')}/{exchange.lstrip('/')}"


def _closest(name: str, names: tuple[str, ...]) -> str | None:
    for candidate in names:
        if candidate.lower() == name.lower():
            return candidate
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return close[0] if close else None


class _Layout:
    """What one exchange's routing key looks like, precomputed once per exchange and shared
    by every :class:`Topic` of it (one per exchange prefix)."""

    __slots__ = ("words", "names", "index", "defaults", "ambiguous", "head_names", "tail_names",
                 "multi_name", "constants", "min_words")
    names: tuple[str, ...]
    head_names: tuple[str, ...]
    multi_name: str | None  # the one multi-word word, if there is exactly one
    tail_names: tuple[str, ...]
    constants: tuple[tuple[int, str], ...]  # (position, word); a negative position counts from the end

    def __init__(self, words: tuple[RoutingKeyWord, ...]) -> None:
        self.words = words
        self.names = tuple(w.name for w in words)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.defaults = tuple(w.constant if w.constant is not None else ("#" if w.multiple_words else "*")
                              for w in words)
        multi = [i for i, w in enumerate(words) if w.multiple_words]
        n = len(words)
        self.ambiguous = len(multi) > 1  # no way to tell where one multi-word word ends
        if len(multi) == 1:
            m = multi[0]
            self.head_names = self.names[:m]
            self.multi_name = self.names[m]
            self.tail_names = self.names[m + 1:]
            self.min_words = n - 1
            # tail positions counted from the end: the multi-word word has a variable length
            self.constants = tuple((i if i < m else i - n, w.constant)
                                   for i, w in enumerate(words) if w.constant is not None and i != m)
        else:
            self.head_names, self.multi_name, self.tail_names = self.names, None, ()
            self.min_words = -1 if self.ambiguous else n  # -1: every key takes the error path
            self.constants = tuple((i, w.constant) for i, w in enumerate(words) if w.constant is not None)


class Topic:
    """One exchange of a service: its full name, its routing-key words, and the patterns
    and parses that go with them.

    Read on the class (``QueueEvents.taskCompleted``) it uses the reference's exchange
    prefix; read on an instance it uses that instance's ``exchangePrefix``.

    >>> from tclisten.exchanges import QueueEvents
    >>> t = QueueEvents.taskCompleted
    >>> t.name, t.service, t.fields[:3]
    ('taskCompleted', 'QueueEvents', ('routingKeyKind', 'taskId', 'runId'))
    >>> t.pattern({"taskId": "abc"}) == t.pattern(taskId="abc") == t(taskId="abc")["routingKeyPattern"]
    True
    >>> t.parse("primary.abc.0.wg.wi.prov.wt.sched.tg._")["workerType"]
    'wt'
    >>> t.route_pattern("index.project.foo.#")
    'route.index.project.foo.#'
    """

    def __init__(self, reference: ExchangesReference, entry: Exchange, service: str,
                 exchange_prefix: str | None = None, _layout: _Layout | None = None) -> None:
        self.reference = reference
        self.entry = entry
        self.name = entry.name
        self.service = service
        self.exchange_prefix = reference.exchange_prefix if exchange_prefix is None else exchange_prefix
        self.exchange = _join_exchange(self.exchange_prefix, entry.exchange)
        self.routing_key = entry.routing_key
        self.schema = entry.schema
        self._layout = _layout or _Layout(entry.routing_key)
        self.fields = self._layout.names
        self.__doc__ = self._describe()
        # the per-message path: a closure specialised to this routing-key layout
        self.parse = self._make_parser()

    # ---------------------------------------------------------------- descriptor

    def __set_name__(self, owner: type, name: str) -> None:
        self._attribute = name

    def __get__(self, instance: Any, owner: type | None = None) -> Topic:
        if instance is None:
            return self
        prefix = instance.__dict__.get("exchangePrefix", self.exchange_prefix)
        topic = self if prefix == self.exchange_prefix else self.with_prefix(prefix)
        # cache on the instance: a non-data descriptor is not consulted again
        instance.__dict__[getattr(self, "_attribute", self.name)] = topic
        return topic

    def with_prefix(self, exchange_prefix: str) -> Topic:
        """The same exchange under another prefix (another deployment's exchange names).

        >>> from tclisten.exchanges import QueueEvents
        >>> QueueEvents.taskFailed.with_prefix("exchange/tc-staging/v1/").exchange
        'exchange/tc-staging/v1/task-failed'
        """
        if not isinstance(exchange_prefix, str):
            raise ConfigError(f"exchangePrefix must be a str, not {type(exchange_prefix).__name__}")
        return Topic(self.reference, self.entry, self.service, exchange_prefix, self._layout)

    # ---------------------------------------------------------------- patterns

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, str]:
        """The binding as the official clients give it: ``{'exchange', 'routingKeyPattern'}``.

        Takes nothing, one dict, keyword arguments, or one string (used as the pattern).
        """
        if len(args) > 1 or (args and kwargs):
            raise BindingError(f"{self._label()}: pass either a string, a single dict or only "
                               "keyword arguments", exchange=self.exchange)
        pattern = self.pattern(args[0] if args else None, **kwargs)
        return {"exchange": self.exchange, "routingKeyPattern": pattern}

    def pattern(self, fields: Mapping[str, Any] | str | None = None, /, **kwargs: Any) -> str:
        """The binding pattern for ``fields`` (a dict, or keyword arguments; a str is taken
        as the pattern itself and only checked for length).

        >>> from tclisten.exchanges import QueueEvents
        >>> QueueEvents.taskGroupResolved.pattern(schedulerId="gecko-level-3")
        'primary.*.gecko-level-3.#'
        """
        if fields is not None and kwargs:
            raise BindingError(f"{self._label()}: give the routing-key words as a dict or as "
                               "keyword arguments, not both", exchange=self.exchange)
        if isinstance(fields, str):
            return self._check_length(fields)
        if fields is None:
            fields = kwargs
        elif not isinstance(fields, Mapping):
            raise BindingError(f"{self._label()}: routing-key words must be a dict, a str or "
                               f"keyword arguments, not {type(fields).__name__}", exchange=self.exchange)
        layout = self._layout
        words = list(layout.defaults)
        for key, value in fields.items():
            index = layout.index.get(key)
            if index is None:
                hint = _closest(str(key), layout.names)
                raise BindingError(
                    f"{self._label()}: unknown routing-key word {key!r}"
                    + (f" (did you mean {hint!r}?)" if hint else "")
                    + f"; the words are {', '.join(layout.names)}",
                    exchange=self.exchange, field=key)
            words[index] = self._check_value(layout.words[index], value)
        return self._check_length(".".join(words))

    def route_pattern(self, route: str) -> str:
        """The pattern that binds a task route (CC'ed as ``route.<route>``) on this exchange.

        >>> from tclisten.exchanges import QueueEvents
        >>> QueueEvents.taskDefined.route_pattern("notify.*.me.#")
        'route.notify.*.me.#'
        """
        if not isinstance(route, str):
            raise BindingError(f"{self._label()}: a route must be a str, not {type(route).__name__}",
                               exchange=self.exchange, field="route")
        if not route:
            raise BindingError(f"{self._label()}: the route is empty", exchange=self.exchange,
                               field="route")
        if "" in route.split("."):
            raise BindingError(f"{self._label()}: route {route!r} has an empty word "
                               "(leading, trailing or doubled '.')", exchange=self.exchange,
                               field="route")
        if route.startswith(ROUTE_PREFIX):
            logger.warning("%s: route %r already starts with %r; binding %r",
                           self._label(), route, ROUTE_PREFIX, ROUTE_PREFIX + route)
        return self._check_length(ROUTE_PREFIX + route)

    def _check_value(self, word: RoutingKeyWord, value: Any) -> str:
        name = word.name
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise BindingError(f"{self._label()}: {name} must be a str or an int, not "
                               f"{type(value).__name__}", exchange=self.exchange, field=name)
        # plain text even for str/int subclasses such as enums
        text = int.__repr__(value) if isinstance(value, int) else str.__str__(value)
        if not text:
            raise BindingError(f"{self._label()}: {name} is empty; leave it out to match any "
                               "value", exchange=self.exchange, field=name)
        if word.constant is not None:
            if text != word.constant:
                raise BindingError(f"{self._label()}: {name} is always {word.constant!r}, "
                                   f"not {text!r}", exchange=self.exchange, field=name)
            return text
        if text in ("*", "#"):
            return text
        if not word.multiple_words:
            if "." in text:
                raise BindingError(f"{self._label()}: {name} {text!r} contains '.', but {name} "
                                   "is a single routing-key word", exchange=self.exchange, field=name)
        elif "" in text.split("."):
            raise BindingError(f"{self._label()}: {name} {text!r} has an empty word (leading, "
                               "trailing or doubled '.')", exchange=self.exchange, field=name)
        if word.max_size is not None and len(text) > word.max_size:
            raise BindingError(f"{self._label()}: {name} {text!r} is {len(text)} characters, "
                               f"more than its maximum of {word.max_size}",
                               exchange=self.exchange, field=name)
        return text

    def _check_length(self, pattern: str) -> str:
        size = len(pattern.encode("utf-8"))
        if size > MAX_KEY_BYTES:
            raise BindingError(f"{self._label()}: pattern {pattern[:60]!r}... is {size} bytes, "
                               f"more than the {MAX_KEY_BYTES} AMQP allows", exchange=self.exchange)
        return pattern

    # ---------------------------------------------------------------- parsing

    if TYPE_CHECKING:
        # Each instance carries its own ``parse``, a closure fitted to its layout by
        # _make_parser() (the per-message path); type checkers see that attribute.
        parse: Callable[[str], dict[str, str]]
    else:
        def parse(self, routing_key: str) -> dict[str, str]:
            """Name the words of a routing key of this exchange (the multi-word word gets the
            remaining words joined by ``.``, or ``''`` when there are none).

            Raises :class:`TaskclusterTopicExchangeFailure` for a key this exchange cannot
            have published (another word count, a constant that differs: a CC route, say).

            >>> from tclisten.exchanges import QueueEvents
            >>> QueueEvents.taskGroupResolved.parse("primary.tg.sched._")
            {'routingKeyKind': 'primary', 'taskGroupId': 'tg', 'schedulerId': 'sched', 'reserved': '_'}
            """
            # shadowed on each instance by _make_parser(); kept for help() and as the reference
            return self._parse_general(routing_key)

    def _make_parser(self) -> Callable[[str], dict[str, str]]:
        """A parse function for the usual layout (constants first, one multi-word word
        last): split, one length and one constant check, ``dict(zip())``; every other key
        or layout goes through :meth:`_parse_general`, which also words the errors."""
        layout = self._layout
        general = self._parse_general
        if (layout.multi_name is None or layout.tail_names or len(layout.constants) > 1
                or any(position < 0 for position, _ in layout.constants)):
            return general
        head_names, multi_name, need = layout.head_names, layout.multi_name, layout.min_words
        head = len(head_names)
        join = ".".join
        if layout.constants:
            ((position, constant),) = layout.constants

            def parse(routing_key: str) -> dict[str, str]:
                parts = routing_key.split(".")
                if len(parts) < need or parts[position] != constant or not routing_key:
                    return general(routing_key)
                result = dict(zip(head_names, parts))
                result[multi_name] = join(parts[head:])
                return result
        else:
            def parse(routing_key: str) -> dict[str, str]:
                parts = routing_key.split(".")
                if len(parts) < need or not routing_key:
                    return general(routing_key)
                result = dict(zip(head_names, parts))
                result[multi_name] = join(parts[head:])
                return result

        parse.__doc__ = Topic.parse.__doc__
        return parse

    def _parse_general(self, routing_key: str) -> dict[str, str]:
        layout = self._layout
        parts = routing_key.split(".") if routing_key else []
        count = len(parts)
        if count != layout.min_words and (layout.multi_name is None or count < layout.min_words):
            if layout.ambiguous:
                raise self._parse_error(routing_key, "cannot be split: the exchange has several "
                                        "multi-word words")
            raise self._parse_error(routing_key, f"has {count} words where "
                                    + ("at least " if layout.multi_name else "")
                                    + f"{layout.min_words} were expected")
        for position, constant in layout.constants:
            if parts[position] != constant:
                raise self._parse_error(routing_key, f"has {parts[position]!r} where the constant "
                                        f"{constant!r} was expected")
        result = dict(zip(layout.head_names, parts))
        if layout.multi_name is not None:
            head = len(layout.head_names)
            if layout.tail_names:
                end = count - len(layout.tail_names)
                result[layout.multi_name] = ".".join(parts[head:end])
                result.update(zip(layout.tail_names, parts[end:]))
            else:
                result[layout.multi_name] = ".".join(parts[head:])
        return result

    def _parse_error(self, routing_key: str, problem: str) -> TaskclusterTopicExchangeFailure:
        hint = ("; it is a CC route, not a primary key" if routing_key.startswith(ROUTE_PREFIX)
                and "primary" in self._layout.defaults else "")
        return TaskclusterTopicExchangeFailure(
            f"{self._label()}: routing key {routing_key!r} {problem} "
            f"({'.'.join(self._layout.names)}){hint}", exchange=self.exchange, routing_key=routing_key)

    # ---------------------------------------------------------------- plumbing

    def _label(self) -> str:
        return f"{self.service}.{self.name} ({self.exchange})"

    def _describe(self) -> str:
        lines = [f"Exchange {self.exchange} ({self.service}.{self.name}).", "",
                 "Routing-key words, in order:"]
        for word in self.routing_key:
            facts = []
            if word.constant is not None:
                facts.append(f"always {word.constant!r}")
            if word.multiple_words:
                facts.append("several words")
            if word.max_size is not None:
                facts.append(f"at most {word.max_size} characters")
            lines.append(f"- ``{word.name}``" + (f" ({', '.join(facts)})" if facts else ""))
        lines += ["", f"Example: ``{self.service}.{self.name}.pattern({self.fields[-1]}=...)``"
                  if self.fields else ""]
        return "\n".join(lines)

    def __repr__(self) -> str:
        if self.exchange_prefix == self.reference.exchange_prefix:
            return f"<Topic {self.service}.{self.name}>"
        return f"<Topic {self.service}.{self.name} {self.exchange}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Topic):
            return NotImplemented
        return (self.exchange, self.service, self.entry) == (other.exchange, other.service, other.entry)

    def __hash__(self) -> int:
        return hash((self.exchange, self.service, self.name))

    def __reduce__(self) -> tuple[Callable[..., Topic], tuple[ExchangesReference, str, str]]:
        return (_topic, (self.reference, self.name, self.exchange_prefix))


def _topic(reference: ExchangesReference, name: str, exchange_prefix: str) -> Topic:
    topic = getattr(exchanges_class(reference), name)
    return topic if topic.exchange_prefix == exchange_prefix else topic.with_prefix(exchange_prefix)


class ExchangesClient:
    """Base of the generated exchanges classes (``QueueEvents``...); see the module docs.

    ``options`` may hold ``exchangePrefix``; the official clients' other options
    (``rootUrl``, ``credentials``, ...) are accepted and ignored, and a misspelled option is
    an error.  ``exchange_prefix=`` is the keyword form.

    >>> from tclisten.exchanges import QueueEvents
    >>> QueueEvents(exchange_prefix="exchange/other/v1/").taskFailed.exchange
    'exchange/other/v1/task-failed'
    """

    reference: ExchangesReference
    exchangePrefix: str
    serviceName: str
    apiVersion: str
    _topics: dict[str, Topic] = {}

    def __init__(self, options: Mapping[str, Any] | None = None, session: Any = None, *,
                 exchange_prefix: str | None = None) -> None:
        if options is not None and not isinstance(options, Mapping):
            raise ConfigError(f"options must be a dict, not {type(options).__name__}")
        options = dict(options or {})
        known = _IGNORED_OPTIONS | {"exchangePrefix"}
        for key in options:
            if key not in known:
                hint = _closest(str(key), tuple(sorted(known)))
                raise ConfigError(f"{type(self).__name__}: unknown option {key!r}"
                                  + (f" (did you mean {hint!r}?)" if hint else ""), option=key)
        if exchange_prefix is not None:
            if "exchangePrefix" in options:
                raise ConfigError("give exchangePrefix in options or as exchange_prefix=, not both")
            options["exchangePrefix"] = exchange_prefix
        prefix = options.get("exchangePrefix", type(self).exchangePrefix)
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError(f"exchangePrefix must be a non-empty str, not {prefix!r}",
                              option="exchangePrefix")
        options.pop("credentials", None)  # never kept: nothing here needs them
        self.options = options
        self.exchangePrefix = prefix

    @classmethod
    def topics(cls) -> dict[str, Topic]:
        """Every exchange of the service, by entry name (the class's prefix)."""
        return dict(cls._topics)

    @classmethod
    def topic(cls, name: str) -> Topic:
        """One exchange by entry name; ``KeyError`` (naming the closest) when there is none."""
        try:
            return cls._topics[name]
        except KeyError:
            hint = _closest(name, tuple(cls._topics))
            raise KeyError(f"{cls.__name__} has no exchange {name!r}"
                           + (f" (did you mean {hint!r}?)" if hint else "")) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.exchangePrefix}>"


_BASE_NAMES = frozenset(dir(ExchangesClient)) | {"options"}
_classes: dict[ExchangesReference, type[ExchangesClient]] = {}
_classes_lock = threading.Lock()


def _build_class(reference: ExchangesReference) -> type[ExchangesClient]:
    name = reference.class_name
    topics: dict[str, Topic] = {}
    for entry in reference.exchanges:
        if entry.name in _BASE_NAMES or entry.name.startswith("_"):
            raise ReferenceFormatError(f"{reference.source}: exchange name {entry.name!r} would hide "
                                       f"an attribute of {name}", source=reference.source,
                                       entry=entry.name)
        topics[entry.name] = Topic(reference, entry, name)
    listing = "\n".join(f"- ``{t.name}``: {t.exchange}" for t in topics.values())
    example = next(iter(topics), "entry")
    doc = (f"The Pulse exchanges of Taskcluster's {reference.service_name} service "
           f"({reference.api_version}), under {reference.exchange_prefix}.\n\n{listing}\n\n"
           f"Example: ``{name}.{example}.pattern()`` or ``{name}(options).{example}()``.")
    attributes: dict[str, Any] = dict(
        topics,
        __doc__=doc,
        __module__=__name__,
        __qualname__=name,
        reference=reference,
        exchangePrefix=reference.exchange_prefix,
        classOptions={"exchangePrefix": reference.exchange_prefix},
        serviceName=reference.service_name,
        apiVersion=reference.api_version,
        _topics=topics,
    )
    return type(name, (ExchangesClient,), attributes)


def exchanges_class(name_or_reference: str | ExchangesReference) -> type[ExchangesClient]:
    """The exchanges class of a bundled service by class name, or built from any exchanges
    reference (cached: the same reference gives the same class).

    >>> from tclisten.taskcluster.references import bundled
    >>> exchanges_class("QueueEvents") is exchanges_class(bundled()["QueueEvents"])
    True
    """
    if isinstance(name_or_reference, str):
        refs = bundled()
        reference = refs.get(name_or_reference)
        if not isinstance(reference, ExchangesReference):
            known = sorted(n for n, r in refs.items() if isinstance(r, ExchangesReference))
            why = ("is a REST API; its exchanges, if any, are " + name_or_reference + "Events"
                   if reference is not None else "is not a bundled exchanges reference")
            hint = _closest(name_or_reference, tuple(known))
            raise ConfigError(f"{name_or_reference!r} {why}"
                              + (f" (did you mean {hint!r}?)" if hint and reference is None else "")
                              + f"; known: {', '.join(known)}", name=name_or_reference)
    elif isinstance(name_or_reference, ExchangesReference):
        reference = name_or_reference
    else:
        raise ConfigError(f"exchanges_class takes a class name or an ExchangesReference, not "
                          f"{type(name_or_reference).__name__}")
    cls = _classes.get(reference)
    if cls is None:
        with _classes_lock:
            cls = _classes.get(reference)
            if cls is None:
                cls = _classes[reference] = _build_class(reference)
    return cls


def cc_routes(headers: Mapping[str, Any] | None) -> list[str]:
    """The task routes a message was CC'ed to, without the ``route.`` prefix, from its AMQP
    headers (``CC``: a list of str or bytes; entries not starting with ``route.`` are left out).

    >>> cc_routes({"CC": [b"route.index.project.foo", "route.notify.me"]})
    ['index.project.foo', 'notify.me']
    >>> cc_routes(None), cc_routes({})
    ([], [])
    """
    from .headers import cc_keys, routes_of

    return list(routes_of(cc_keys(headers)))


if TYPE_CHECKING:
    # What type checkers and editors know of the bundled exchanges classes, which are built
    # from their references on first use (module __getattr__ below): every other attribute,
    # on the class or on an instance, is a Topic. tests/test_exports.py keeps the list equal
    # to the bundled exchanges references.
    class _EventsType(type):
        def __getattr__(cls, name: str) -> Topic: ...

    class _ServiceEvents(ExchangesClient, metaclass=_EventsType):
        def __getattr__(self, name: str) -> Topic: ...

    class AuthEvents(_ServiceEvents): ...
    class GithubEvents(_ServiceEvents): ...
    class HooksEvents(_ServiceEvents): ...
    class NotifyEvents(_ServiceEvents): ...
    class QueueEvents(_ServiceEvents): ...
    class SchedulerEvents(_ServiceEvents): ...
    class WorkerManagerEvents(_ServiceEvents): ...


def __getattr__(name: str) -> Any:
    """``from tclisten.exchanges import QueueEvents``: bundled classes, built on first use."""
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    reference = bundled().get(name)
    if not isinstance(reference, ExchangesReference):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = exchanges_class(reference)
    globals()[name] = cls
    return cls


def __dir__() -> list[str]:
    names = {n for n, r in bundled().items() if isinstance(r, ExchangesReference)}
    return sorted(set(globals()) | names)
