"""A whole listener described in one YAML file.

.. code-block:: yaml

    name: ci-reactor                       # the queue is queue/<user>/ci-reactor
    pulse:                                 # or  broker_url: amqp://guest:guest@127.0.0.1:5672//
      username: ${PULSE_USERNAME}
      password: ${PULSE_PASSWORD}
    taskcluster:
      rootUrl: ${TASKCLUSTER_ROOT_URL:-https://tc.example.com}
      credentials:
        clientId: ${TASKCLUSTER_CLIENT_ID}
        accessToken: ${TASKCLUSTER_ACCESS_TOKEN}
    prefetch: 200
    concurrency: 4
    max_length: 20000                      # also: overflow, expires, backlog_warning,
    retry: {max_attempts: 5, delay: 2}     # declare_exchanges, heartbeat, grace_period, health_port
    logging: {level: INFO}
    config: {notify_channel: "#ci"}        # given to handlers as ctx.config
    bindings:
      - exchange: QueueEvents.taskFailed
        fields: {provisionerId: proj-example}
        handler: handlers.py:on_failed     # a file next to this one, or package.module:function
      - exchange: QueueEvents.taskCompleted
        route: index.project.example.#
        handler: example.reactions:on_indexed

Every top-level key except ``pulse``, ``logging`` and ``bindings`` is the
:class:`~tclisten.app.Listener` keyword of the same name.  ``${VAR}`` and ``${VAR:-default}``
in string values come from the environment (``$$`` is a literal ``$``); a number or a boolean
may come from the environment too.  Files are read with ``yaml.safe_load`` rules.

A bad file raises :class:`~tclisten.exceptions.ConfigError` naming the file, the line and the
key (``listener.yaml:14: bindings[0].exchange: unknown exchange 'QueueEvents.taskFailled';
did you mean 'QueueEvents.taskFailed'?``).  Values of secrets, and values that came from
the environment, are never repeated in an error.

>>> cfg = load_config("listener.yaml")            # doctest: +SKIP
>>> app = build_listener(cfg)                     # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from .exceptions import BindingError, ConfigError

logger = logging.getLogger(__name__)

__all__ = ["BindingConfig", "ListenerConfig", "build_listener", "import_object", "load_config"]

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
OVERFLOW_POLICIES = ("drop-head", "reject-publish", "reject-publish-dlx")
SECRET_KEYS = frozenset({"broker_url", "password", "accessToken", "certificate"})


@dataclass(frozen=True)
class BindingConfig:
    """One ``bindings`` entry: an exchange, fields or a route, and the handler to call."""

    exchange: str
    handler: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    route: str | None = None
    name: str | None = None
    function: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ListenerConfig:
    """A parsed and checked listener file; :func:`build_listener` turns it into a Listener.

    Options left out of the file are ``None`` here and get the Listener's defaults.
    Secrets (``broker_url``, ``pulse_password``, ``taskcluster``) and the handlers'
    ``config`` (which may hold some) stay out of the repr.
    """

    name: str
    source: Path | None = None
    broker_url: str | None = field(default=None, repr=False)
    pulse_username: str | None = None
    pulse_password: str | None = field(default=None, repr=False)
    pulse_host: str | None = None
    taskcluster: Mapping[str, Any] | None = field(default=None, repr=False)
    prefetch: int | None = None
    concurrency: int | None = None
    retry: Mapping[str, Any] | None = None
    max_length: int | None = None
    overflow: str | None = None
    expires: int | None = None
    backlog_warning: int | None = None
    declare_exchanges: bool | None = None
    heartbeat: int | None = None
    grace_period: float | None = None
    health_port: int | None = None
    log_level: str | None = None
    log_format: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets
    bindings: tuple[BindingConfig, ...] = ()
    lines: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    def listener_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~tclisten.app.Listener` the file sets."""
        kwargs: dict[str, Any] = {}
        for key in _LISTENER_OPTIONS:
            value = getattr(self, key)
            if value is not None:
                kwargs[key] = dict(value) if isinstance(value, Mapping) else value
        kwargs["config"] = dict(self.config)
        return kwargs


_LISTENER_OPTIONS = ("broker_url", "pulse_username", "pulse_password", "pulse_host", "taskcluster",
                     "prefetch", "concurrency", "retry", "max_length", "overflow", "expires",
                     "backlog_warning", "declare_exchanges", "heartbeat", "grace_period", "health_port")


# --------------------------------------------------------------------------- YAML with lines


class _Mapping(dict):
    """A YAML mapping that remembers its own line and the line of each key (1-based), and
    the original text of values that came from the environment."""

    line = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[Any, int] = {}
        self.raw: dict[Any, str] = {}


