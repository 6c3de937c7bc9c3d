"""Small pure helpers users of the 2015 Taskcluster client expect, and scope satisfaction.

Ids and dates::

    >>> len(slugId())
    22
    >>> stringDate(fromNow("1 day", datetime.datetime(2020, 1, 1)))
    '2020-01-02T00:00:00Z'

Scopes: the 2015 form (a list of alternative scope sets) and today's scope expressions::

    >>> scopeMatch(["queue:*"], [["queue:create-task:aws/x"]])
    True
    >>> satisfies(["queue:get-task:*"], {"AllOf": ["queue:get-task:<taskId>"]}, {"taskId": "abc"})
    True

A granted scope ending in ``*`` grants every scope that starts with what precedes the ``*``;
any other granted scope grants exactly itself.  Nothing here touches a socket or a clock
except :func:`slugId` (randomness), :func:`fromNow` and :func:`isExpired` (the current time).
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import re
import time
import uuid
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..exceptions import CallError, ConfigError, ReferenceFormatError

logger = logging.getLogger(__name__)

__all__ = [
    "dumpJson",
    "expand_roles",
    "expression_parameters",
    "fromNow",
    "fromNowJSON",
    "isExpired",
    "json_default",
    "missing_scopes",
    "render_expression",
    "satisfies",
    "scopeMatch",
    "scope_list",
    "scope_satisfied",
    "slugId",
    "stableSlugId",
    "stringDate",
    "to_epoch_ms",
]

UTC = datetime.timezone.utc

# --------------------------------------------------------------------------- ids


def slugId() -> str:
    """A new random Taskcluster slugid: 22 url-safe base64 characters of a v4 UUID.

    Like today's Taskcluster ("nice" slugids) the first bit of the UUID is cleared, so a
    slugid never starts with ``-`` and is safe as a command-line argument.

    >>> slug = slugId()
    >>> len(slug), slug[0] in "-_0123456789"
    (22, False)
    """
    raw = bytearray(uuid.uuid4().bytes)
    raw[0] &= 0x7F
    return base64.urlsafe_b64encode(bytes(raw))[:22].decode("ascii")


def stableSlugId() -> Callable[[str], str]:
    """A function giving one new slugid per name, the same one every time it is asked.

    >>> ids = stableSlugId()
    >>> ids("build") == ids("build") != ids("test")
    True
    """
    cache: dict[str, str] = {}

    def stable(name: str) -> str:
        if name not in cache:
            cache[name] = slugId()
        return cache[name]

    return stable


# --------------------------------------------------------------------------- dates

# Units in the order Taskcluster's offset syntax requires, each at most once.
_UNITS = (
    ("years", r"y(?:ears?|rs?)?"),
    ("months", r"mo(?:nths?)?"),
    ("weeks", r"w(?:eeks?|ks?)?"),
    ("days", r"d(?:ays?)?"),
    ("hours", r"h(?:ours?|rs?)?"),
    ("minutes", r"m(?:in(?:utes?|s)?)?"),
    ("seconds", r"s(?:ec(?:onds?|s)?)?"),
)
_OFFSET = re.compile(
    r"^\s*(?P<sign>[-+])?"
    + "".join(rf"(?:\s*(?P<{name}>\d+)\s*{unit}(?![a-z]))?" for name, unit in _UNITS)
    + r"\s*$",
    re.IGNORECASE,
)


def _offset_delta(offset: str) -> datetime.timedelta:
    if not isinstance(offset, str):
        raise ConfigError(f"offset must be a string like '1 day 3 hours', not {type(offset).__name__}",
                          offset=offset)
    if not offset.strip():  # as both official clients: no offset, no change
        return datetime.timedelta(0)
    match = _OFFSET.match(offset)
    if match is None or not any(match.group(name) for name, _ in _UNITS):
        raise ConfigError(
            f"offset {offset!r} does not parse: expected e.g. '1 day', '-2h', '1 year 3 months', "
            "'30 minutes' (units y, mo, w, d, h, m, s in that order)", offset=offset)
    amount = {name: int(match.group(name) or 0) for name, _ in _UNITS}
    # Like the Python client: a year is 365 days and a month 30 days.
    delta = datetime.timedelta(
        days=365 * amount["years"] + 30 * amount["months"] + 7 * amount["weeks"] + amount["days"],
        hours=amount["hours"], minutes=amount["minutes"], seconds=amount["seconds"])
    return -delta if match.group("sign") == "-" else delta


def fromNow(offset: str, dateObj: datetime.datetime | None = None) -> datetime.datetime:
    """The time ``offset`` from now (or from ``dateObj``), in Taskcluster's offset syntax.

    Units, largest first, each optional: ``years``/``year``/``yr``/``y``, ``months``/``mo``,
    ``weeks``/``wk``/``w``, ``days``/``d``, ``hours``/``hr``/``h``,
    ``minutes``/``min``/``m``, ``seconds``/``sec``/``s``; a leading ``-`` looks back, and
    an empty offset means now.  A year counts 365 days and a month 30 (as the Python client
    does).  Without ``dateObj`` the result is an aware UTC datetime.

    >>> fromNow("-2h", datetime.datetime(2020, 1, 1))
    datetime.datetime(2019, 12, 31, 22, 0)
    >>> fromNow("", datetime.datetime(2020, 1, 1))
    datetime.datetime(2020, 1, 1, 0, 0)
    """
    delta = _offset_delta(offset)
    if dateObj is None:
        dateObj = datetime.datetime.now(UTC)
    elif not isinstance(dateObj, datetime.datetime):
        raise ConfigError(f"dateObj must be a datetime, not {type(dateObj).__name__}")
    return dateObj + delta


def stringDate(date: datetime.datetime | datetime.date) -> str:
    """ISO 8601 text as Taskcluster writes it: UTC with a ``Z``; naive means UTC.

    >>> stringDate(datetime.datetime(2020, 1, 1, 12, 30, tzinfo=datetime.timezone.utc))
    '2020-01-01T12:30:00Z'
    """
    if isinstance(date, datetime.datetime):
        if date.utcoffset() is not None:
            date = date.astimezone(UTC).replace(tzinfo=None)
        return date.isoformat() + "Z"
    if isinstance(date, datetime.date):
        return date.isoformat()
    raise ConfigError(f"stringDate needs a datetime, not {type(date).__name__}")


def fromNowJSON(offset: str) -> str:
    """:func:`fromNow` as Taskcluster JSON text.

    >>> fromNowJSON("1 hour").endswith("Z")
    True
    """
    return stringDate(fromNow(offset))


def to_epoch_ms(value: datetime.datetime | str | int | float) -> int:
    """Milliseconds since the epoch of a datetime (naive = UTC), an ISO string or a number
    (taken as milliseconds already).  Sub-second precision is dropped, as the Python
    client does for certificates.

    >>> to_epoch_ms(datetime.datetime(1970, 1, 1, 0, 0, 2))
    2000
    """
    if isinstance(value, bool):
        raise ConfigError("a time must be a datetime, an ISO 8601 string or epoch milliseconds, not bool")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"time {value!r} is not ISO 8601") from None
    if not isinstance(value, datetime.datetime):
        raise ConfigError(
            f"a time must be a datetime, an ISO 8601 string or epoch milliseconds, not {type(value).__name__}")
    if value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp()) * 1000


def json_default(value: Any) -> Any:
    """``json.dumps`` ``default=`` hook: dates as Taskcluster dates, bytes as UTF-8 text.

    >>> json.dumps([b"x"], default=json_default)
    '["x"]'
    """
    if isinstance(value, (datetime.datetime, datetime.date)):
        return stringDate(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumpJson(obj: Any, **kwargs: Any) -> str:
    """Compact JSON like JavaScript's ``JSON.stringify``; dates become Taskcluster dates.

    >>> dumpJson({"a": [1, 2], "when": datetime.datetime(2020, 1, 1)})
    '{"a":[1,2],"when":"2020-01-01T00:00:00Z"}'
    """
    kwargs.setdefault("separators", (",", ":"))
    kwargs.setdefault("default", json_default)
    return json.dumps(obj, **kwargs)


def isExpired(certificate: Mapping[str, Any] | str, *, margin: float = 0.0) -> bool:
    """True when a temporary-credentials certificate has expired (or will within
    ``margin`` seconds).  ``certificate`` is the dict or its JSON text.

    >>> isExpired({"expiry": 0})
    True
    """
    if isinstance(certificate, (str, bytes)):
        try:
            certificate = json.loads(certificate)
        except ValueError:
            raise ConfigError("certificate is not valid JSON") from None
    if not isinstance(certificate, Mapping):
        raise ConfigError(f"certificate must be a dict or JSON text, not {type(certificate).__name__}")
    expiry = certificate.get("expiry")
    if isinstance(expiry, bool) or not isinstance(expiry, (int, float)):
        raise ConfigError("certificate has no numeric 'expiry'")
    return expiry < (time.time() + margin) * 1000


# --------------------------------------------------------------------------- scopes


def _is_list(value: Any) -> bool:
    """A list, tuple or other iterable of items: not a string (an iterable of characters)
    nor a mapping (an iterable of keys)."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping))


