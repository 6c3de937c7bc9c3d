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
    handler_timeout: 600                   # null: no limit
    max_length: 20000                      # also: overflow, expires, backlog_warning, queue_type,
    retry: {max_attempts: 5, delay: 2}     # heartbeat, grace_period, health_port, workers, ...
    logging: {level: INFO, format: json}
    config: {notify_channel: "#ci"}        # given to handlers as ctx.config
    bindings:
      - exchange: QueueEvents.taskFailed
        fields: {provisionerId: proj-example}
        handler: handlers.py:on_failed     # a file next to this one, or package.module:function
        timeout: 60                        # this handler's own limit, retry policy and
        retry: {max_attempts: 2}           # body check against the exchange's schema
        validate: true
      - exchange: QueueEvents.taskCompleted
        route: index.project.example.#
        handler: example.reactions:on_indexed
      - exchange: exchange/hgpushes/v2     # any exchange, bound by a raw pattern
        routing_key: mozilla-central.#
        handler: example.reactions:on_push

Every top-level key except ``name``, ``pulse``, ``logging``, ``workers`` and ``bindings`` is
the :class:`~tclisten.app.Listener` keyword of the same name, read through its declaration in
:mod:`tclisten.options` (kind, minimum, choices; ``null`` is "no limit" where the option says
so).  ``broker_url`` is one URL or a list of them (failover).  ``workers`` is the number of
processes ``tclisten run`` starts.  ``${VAR}`` and ``${VAR:-default}`` in string values come
from the environment (``$$`` is a literal ``$``); a number or a boolean may come from the
environment too.  Files are read with ``yaml.safe_load`` rules (:mod:`tclisten.yamlfile`).

A bad file raises :class:`~tclisten.exceptions.ConfigError` naming the file, the line and the
key (``listener.yaml:14: bindings[0].exchange: unknown exchange 'QueueEvents.taskFailled':
did you mean 'QueueEvents.taskFailed'? ...``).  Values of secrets, and values that came from
the environment, are never repeated in an error.  ``load_config(path, lenient=True)`` (what
inspecting commands use) lets the ``taskcluster`` and ``config`` sections name unset
variables: only handlers read them.

>>> cfg = load_config("listener.yaml")            # doctest: +SKIP
>>> app = build_listener(cfg)                     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import yamlfile
from .exceptions import BindingError, ConfigError, did_you_mean
from .options import LOG_FORMATS, LOG_LEVELS, OPTIONS, Option
from .policy import RETRY_KEYS, RetryPolicy
from .yamlfile import LineMapping, Reader, kind_of, plain

if TYPE_CHECKING:  # the listener (and kombu with it) is imported when one is built
    from .app import Listener

logger = logging.getLogger(__name__)

__all__ = ["BindingConfig", "ListenerConfig", "PROCESS_OPTIONS", "build_listener", "import_object",
           "listener_keywords", "load_config"]

#: Options of the process that runs a listener rather than of the Listener itself.
PROCESS_OPTIONS: dict[str, Option] = {"workers": OPTIONS.get("workers") or Option(
    "workers", "int", 1, "processes to run, each consuming the same queue (competing consumers)",
    minimum=1, cli=True)}
#: Sections of the file that only handlers read: lenient loading skips their unset variables.
HANDLER_SECTIONS = ("taskcluster", "config")
_PULSE_KEYS = {"pulse_username": "username", "pulse_password": "password", "pulse_host": "host"}
_SECTIONS = ("name", "pulse", "logging", "bindings")
_BINDING_KEYS = ("exchange", "fields", "route", "routing_key", "handler", "name", "timeout", "retry", "validate")
_TASKCLUSTER_KEYS = ("rootUrl", "credentials", "authorizedScopes", "maxRetries", "timeout", "signedUrlExpiration")


