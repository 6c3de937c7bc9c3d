"""A fake Taskcluster deployment on loopback, for tests, demos and benchmarks.

:class:`FakeTaskcluster` is a real threaded HTTP/1.1 keep-alive server on ``127.0.0.1``.
It serves ``/api/<service>/<version>/<route>`` for every function of the bundled
references, checks Hawk the way Taskcluster's auth service does (Authorization header,
bewits, temporary credentials, ``authorizedScopes``), enforces each function's scope
expression, answers what the test told it to, and records every call::

    >>> import requests
    >>> with FakeTaskcluster() as tc:
    ...     tc.respond("queue", "task", {"taskGroupId": "abc"})
    ...     requests.get(tc.root_url + "/api/queue/v1/task/T1").json()["taskGroupId"]
    ...     tc.calls[0].function, tc.calls[0].args
    'abc'
    ('task', {'taskId': 'T1'})

Faults on demand: ``tc.fail_next(2)`` (the next two requests get 500), ``tc.drop_next()``
(the connection is closed unanswered), ``tc.hang(True)`` (requests are read but not answered
until ``tc.hang(False)``).  Every answer carries an ``x-for-request-id`` header.  It also
serves ``/references/manifest.json`` like a deployment.  Stdlib and mohawk only: it ships in
the package (the offline demo runs on it).

The request path reads top to bottom in :meth:`FakeTaskcluster._serve`; Hawk is checked by
:mod:`tclisten.testing.fakeauth` (with mohawk), certificates by
:func:`tclisten.taskcluster.credentials.verify_certificate`.
"""

from __future__ import annotations

import datetime
import enum
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Literal, Mapping, TypeVar, Union


from ..taskcluster import utils
from ..exceptions import CallError, ConfigError
from .fakeauth import _UNRESOLVED, _Authenticator, _AuthError, _derived_params, _drop_unresolved
from ..taskcluster.references import APIReference, ExchangesReference, Function, bundled, reference_facts

logger = logging.getLogger(__name__)

_Fake = TypeVar("_Fake", bound="FakeTaskcluster")  # start() and ``with`` give back the subclass they ran on

__all__ = ["Call", "FakeTaskcluster", "Response", "error_body"]