def scope_list(scopes: Any, what: str = "scopes") -> list[str]:
    """``scopes`` as a list after checking it is a list (or other iterable, not a string
    nor a dict) of strings; ``what`` names it in the :class:`ConfigError`.

    >>> scope_list(("a", "b"))
    ['a', 'b']
    """
    if not _is_list(scopes):
        raise ConfigError(f"{what} must be a list of strings, not {type(scopes).__name__}")
    scopes = list(scopes)
    for scope in scopes:
        if not isinstance(scope, str):
            raise ConfigError(f"{what} must contain only strings, found {scope!r}")
    return scopes


def _grants(granted: str, required: str) -> bool:
    return granted == required or (granted.endswith("*") and required.startswith(granted[:-1]))


def scope_satisfied(scopes: Iterable[str], required: str) -> bool:
    """True when one of ``scopes`` grants the single scope ``required``.

    >>> scope_satisfied(["assume:repo:*"], "assume:repo:github.com/x")
    True
    """
    return any(_grants(granted, required) for granted in scopes)


def scopeMatch(assumedScopes: Iterable[str], requiredScopeSets: Iterable[Iterable[str]]) -> bool:
    """True when ``assumedScopes`` satisfy every scope of at least one of
    ``requiredScopeSets`` (the 2015 client's disjunctive form).  Both are checked whole
    first: anything but a list of strings, and a list of such lists, is a :class:`ConfigError`
    naming the part that is not.

    >>> scopeMatch(["a", "b:*"], [["c"], ["a", "b:x"]])
    True
    >>> scopeMatch(["a"], [])
    False
    >>> scopeMatch(["a"], ["a"])
    Traceback (most recent call last):
    ...
    tclisten.exceptions.ConfigError: requiredScopeSets[0] must be a list of strings, not str
    """
    granted = scope_list(assumedScopes, "assumedScopes")
    if not _is_list(requiredScopeSets):
        raise ConfigError(f"requiredScopeSets must be a list of lists of scopes, "
                          f"not {type(requiredScopeSets).__name__}")
    needed = [scope_list(scope_set, f"requiredScopeSets[{index}]")
              for index, scope_set in enumerate(requiredScopeSets)]
    return any(all(scope_satisfied(granted, scope) for scope in scopes) for scopes in needed)