class _LineLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings are :class:`_Mapping` and reject duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    result = _Mapping()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark) from None
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (also on line {result.lines[key]})",
                key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --------------------------------------------------------------------------- checking


class _Reader:
    """Reads one file's values, raising ConfigErrors that name file, line and key."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ

    def fail(self, line: int, key: str, problem: str) -> ConfigError:
        where = f"{self.path}:{line}: {key}: " if key else f"{self.path}:{line}: "
        return ConfigError(where + problem, file=str(self.path), line=line, key=key)

    # -- environment ------------------------------------------------------------------

    _VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|(\{[^}]*\}?))")

    def expand(self, text: str, line: int, key: str) -> str:
        def replace(match: re.Match) -> str:
            dollar, name, default, bad = match.groups()
            if dollar:
                return "$"
            if bad is not None:
                raise self.fail(line, key, f"bad environment reference '${bad}': write ${{NAME}} "
                                           "or ${NAME:-default} (and $$ for a literal $)")
            value = self.environ.get(name)
            if value:
                return value
            if default is not None:
                return default
            raise self.fail(line, key, f"environment variable {name} is not set "
                                       f"(write ${{{name}:-default}} to give a default)")

        return self._VAR.sub(replace, text)

    def expand_tree(self, value: Any, line: int, key: str) -> Any:
        """A copy of ``value`` with every string expanded; mappings keep their lines."""
        if isinstance(value, _Mapping):
            out = _Mapping()
            out.line = value.line
            for k, v in value.items():
                kline = value.lines.get(k, line)
                sub = f"{key}.{k}" if key else str(k)
                out[k] = self.expand_tree(v, kline, sub)
                out.lines[k] = kline
                if isinstance(v, str) and out[k] != v:
                    out.raw[k] = v
            return out
        if isinstance(value, list):
            return [self.expand_tree(item, getattr(item, "line", line), f"{key}[{i}]")
                    for i, item in enumerate(value)]
        if isinstance(value, str) and "$" in value:
            return self.expand(value, line, key)
        return value

    # -- shapes -----------------------------------------------------------------------

    def mapping(self, value: Any, line: int, key: str) -> _Mapping:
        if not isinstance(value, _Mapping):
            raise self.fail(line, key, f"expected a mapping (key: value lines), found {_kind(value)}")
        return value

    def known_keys(self, mapping: _Mapping, allowed: tuple[str, ...], prefix: str) -> None:
        for k in mapping:
            if k not in allowed:
                close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(mapping.lines.get(k, mapping.line), f"{prefix}{k}",
                                f"unknown key; {hint}expected one of: {', '.join(allowed)}")

    def shown(self, mapping: _Mapping, key: str) -> str:
        """How a value may appear in an error: never a secret, never an expanded value."""
        if key in SECRET_KEYS:
            return "the value"
        if key in mapping.raw:
            return repr(mapping.raw[key])
        return repr(mapping[key])

    def get(self, mapping: _Mapping, key: str, kind: str, prefix: str, *,
            required: bool = False, choices: tuple[str, ...] = (), minimum: float | None = None) -> Any:
        """``mapping[key]`` checked to be ``kind`` ('str', 'int', 'number', 'bool')."""
        line = mapping.lines.get(key, mapping.line)
        name = f"{prefix}{key}"
        if key not in mapping or mapping[key] is None:
            if required:
                raise self.fail(mapping.line, name, f"missing; expected {_KINDS[kind]}")
            return None
        value = mapping[key]
        if isinstance(value, str) and key in mapping.raw and kind != "str":
            value = _from_env_text(value, kind)
            if value is None:
                raise self.fail(line, name, f"expected {_KINDS[kind]}; {mapping.raw[key]!r} "
                                            "does not give one")
        if not _is_kind(value, kind):
            raise self.fail(line, name, f"expected {_KINDS[kind]}, found {_kind(value)}")
        if choices and value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise self.fail(line, name, f"{self.shown(mapping, key)} is not allowed; {hint}"
                                        f"expected one of: {', '.join(choices)}")
        if minimum is not None and value < minimum:
            raise self.fail(line, name, f"expected a value >= {minimum:g}, found {self.shown(mapping, key)}")
        if kind == "str" and value == "" and required:
            raise self.fail(line, name, "must not be empty")
        return value


_KINDS = {"str": "a string", "int": "an integer", "number": "a number", "bool": "true or false"}


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "int" else isinstance(value, (int, float))


def _from_env_text(text: str, kind: str) -> Any:
    text = text.strip()
    if kind == "bool":
        return {"true": True, "yes": True, "on": True, "1": True,
                "false": False, "no": False, "off": False, "0": False}.get(text.lower())
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        return None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", _Mapping: "a mapping"}.get(type(value), type(value).__name__)


def _plain(value: Any) -> Any:
    """Plain dicts and lists, for what is handed to the Listener and the handlers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- sections

