"""Reading a YAML file so that every mistake names its file, line and key.

:func:`read` parses with ``yaml.safe_load`` rules into :class:`LineMapping` objects that
remember the line of each key and reject duplicate keys; a :class:`Reader` expands
``${VAR}`` / ``${VAR:-default}`` from the environment (``$$`` is a literal ``$``) and checks
values, raising :class:`~tclisten.exceptions.ConfigError` as ``file:line: key: problem``.
Values of secrets and values that came from the environment are never repeated in an error.
Checking one listener option reads its declaration in :mod:`tclisten.options`.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.yaml"
>>> _ = path.write_text("name: x\\nprefetch: ${P:-5}\\n")
>>> r = Reader(path, {})
>>> top = r.expand_tree(read(path), 1, "")
>>> r.option(top, "prefetch"), top.lines["prefetch"]
(5, 2)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from . import options as opts
from .exceptions import ConfigError, did_you_mean

__all__ = ["LineMapping", "Reader", "kind_of", "plain", "read"]

#: Keys whose values never appear in an error, at any depth.
SECRET_KEYS = frozenset({"broker_url", "password", "accessToken", "certificate"})
_KINDS = {**opts.KINDS, "list": "a list"}


class LineMapping(dict):
    """A YAML mapping that remembers its own line and the line of each key (1-based), and
    the original text of values that came from the environment."""

    line = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[Any, int] = {}
        self.raw: dict[Any, str] = {}


class _LineLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings are :class:`LineMapping` and reject duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineMapping:
    loader.flatten_mapping(node)
    result = LineMapping()
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


def read(path: str | os.PathLike) -> Any:
    """The parsed document of ``path`` (None for an empty file); mappings are
    :class:`LineMapping`.  Unreadable files and bad YAML raise ConfigError with the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})", file=str(path)) from exc
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 (_LineLoader is a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        lines = text.splitlines()
        if mark is not None and mark.line < len(lines) and "${" in lines[mark.line]:
            problem += " (inside {...} or [...], quote a value that holds ${...})"
        raise ConfigError(f"{path}:{line}: not valid YAML: {problem}", file=str(path), line=line) from exc


def kind_of(value: Any) -> str:
    """How a value's type is named in an error."""
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", LineMapping: "a mapping"}.get(type(value), type(value).__name__)


def plain(value: Any) -> Any:
    """Plain dicts and lists, for what is handed to the Listener and the handlers."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class _Unset(Exception):
    """An environment variable is not set (raised inside a lenient section: the value is dropped)."""


class Reader:
    """Reads one file's values, raising ConfigErrors that name file, line and key.

    ``lenient``: top-level sections (``taskcluster``, ``config``) where a value naming an
    unset environment variable is dropped instead of failing (it only matters to handlers,
    and inspecting a listener runs none); the names skipped are kept in :attr:`unset`.
    """

    _VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|(\{[^}]*\}?))")

    def __init__(self, path: Path, environ: Mapping[str, str], *, lenient: Iterable[str] = ()) -> None:
        self.path = path
        self.environ = environ
        self.lenient = frozenset(lenient)
        self.unset: list[str] = []

    def fail(self, line: int, key: str, problem: str) -> ConfigError:
        where = f"{self.path}:{line}: {key}: " if key else f"{self.path}:{line}: "
        return ConfigError(where + problem, file=str(self.path), line=line, key=key)

    # -- environment ------------------------------------------------------------------

    def expand(self, text: str, line: int, key: str) -> str:
        lenient = key.split(".", 1)[0].split("[", 1)[0] in self.lenient

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
            if lenient:
                self.unset.append(name)
                raise _Unset(name)
            raise self.fail(line, key, f"environment variable {name} is not set "
                                       f"(write ${{{name}:-default}} to give a default)")

        return self._VAR.sub(replace, text)

    def expand_tree(self, value: Any, line: int, key: str) -> Any:
        """A copy of ``value`` with every string expanded; mappings keep their lines."""
        if isinstance(value, LineMapping):
            out = LineMapping()
            out.line = value.line
            for k, v in value.items():
                kline = value.lines.get(k, line)
                sub = f"{key}.{k}" if key else str(k)
                try:
                    out[k] = self.expand_tree(v, kline, sub)
                except _Unset:
                    continue  # lenient: as if the key were not there
                out.lines[k] = kline
                if isinstance(v, str) and out[k] != v:
                    out.raw[k] = v
            return out
        if isinstance(value, list):
            items = []
            for i, item in enumerate(value):
                try:
                    items.append(self.expand_tree(item, getattr(item, "line", line), f"{key}[{i}]"))
                except _Unset:
                    continue
            return items
        if isinstance(value, str) and "$" in value:
            return self.expand(value, line, key)
        return value

    # -- shapes -----------------------------------------------------------------------

    def mapping(self, value: Any, line: int, key: str) -> LineMapping:
        if not isinstance(value, LineMapping):
            raise self.fail(line, key, f"expected a mapping (key: value lines), found {kind_of(value)}")
        return value

    def known_keys(self, mapping: LineMapping, allowed: Iterable[str], prefix: str) -> None:
        allowed = tuple(allowed)
        for k in mapping:
            if k not in allowed:
                raise self.fail(mapping.lines.get(k, mapping.line), f"{prefix}{k}",
                                f"unknown key; {did_you_mean(str(k), allowed)}expected one of: {', '.join(allowed)}")

    def shown(self, mapping: LineMapping, key: str, secret: bool = False) -> str:
        """How a value may appear in an error: never a secret, never an expanded value."""
        if secret or key in SECRET_KEYS:
            return "the value"
        if key in mapping.raw:
            return repr(mapping.raw[key])
        return repr(mapping[key])

    def get(self, mapping: LineMapping, key: str, kind: str, prefix: str, *, required: bool = False,
            choices: tuple[str, ...] = (), minimum: float | None = None) -> Any:
        """``mapping[key]`` checked to be ``kind`` ('str', 'int', 'number', 'bool')."""
        declared = opts.Option(key, kind, None, "", minimum=minimum, choices=choices)
        return self._check(mapping, key, declared, prefix, required=required)

    def option(self, mapping: LineMapping, name: str, prefix: str = "", *, key: str | None = None,
               declared: opts.Option | None = None) -> Any:
        """The value of listener option ``name`` (:data:`tclisten.options.OPTIONS`) written as
        ``key`` (default: the option's name), checked against its declaration."""
        return self._check(mapping, key or name, declared or opts.OPTIONS[name], prefix)

    def _check(self, mapping: LineMapping, key: str, option: opts.Option, prefix: str, *,
               required: bool = False) -> Any:
        line = mapping.lines.get(key, mapping.line)
        name = f"{prefix}{key}"
        if key not in mapping or mapping[key] is None:
            if required:
                raise self.fail(mapping.line, name, f"missing; expected {_KINDS[option.kind]}")
            return None
        value = mapping[key]
        if isinstance(value, str) and key in mapping.raw and option.kind not in ("str", "urls"):
            value = _from_text(value, option)  # a number or a boolean from the environment
            if value is _NOT_GIVEN:
                raise self.fail(line, name, f"expected {option.describe()}; {mapping.raw[key]!r} does not give one")
            if value is None:
                return None  # "none" from the environment: no limit
        if not _fits(value, option.kind):
            raise self.fail(line, name, f"expected {_KINDS[option.kind]}, found {kind_of(value)}")
        if option.choices and value not in option.choices:
            raise self.fail(line, name, f"{self.shown(mapping, key, option.secret)} is not allowed; "
                                        f"{did_you_mean(str(value), option.choices)}"
                                        f"expected one of: {', '.join(option.choices)}")
        if option.minimum is not None and value < option.minimum:
            raise self.fail(line, name, f"expected a value >= {option.minimum:g}, "
                                        f"found {self.shown(mapping, key, option.secret)}")
        if option.kind == "str" and value == "" and required:
            raise self.fail(line, name, "must not be empty")
        return value


_NOT_GIVEN: Any = object()


def _from_text(text: str, option: opts.Option) -> Any:
    """A value of ``option``'s kind from environment text, or ``_NOT_GIVEN``."""
    if option.name in opts.OPTIONS and opts.OPTIONS[option.name] is option:
        try:
            return opts.parse_text(option.name, text)  # the options' own words: none, yes, off, ...
        except ConfigError:
            return _NOT_GIVEN
    try:  # a nested key (taskcluster.maxRetries, retry.delay): a number
        return int(text) if option.kind == "int" else float(text)
    except ValueError:
        return _NOT_GIVEN


def _fits(value: Any, kind: str) -> bool:
    """Whether a parsed YAML value is of ``kind`` (a boolean is no number)."""
    if kind in ("str", "bool"):
        return isinstance(value, str if kind == "str" else bool)
    if kind == "urls":
        return isinstance(value, str) or (isinstance(value, list) and bool(value)
                                          and all(isinstance(item, str) for item in value))
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
