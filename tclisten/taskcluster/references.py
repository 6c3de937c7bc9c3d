"""Taskcluster API and exchanges references: load, check, import.

A *reference* is Taskcluster's machine-readable description of one service: its REST
functions (``api.json``) or its Pulse exchanges (``exchanges.json``).  tclisten builds its
client classes and its exchange classes from them, so this module is the first stage of the
pipeline and touches no socket except when asked to load a live deployment.

Sources :func:`load` understands:

- a directory in deployment layout (``<dir>/references/manifest.json``, ``<dir>/manifest.json``,
  or bare ``<service>/<version>/api.json`` files);
- one ``api.json`` / ``exchanges.json`` file, or a 2015 ``apis.json`` bundle;
- a live deployment's rootUrl (``https://tc.example.com``): its
  ``/references/manifest.json`` and every reference it lists are fetched and cached.

>>> refs = bundled()
>>> refs["Queue"].function("task").route
'/task/<taskId>'
>>> refs["QueueEvents"].exchange("taskCompleted").exchange
'task-completed'
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Union

from ..exceptions import ReferenceFormatError

logger = logging.getLogger(__name__)

__all__ = [
    "APIReference",
    "Exchange",
    "ExchangesReference",
    "Function",
    "RoutingKeyWord",
    "bundled",
    "bundled_dir",
    "class_name_for",
    "import_references",
    "load",
    "parse",
]

HTTP_METHODS = frozenset({"get", "post", "put", "delete", "patch", "head"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ROUTE_PARAM = re.compile(r"<([^<>/]+)>")

#: Sizes the queue service enforces on its routing-key words although its published
#: exchanges reference does not state them (see the queue's routing-key documentation).
QUEUE_ROUTING_KEY_MAX_SIZES = {
    "taskId": 22,
    "runId": 3,
    "workerGroup": 38,
    "workerId": 38,
    "provisionerId": 38,
    "workerType": 38,
    "schedulerId": 38,
    "taskGroupId": 22,
}


@dataclass(frozen=True)
class Function:
    """One REST function of a service (an ``api.json`` entry of type ``function``)."""

    name: str
    method: str
    route: str
    args: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    input: str | None = None
    output: str | None = None
    scopes: Any = None
    stability: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class RoutingKeyWord:
    """One word (or, when ``multiple_words``, run of words) of a routing key."""

    name: str
    required: bool = False
    multiple_words: bool = False
    constant: str | None = None
    max_size: int | None = None


@dataclass(frozen=True)
class Exchange:
    """One topic exchange of a service (an ``exchanges.json`` entry)."""

    name: str
    exchange: str
    routing_key: tuple[RoutingKeyWord, ...]
    schema: str | None = None


@dataclass(frozen=True)
class APIReference:
    """A service's REST API; ``base_url`` is set for 2015 references only."""

    class_name: str
    service_name: str
    api_version: str
    functions: tuple[Function, ...]
    base_url: str | None = None
    source: str = field(default="", compare=False)

    kind = "api"

    def function(self, name: str) -> Function:
        for fn in self.functions:
            if fn.name == name:
                return fn
        raise KeyError(f"{self.class_name} has no function {name!r}")


@dataclass(frozen=True)
class ExchangesReference:
    """A service's Pulse exchanges, all named ``exchange_prefix + exchange``."""

    class_name: str
    service_name: str
    api_version: str
    exchange_prefix: str
    exchanges: tuple[Exchange, ...]
    source: str = field(default="", compare=False)

    kind = "exchanges"

    def exchange(self, name: str) -> Exchange:
        for ex in self.exchanges:
            if ex.name == name:
                return ex
        raise KeyError(f"{self.class_name} has no exchange {name!r}")


Reference = Union[APIReference, ExchangesReference]


def class_name_for(service_name: str, kind: str = "api") -> str:
    """The class name the official clients use: ``purge-cache`` -> ``PurgeCache``.

    >>> class_name_for("worker-manager", "exchanges")
    'WorkerManagerEvents'
    """
    base = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", service_name) if part)
    return base + ("Events" if kind == "exchanges" else "")


# --------------------------------------------------------------------------- parsing