@dataclass(frozen=True)
class BindingConfig:
    """One ``bindings`` entry: an exchange, fields, a route or a raw routing-key pattern, the
    handler to call, and the handler's own ``timeout`` (when ``timeout_given``), ``retry`` and
    ``validate``."""

    exchange: str
    handler: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    route: str | None = None
    name: str | None = None
    routing_key: str | None = None
    timeout: float | None = None
    timeout_given: bool = False
    retry: Mapping[str, Any] | None = None
    validate: bool | None = None
    function: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ListenerConfig:
    """A parsed and checked listener file; :func:`build_listener` turns it into a Listener.

    One field per option of :data:`tclisten.options.OPTIONS`; options left out of the file
    are ``None`` here and get the Listener's defaults (``given`` lists those the file set,
    so ``handler_timeout: null``, no limit, is told apart from no ``handler_timeout``).
    Secrets (``broker_url``, ``pulse_password``, ``taskcluster``) and the handlers'
    ``config`` (which may hold some) stay out of the repr.
    """

    name: str
    source: Path | None = None
    broker_url: str | tuple[str, ...] | None = field(default=None, repr=False)
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
    handler_timeout: float | None = None
    queue_type: str | None = None
    prune_bindings: bool | None = None
    validate: bool | None = None
    health_port: int | None = None
    health_host: str | None = None
    workers: int | None = None
    log_level: str | None = None
    log_format: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets
    bindings: tuple[BindingConfig, ...] = ()
    given: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    lines: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    def listener_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~tclisten.app.Listener` the file sets."""
        kwargs: dict[str, Any] = {}
        for key in listener_keywords():
            if key == "config":
                continue
            value = getattr(self, key)
            if value is not None or key in self.given:
                kwargs[key] = dict(value) if isinstance(value, Mapping) else (
                    list(value) if isinstance(value, tuple) else value)
        kwargs["config"] = dict(self.config)
        return kwargs


def listener_keywords() -> tuple[str, ...]:
    """The options that are keywords of the Listener (not of the process, like ``workers``)."""
    from .app import Listener

    parameters = inspect.signature(Listener).parameters
    return tuple(name for name in OPTIONS if name in parameters)


# --------------------------------------------------------------------------- sections


def _taskcluster(r: Reader, tc: LineMapping) -> dict:
    r.known_keys(tc, _TASKCLUSTER_KEYS, "taskcluster.")
    out: dict[str, Any] = {}
    for key, kind in (("rootUrl", "str"), ("maxRetries", "int"), ("timeout", "number"),
                      ("signedUrlExpiration", "number")):
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
                             f"expected a JSON string or a mapping, found {kind_of(cert)}")
            out["credentials"]["certificate"] = plain(cert)
    return out


_RETRY_KINDS = {f.name: "int" if f.type in (int, "int") else "number" for f in dataclasses.fields(RetryPolicy)}


def _retry(r: Reader, parent: LineMapping, key: str, prefix: str) -> dict[str, Any]:
    """A ``retry`` mapping (:data:`tclisten.policy.RETRY_KEYS`), checked by RetryPolicy itself."""
    name = f"{prefix}{key}"
    retry = r.mapping(parent[key], parent.lines[key], name)
    r.known_keys(retry, RETRY_KEYS, f"{name}.")
    values = {k: r.get(retry, k, _RETRY_KINDS[k], f"{name}.") for k in retry}
    values = {k: v for k, v in values.items() if v is not None}
    try:
        RetryPolicy.coerce(values)
    except ConfigError as exc:
        wrong = next((k for k in values if re.search(rf"\b{k}\b", str(exc))), None)
        raise r.fail(retry.lines.get(wrong, retry.line), f"{name}.{wrong}" if wrong else name, str(exc)) from None
    return values


def _broker_url(r: Reader, top: LineMapping) -> str | tuple[str, ...] | None:
    value = r.option(top, "broker_url")
    if value is None:
        return None
    from .broker import BrokerAddress

    try:  # one user, one kind of TLS, URLs that parse: said at the line of broker_url
        BrokerAddress.resolve(value, environ={})
    except ConfigError as exc:
        raise r.fail(top.lines["broker_url"], "broker_url", str(exc)) from None
    return tuple(value) if isinstance(value, list) else value


def _logging(r: Reader, top: LineMapping) -> tuple[str | None, str | None]:
    log = r.mapping(top["logging"], top.lines["logging"], "logging")
    r.known_keys(log, ("level", "format"), "logging.")
    level = r.get(log, "level", "str", "logging.")
    if level is not None:
        level = level.upper()  # like logging itself, any case
        if level not in LOG_LEVELS:
            raise r.fail(log.lines["level"], "logging.level", f"{r.shown(log, 'level')} is not a level; "
                                                              f"expected one of: {', '.join(LOG_LEVELS)}")
    return level, r.get(log, "format", "str", "logging.", choices=LOG_FORMATS)


def _fields(r: Reader, entry: LineMapping, topic: Any, exchange: str, prefix: str) -> dict[str, Any]:
    raw = r.mapping(entry["fields"], entry.lines["fields"], prefix + "fields")
    words = {w.name: w for w in getattr(topic, "routing_key", ()) if w.constant is None}
    if not words and raw:
        raise r.fail(raw.line, prefix + "fields", f"{exchange} has no bundled reference, so no routing-key "
                                                  "fields: give routing_key: <pattern> instead")
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        line_no = raw.lines.get(key, raw.line)
        if key not in words:
            raise r.fail(line_no, f"{prefix}fields.{key}",
                         f"{exchange} has no routing-key field {key!r}; {did_you_mean(str(key), words)}"
                         f"fields: {', '.join(words)}")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise r.fail(line_no, f"{prefix}fields.{key}", f"expected a string or an integer, found {kind_of(value)}")
        if isinstance(value, str) and "." in value and not words[key].multiple_words:
            raise r.fail(line_no, f"{prefix}fields.{key}",
                         f"{r.shown(raw, key)} contains '.', which a single routing-key word cannot")
        fields[key] = value
    return fields


def _binding(r: Reader, item: Any, index: int, line: int, base: Path, resolve_handlers: bool) -> BindingConfig:
    from .topics import binding_pattern, resolve

    prefix = f"bindings[{index}]."
    entry = r.mapping(item, line, f"bindings[{index}]")
    r.known_keys(entry, _BINDING_KEYS, prefix)
    exchange = r.get(entry, "exchange", "str", prefix, required=True)
    try:
        topic = resolve(exchange)  # the one resolver of exchange names
    except BindingError as exc:
        raise r.fail(entry.lines["exchange"], prefix + "exchange", str(exc)) from None
    fields = _fields(r, entry, topic, exchange, prefix) if entry.get("fields") is not None else {}
    route = r.get(entry, "route", "str", prefix)
    routing_key = r.get(entry, "routing_key", "str", prefix)
    given = [k for k, v in (("fields", fields), ("route", route), ("routing_key", routing_key)) if v]
    if len(given) > 1:
        raise r.fail(entry.lines[given[1]], prefix + given[1], f"give either {given[0]} or {given[1]}, not both")
    try:
        binding_pattern(topic, route=route, routing_key=routing_key, fields=fields)
    except BindingError as exc:
        raise r.fail(entry.line, f"bindings[{index}]", str(exc)) from None
    handler = r.get(entry, "handler", "str", prefix, required=True)
    timeout_given = "timeout" in entry
    timeout = r.option(entry, "handler_timeout", prefix, key="timeout")
    retry = _retry(r, entry, "retry", prefix) if entry.get("retry") is not None else None
    validate = r.option(entry, "validate", prefix)
    function = None
    if resolve_handlers:
        try:
            function = import_object(handler, base=base)
        except ConfigError as exc:
            raise r.fail(entry.lines["handler"], prefix + "handler", str(exc)) from exc
        if not callable(function):
            raise r.fail(entry.lines["handler"], prefix + "handler",
                         f"{handler!r} is {kind_of(function)}, not a function")
    return BindingConfig(exchange=exchange, handler=handler, fields=fields, route=route,
                         name=r.get(entry, "name", "str", prefix), routing_key=routing_key, timeout=timeout,
                         timeout_given=timeout_given, retry=retry, validate=validate, function=function,
                         line=entry.line)


def _top_keys() -> tuple[str, ...]:
    options = [name for name in OPTIONS if name not in _PULSE_KEYS]
    return ("name", *options, *(n for n in PROCESS_OPTIONS if n not in OPTIONS), "pulse", "logging", "bindings")


def load_config(path: str | os.PathLike, *, environ: Mapping[str, str] | None = None,
                resolve_handlers: bool = True, lenient: bool = False) -> ListenerConfig:
    """Read and check a listener file; import its handlers unless ``resolve_handlers=False``.

    ``environ`` (default ``os.environ``) supplies ``${VAR}`` values; with ``lenient`` a value
    of the ``taskcluster`` or ``config`` section naming an unset variable is left out instead
    of failing (for inspecting a listener: only its handlers read those).  Raises
    :class:`ConfigError` naming file, line and key.  Touches no broker.
    """
    path = Path(path)
    r = Reader(path, os.environ if environ is None else environ, lenient=HANDLER_SECTIONS if lenient else ())
    data = yamlfile.read(path)
    if data is None:
        raise ConfigError(f"{path}:1: the file is empty; expected a mapping with at least 'name' "
                          "and 'bindings'", file=str(path), line=1)
    top = r.mapping(data, 1, "")
    r.known_keys(top, _top_keys(), "")
    top = r.expand_tree(top, 1, "")

    values: dict[str, Any] = {"name": r.get(top, "name", "str", "", required=True)}
    given = _options(r, top, values)
    values["broker_url"] = _broker_url(r, top)
    if top.get("pulse") is not None:
        values.update(_pulse(r, top, broker_url_given=values["broker_url"] is not None))
    if top.get("taskcluster") is not None:
        section = r.mapping(top["taskcluster"], top.lines["taskcluster"], "taskcluster")
        values["taskcluster"] = _taskcluster(r, section)
    if top.get("retry") is not None:
        values["retry"] = _retry(r, top, "retry", "")
    if top.get("logging") is not None:
        values["log_level"], values["log_format"] = _logging(r, top)
    if top.get("config") is not None:
        values["config"] = plain(r.mapping(top["config"], top.lines["config"], "config"))
    if r.unset:
        logger.debug("%s: left out values naming unset variables %s (inspection only)", path,
                     ", ".join(sorted(set(r.unset))))
    values["bindings"] = _bindings(r, top, path.resolve().parent, resolve_handlers)
    lines = {str(k): v for k, v in top.lines.items()}
    return ListenerConfig(source=path, lines=lines, given=frozenset(given), **values)


def _options(r: Reader, top: LineMapping, values: dict[str, Any]) -> set[str]:
    """Read every plain option of the file into ``values``; returns the names the file gives
    (a ``null`` counts where the option allows it)."""
    given = set()
    for name, option in {**OPTIONS, **PROCESS_OPTIONS}.items():
        if name in _PULSE_KEYS or option.kind == "mapping" or name == "broker_url":
            continue
        values[name] = r.option(top, name, declared=option)
        if values[name] is not None or (option.nullable and name in top):
            given.add(name)
    return given


def _pulse(r: Reader, top: LineMapping, *, broker_url_given: bool) -> dict[str, Any]:
    """The ``pulse`` section: the Listener keywords it stands for (``pulse_username``, ...)."""
    pulse = r.mapping(top["pulse"], top.lines["pulse"], "pulse")
    r.known_keys(pulse, tuple(_PULSE_KEYS.values()), "pulse.")
    values = {name: r.option(pulse, name, "pulse.", key=key) for name, key in _PULSE_KEYS.items()}
    for key in ("username", "password"):
        if values[f"pulse_{key}"] is None:
            raise r.fail(pulse.line, f"pulse.{key}", "missing; expected a string")
    if broker_url_given:
        raise r.fail(top.lines["pulse"], "pulse", "give either broker_url or pulse, not both")
    return values


def _bindings(r: Reader, top: LineMapping, base: Path, resolve_handlers: bool) -> tuple[BindingConfig, ...]:
    bindings = top.get("bindings")
    if bindings is None:
        raise r.fail(top.line, "bindings", "missing; expected a list of {exchange, fields or route, handler}")
    if not isinstance(bindings, list) or not bindings:
        raise r.fail(top.lines["bindings"], "bindings", "expected a non-empty list of {exchange, fields or "
                                                        f"route, handler}}, found {kind_of(bindings)}")
    return tuple(_binding(r, item, i, getattr(item, "line", top.lines["bindings"]), base, resolve_handlers)
                 for i, item in enumerate(bindings))


# --------------------------------------------------------------------------- handlers


def _file_module(file: Path) -> Any:
    """Import a Python file as a module named after it (stable across restarts, so handler
    names stay the same; a longer unique name if another module has taken it).  Its folder
    is first on ``sys.path`` while it loads, so it can import its siblings."""
    file = file.resolve()
    stem = file.stem
    existing = sys.modules.get(stem)
    existing_file = getattr(existing, "__file__", None) if existing is not None else None
    if existing_file and Path(existing_file).resolve() == file:
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
            hint = did_you_mean(part, [n for n in dir(value) if not n.startswith("_")]).rstrip()
            raise ConfigError(f"{spec!r}: {getattr(value, '__name__', target)!s} has no attribute "
                              f"{part!r}{'; ' + hint if hint else ''}") from None
    return value


# --------------------------------------------------------------------------- building


def build_listener(config: ListenerConfig, *, overrides: Mapping[str, Any] | None = None) -> Listener:
    """The :class:`~tclisten.app.Listener` a :class:`ListenerConfig` describes, handlers
    bound; ``overrides`` (Listener keywords, e.g. from ``tclisten run --prefetch``) win over
    the file.  Errors are :class:`ConfigError` naming the file and line (or the override)."""
    from .app import Listener

    where = str(config.source or "<config>")
    kwargs = {**config.listener_kwargs(), **dict(overrides or {})}
    try:
        app = Listener(config.name, **kwargs)
    except ConfigError as exc:
        text = str(exc)
        mentioned = [k for k in kwargs if re.search(rf"\b{re.escape(k)}\b", text)]
        if any(k in (overrides or {}) for k in mentioned):  # the override is at fault, not the file
            raise ConfigError(f"{text} (with {', '.join(OPTIONS[k].flag for k in mentioned if k in OPTIONS)} "
                              f"given over {where})", file=where) from exc
        key = next((k for k in config.lines if k in mentioned), "")
        line = config.lines.get(key, 1)
        raise ConfigError(f"{where}:{line}: {key + ': ' if key else ''}{text}",
                          file=where, line=line, key=key) from exc
    base = Path(config.source).resolve().parent if config.source else Path.cwd()
    for index, b in enumerate(config.bindings):
        key = f"bindings[{index}]"
        try:
            fn = b.function if b.function is not None else import_object(b.handler, base=base)
            extra: dict[str, Any] = {"timeout": b.timeout} if b.timeout_given else {}
            app.add_handler(fn, b.exchange, route=b.route, routing_key=b.routing_key, name=b.name,
                            retry=dict(b.retry) if b.retry else None, validate=b.validate, **extra,
                            **dict(b.fields))
        except (ConfigError, BindingError, ValueError, TypeError) as exc:
            raise ConfigError(f"{where}:{b.line}: {key}: {exc}", file=where, line=b.line, key=key) from exc
    return app
