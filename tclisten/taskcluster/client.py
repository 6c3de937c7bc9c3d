"""Taskcluster REST clients, one class per service, built from API references.

Every bundled service has a class named as the official client names it (``Queue``,
``Index``, ``Auth``, ... and the 2015 ``Scheduler``); :func:`client_class` builds one from
any reference at run time.  Classes are built on first use and cached.

>>> from tclisten.taskcluster.client import Queue
>>> queue = Queue({"rootUrl": "https://tc.example.com"})
>>> queue.buildUrl("task", "abc")
'https://tc.example.com/api/queue/v1/task/abc'

Options (a dict, like the official client, and/or keywords): ``rootUrl``, ``baseUrl`` (2015:
the service's own base URL), ``credentials`` ``{clientId, accessToken, certificate}``,
``authorizedScopes``, ``maxRetries`` (5), ``signedUrlExpiration`` (900 s), ``timeout`` (30 s).
What is missing comes from ``TASKCLUSTER_ROOT_URL``, ``TASKCLUSTER_CLIENT_ID``,
``TASKCLUSTER_ACCESS_TOKEN`` and ``TASKCLUSTER_CERTIFICATE``, read by
:func:`tclisten.taskcluster.credentials.read_options` (``credentials: None`` means anonymous).

A client keeps one keep-alive ``requests.Session``; the environment's proxies and CA bundle
are read once, when the client is built.  A client may be shared by several threads: it holds
no per-call state, and requests' connection pool is thread-safe (up to 10 pooled connections
per host; more threads open extra connections that are not kept).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from . import references, utils
from .calls import PING, CallSpec, encode_query
from .credentials import Credentials, read_options
from ..exceptions import (CallError, ConfigError, CredentialsError, ReferenceFormatError,
                         TaskclusterAuthFailure, TaskclusterConnectionError, TaskclusterRestFailure,
                         did_you_mean)
from ..redact import scrub_url

if TYPE_CHECKING:  # requests, and hawk which needs it, load with the first client (start-up)
    import requests

    from .hawk import HawkAuth

logger = logging.getLogger(__name__)

__all__ = ["BaseClient", "CallObserver", "RestCall", "call_observers", "client_class", "retry_delay", "DEFAULT_OPTIONS"]

#: Defaults of the options that have one.
DEFAULT_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {"maxRetries": 5, "signedUrlExpiration": 900, "timeout": 30.0})
_OPTIONS = ("rootUrl", "baseUrl", "credentials", "authorizedScopes", "maxRetries",
            "signedUrlExpiration", "timeout")
_LEGACY_ROOT_URL = "https://taskcluster.net"
_sleep = time.sleep  # module-level so a test can record the backoff without waiting


@dataclass
class RestCall:
    """One REST call as :data:`call_observers` see it: the client class (``"Queue"``), the
    service, the function name, the HTTP method and the URL made safe to show; ``attempts``
    and ``status_code`` (of the last answer) are filled in before the observers exit.

    >>> call = RestCall("Queue", "queue", "task", "GET", "https://tc.example.com/api/queue/v1/task/T")
    >>> call.attempts, call.status_code
    (0, None)
    """

    client: str
    service: str
    name: str
    method: str
    url: str
    attempts: int = 0
    status_code: int | None = None


CallObserver = Callable[[RestCall], contextlib.AbstractContextManager[Any]]

#: Context-manager factories entered around every REST call, ``observer(call)`` with its
#: :class:`RestCall` (:mod:`tclisten.otel` installs one).  Replaced whole, never mutated;
#: empty, a call pays one falsy check (and a ``call is not None`` test per attempt).
call_observers: tuple[CallObserver, ...] = ()


def retry_delay(retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, ...): the official backoff.

    >>> 0.075 <= retry_delay(1) <= 0.125
    True
    """
    if retry <= 0:
        return 0.0
    return min(0.1 * 2 ** (retry - 1) * random.uniform(0.75, 1.25), 30.0)


def _version() -> str:
    from .. import __version__
    return __version__