def expand_roles(scopes: Iterable[str], roles: Mapping[str, Iterable[str]]) -> list[str]:
    """``scopes`` plus the scopes of every role they may assume, repeatedly (no
    parameterized roles).  A role ``R`` is assumed through a scope granting ``assume:R``;
    a role ``R*`` through any scope starting with ``assume:R``.

    >>> expand_roles(["assume:project:ci"], {"project:*": ["queue:*"], "other": ["x"]})
    ['assume:project:ci', 'queue:*']
    """
    have = list(scope_list(scopes, "scopes"))
    pending = dict(roles)
    changed = True
    while changed and pending:
        changed = False
        for role_id in list(pending):
            target = "assume:" + role_id
            if target.endswith("*"):
                ok = any(s.startswith(target[:-1]) for s in have) or scope_satisfied(have, target)
            else:
                ok = scope_satisfied(have, target)
            if ok:
                for scope in scope_list(pending.pop(role_id), f"role {role_id!r}"):
                    if scope not in have:
                        have.append(scope)
                changed = True
    return have


_PARAM = re.compile(r"<([^<>]+)>")


def _param_text(name: str, params: Mapping[str, Any]) -> str:
    if name not in params:
        raise CallError(f"scope expression needs parameter {name!r}, which was not given",
                        parameter=name)
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CallError(f"scope parameter {name!r} must be a string or an int, not {type(value).__name__}",
                        parameter=name)
    return str(value)