class _Checker:
    """Reads fields of one reference, raising errors that name the source and entry."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, problem: str, entry: str | None = None) -> ReferenceFormatError:
        where = f"{self.source}: entry {entry}: " if entry else f"{self.source}: "
        return ReferenceFormatError(where + problem, source=self.source, entry=entry)

    def get(self, obj: dict, key: str, kind: type | tuple, entry: str | None = None,
            required: bool = True, default: Any = None) -> Any:
        if key not in obj or obj[key] is None:
            if required:
                raise self.fail(f"missing {key!r}", entry)
            return default
        value = obj[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(f"{key!r} must be {expected}, not {type(value).__name__}", entry)
        return value

    def strings(self, obj: dict, key: str, entry: str) -> tuple[str, ...]:
        values = self.get(obj, key, list, entry, required=False, default=[])
        for value in values:
            if not isinstance(value, str):
                raise self.fail(f"{key!r} must list strings, found {value!r}", entry)
        return tuple(values)


def _entry_label(index: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"#{index} {name!r}" if isinstance(name, str) else f"#{index}"


def _parse_function(check: _Checker, raw: dict, label: str) -> Function:
    name = check.get(raw, "name", str, label)
    if not _IDENTIFIER.match(name):
        raise check.fail(f"function name {name!r} is not an identifier", label)
    method = check.get(raw, "method", str, label).lower()
    if method not in HTTP_METHODS:
        raise check.fail(f"unknown HTTP method {raw['method']!r}", label)
    route = check.get(raw, "route", str, label)
    if not route.startswith("/"):
        raise check.fail(f"route {route!r} does not start with '/'", label)
    args = check.strings(raw, "args", label)
    in_route = _ROUTE_PARAM.findall(route)
    if sorted(in_route) != sorted(args) or len(set(args)) != len(args):
        raise check.fail(f"args {list(args)} do not match the parameters of route {route!r}", label)
    for arg in args:
        if not _IDENTIFIER.match(arg):
            raise check.fail(f"argument name {arg!r} is not an identifier", label)
    return Function(
        name=name,
        method=method,
        route=route,
        args=args,
        query=check.strings(raw, "query", label),
        input=check.get(raw, "input", str, label, required=False),
        output=check.get(raw, "output", str, label, required=False),
        scopes=raw.get("scopes"),
        stability=check.get(raw, "stability", str, label, required=False),
        category=check.get(raw, "category", str, label, required=False),
    )


def _parse_exchange(check: _Checker, raw: dict, label: str, service: str) -> Exchange:
    name = check.get(raw, "name", str, label)
    if not _IDENTIFIER.match(name):
        raise check.fail(f"exchange name {name!r} is not an identifier", label)
    exchange = check.get(raw, "exchange", str, label)
    words = []
    seen: set[str] = set()
    for index, word in enumerate(check.get(raw, "routingKey", list, label)):
        where = f"{label} routingKey #{index}"
        if not isinstance(word, dict):
            raise check.fail("routing-key word must be an object", where)
        word_name = check.get(word, "name", str, where)
        if word_name in seen:
            raise check.fail(f"routing-key word {word_name!r} appears twice", where)
        seen.add(word_name)
        max_size = check.get(word, "maxSize", int, where, required=False)
        if max_size is None and service == "queue":
            max_size = QUEUE_ROUTING_KEY_MAX_SIZES.get(word_name)
        words.append(RoutingKeyWord(
            name=word_name,
            required=check.get(word, "required", bool, where, required=False, default=False),
            multiple_words=check.get(word, "multipleWords", bool, where, required=False, default=False),
            constant=check.get(word, "constant", str, where, required=False),
            max_size=max_size,
        ))
    return Exchange(name=name, exchange=exchange, routing_key=tuple(words),
                    schema=check.get(raw, "schema", str, label, required=False))


def _service_from_base_url(check: _Checker, base_url: str) -> tuple[str, str]:
    """``https://queue.taskcluster.net/v1`` -> ``("queue", "v1")`` (2015 references)."""
    parsed = urllib.parse.urlsplit(base_url)
    host_part = (parsed.hostname or "").split(".")[0]
    version = parsed.path.strip("/").split("/")[-1]
    if not host_part or not version:
        raise check.fail(f"cannot tell service and version from baseUrl {base_url!r}")
    return host_part, version