_TOP_KEYS = ("name", "broker_url", "pulse", "taskcluster", "prefetch", "concurrency", "retry",
             "max_length", "overflow", "expires", "backlog_warning", "declare_exchanges",
             "heartbeat", "grace_period", "health_port", "logging", "config", "bindings")
_INT_OPTIONS = {"prefetch": 1, "concurrency": 0, "max_length": 1, "expires": 1,
                "backlog_warning": 1, "heartbeat": 0, "health_port": 0}


def _taskcluster(r: _Reader, tc: _Mapping) -> dict:
    r.known_keys(tc, ("rootUrl", "credentials", "authorizedScopes", "maxRetries", "timeout"),
                 "taskcluster.")
    out: dict[str, Any] = {}
    for key, kind in (("rootUrl", "str"), ("maxRetries", "int"), ("timeout", "number")):
        value = r.get(tc, key, kind, "taskcluster.", minimum=0 if kind != "str" else None)
        if value is not None:
            out[key] = value
    if tc.get("authorizedScopes") is not None:
        scopes = tc["authorizedScopes"]
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise r.fail(tc.lines["authorizedScopes"], "taskcluster.authorizedScopes",
                         "expected a list of scope strings")
        out["authorizedScopes"] = list(scopes)
    if tc.get("credentials") is not None:
        creds = r.mapping(tc["credentials"], tc.lines["credentials"], "taskcluster.credentials")
        r.known_keys(creds, ("clientId", "accessToken", "certificate"), "taskcluster.credentials.")
        out["credentials"] = {}
        for key in ("clientId", "accessToken"):
            value = r.get(creds, key, "str", "taskcluster.credentials.")
            if value is not None:
                out["credentials"][key] = value
        cert = creds.get("certificate")
        if cert is not None:
            if not isinstance(cert, (str, dict)):
                raise r.fail(creds.lines["certificate"], "taskcluster.credentials.certificate",
                             f"expected a JSON string or a mapping, found {_kind(cert)}")
            out["credentials"]["certificate"] = _plain(cert)
    return out