def _render_string(template: str, params: Mapping[str, Any]) -> str:
    return _PARAM.sub(lambda m: _param_text(m.group(1), params), template)


def _render(expr: Any, params: Mapping[str, Any]) -> Any:
    """Render one expression; returns None where an ``if`` without ``else`` was false."""
    if isinstance(expr, str):
        return _render_string(expr, params)
    if isinstance(expr, list):  # the 2015 form: any of these all-of sets
        return {"AnyOf": [{"AllOf": [_render(s, params) for s in scope_list(group, "scope set")]}
                          for group in expr]}
    if not isinstance(expr, dict):
        raise ReferenceFormatError(f"scope expression must be a string, a list or an object, not {expr!r}")
    keys = set(expr)
    if keys in ({"AllOf"}, {"AnyOf"}):
        (op, items), = expr.items()
        if not isinstance(items, list):
            raise ReferenceFormatError(f"{op} must list expressions, not {items!r}")
        out: list = []
        for item in items:
            if isinstance(item, dict) and set(item) == {"for", "in", "each"}:
                out.extend(_render_each(item, params))
            else:
                rendered = _render(item, params)
                if rendered is not None:
                    out.append(rendered)
        return {op: out}
    if keys in ({"if", "then"}, {"if", "then", "else"}):
        name = expr["if"]
        if not isinstance(name, str):
            raise ReferenceFormatError(f"'if' must name a parameter, not {name!r}")
        if name not in params:
            raise CallError(f"scope expression needs parameter {name!r}, which was not given",
                            parameter=name)
        if params[name]:
            return _render(expr["then"], params)
        return _render(expr["else"], params) if "else" in expr else None
    if keys == {"for", "in", "each"}:
        return {"AllOf": _render_each(expr, params)}
    raise ReferenceFormatError(f"unknown scope expression {expr!r}")


def _render_each(expr: Mapping[str, Any], params: Mapping[str, Any]) -> list:
    var, source, each = expr["for"], expr["in"], expr["each"]
    if not isinstance(var, str) or not isinstance(source, str):
        raise ReferenceFormatError(f"'for' and 'in' must name parameters in {expr!r}")
    if source not in params:
        raise CallError(f"scope expression needs parameter {source!r}, which was not given",
                        parameter=source)
    values = params[source]
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise CallError(f"scope parameter {source!r} must be a list, not {type(values).__name__}",
                        parameter=source)
    out = []
    for value in values:
        rendered = _render(each, {**params, var: value})
        if rendered is not None:
            out.append(rendered)
    return out