def _service_from_prefix(check: _Checker, prefix: str) -> tuple[str, str]:
    """``exchange/taskcluster-queue/v1/`` -> ``("queue", "v1")``."""
    parts = [p for p in prefix.split("/") if p]
    if len(parts) < 3 or parts[0] != "exchange":
        raise check.fail(f"exchangePrefix {prefix!r} is not of the form exchange/<name>/<version>/")
    service = parts[1]
    if service.startswith("taskcluster-"):
        service = service[len("taskcluster-"):]
    return service, parts[-1]


def parse(data: Any, source: str, class_name: str | None = None) -> Reference:
    """Check one reference (current or 2015 layout) and return its typed form.

    Raises :class:`ReferenceFormatError` naming ``source`` and the faulty entry.
    """
    check = _Checker(source)
    if not isinstance(data, dict):
        raise check.fail(f"a reference must be a JSON object, not {type(data).__name__}")
    entries = check.get(data, "entries", list)
    is_exchanges = "exchangePrefix" in data
    if is_exchanges:
        prefix = check.get(data, "exchangePrefix", str)
        if not prefix.endswith("/"):
            raise check.fail(f"exchangePrefix {prefix!r} must end with '/'")
        service, version = _service_from_prefix(check, prefix)
    else:
        base_url = check.get(data, "baseUrl", str, required=False)
        if base_url is not None and "serviceName" not in data:
            service, version = _service_from_base_url(check, base_url)
        else:
            service = check.get(data, "serviceName", str)
            version = check.get(data, "apiVersion", str)
    service = check.get(data, "serviceName", str, required=False, default=service)
    version = check.get(data, "apiVersion", str, required=False, default=version)

    parsed: list = []
    names: set[str] = set()
    expected_type = "topic-exchange" if is_exchanges else "function"
    for index, raw in enumerate(entries):
        label = _entry_label(index, raw)
        if not isinstance(raw, dict):
            raise check.fail("entry must be an object", label)
        entry_type = check.get(raw, "type", str, label)
        if entry_type != expected_type:
            raise check.fail(f"type {entry_type!r} where {expected_type!r} was expected", label)
        item = (_parse_exchange(check, raw, label, service) if is_exchanges
                else _parse_function(check, raw, label))
        if item.name in names:
            raise check.fail(f"name {item.name!r} is defined twice", label)
        names.add(item.name)
        parsed.append(item)

    kind = "exchanges" if is_exchanges else "api"
    name = class_name or class_name_for(service, kind)
    if is_exchanges:
        return ExchangesReference(name, service, version, data["exchangePrefix"], tuple(parsed), source)
    return APIReference(name, service, version, tuple(parsed), data.get("baseUrl"), source)


# --------------------------------------------------------------------------- loading


def _read_json(path: Path) -> Any:
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ReferenceFormatError(f"{path}: not valid JSON ({exc})", source=str(path)) from exc
    except OSError as exc:
        raise ReferenceFormatError(f"{path}: cannot be read ({exc.strerror})", source=str(path)) from exc


def _is_reference_url(url: str) -> bool:
    return url.endswith("/api.json") or url.endswith("/exchanges.json")


def _add(refs: dict[str, Reference], ref: Reference) -> None:
    if ref.class_name in refs:
        raise ReferenceFormatError(
            f"{ref.source}: {ref.class_name} is also defined by {refs[ref.class_name].source}",
            source=ref.source)
    refs[ref.class_name] = ref


def _load_2015_bundle(data: dict, source: str) -> dict[str, Reference]:
    refs: dict[str, Reference] = {}
    for name, wrapper in data.items():
        if not isinstance(wrapper, dict) or not isinstance(wrapper.get("reference"), dict):
            raise ReferenceFormatError(f"{source}: entry {name!r}: missing 'reference' object",
                                       source=source, entry=name)
        _add(refs, parse(wrapper["reference"], f"{source} [{name}]", class_name=name))
    return refs


