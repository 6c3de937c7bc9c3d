"""Map a REST method call's arguments to a URL path, a payload and a query: pure, no socket.

A :class:`CallSpec` is compiled once per reference function (route template split into
pieces, query names in a frozenset, the method's signature and docstring), so the per-call
work is a few dict lookups and one ``str.join``.  The calling conventions are the 2015
client's:

- ``queue.task(taskId)`` or ``queue.task(taskId=...)``: route arguments positionally or by
  keyword, never both;
- ``queue.createTask(taskId, payload)``: the payload is the last positional argument, or the
  first (only) positional one when the route arguments are keywords, or ``payload=``;
- ``queue.listTaskGroup(taskGroupId, query={'limit': 10})``: query-string options by name.

>>> spec = CallSpec.from_function(Function("task", "get", "/task/<taskId>", ("taskId",)))
>>> spec.bind(("a/b",), {})
('/task/a%2Fb', None, None)
"""

from __future__ import annotations

import inspect
import keyword
import re
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlencode

from ..exceptions import CallError, ReferenceFormatError, did_you_mean
from .references import Function

__all__ = ["CallSpec", "encode_query", "format_scopes", "PING"]

_PARAM = re.compile(r"<([^<>/]+)>")
_RESERVED = frozenset({"self", "payload", "query"})

#: The ping every service answers; used when a reference does not list one.
PING = Function(name="ping", method="get", route="/ping", stability="stable")


def encode_query(query: Mapping[str, Any]) -> str:
    """The query string for ``query`` (form encoding, as the official clients write it).

    >>> encode_query({"limit": 10, "continuationToken": "a b"})
    'limit=10&continuationToken=a+b'
    """
    return urlencode(query)


def format_scopes(scopes: Any) -> str:
    """A one-line reading of a scope expression (current or 2015 form).

    >>> format_scopes({"AllOf": ["a", {"AnyOf": ["b", "c"]}]})
    'all of (a, any of (b, c))'
    """
    if scopes is None:
        return "none"
    if isinstance(scopes, str):
        return scopes
    if isinstance(scopes, list):  # 2015: any of the lists, each needing all its scopes
        return "any of (" + ", ".join(
            "all of (" + ", ".join(map(format_scopes, s)) + ")" if isinstance(s, list) else format_scopes(s)
            for s in scopes) + ")"
    if isinstance(scopes, dict):
        if "AllOf" in scopes:
            return "all of (" + ", ".join(map(format_scopes, scopes["AllOf"])) + ")"
        if "AnyOf" in scopes:
            return "any of (" + ", ".join(map(format_scopes, scopes["AnyOf"])) + ")"
        if "if" in scopes:
            text = f"if {scopes['if']}: {format_scopes(scopes.get('then'))}"
            return text + (f" else {format_scopes(scopes['else'])}" if "else" in scopes else "")
        if "for" in scopes:
            return f"for {scopes['for']} in {scopes.get('in')}: {format_scopes(scopes.get('each'))}"
    return str(scopes)