def render_expression(expression: Any, params: Mapping[str, Any] | None = None) -> Any:
    """Substitute ``<param>`` templates and expand ``if``/``for`` constructs, giving a plain
    expression of strings, ``AllOf`` and ``AnyOf``.  A 2015 list of scope sets becomes
    ``{"AnyOf": [{"AllOf": [...]}, ...]}``; ``None`` (no scopes needed) becomes ``{"AllOf": []}``.

    Raises :class:`CallError` naming a missing parameter and
    :class:`ReferenceFormatError` for a malformed expression.

    >>> render_expression({"AllOf": [{"for": "n", "in": "names", "each": "get:<n>"}]}, {"names": ["a", "b"]})
    {'AllOf': ['get:a', 'get:b']}
    """
    if expression is None:
        return {"AllOf": []}
    rendered = _render(expression, params or {})
    return {"AllOf": []} if rendered is None else rendered


def expression_parameters(expression: Any) -> dict[str, str]:
    """The parameters a scope expression needs, each with its kind: ``"text"`` (a
    ``<name>`` template), ``"flag"`` (an ``if``) or ``"list"`` (the ``in`` of a ``for``).

    >>> expression_parameters({"AllOf": ["a:<x>", {"for": "n", "in": "names", "each": "b:<n>:<x>"}]})
    {'x': 'text', 'names': 'list'}
    """
    found: dict[str, str] = {}

    def walk(expr: Any, bound: frozenset) -> None:
        if isinstance(expr, str):
            for name in _PARAM.findall(expr):
                if name not in bound:
                    found.setdefault(name, "text")
        elif isinstance(expr, list):
            for item in expr:
                walk(item, bound)
        elif isinstance(expr, dict):
            if "if" in expr and isinstance(expr["if"], str):
                found.setdefault(expr["if"], "flag")
            if "in" in expr and isinstance(expr["in"], str):
                found.setdefault(expr["in"], "list")
            inner = bound | {expr["for"]} if isinstance(expr.get("for"), str) else bound
            for key in ("AllOf", "AnyOf", "then", "else"):
                if key in expr:
                    walk(expr[key], bound)
            if "each" in expr:
                walk(expr["each"], inner)

    walk(expression, frozenset())
    return found


def _missing(scopes: Sequence[str], expr: Any) -> Any:
    if isinstance(expr, str):
        return None if scope_satisfied(scopes, expr) else expr
    (op, items), = expr.items()
    parts = [_missing(scopes, item) for item in items]
    if op == "AllOf":
        left = [p for p in parts if p is not None]
        if not left:
            return None
        return left[0] if len(left) == 1 else {"AllOf": left}
    if any(p is None for p in parts):
        return None
    return parts[0] if len(parts) == 1 else {"AnyOf": parts}


def missing_scopes(scopes: Iterable[str], expression: Any, params: Mapping[str, Any] | None = None) -> Any:
    """What ``scopes`` lack to satisfy ``expression``: None when satisfied, else the
    unsatisfied part (a scope string or an ``AllOf``/``AnyOf``).  ``AnyOf: []`` can never be
    satisfied; ``AllOf: []`` always is.

    >>> missing_scopes(["a"], {"AllOf": ["a", "b", {"AnyOf": ["c", "d"]}]})
    {'AllOf': ['b', {'AnyOf': ['c', 'd']}]}
    """
    granted = scope_list(scopes, "scopes")
    return _missing(granted, render_expression(expression, params))


def satisfies(scopes: Iterable[str], expression: Any, params: Mapping[str, Any] | None = None) -> bool:
    """True when ``scopes`` satisfy a scope expression (today's form: a string,
    ``{"AllOf": [...]}``, ``{"AnyOf": [...]}``, ``{"if": p, "then": e, "else": e}``,
    ``{"for": v, "in": p, "each": template}``; or the 2015 list of scope sets).
    ``params`` fill the ``<name>`` templates.

    >>> satisfies(["queue:route:index.*"], {"AnyOf": ["x", "queue:route:index.a"]})
    True
    >>> satisfies([], {"if": "public", "then": "secret:x"}, {"public": False})
    True
    """
    return missing_scopes(scopes, expression, params) is None