def _load_file(path: Path) -> dict[str, Reference]:
    data = _read_json(path)
    if isinstance(data, dict) and "entries" not in data and "references" not in data:
        return _load_2015_bundle(data, str(path))
    if isinstance(data, dict) and "references" in data:
        return _load_manifest(data, path.parent, str(path))
    ref = parse(data, str(path))
    return {ref.class_name: ref}


def _local_path_for(url: str, base: Path) -> Path:
    if "://" not in url:
        return base / url
    path = urllib.parse.urlsplit(url).path
    marker = "/references/"
    return base / (path.split(marker, 1)[1] if marker in path else path.lstrip("/"))


def _load_manifest(manifest: dict, base: Path, source: str) -> dict[str, Reference]:
    urls = manifest.get("references")
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ReferenceFormatError(f"{source}: 'references' must be a list of URLs", source=source)
    refs: dict[str, Reference] = {}
    for url in urls:
        if _is_reference_url(url):
            path = _local_path_for(url, base)
            ref = parse(_read_json(path), str(path))
            _add(refs, ref)
    return refs


def _load_dir(directory: Path) -> dict[str, Reference]:
    for manifest in (directory / "manifest.json", directory / "references" / "manifest.json"):
        if manifest.is_file():
            return _load_manifest(_read_json(manifest), manifest.parent, str(manifest))
    refs: dict[str, Reference] = {}
    paths = sorted(directory.glob("*/*/api.json")) + sorted(directory.glob("*/*/exchanges.json"))
    if not paths:
        raise ReferenceFormatError(f"{directory}: no manifest.json and no <service>/<version>/api.json",
                                   source=str(directory))
    for path in paths:
        _add(refs, parse(_read_json(path), str(path)))
    return refs


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "tclisten" / "references"


def _load_live(root_url: str, *, max_age: float, timeout: float) -> dict[str, Reference]:
    """Fetch a deployment's references, caching them; a fresh cache is used as is,
    and a stale one when the deployment cannot be reached."""
    import requests

    root_url = root_url.rstrip("/")
    parsed = urllib.parse.urlsplit(root_url)
    cache = _cache_dir() / re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parsed.netloc}{parsed.path}")
    manifest_path = cache / "manifest.json"
    fresh = manifest_path.is_file() and time.time() - manifest_path.stat().st_mtime < max_age
    if not fresh:
        try:
            with requests.Session() as session:
                manifest = _fetch_json(session, f"{root_url}/references/manifest.json", timeout)
                files = {}
                for url in manifest.get("references", []):
                    if isinstance(url, str) and _is_reference_url(url):
                        files[url] = _fetch_json(session, url, timeout)
            for url, data in files.items():
                path = _local_path_for(url, cache)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(data))
            tmp = manifest_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(manifest))
            tmp.replace(manifest_path)
        except (requests.RequestException, ValueError) as exc:
            if not manifest_path.is_file():
                raise ReferenceFormatError(f"{root_url}: cannot fetch references ({exc})",
                                           source=root_url) from exc
            logger.warning("using cached references for %s: %s", root_url, exc)
    return _load_manifest(_read_json(manifest_path), cache, f"{root_url}/references/manifest.json")


def _fetch_json(session: Any, url: str, timeout: float) -> Any:
    reply = session.get(url, timeout=timeout)
    reply.raise_for_status()
    try:
        return reply.json()
    except ValueError as exc:
        raise ReferenceFormatError(f"{url}: answer is not JSON", source=url) from exc


def load(source: str | os.PathLike, *, max_age: float = 86400.0, timeout: float = 30.0) -> dict[str, Reference]:
    """Load every API and exchanges reference from ``source``, keyed by class name.

    ``source`` is a directory, a reference or ``apis.json`` file, or a deployment rootUrl
    (fetched, and cached for ``max_age`` seconds under ``$XDG_CACHE_HOME/tclisten``).
    """
    text = os.fspath(source)
    if text.startswith(("http://", "https://")):
        return _load_live(text, max_age=max_age, timeout=timeout)
    path = Path(text)
    if path.is_dir():
        return _load_dir(path)
    if path.is_file():
        return _load_file(path)
    raise ReferenceFormatError(f"{text}: no such file or directory", source=text)