class CallSpec:
    """One reference function compiled for calling.

    >>> spec = CallSpec.from_function(Function("createTask", "put", "/task/<taskId>",
    ...                                        ("taskId",), input="task.json#"))
    >>> spec.bind(({"x": 1},), {"taskId": "T"})
    ('/task/T', {'x': 1}, None)
    """

    __slots__ = ("function", "name", "method", "args", "query_names", "has_input",
                 "_pieces", "_slots", "signature", "signature_text", "doc")

    def __init__(self, function: Function, pieces: tuple[str, ...], slots: tuple[int, ...]) -> None:
        self.function = function
        self.name = function.name
        self.method = function.method.upper()
        self.args = function.args
        self.query_names = frozenset(function.query)
        self.has_input = function.input is not None
        self._pieces = pieces  # literal route text, with "" where an argument goes
        self._slots = slots    # for each piece position holding an argument: its index in args
        self.signature = _signature(function)
        shown = list(function.args) + (["payload"] if self.has_input else [])
        if function.query:
            shown += ["*", "query=None"]
        self.signature_text = f"{function.name}({', '.join(shown)})"
        self.doc = _docstring(function, self.signature_text)

    @classmethod
    def from_function(cls, function: Function) -> "CallSpec":
        """Compile ``function``; names that cannot be Python parameters are rejected."""
        for arg in function.args:
            if keyword.iskeyword(arg) or arg in _RESERVED:
                raise ReferenceFormatError(
                    f"function {function.name!r}: route argument {arg!r} cannot be a parameter name",
                    entry=function.name)
        for name in function.query:
            if not isinstance(name, str) or not name:
                raise ReferenceFormatError(f"function {function.name!r}: bad query name {name!r}",
                                           entry=function.name)
        parts = _PARAM.split(function.route)  # literal, arg, literal, arg, ..., literal
        pieces = list(parts)
        positions = []
        for i in range(1, len(parts), 2):
            pieces[i] = ""
            positions.append(function.args.index(parts[i]))
        slots = tuple(positions)
        return cls(function, tuple(pieces), slots)

    # ------------------------------------------------------------------ binding

    def fail(self, problem: str) -> CallError:
        return CallError(f"{self.signature_text}: {problem}", method=self.name,
                         signature=self.signature_text)

    def bind(self, args: tuple, kwargs: Mapping[str, Any],
             url_only: bool = False) -> tuple[str, Any, dict | None]:
        """``(path, payload, query)`` for a call; raises :class:`CallError` on misuse.

        ``url_only`` (for building URLs) lets the payload of an input function be left out.
        """
        payload = None
        query = None
        if kwargs:
            kwargs = dict(kwargs)
            query = kwargs.pop("query", None)
            payload = kwargs.pop("payload", None)
        if kwargs:  # route arguments by keyword
            values, payload = self._by_keyword(args, kwargs, payload)
        else:
            values, payload = self._positional(args, payload)
        if self.has_input:
            if payload is None and not url_only:
                raise self.fail("missing payload")
        elif payload is not None:
            raise self.fail("takes no payload")
        return self._path(values), payload, self._query(query)

    def _by_keyword(self, args: tuple, kwargs: Mapping[str, Any], payload: Any) -> tuple[Sequence[Any], Any]:
        """Route arguments given by keyword (a payload may come alone, positionally)."""
        unknown = [k for k in kwargs if k not in self.args]
        if unknown:
            hint = did_you_mean(unknown[0], [*self.args, "payload", "query"], known=True)
            raise self.fail(f"unexpected keyword argument {unknown[0]!r}; {hint}".rstrip())
        missing = [a for a in self.args if a not in kwargs]
        if missing:
            raise self.fail(f"missing route argument {missing[0]!r}")
        if args:
            if not self.has_input or len(args) > 1:
                raise self.fail("route arguments go either positionally or by keyword, not both")
            if payload is not None:
                raise self.fail("payload given twice (positionally and as payload=)")
            payload = args[0]
        return [kwargs[a] for a in self.args], payload

    def _positional(self, args: tuple, payload: Any) -> tuple[Sequence[Any], Any]:
        """Route arguments given positionally, the payload last (or as ``payload=``)."""
        nargs = len(self.args)
        count = len(args)
        if self.has_input and count == nargs + 1:
            if payload is not None:
                raise self.fail("payload given twice (positionally and as payload=)")
            payload = args[-1]
            count = nargs
        if count != nargs:
            want = f"{nargs} route argument{'s' if nargs != 1 else ''}"
            if self.has_input:
                want += " and a payload"
            raise self.fail(f"takes {want}, got {len(args)} positional argument"
                            f"{'s' if len(args) != 1 else ''}")
        return args[:nargs], payload

    def _path(self, values: Sequence[Any]) -> str:
        if not self._slots:
            return self._pieces[0]
        pieces = list(self._pieces)
        pos = 1
        for index in self._slots:
            value = values[index]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise self.fail(f"argument {self.args[index]!r} must be str or int, "
                                f"not {type(value).__name__}")
            text = str(value)
            if not text:
                raise self.fail(f"argument {self.args[index]!r} must not be empty")
            pieces[pos] = quote(text, safe="")
            pos += 2
        return "".join(pieces)

    def _query(self, query: Any) -> dict | None:
        if not query:
            if query is None or isinstance(query, Mapping):
                return None
            raise self.fail(f"query must be a dict, not {type(query).__name__}")
        if not isinstance(query, Mapping):
            raise self.fail(f"query must be a dict, not {type(query).__name__}")
        out = {}
        for name, value in query.items():
            if name not in self.query_names:
                hint = did_you_mean(name, sorted(self.query_names), known=True) or "it takes none."
                raise self.fail(f"unknown query option {name!r}; {hint}".rstrip())
            if value is None:
                continue
            if isinstance(value, bool):  # Taskcluster reads "true"/"false", not Python's "True"
                value = "true" if value else "false"
            elif not isinstance(value, (str, int)):
                raise self.fail(f"query option {name!r} must be str, int or bool, "
                                f"not {type(value).__name__}")
            out[name] = value
        return out or None


# ---------------------------------------------------------------------- documentation


def _signature(function: Function) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("self", kind)]
    params += [inspect.Parameter(arg, kind) for arg in function.args]
    if function.input is not None:
        params.append(inspect.Parameter("payload", kind))
    if function.query:
        params.append(inspect.Parameter("query", inspect.Parameter.KEYWORD_ONLY, default=None))
    return inspect.Signature(params)


def _docstring(function: Function, signature_text: str) -> str:
    lines = [f"{function.method.upper()} {function.route}", ""]
    if function.args:
        lines.append("Route arguments: " + ", ".join(function.args) + " (str or int, percent-encoded)")
    if function.query:
        lines.append("Query options (query={...}): " + ", ".join(function.query))
    lines.append(f"Payload schema: {function.input}" if function.input else "Takes no payload.")
    lines.append(f"Output schema: {function.output}" if function.output else "Output: none declared.")
    lines.append("Scopes: " + format_scopes(function.scopes))
    if function.stability:
        lines.append(f"Stability: {function.stability}")
    if function.category:
        lines.append(f"Category: {function.category}")
    lines += ["", "Call forms:"]
    positional = list(function.args) + (["payload"] if function.input else [])
    lines.append(f"    client.{function.name}({', '.join(positional)})")
    if function.args:
        kw = ", ".join(f"{a}=..." for a in function.args)
        lines.append(f"    client.{function.name}({'payload, ' if function.input else ''}{kw})")
        if function.input:
            lines.append(f"    client.{function.name}({kw}, payload=...)")
    if function.query:
        lines.append(f"    add query={{...}} for {', '.join(function.query)}")
    lines += ["", f"Signature: {signature_text}"]
    return "\n".join(lines)