@dataclass
class Call:
    """One request the fake server received (also those it refused).

    ``service`` and ``function`` are None when the path matched no function; ``scopes``
    are the caller's scopes (after ``authorizedScopes``, roles expanded; the anonymous
    scopes every caller also holds are not listed, except for anonymous callers);
    ``status`` is the status answered (None while unanswered, or when dropped).

    >>> Call("GET", "/api/queue/v1/ping", service="queue", function="ping")
    Call(method='GET', path='/api/queue/v1/ping', service='queue', function='ping', args={}, query={}, body=None, client_id=None, scopes=[], auth=None, status=None, request_id='')
    """

    method: str
    path: str
    service: str | None = None
    function: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    raw_body: bytes = field(default=b"", repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    client_id: str | None = None
    scopes: list[str] = field(default_factory=list)
    auth: str | None = None  # "hawk", "bewit" or None (anonymous)
    status: int | None = None
    request_id: str = ""


@dataclass
class Response:
    """An answer: ``body`` is JSON-encoded unless it is bytes (sent as is, with
    ``content_type``); a 204 or a ``None`` body sends nothing.

    >>> Response(303, None, {"Location": "https://example.com/x"}).status
    303
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] | None = None
    content_type: str | None = None


def error_body(code: str, message: str, **request_info: Any) -> dict[str, Any]:
    """A Taskcluster-style error body.

    >>> error_body("ResourceNotFound", "no such task")["code"]
    'ResourceNotFound'
    """
    info = {"time": utils.stringDate(datetime.datetime.now(datetime.timezone.utc)), **request_info}
    return {"code": code, "message": message, "requestInfo": info}


# --------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class _Route:
    service: str
    class_name: str
    version: str
    function: Function
    pattern: re.Pattern


def _route_pattern(route: str, greedy_last: bool) -> re.Pattern:
    parts = re.split(r"<([^<>/]+)>", route)
    regex = ""
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        else:
            last = index == len(parts) - 2 and parts[-1] == ""
            regex += f"(?P<{part}>{'.+' if greedy_last and last else '[^/]+'})"
    return re.compile(regex + r"\Z")


class _Routes:
    """Maps ``/api/<service>/<version>/<route>`` to a function; precompiled per service."""

    def __init__(self, references: Iterable[Any]) -> None:
        self.by_prefix: dict[tuple[str, str], list[_Route]] = {}
        self.by_name: dict[tuple[str, str], _Route] = {}
        self.fallback: dict[tuple[str, str], list[_Route]] = {}
        for ref in references:
            if not isinstance(ref, APIReference):
                continue
            key = (ref.service_name, ref.api_version)
            for fn in ref.functions:
                route = _Route(ref.service_name, ref.class_name, ref.api_version, fn,
                               _route_pattern(fn.route, greedy_last=False))
                self.by_prefix.setdefault(key, []).append(route)
                self.by_name[(ref.service_name, fn.name)] = route
                self.by_name[(ref.class_name, fn.name)] = route
                if fn.args and fn.route.endswith(">"):
                    # artifact names and index paths may carry unencoded slashes
                    self.fallback.setdefault(key, []).append(
                        _Route(ref.service_name, ref.class_name, ref.api_version, fn,
                               _route_pattern(fn.route, greedy_last=True)))

        for routes in self.fallback.values():
            # most specific first: /task/<taskId> must not swallow /task/<taskId>/artifacts/<name>
            routes.sort(key=lambda r: -len(re.sub(r"<[^<>/]+>", "", r.function.route)))

    def lookup(self, service: str, function: str) -> _Route:
        route = self.by_name.get((service, function))
        if route is None:
            raise ConfigError(f"no function {service}.{function} in the fake server's references",
                              service=service, function=function)
        return route

    def match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
        parts = path.split("/", 4)  # '', 'api', service, version, rest
        if len(parts) < 5 or parts[1] != "api":
            return None, {}
        key, rest = (parts[2], parts[3]), "/" + parts[4]
        method = method.lower()
        for table in (self.by_prefix, self.fallback):
            for route in table.get(key, ()):
                if route.function.method != method and not (method == "head" and route.function.method == "get"):
                    continue
                found = route.pattern.match(rest)
                if found:
                    return route, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
        return None, {}


# --------------------------------------------------------------------------- scope params


class _HTTPServer(ThreadingHTTPServer):
    """Serves one :class:`FakeTaskcluster` (``_Handler`` reads it as ``server.fake``)."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, fake: FakeTaskcluster, address: tuple[str, int]) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that went away (or stop() closing its socket) is not worth a traceback
        logger.debug("FakeTaskcluster connection from %s ended with an error", client_address, exc_info=True)


class _Fault(enum.Enum):
    DROP = "drop"  # close the connection without answering


_DROP = _Fault.DROP
#: What FakeTaskcluster._serve hands the request handler: (status, headers, body), or a drop.
_Answer = Union[tuple[int, dict[str, str], bytes], Literal[_Fault.DROP]]


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "FakeTaskcluster/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request lines
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        body = self._read_body()
        answer = self.server.fake._serve(self.command, self.path, self.headers, body)
        if answer is _DROP:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, headers, payload = answer
        if self.close_connection:
            headers["Connection"] = "close"
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        headers.setdefault("Content-Length", str(len(payload)))
        lines += [f"{name}: {value}" for name, value in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # one write: headers and body in the same segment (no Nagle/delayed-ACK stall)
        self.wfile.write(head if self.command == "HEAD" else head + payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class FakeTaskcluster:
    """A fake Taskcluster deployment on ``127.0.0.1``, as a context manager.

    ``clients`` maps clientId to ``{"accessToken": str, "scopes": [...]}``; ``roles`` maps
    roleId to scopes (granted through ``assume:<roleId>``).  Requests without credentials
    get ``anonymous_scopes``.  ``enforce_scopes`` defaults to on when clients are given;
    ``verify_hawk=False`` trusts any Authorization header (recording its id).
    ``clock_skew`` (seconds, 15 minutes as Taskcluster) is allowed on Hawk timestamps;
    certificates get Taskcluster's 5 minutes.  Like Taskcluster, every caller also holds
    ``anonymous_scopes`` (and the roles they assume).
    ``scope_params`` maps ``"service.function"`` to ``fn(call) -> dict`` adding the
    parameters a real service would compute for its scope expression.

    >>> with FakeTaskcluster(clients={"tester": {"accessToken": "t", "scopes": ["*"]}}) as tc:
    ...     tc.root_url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, *, clients: Mapping[str, Mapping[str, Any]] | None = None,
                 roles: Mapping[str, Iterable[str]] | None = None,
                 anonymous_scopes: Iterable[str] = ("assume:anonymous",),
                 enforce_scopes: bool | None = None,
                 verify_hawk: bool = True,
                 clock_skew: float = 900.0,
                 references: Mapping[str, Any] | Iterable[Any] | None = None,
                 scope_params: Mapping[str, Callable[[Call], Mapping[str, Any]]] | None = None,
                 port: int = 0) -> None:
        refs = bundled() if references is None else references
        self._references = list(refs.values() if isinstance(refs, Mapping) else refs)
        self._routes = _Routes(self._references)
        self._auth = _Authenticator(clients or {}, roles or {}, anonymous=anonymous_scopes,
                                    clock_skew=clock_skew, verify=verify_hawk)
        self.enforce_scopes = bool(clients) if enforce_scopes is None else bool(enforce_scopes)
        self._scope_params = dict(scope_params or {})
        self._port = port
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._done = 0
        self._calls: list[Call] = []
        self._answers: dict[tuple[str, str], Any] = {}
        self._sequences: dict[tuple[str, str], deque] = {}
        self._failures: deque[Response | Literal[_Fault.DROP]] = deque()
        self._released = threading.Event()
        self._released.set()
        self._sockets: set[socket.socket] = set()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    # ------------------------------------------------------------------ lifecycle

    def start(self: _Fake) -> _Fake:
        """Listen and serve in a background thread (done by ``with``)."""
        if self._server is not None:
            raise ConfigError("FakeTaskcluster is already running")
        self._server = _HTTPServer(self, ("127.0.0.1", self._port))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="FakeTaskcluster", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release hung requests and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._released.set()
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():  # wake the accept loop now rather than at its next poll
            try:
                socket.create_connection(("127.0.0.1", server.server_port), timeout=1).close()
            except OSError:
                pass
            stopper.join(0.005)
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self: _Fake) -> _Fake:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._server is not None

    def __repr__(self) -> str:
        where = self.root_url if self.running else "stopped"
        return f"<FakeTaskcluster {where}, clients {sorted(self._auth.clients)}>"

    def add_client(self, client_id: str, access_token: str, scopes: Iterable[str] = ()) -> None:
        """Know one more client (or replace one), also while serving.

        >>> tc = FakeTaskcluster()
        >>> tc.add_client("late", "token", ["queue:*"])
        >>> tc
        <FakeTaskcluster stopped, clients ['late']>
        """
        self._auth.add_client(client_id, {"accessToken": access_token, "scopes": list(scopes)})

    @property
    def port(self) -> int:
        if self._server is None:
            raise ConfigError("FakeTaskcluster is not running")
        return self._server.server_address[1]

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>``: use it as the deployment's rootUrl."""
        return f"http://127.0.0.1:{self.port}"

    def client_options(self, client_id: str | None = None, **options: Any) -> dict[str, Any]:
        """Options for a tclisten (or official) client talking to this server as
        ``client_id`` (anonymous when None); ``options`` are added as given.

        >>> FakeTaskcluster(clients={"me": {"accessToken": "t"}}).client_options("me")["credentials"]
        {'clientId': 'me', 'accessToken': 't'}
        """
        out: dict[str, Any] = {"rootUrl": self.root_url if self._server else None}
        if client_id is not None:
            if client_id not in self._auth.clients:
                raise ConfigError(f"FakeTaskcluster has no client {client_id!r}")
            out["credentials"] = {"clientId": client_id, "accessToken": self._auth.clients[client_id][0]}
        out.update(options)
        return out

    def url(self, service: str, function: str, **args: Any) -> str:
        """The URL of a function with its route arguments filled in (percent-encoded).

        >>> FakeTaskcluster(port=8).url("queue", "task", taskId="a/b").split(":8")[1]
        '/api/queue/v1/task/a%2Fb'
        """
        route = self._routes.lookup(service, function)
        path = route.function.route
        for name in route.function.args:
            if name not in args:
                raise CallError(f"{service}.{function} needs argument {name!r}")
            path = path.replace(f"<{name}>", urllib.parse.quote(str(args[name]), safe=""))
        return f"http://127.0.0.1:{self._server.server_address[1] if self._server else self._port}" \
               f"/api/{route.service}/{route.version}{path}"

    def _track(self, sock: socket.socket, opened: bool) -> None:
        with self._lock:
            (self._sockets.add if opened else self._sockets.discard)(sock)

    # ------------------------------------------------------------------ configuration

    def respond(self, service: str, function: str, answer: Any, *, status: int = 200,
                headers: Mapping[str, str] | None = None) -> None:
        """Answer every call of ``service.function`` with ``answer``: a JSON-able body, a
        :class:`Response`, or a callable ``(call) -> body | (status, body[, headers]) | Response``.

        >>> tc = FakeTaskcluster()
        >>> tc.respond("queue", "status", lambda call: {"status": {"taskId": call.args["taskId"]}})
        """
        route = self._routes.lookup(service, function)
        if not callable(answer) and not isinstance(answer, Response) and (status != 200 or headers):
            answer = Response(status, answer, headers)
        with self._lock:
            self._answers[(route.service, route.function.name)] = answer

    def respond_sequence(self, service: str, function: str, answers: Iterable[Any]) -> None:
        """Answer the next calls of ``service.function`` with ``answers`` in order (each
        as for :meth:`respond`); afterwards the :meth:`respond` answer, or 404, applies."""
        route = self._routes.lookup(service, function)
        with self._lock:
            self._sequences[(route.service, route.function.name)] = deque(answers)

    def fail_next(self, count: int = 1, status: int = 500, *, body: Any = None) -> None:
        """Answer the next ``count`` requests, whatever they are, with ``status`` (before
        checking credentials), for retry tests."""
        if count < 0 or not 400 <= status <= 599:
            raise ConfigError("fail_next needs count >= 0 and an error status (4xx/5xx)")
        answer = body if body is not None else error_body("InternalServerError" if status >= 500
                                                          else "InputError", f"injected failure ({status})")
        with self._lock:
            self._failures.extend([Response(status, answer)] * count)

    def drop_next(self, count: int = 1) -> None:
        """Close the connection of the next ``count`` requests without answering (the client
        sees a connection error), for retry tests."""
        if count < 0:
            raise ConfigError("drop_next needs count >= 0")
        with self._lock:
            self._failures.extend([_DROP] * count)

    def hang(self, on: bool = True) -> None:
        """While on, requests are read but not answered (for timeout tests); turning it
        off lets the held requests proceed."""
        if on:
            self._released.clear()
        else:
            self._released.set()

    def reset(self) -> None:
        """Forget recorded calls, answers, sequences and pending failures."""
        with self._lock:
            self._calls.clear()
            self._done = 0
            self._answers.clear()
            self._sequences.clear()
            self._failures.clear()
        self._released.set()

    @property
    def calls(self) -> list[Call]:
        """A copy of the recorded calls, oldest first."""
        with self._lock:
            return list(self._calls)

    @property
    def open_connections(self) -> int:
        """How many client connections are open now (a keep-alive client holds one between
        its calls).

        >>> FakeTaskcluster().open_connections
        0
        """
        with self._lock:
            return len(self._sockets)

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> list[Call]:
        """Wait until ``count`` calls have been answered (or dropped) since the last
        :meth:`reset`, and return the recorded calls; raises ``TimeoutError`` otherwise.
        For tests where the calls come from another thread (a listener's handler)."""
        with self._recorded:
            if not self._recorded.wait_for(lambda: self._done >= count, timeout):
                raise TimeoutError(f"FakeTaskcluster got {self._done} calls, not {count}, in {timeout} s")
            return list(self._calls)

    def calls_to(self, service: str, function: str) -> list[Call]:
        """The recorded calls of one function."""
        route = self._routes.lookup(service, function)
        return [c for c in self.calls if c.service == route.service and c.function == route.function.name]

    # ------------------------------------------------------------------ serving

    def _serve(self, method: str, raw_path: str, headers: Any, body: bytes) -> _Answer:
        request_id = str(uuid.uuid4())
        path, _, query_string = raw_path.partition("?")
        pairs = urllib.parse.parse_qsl(query_string, keep_blank_values=True)
        call = Call(method=method, path=path, request_id=request_id,
                    query={k: v for k, v in pairs if k != "bewit"}, raw_body=body,
                    headers={k.lower(): v for k, v in headers.items()})
        with self._lock:
            self._calls.append(call)
            failure = self._failures.popleft() if self._failures else None
        self._released.wait()
        if failure is _DROP:
            self._finish(call, None)
            return _DROP
        try:
            response = failure or self._answer(call, headers, raw_path, body)
        except Exception as exc:  # a responder that raised: a 500, like a crashing service
            logger.exception("FakeTaskcluster responder for %s.%s failed", call.service, call.function)
            response = Response(500, error_body("InternalServerError", f"responder raised {type(exc).__name__}"))
        self._finish(call, response.status)
        return self._encode(response, request_id)

    def _finish(self, call: Call, status: int | None) -> None:
        with self._recorded:
            call.status = status
            self._done += 1
            self._recorded.notify_all()

    def _answer(self, call: Call, headers: Any, raw_path: str, body: bytes) -> Response:
        if call.path.startswith("/references/") and call.method in ("GET", "HEAD"):
            return self._reference_file(call.path)
        route, args = self._routes.match(call.method, call.path)
        if route is None:
            return Response(404, error_body("ResourceNotFound", f"no API function at {call.method} {call.path}"))
        call.service, call.function, call.args = route.service, route.function.name, args
        info = {"method": route.function.name, "params": args}
        if body:
            try:
                call.body = json.loads(body)
            except ValueError:
                return Response(400, error_body("MalformedPayload", "request body is not JSON", **info))
        info["payload"] = call.body if call.body is not None else {}

        try:
            host = headers.get("Host") or f"127.0.0.1:{self.port}"
            identity = self._auth.authenticate(call.method, f"http://{host}{raw_path}", headers, body)
        except _AuthError as exc:
            return Response(401, error_body("AuthenticationFailed", str(exc), **info))
        if identity is None:
            call.scopes = self._auth.effective(())
        else:
            call.client_id, call.scopes, call.auth = identity
        if self.enforce_scopes:
            missing = self._missing_scopes(route, call, self._auth.effective(call.scopes))
            if missing is not None:
                return Response(403, error_body(
                    "InsufficientScopes",
                    f"Client ID {call.client_id or 'anonymous'} does not have sufficient scopes and is "
                    f"missing the following scopes:\n\n{json.dumps(missing, indent=2)}\n\n"
                    f"This request requires the client to satisfy the following scope expression:\n\n"
                    f"{json.dumps(route.function.scopes, indent=2)}", **info))
        return self._response_for(route, call)

    def _reference_file(self, path: str) -> Response:
        """``/references/manifest.json`` and each reference it lists, like a deployment."""
        files = {}
        for ref in self._references:
            kind = "exchanges" if isinstance(ref, ExchangesReference) else "api"
            files[f"/references/{ref.service_name}/{ref.api_version}/{kind}.json"] = ref
        if path == "/references/manifest.json":
            return Response(200, {"references": [self.root_url + name for name in sorted(files)]})
        if path in files:
            return Response(200, reference_facts(files[path]))
        return Response(404, error_body("ResourceNotFound", f"no reference at {path}"))

    def _missing_scopes(self, route: _Route, call: Call, scopes: list[str]) -> Any:
        expression = route.function.scopes
        if expression is None:
            return None
        params: dict[str, Any] = {}
        if isinstance(call.body, dict):
            params.update((k, v) for k, v in call.body.items() if isinstance(v, (str, int, list)))
        params.update(call.query)
        params.update(call.args)
        params.update(_derived_params(route.service, route.function.name, call.args, call.body))
        hook = self._scope_params.get(f"{route.service}.{route.function.name}")
        if hook is not None:
            params.update(hook(call))
        for name, kind in utils.expression_parameters(expression).items():
            if name not in params:
                params[name] = {"text": _UNRESOLVED, "flag": False, "list": []}[kind]
        try:
            rendered = _drop_unresolved(utils.render_expression(expression, params))
        except CallError:
            rendered = None  # a parameter of the wrong type: skip the check, as for unknown ones
        return None if rendered is None else utils.missing_scopes(scopes, rendered)

    def _response_for(self, route: _Route, call: Call) -> Response:
        key = (route.service, route.function.name)
        with self._lock:
            sequence = self._sequences.get(key)
            answer = sequence.popleft() if sequence else self._answers.get(key)
        if answer is None:
            if route.function.name == "ping":
                return Response(200, {"alive": True, "uptime": time.monotonic() - self._started})
            return Response(404, error_body(
                "ResourceNotFound",
                f"FakeTaskcluster has no answer for {route.service}.{route.function.name} "
                f"(configure tc.respond({route.service!r}, {route.function.name!r}, ...))",
                method=route.function.name, params=call.args))
        if callable(answer):
            answer = answer(call)
        if isinstance(answer, Response):
            return answer
        if isinstance(answer, tuple) and len(answer) in (2, 3) and isinstance(answer[0], int):
            return Response(*answer)
        return Response(200, answer)

    @staticmethod
    def _encode(response: Response, request_id: str) -> tuple[int, dict[str, str], bytes]:
        headers = {"x-for-request-id": request_id}
        body = response.body
        if response.status == 204 or body is None:
            payload = b""
        elif isinstance(body, (bytes, bytearray)):
            payload = bytes(body)
            headers["Content-Type"] = response.content_type or "application/octet-stream"
        else:
            payload = json.dumps(body, default=utils.json_default).encode("utf-8")
            headers["Content-Type"] = response.content_type or "application/json; charset=utf-8"
        headers.update(response.headers or {})
        return response.status, headers, payload