def _binding(r: _Reader, item: Any, index: int, line: int, base: Path,
             resolve: bool) -> BindingConfig:
    prefix = f"bindings[{index}]."
    entry = r.mapping(item, line, f"bindings[{index}]")
    r.known_keys(entry, ("exchange", "fields", "route", "handler", "name"), prefix)
    exchange = r.get(entry, "exchange", "str", prefix, required=True)
    spec = _check_exchange(r, entry, exchange, prefix)
    fields: dict[str, Any] = {}
    if entry.get("fields") is not None:
        raw = r.mapping(entry["fields"], entry.lines["fields"], prefix + "fields")
        words = {w.name: w for w in spec.routing_key if w.constant is None}
        for key, value in raw.items():
            line_no = raw.lines.get(key, raw.line)
            if key not in words:
                close = difflib.get_close_matches(str(key), list(words), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise r.fail(line_no, f"{prefix}fields.{key}",
                             f"{exchange} has no routing-key field {key!r}; {hint}"
                             f"fields: {', '.join(words)}")
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise r.fail(line_no, f"{prefix}fields.{key}",
                             f"expected a string or an integer, found {_kind(value)}")
            if isinstance(value, str) and "." in value and not words[key].multiple_words:
                raise r.fail(line_no, f"{prefix}fields.{key}",
                             f"{r.shown(raw, key)} contains '.', which a single routing-key word cannot")
            fields[key] = value
    route = r.get(entry, "route", "str", prefix)
    if route is not None and fields:
        raise r.fail(entry.lines["route"], prefix + "route", "give either fields or route, not both")
    handler = r.get(entry, "handler", "str", prefix, required=True)
    name = r.get(entry, "name", "str", prefix)
    function = None
    if resolve:
        try:
            function = import_object(handler, base=base)
        except ConfigError as exc:
            raise r.fail(entry.lines["handler"], prefix + "handler", str(exc)) from exc
        if not callable(function):
            raise r.fail(entry.lines["handler"], prefix + "handler",
                         f"{handler!r} is {_kind(function)}, not a function")
    return BindingConfig(exchange=exchange, handler=handler, fields=fields, route=route, name=name,
                         function=function, line=entry.line)


def _check_exchange(r: _Reader, entry: _Mapping, exchange: str, prefix: str) -> Any:
    from .taskcluster.references import ExchangesReference, bundled

    classes = {n: ref for n, ref in bundled().items() if isinstance(ref, ExchangesReference)}
    line = entry.lines["exchange"]
    cls, dot, name = exchange.partition(".")
    if not dot:
        raise r.fail(line, prefix + "exchange",
                     f"expected <Service>Events.<exchange> such as QueueEvents.taskFailed, found {exchange!r}")
    ref = classes.get(cls)
    if ref is None:
        close = difflib.get_close_matches(cls, list(classes), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise r.fail(line, prefix + "exchange",
                     f"unknown exchanges class {cls!r}; {hint}known: {', '.join(sorted(classes))}")
    names = [ex.name for ex in ref.exchanges]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{cls}.{close[0]}'? " if close else ""
        raise r.fail(line, prefix + "exchange",
                     f"unknown exchange {exchange!r}; {hint}{cls} has: {', '.join(names)}")
    return ref.exchange(name)


def load_config(path: str | os.PathLike, *, environ: Mapping[str, str] | None = None,
                resolve_handlers: bool = True) -> ListenerConfig:
    """Read and check a listener file; import its handlers unless ``resolve_handlers=False``.

    ``environ`` (default ``os.environ``) supplies ``${VAR}`` values.  Raises
    :class:`ConfigError` naming file, line and key.  Touches no broker.
    """
    path = Path(path)
    r = _Reader(path, os.environ if environ is None else environ)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})", file=str(path)) from exc
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (_LineLoader is a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        lines = text.splitlines()
        if mark is not None and mark.line < len(lines) and "${" in lines[mark.line]:
            problem += " (inside {...} or [...], quote a value that holds ${...})"
        raise ConfigError(f"{path}:{line}: not valid YAML: {problem}", file=str(path), line=line) from exc
    if data is None:
        raise ConfigError(f"{path}:1: the file is empty; expected a mapping with at least 'name' "
                          "and 'bindings'", file=str(path), line=1)
    top = r.mapping(data, 1, "")
    r.known_keys(top, _TOP_KEYS, "")
    top = r.expand_tree(top, 1, "")

    values: dict[str, Any] = {"name": r.get(top, "name", "str", "", required=True)}
    values["broker_url"] = r.get(top, "broker_url", "str", "")
    if top.get("pulse") is not None:
        pulse = r.mapping(top["pulse"], top.lines["pulse"], "pulse")
        r.known_keys(pulse, ("username", "password", "host"), "pulse.")
        values["pulse_username"] = r.get(pulse, "username", "str", "pulse.", required=True)
        values["pulse_password"] = r.get(pulse, "password", "str", "pulse.", required=True)
        values["pulse_host"] = r.get(pulse, "host", "str", "pulse.")
        if values["broker_url"] is not None:
            raise r.fail(top.lines["pulse"], "pulse", "give either broker_url or pulse, not both")
    if top.get("taskcluster") is not None:
        values["taskcluster"] = _taskcluster(
            r, r.mapping(top["taskcluster"], top.lines["taskcluster"], "taskcluster"))
    for key, minimum in _INT_OPTIONS.items():
        values[key] = r.get(top, key, "int", "", minimum=minimum)
    values["grace_period"] = r.get(top, "grace_period", "number", "", minimum=0)
    values["declare_exchanges"] = r.get(top, "declare_exchanges", "bool", "")
    values["overflow"] = r.get(top, "overflow", "str", "", choices=OVERFLOW_POLICIES)
    if top.get("retry") is not None:
        retry = r.mapping(top["retry"], top.lines["retry"], "retry")
        r.known_keys(retry, ("max_attempts", "delay", "backoff", "max_delay"), "retry.")
        values["retry"] = {k: r.get(retry, k, "int" if k == "max_attempts" else "number", "retry.",
                                    minimum=1 if k in ("max_attempts", "backoff") else 0)
                           for k in retry}
    if top.get("logging") is not None:
        log = r.mapping(top["logging"], top.lines["logging"], "logging")
        r.known_keys(log, ("level", "format"), "logging.")
        level = r.get(log, "level", "str", "logging.")
        if level is not None:
            level = level.upper()  # like logging itself, any case
            if level not in LOG_LEVELS:
                raise r.fail(log.lines["level"], "logging.level",
                             f"{r.shown(log, 'level')} is not a level; expected one of: {', '.join(LOG_LEVELS)}")
        values["log_level"] = level
        values["log_format"] = r.get(log, "format", "str", "logging.")
    if top.get("config") is not None:
        values["config"] = _plain(r.mapping(top["config"], top.lines["config"], "config"))

    bindings = top.get("bindings")
    if bindings is None:
        raise r.fail(top.line, "bindings", "missing; expected a list of {exchange, fields or route, handler}")
    if not isinstance(bindings, list) or not bindings:
        raise r.fail(top.lines["bindings"], "bindings",
                     f"expected a non-empty list of {{exchange, fields or route, handler}}, found {_kind(bindings)}")
    base = path.resolve().parent
    values["bindings"] = tuple(
        _binding(r, item, i, getattr(item, "line", top.lines["bindings"]), base, resolve_handlers)
        for i, item in enumerate(bindings))
    lines = {str(k): v for k, v in top.lines.items()}
    return ListenerConfig(source=path, lines=lines, **values)


# --------------------------------------------------------------------------- handlers


def _file_module(file: Path) -> Any:
    """Import a Python file as a module named after it (stable across restarts, so handler
    names stay the same; a longer unique name if another module has taken it).  Its folder
    is first on ``sys.path`` while it loads, so it can import its siblings."""
    file = file.resolve()
    stem = file.stem
    existing = sys.modules.get(stem)
    if existing is not None and getattr(existing, "__file__", None) and Path(existing.__file__).resolve() == file:
        return existing
    name = stem
    if not stem.isidentifier() or existing is not None:
        digest = hashlib.sha1(str(file).encode()).hexdigest()[:8]
        name = f"_tclisten_file_{re.sub(r'[^A-Za-z0-9_]', '_', stem)}_{digest}"
        if name in sys.modules:
            return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {file} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(file.parent)
    added = folder not in sys.path
    if added:  # its sibling modules import as they would for a script, while it loads
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def import_object(spec: str, *, base: str | os.PathLike | None = None) -> Any:
    """Import ``package.module:attr`` or ``path/to/file.py:attr`` (relative to ``base``).

    ``attr`` may be dotted (``module:Class.method``); without ``:attr`` the module itself is
    returned.  Raises :class:`ConfigError` with the import's own error text.

    >>> import_object("os.path:join").__name__
    'join'
    """
    target, _, attr = spec.partition(":")
    if not target:
        raise ConfigError(f"{spec!r}: expected package.module:function or file.py:function")
    try:
        if target.endswith(".py") or os.sep in target or "/" in target:
            file = Path(base or ".") / target
            if not file.is_file():
                raise ConfigError(f"{spec!r}: no such file {file}")
            module = _file_module(file)
        else:
            module = importlib.import_module(target)
    except ConfigError:
        raise
    except ImportError as exc:
        hint = ""
        if base is not None and (Path(base) / f"{target.replace('.', '/')}.py").is_file():
            hint = f" (the file next to the configuration is written '{target.replace('.', '/')}.py:{attr}')"
        raise ConfigError(f"{spec!r} cannot be imported: {exc}{hint}") from exc
    except Exception as exc:  # the module itself is broken: say how, in one line
        raise ConfigError(f"{spec!r} cannot be imported: {type(exc).__name__}: {exc}") from exc
    value = module
    for part in attr.split(".") if attr else ():
        try:
            value = getattr(value, part)
        except AttributeError:
            names = [n for n in dir(value) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{spec!r}: {getattr(value, '__name__', target)!s} has no attribute "
                              f"{part!r}{hint}") from None
    return value


# --------------------------------------------------------------------------- building


def build_listener(config: ListenerConfig) -> Any:
    """The :class:`~tclisten.app.Listener` a :class:`ListenerConfig` describes, handlers
    bound.  Errors are :class:`ConfigError` naming the file and line."""
    from .app import Listener

    where = str(config.source or "<config>")
    try:
        app = Listener(config.name, **config.listener_kwargs())
    except ConfigError as exc:
        text = str(exc)
        key = next((k for k in config.lines if re.search(rf"\b{re.escape(k)}\b", text)), "")
        line = config.lines.get(key, 1)
        raise ConfigError(f"{where}:{line}: {key + ': ' if key else ''}{text}",
                          file=where, line=line, key=key) from exc
    base = Path(config.source).resolve().parent if config.source else Path.cwd()
    for index, b in enumerate(config.bindings):
        key = f"bindings[{index}]"
        try:
            fn = b.function if b.function is not None else import_object(b.handler, base=base)
            app.add_handler(fn, b.exchange, route=b.route, name=b.name, **dict(b.fields))
        except (ConfigError, BindingError, ValueError, TypeError) as exc:
            raise ConfigError(f"{where}:{b.line}: {key}: {exc}", file=where, line=b.line, key=key) from exc
    return app