def bundled_dir() -> Path:
    """Where the references shipped with tclisten live (installed or in a checkout)."""
    here = Path(__file__).resolve().parent
    # installed: the data folder next to this module; in a checkout: references/ at its top
    for candidate in (here / "reference_data", here.parent.parent / "references"):
        if (candidate / "manifest.json").is_file():
            return candidate
    raise ReferenceFormatError(f"no bundled references next to {here}", source=str(here))


@functools.lru_cache(maxsize=None)
def bundled() -> dict[str, Reference]:
    """The references bundled with tclisten (read once per process)."""
    return _load_dir(bundled_dir())


# --------------------------------------------------------------------------- import


def _function_facts(fn: Function) -> dict:
    out: dict[str, Any] = {"type": "function", "name": fn.name, "method": fn.method,
                           "route": fn.route, "args": list(fn.args), "query": list(fn.query)}
    for key in ("input", "output", "scopes", "stability", "category"):
        if getattr(fn, key) is not None:
            out[key] = getattr(fn, key)
    return out


def _exchange_facts(ex: Exchange) -> dict:
    words = []
    for word in ex.routing_key:
        item: dict[str, Any] = {"name": word.name, "required": word.required,
                                "multipleWords": word.multiple_words}
        if word.constant is not None:
            item["constant"] = word.constant
        if word.max_size is not None:
            item["maxSize"] = word.max_size
        words.append(item)
    out: dict[str, Any] = {"type": "topic-exchange", "name": ex.name, "exchange": ex.exchange,
                           "routingKey": words}
    if ex.schema is not None:
        out["schema"] = ex.schema
    return out


def reference_facts(ref: Reference) -> dict:
    """The machine-readable facts of a reference, in Taskcluster's format, no prose."""
    if isinstance(ref, ExchangesReference):
        return {"serviceName": ref.service_name, "apiVersion": ref.api_version,
                "exchangePrefix": ref.exchange_prefix,
                "entries": [_exchange_facts(ex) for ex in ref.exchanges]}
    out: dict[str, Any] = {"serviceName": ref.service_name, "apiVersion": ref.api_version}
    if ref.base_url:
        out["baseUrl"] = ref.base_url
    out["entries"] = [_function_facts(fn) for fn in ref.functions]
    return out


def import_references(sources: Iterable[str | os.PathLike], dest: str | os.PathLike) -> list[Path]:
    """Write the facts of every reference in ``sources`` to ``dest`` in deployment layout,
    with the JSON schemas of their exchanges' messages under ``dest/schemas/``.

    A later source adds only the classes the earlier ones did not define, so
    ``import_references([deployment, seed_2015_apis_json], "references")`` bundles a current
    deployment plus the 2015 services that no longer exist.  Returns the files written.
    """
    from .schemas import collect, reader_for, schema_path

    merged: dict[str, Reference] = {}
    schemas: dict[str, dict] = {}
    for source in sources:
        read = reader_for(os.fspath(source))
        roots = []
        for name, ref in load(source).items():
            if name in merged:
                continue
            merged[name] = ref
            if isinstance(ref, ExchangesReference) and read is not None:
                roots += [root for ex in ref.exchanges if ex.schema
                          and (root := schema_path(ref.service_name, ex.schema)) is not None]
        if roots and read is not None:
            for rel, schema in collect(read, roots).items():
                schemas.setdefault(rel, schema)
    dest = Path(dest)
    written: list[Path] = []
    manifest = []
    for name in sorted(merged):
        ref = merged[name]
        rel = f"{ref.service_name}/{ref.api_version}/{'exchanges' if ref.kind == 'exchanges' else 'api'}.json"
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(reference_facts(ref), indent=1, sort_keys=True) + "\n")
        manifest.append(rel)
        written.append(path)
    for rel, schema in sorted(schemas.items()):
        path = dest / "schemas" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        written.append(path)
    (dest / "manifest.json").write_text(json.dumps({"references": sorted(manifest)}, indent=1) + "\n")
    written.append(dest / "manifest.json")
    try:
        if dest.resolve() == bundled_dir().resolve():
            bundled.cache_clear()  # the process now sees the refreshed bundle
    except ReferenceFormatError:
        pass
    return written