class BaseClient:
    """What every service client shares: options, the session, calls, URLs, retries.

    Not used directly: take a service class (``Queue``) or :func:`client_class`.
    """

    reference: references.APIReference
    serviceName: str
    apiVersion: str
    _calls: Mapping[str, CallSpec] = MappingProxyType({})

    def __init__(self, options: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        if not hasattr(type(self), "reference"):
            raise ConfigError("BaseClient serves no service: use a service class (Queue, ...) "
                              "or client_class(reference)")
        merged: dict[str, Any] = {}
        for source in (options or {}), kwargs:
            if not isinstance(source, Mapping):
                raise ConfigError(f"options must be a dict, not {type(source).__name__}")
            for key, value in source.items():
                if key not in _OPTIONS:
                    hint = did_you_mean(str(key), _OPTIONS, known=True)
                    raise ConfigError(f"unknown option {key!r}; {hint}".rstrip(), option=key)
                merged[key] = value
        for name in ("rootUrl", "baseUrl"):
            _check_url(merged, name)
        deployment = read_options(merged)  # the one reader of credentials and TASKCLUSTER_*
        self.root_url = deployment.root_url.rstrip("/") if deployment.root_url else None
        self.base_url = self._base_url(merged.get("baseUrl"))
        self.authorized_scopes = _scopes(merged.get("authorizedScopes"))
        self._init_auth(deployment.credentials)
        self.max_retries = _number(merged, "maxRetries", DEFAULT_OPTIONS["maxRetries"], integer=True, minimum=0)
        self.signed_url_expiration = _number(merged, "signedUrlExpiration",
                                             DEFAULT_OPTIONS["signedUrlExpiration"], minimum=1)
        self.timeout = _timeout(merged.get("timeout", DEFAULT_OPTIONS["timeout"]))
        self.options = MappingProxyType({
            "rootUrl": self.root_url, "baseUrl": self.base_url,
            "authorizedScopes": self.authorized_scopes, "maxRetries": self.max_retries,
            "signedUrlExpiration": self.signed_url_expiration, "timeout": self.timeout})
        self.session = self._make_session()

    # ------------------------------------------------------------------ construction

    def _base_url(self, base: str | None) -> str:
        ref = self.reference
        if base:
            return base.rstrip("/")
        if self.root_url == _LEGACY_ROOT_URL:
            return f"https://{ref.service_name}.taskcluster.net/{ref.api_version}"
        if self.root_url:
            return f"{self.root_url}/api/{ref.service_name}/{ref.api_version}"
        if ref.base_url:  # a 2015 reference names its service's own URL
            return ref.base_url.rstrip("/")
        raise ConfigError(f"{type(self).__name__}: the rootUrl option is required "
                          "(or set TASKCLUSTER_ROOT_URL)", option="rootUrl")

    def _init_auth(self, credentials: Credentials | None) -> None:
        self.client_id = credentials.clientId if credentials else None
        self._auth: HawkAuth | None = None
        if credentials is not None:
            from .hawk import HawkAuth

            self._auth = HawkAuth(credentials.clientId, credentials.accessToken,
                                  credentials.ext(self.authorized_scopes))

    @property
    def auth(self) -> HawkAuth | None:
        """The requests auth hook that signs each call with Hawk; None for anonymous calls.

        >>> from tclisten.taskcluster.client import Queue
        >>> Queue({"rootUrl": "https://tc.example.com", "credentials": {"clientId": "c", "accessToken": "t"}}).auth
        HawkAuth(client_id='c')
        """
        return self._auth

    def _make_session(self) -> requests.Session:
        """One keep-alive session for the client's life; the environment is read here, once."""
        import requests
        import requests.utils

        session = requests.Session()
        # trust_env makes requests scan the environment on every request (~30 % of a call's
        # CPU): read proxies and CA bundle once, here, and hand them over explicitly.
        session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
        session.trust_env = False
        session.headers["User-Agent"] = f"tclisten/{_version()} {session.headers['User-Agent']}"
        self._headers = dict(session.headers)
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        return session

    def close(self) -> None:
        """Close the pooled connections (the client stays usable and reconnects on demand)."""
        self.session.close()

    def __enter__(self) -> "BaseClient":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        who = f", clientId={self.client_id!r}" if self.client_id else ""
        return f"{type(self).__name__}(baseUrl={self.base_url!r}{who})"

    # ------------------------------------------------------------------ calls

    def _spec(self, method_name: str) -> CallSpec:
        try:
            return self._calls[method_name]
        except KeyError:
            hint = did_you_mean(method_name, self._calls, known=True)
            raise CallError(f"{type(self).__name__} has no method {method_name!r}; {hint}".rstrip(),
                            method=method_name) from None

    def _call(self, spec: CallSpec, args: tuple, kwargs: dict) -> Any:
        path, payload, query = spec.bind(args, kwargs)
        url = self.base_url + path
        if query:
            url += "?" + encode_query(query)
        observers = call_observers
        if observers:
            return self._observed(observers, spec, url, payload)
        return self._request(spec.method, url, payload)

    def _observed(self, observers: tuple[CallObserver, ...], spec: CallSpec, url: str, payload: Any) -> Any:
        """:meth:`_request` inside every observer."""
        call = RestCall(type(self).__name__, self.serviceName, spec.name, spec.method, scrub_url(url))
        with contextlib.ExitStack() as stack:
            for observe in observers:
                stack.enter_context(observe(call))
            try:
                return self._request(spec.method, url, payload, call)
            except TaskclusterConnectionError as exc:  # no answer on the last attempt
                call.attempts = getattr(exc, "attempts", call.attempts)
                raise

    def _request(self, method: str, url: str, payload: Any = None, call: RestCall | None = None) -> Any:
        """Send with retries; the decoded JSON answer, or None for 204.  ``call`` (observed
        calls only) gets the attempts and the status of each answer."""
        import requests  # loaded by the constructor already: a dict lookup
        body, headers = self._encode(method, url, payload)
        session = self.session
        auth = self._auth
        send_options = {"timeout": self.timeout, "allow_redirects": False, "stream": False,
                        "proxies": session.proxies, "verify": session.verify, "cert": session.cert}
        attempts = self.max_retries + 1
        cause: BaseException | None = None
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                delay = retry_delay(attempt - 1)
                logger.warning("retrying %s %s in %.2fs (attempt %d of %d): %s",
                               method, scrub_url(url), delay, attempt, attempts, cause)
                _sleep(delay)
            # Prepared by hand and sent with the settings read at construction: Session.request
            # would merge cookies, hooks and environment on every call (~20 % of a call's CPU).
            prepared = requests.PreparedRequest()
            try:
                prepared.prepare(method=method, url=url, headers=headers, data=body, auth=auth)
                reply = session.send(prepared, **send_options)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                cause = exc
                continue
            except requests.RequestException as exc:
                raise TaskclusterConnectionError(f"{method} {scrub_url(url)}: {type(exc).__name__}",
                                                 method=method, url=scrub_url(url), attempts=attempt) from exc
            status = reply.status_code
            if call is not None:
                call.attempts, call.status_code = attempt, status
            if status < 400:  # a 303 (getArtifact) carries its JSON answer: never follow it
                return self._decode(reply, method, url)
            failure = _failure(reply, method, url)
            if status < 500:
                raise failure
            cause = failure
        status_code = getattr(cause, "status_code", None)
        raise TaskclusterConnectionError(
            f"{method} {scrub_url(url)}: no usable answer after {attempts} attempt{'s' if attempts > 1 else ''}"
            f" (last: {_describe(cause)})", method=method, url=scrub_url(url), attempts=attempts,
            status_code=status_code) from cause

    def _encode(self, method: str, url: str, payload: Any) -> tuple[bytes | None, dict[str, str]]:
        """The body of a call (its payload as JSON, None without one) and its headers."""
        if payload is None:
            return None, self._headers
        try:
            body = utils.dumpJson(payload).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise CallError(f"{method} {scrub_url(url)}: payload is not JSON: {exc}", method=method,
                            url=scrub_url(url)) from exc
        return body, self._json_headers

    @staticmethod
    def _decode(reply: requests.Response, method: str, url: str) -> Any:
        if reply.status_code == 204:
            return None
        content = reply.content
        try:
            return json.loads(content)
        except ValueError:
            raise TaskclusterRestFailure(
                f"{method} {scrub_url(url)}: {reply.status_code} answer is not JSON "
                f"({reply.headers.get('Content-Type', 'no content type')}, {len(content)} bytes)",
                status_code=reply.status_code, method=method, url=scrub_url(url),
                request_id=_request_id(reply), body=content[:1024].decode("utf-8", "replace")) from None

    # ------------------------------------------------------------------ URLs

    def buildUrl(self, methodName: str, *args: Any, **kwargs: Any) -> str:
        """The URL a call would use (arguments as for the call itself).

        >>> from tclisten.taskcluster.client import Queue
        >>> Queue({"rootUrl": "https://tc.example.com"}).buildUrl("listTaskGroup", "G", query={"limit": 5})
        'https://tc.example.com/api/queue/v1/task-group/G/list?limit=5'
        """
        path, _, query = self._spec(methodName).bind(args, kwargs, url_only=True)
        return self.base_url + path + ("?" + encode_query(query) if query else "")

    def buildSignedUrl(self, methodName: str, *args: Any, expiration: float | None = None,
                       **kwargs: Any) -> str:
        """A URL carrying a bewit, usable without credentials for ``expiration`` seconds
        (default: the ``signedUrlExpiration`` option).  GET methods only.

        >>> from tclisten.taskcluster.client import Queue
        >>> q = Queue({"rootUrl": "https://tc.example.com", "credentials": {"clientId": "c", "accessToken": "t"}})
        >>> "?bewit=" in q.buildSignedUrl("task", "abc", expiration=60)
        True
        """
        spec = self._spec(methodName)
        if spec.method != "GET":
            raise CallError(f"{spec.signature_text}: signed URLs exist for GET methods only, "
                            f"this one is {spec.method}", method=methodName)
        if self._auth is None:
            raise CredentialsError("buildSignedUrl needs credentials (clientId and accessToken)")
        if expiration is None:
            expiration = self.signed_url_expiration
        if isinstance(expiration, bool) or not isinstance(expiration, (int, float)) or expiration <= 0:
            raise CallError(f"expiration must be a positive number of seconds, not {expiration!r}",
                            method=methodName)
        url = self.buildUrl(methodName, *args, **kwargs)
        auth = self._auth
        from .hawk import sign_url

        return sign_url(url, auth.client_id, auth._credentials["key"], expiration, auth.ext)

    # ------------------------------------------------------------------ pagination

    def paginate(self, methodName: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Yield every page of a method that takes ``continuationToken``.

        Arguments are those of the call; ``query`` (e.g. ``limit``) is kept on every page.

        >>> from tclisten.taskcluster.client import Queue
        >>> pages = Queue({"rootUrl": "https://tc.example.com"}).paginate("listTaskGroup", "G")
        """
        spec = self._spec(methodName)
        if "continuationToken" not in spec.query_names:
            raise CallError(f"{spec.signature_text}: does not paginate (no continuationToken query)",
                            method=methodName)
        query = dict(kwargs.pop("query", None) or {})
        spec.bind(args, {**kwargs, "query": query})  # misuse fails now, not at the first next()
        return self._pages(spec, args, kwargs, query)

    def _pages(self, spec: CallSpec, args: tuple, kwargs: dict, query: dict) -> Iterator[Any]:
        while True:
            page = self._call(spec, args, {**kwargs, "query": query})
            yield page
            token = page.get("continuationToken") if isinstance(page, dict) else None
            if not token:
                return
            query = {**query, "continuationToken": token}

    def iterate(self, methodName: str, *args: Any, items: str | None = None, **kwargs: Any) -> Iterator[Any]:
        """Yield every item of every page; ``items`` names the list in each page (by default
        the page's only list-valued key, e.g. ``tasks`` for ``listTaskGroup``).

        >>> from tclisten.taskcluster.client import Queue
        >>> tasks = Queue({"rootUrl": "https://tc.example.com"}).iterate("listTaskGroup", "G")
        """
        pages = self.paginate(methodName, *args, **kwargs)

        def generate() -> Iterator[Any]:
            key = items
            for page in pages:
                if not isinstance(page, dict):
                    raise CallError(f"{methodName}: a page is not a JSON object", method=methodName)
                if key is None:
                    lists = [k for k, v in page.items() if isinstance(v, list)]
                    if len(lists) != 1:
                        raise CallError(f"{methodName}: cannot tell which list to iterate "
                                        f"(found {lists}); pass items=...", method=methodName)
                    key = lists[0]
                yield from page.get(key) or ()

        return generate()


def _failure(reply: requests.Response, method: str, url: str) -> TaskclusterRestFailure:
    status = reply.status_code
    try:
        body: Any = json.loads(reply.content)
    except ValueError:
        body = reply.content[:4096].decode("utf-8", "replace") or None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = f"{status} {reply.reason or 'error'} (no message from the server)"
    cls = TaskclusterAuthFailure if status in (401, 403) else TaskclusterRestFailure
    # ``message`` is the server's own text (the exception tree's contract); where the call
    # went is in the attributes.
    return cls(message, status_code=status, method=method, url=scrub_url(url),
               request_id=_request_id(reply), body=body)


def _describe(cause: BaseException | None) -> str:
    if isinstance(cause, TaskclusterRestFailure):
        return f"{cause.status_code} {cause.message}"
    return f"{type(cause).__name__}: {cause}"


def _request_id(reply: requests.Response) -> str | None:
    return reply.headers.get("x-for-request-id") or reply.headers.get("x-request-id")


def _check_url(opts: Mapping[str, Any], name: str) -> None:
    value = opts.get(name)
    if value is not None and (not isinstance(value, str) or not value.startswith(("http://", "https://"))):
        raise ConfigError(f"option {name!r} must be an http(s) URL, got {scrub_url(str(value))!r}", option=name)


def _scopes(scopes: Any) -> tuple[str, ...] | None:
    if scopes is None:
        return None
    if not isinstance(scopes, (list, tuple)) or not all(isinstance(s, str) for s in scopes):
        raise ConfigError("option 'authorizedScopes' must be a list of str", option="authorizedScopes")
    return tuple(scopes)


def _number(opts: Mapping[str, Any], name: str, default: Any, integer: bool = False, minimum: float = 0) -> Any:
    value = opts.get(name, default)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        kind = "an int" if integer else "a number"
        raise ConfigError(f"option {name!r} must be {kind} >= {minimum}, got {value!r}", option=name)
    return value


def _timeout(value: Any) -> Any:
    if value is None:
        return None
    items = value if isinstance(value, tuple) and len(value) == 2 else (value,)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or item <= 0:
            raise ConfigError(f"option 'timeout' must be seconds > 0 or a (connect, read) pair, got {value!r}",
                              option="timeout")
    return value


# ---------------------------------------------------------------------- building classes

_classes: dict[Any, type] = {}
_kept: list = []  # references whose id() keys _classes, kept alive so no id is reused
_classes_lock = threading.Lock()
_BASE_NAMES = frozenset(dir(BaseClient)) | {
    "options", "session", "root_url", "base_url", "client_id", "timeout", "max_retries",
    "signed_url_expiration", "authorized_scopes", "reference", "serviceName", "apiVersion"}


def _make_method(spec: CallSpec) -> Callable[..., Any]:
    def method(self: BaseClient, *args: Any, **kwargs: Any) -> Any:
        return self._call(spec, args, kwargs)

    method.__name__ = method.__qualname__ = spec.name
    method.__doc__ = spec.doc
    setattr(method, "__signature__", spec.signature)  # what inspect.signature() shows
    return method


def _build(ref: references.APIReference) -> type:
    functions = list(ref.functions)
    if not any(fn.name == "ping" for fn in functions):
        functions.insert(0, PING)
    calls: dict[str, CallSpec] = {}
    namespace: dict[str, Any] = {}
    for fn in functions:
        if fn.name in _BASE_NAMES:
            raise ReferenceFormatError(f"{ref.source or ref.class_name}: function {fn.name!r} would hide "
                                       "a client attribute", source=ref.source, entry=fn.name)
        spec = CallSpec.from_function(fn)
        calls[fn.name] = spec
        method = _make_method(spec)
        method.__qualname__ = f"{ref.class_name}.{fn.name}"
        namespace[fn.name] = method
    namespace.update(
        __module__=__name__, reference=ref, serviceName=ref.service_name, apiVersion=ref.api_version,
        _calls=MappingProxyType(calls),
        __doc__=(f"Client of the Taskcluster {ref.service_name} service, API {ref.api_version} "
                 f"({len(calls)} methods).\n\n"
                 f">>> client = {ref.class_name}({{'rootUrl': 'https://tc.example.com'}})\n"
                 f">>> client.buildUrl('ping')\n"
                 f"'https://tc.example.com/api/{ref.service_name}/{ref.api_version}/ping'\n"))
    return type(ref.class_name, (BaseClient,), namespace)


def client_class(name_or_reference: str | references.APIReference | Mapping[str, Any]) -> type:
    """The client class of a bundled service (by class name), or of any API reference
    (a parsed :class:`~tclisten.taskcluster.references.APIReference` or an ``api.json`` dict).

    Classes are cached: asking twice returns the same class.

    >>> client_class("Queue") is client_class("Queue")
    True
    >>> client_class("PurgeCache").serviceName
    'purge-cache'
    """
    if isinstance(name_or_reference, str) and name_or_reference in _classes:
        return _classes[name_or_reference]
    key, ref = _reference_and_key(name_or_reference)
    with _classes_lock:
        entry = _classes.get(key) if key is not None else None
        if entry is None:
            entry = _build(ref)
            if key is not None:
                _classes[key] = entry
                if isinstance(key, tuple):
                    _kept.append(ref)
    return entry


def _reference_and_key(given: Any) -> tuple[Any, references.APIReference]:
    """The API reference ``client_class`` was given, and the key its class is cached by
    (None: not cached)."""
    if isinstance(given, str):
        found = references.bundled().get(given)
        if not isinstance(found, references.APIReference):
            hint = did_you_mean(given, bundled_services(), known=True)
            raise ConfigError(f"no bundled Taskcluster service {given!r}; {hint}".rstrip(), service=given)
        return given, found
    if isinstance(given, Mapping):
        parsed = references.parse(dict(given), "<reference given to client_class>")
        if not isinstance(parsed, references.APIReference):
            raise ConfigError("client_class needs an API reference, not an exchanges reference")
        return None, parsed  # a new dict each time: nothing to cache by
    if isinstance(given, references.APIReference):
        return ("ref", id(given)), given
    raise ConfigError(f"client_class takes a service name or an API reference, not {type(given).__name__}")


def bundled_services() -> list[str]:
    """Class names of the bundled API references (``['Auth', 'Github', ...]``).

    >>> "Queue" in bundled_services()
    True
    """
    return sorted(n for n, r in references.bundled().items() if isinstance(r, references.APIReference))


if TYPE_CHECKING:
    # What type checkers and editors know of the bundled service classes, which are built
    # from their references on first use (module __getattr__ below): a BaseClient whose
    # other attributes are the reference's methods. tests/test_exports.py keeps the list
    # equal to the bundled API references.
    class _ServiceClient(BaseClient):
        def __getattr__(self, name: str) -> Callable[..., Any]: ...

    class Auth(_ServiceClient): ...
    class Github(_ServiceClient): ...
    class Hooks(_ServiceClient): ...
    class Index(_ServiceClient): ...
    class Notify(_ServiceClient): ...
    class Object(_ServiceClient): ...
    class PurgeCache(_ServiceClient): ...
    class Queue(_ServiceClient): ...
    class Scheduler(_ServiceClient): ...
    class Secrets(_ServiceClient): ...
    class WebServer(_ServiceClient): ...
    class WorkerManager(_ServiceClient): ...


def __getattr__(name: str) -> type:
    if name[:1].isupper():
        ref = references.bundled().get(name)
        if isinstance(ref, references.APIReference):
            cls = client_class(name)
            globals()[name] = cls
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__.append("bundled_services")
