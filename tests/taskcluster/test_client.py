"""The REST client: classes, signatures, calling conventions, options, URLs, and real HTTP
calls (retries, errors, timeouts, pagination) against loopback servers."""

from __future__ import annotations

import copy
import inspect
import json
import pickle
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest
import requests

import tclisten.taskcluster.client as client_module
from tclisten.taskcluster.calls import CallSpec, encode_query, format_scopes
from tclisten.taskcluster.client import BaseClient, bundled_services, client_class, retry_delay
from tclisten.taskcluster.hawk import HawkAuth
from tclisten.exceptions import (CallError, ConfigError, CredentialsError, ReferenceFormatError,
                                 TaskclusterAuthFailure, TaskclusterConnectionError,
                                 TaskclusterRestFailure)
from tclisten.taskcluster.references import APIReference, Function, bundled

ROOT = "https://tc.example.com"
TOKEN = "sekrit-token-never-shown-0123456789"
CREDS = {"clientId": "tester", "accessToken": TOKEN}
OFFICIAL_NAMES = ["Auth", "Github", "Hooks", "Index", "Notify", "Object", "PurgeCache", "Queue",
                  "Scheduler", "Secrets", "WebServer", "WorkerManager"]


# --------------------------------------------------------------------------- loopback servers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real deployment's load balancer
    # headers and body go out in two writes: without this, Nagle + delayed ACK stall every
    # keep-alive response ~40 ms (a real deployment answers in one segment)
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = {"method": self.command, "path": self.path, "headers": dict(self.headers),
                   "body": body, "peer": self.client_address}
        with self.server.lock:
            self.server.requests.append(request)
        result = self.server.app(request)
        if result is None:  # the app wants silence: hold the connection until shutdown
            self.server.stop.wait(5)
            self.close_connection = True
            return
        status, headers, payload = result
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json", **headers}
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def serve() -> Callable:
    """``serve(app)`` starts a loopback HTTP server calling ``app(request) -> (status, headers,
    body) | None`` and returns it (``.url``, ``.requests``); all are stopped after the test."""
    servers = []

    def start(app):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.app, server.requests, server.lock, server.stop = app, [], threading.Lock(), threading.Event()
        server.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop.set()
        server.shutdown()
        server.server_close()


def ok(body=None, status=200, headers=None):
    return lambda request: (status, headers or {}, {} if body is None else body)


@pytest.fixture
def no_wait(monkeypatch):
    """Record the retry delays instead of sleeping them."""
    delays = []
    monkeypatch.setattr(client_module, "_sleep", delays.append)
    return delays


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("TASKCLUSTER_ROOT_URL", "TASKCLUSTER_CLIENT_ID", "TASKCLUSTER_ACCESS_TOKEN",
                 "TASKCLUSTER_CERTIFICATE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- classes


def test_every_bundled_service_has_its_official_class_name():
    assert bundled_services() == OFFICIAL_NAMES
    from tclisten.taskcluster.client import Index, Queue, Scheduler, WorkerManager  # module __getattr__
    assert Queue is client_class("Queue")
    assert Queue.__name__ == "Queue"
    assert issubclass(Index, BaseClient)
    assert Scheduler.serviceName == "scheduler"
    assert WorkerManager.serviceName == "worker-manager"
    assert WorkerManager.apiVersion == "v1"
    for name in OFFICIAL_NAMES:
        cls = client_class(name)
        for fn in bundled()[name].functions:
            assert callable(getattr(cls, fn.name)), f"{name}.{fn.name}"


def test_unknown_names_fail_clearly():
    with pytest.raises(ConfigError, match="did you mean 'Queue'"):
        client_class("Queu")
    with pytest.raises(ConfigError):
        client_class("QueueEvents")  # an exchanges reference, not an API
    with pytest.raises(AttributeError):
        client_module.Nope  # noqa: B018
    with pytest.raises(ConfigError):
        client_class(42)


def test_base_client_alone_serves_nothing():
    with pytest.raises(ConfigError, match="client_class"):
        BaseClient({"rootUrl": ROOT})


def test_building_every_class_loads_no_http_stack():
    """Start-up: classes need only the references; requests and mohawk load with the
    first client instance."""
    import subprocess
    import sys

    code = ("import sys\nfrom tclisten.taskcluster.client import bundled_services, client_class\n"
            "classes = [client_class(n) for n in bundled_services()]\n"
            "print(sorted(m for m in ('requests', 'mohawk', 'kombu') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == "[]"


def test_client_class_from_any_reference_adds_ping_when_missing():
    raw = {"serviceName": "fake", "apiVersion": "v2", "entries": [
        {"type": "function", "name": "thing", "method": "get", "route": "/thing/<id>",
         "args": ["id"], "query": ["limit", "continuationToken"]}]}
    cls = client_class(raw)
    client = cls({"rootUrl": ROOT})
    assert client.buildUrl("ping") == f"{ROOT}/api/fake/v2/ping"
    assert client.buildUrl("thing", 7) == f"{ROOT}/api/fake/v2/thing/7"
    ref = APIReference("Fake", "fake", "v2", (Function("thing", "get", "/thing/<id>", ("id",)),))
    assert client_class(ref) is client_class(ref)
    assert client_class(ref).__name__ == "Fake"
    bad = APIReference("Bad", "bad", "v1", (Function("buildUrl", "get", "/x"),))
    with pytest.raises(ReferenceFormatError, match="buildUrl"):
        client_class(bad)


def test_methods_have_real_signatures_and_docstrings():
    Queue = client_class("Queue")
    assert str(inspect.signature(Queue.task)) == "(self, taskId)"
    assert str(inspect.signature(Queue.createTask)) == "(self, taskId, payload)"
    assert str(inspect.signature(Queue.listTaskGroup)) == "(self, taskGroupId, *, query=None)"
    queue = Queue({"rootUrl": ROOT})
    assert str(inspect.signature(queue.task)) == "(taskId)"
    doc = Queue.createTask.__doc__
    assert "PUT /task/<taskId>" in doc
    assert "queue:create-task" in doc
    assert "Stability: stable" in doc
    assert "create-task-request.json" in doc
    assert "createTask(payload, taskId=...)" in doc
    for name in OFFICIAL_NAMES:
        cls = client_class(name)
        for method_name in ["ping", *(fn.name for fn in bundled()[name].functions)]:
            method = getattr(cls, method_name)
            params = inspect.signature(method).parameters.values()
            assert all(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params), method_name
            assert method.__doc__
            assert method.__name__ == method_name


def test_format_scopes_reads_both_generations():
    assert format_scopes([["a", "b"], ["c"]]) == "any of (all of (a, b), all of (c))"
    assert format_scopes({"if": "x", "then": "s", "else": "t"}) == "if x: s else t"
    assert format_scopes({"for": "r", "in": "routes", "each": "q:<r>"}) == "for r in routes: q:<r>"
    assert format_scopes(None) == "none"


# --------------------------------------------------------------------------- calling conventions


@pytest.fixture
def queue():
    return client_class("Queue")({"rootUrl": ROOT})


def spec(name: str) -> CallSpec:
    return CallSpec.from_function(bundled()["Queue"].function(name))


def test_route_arguments_positional_or_keyword():
    assert spec("task").bind(("T",), {}) == ("/task/T", None, None)
    assert spec("task").bind((), {"taskId": "T"}) == ("/task/T", None, None)
    assert spec("artifact").bind(("T", 0, "public/a b.txt"), {})[0] == "/task/T/runs/0/artifact-content/public%2Fa%20b.txt"
    assert spec("artifact").bind((), {"name": "n", "runId": 1, "taskId": "T"})[0] == "/task/T/runs/1/artifact-content/n"


def test_payload_last_positional_first_with_keywords_or_by_name():
    body = {"k": "v"}
    expected = ("/task/T", body, None)
    assert spec("createTask").bind(("T", body), {}) == expected
    assert spec("createTask").bind((body,), {"taskId": "T"}) == expected
    assert spec("createTask").bind((), {"taskId": "T", "payload": body}) == expected
    assert spec("createTask").bind(("T",), {"payload": body}) == expected


@pytest.mark.parametrize("name, args, kwargs, problem", [
    ("task", (), {}, "takes 1 route argument"),
    ("task", ("a", "b"), {}, "takes 1 route argument"),
    ("task", ("a",), {"taskId": "a"}, "not both"),
    ("artifact", ("T", 0), {"name": "x"}, "missing route argument 'taskId'"),
    ("task", (), {"taskid": "a"}, "unexpected keyword argument 'taskid'; did you mean 'taskId'?"),
    ("createTask", ("T",), {}, "missing payload"),
    ("createTask", (), {"taskId": "T"}, "missing payload"),
    ("createTask", ("T", {}), {"payload": {}}, "payload given twice"),
    ("createTask", ({},), {"taskId": "T", "payload": {}}, "payload given twice"),
    ("task", ("T",), {"payload": {}}, "takes no payload"),
    ("task", (["T"],), {}, "must be str or int, not list"),
    ("task", (True,), {}, "must be str or int, not bool"),
    ("task", ("",), {}, "must not be empty"),
    ("listTaskGroup", ("G",), {"query": {"limt": 1}}, "unknown query option 'limt'"),
    ("task", ("T",), {"query": {"limit": 1}}, "unknown query option 'limit'"),
    ("listTaskGroup", ("G",), {"query": "limit=1"}, "query must be a dict"),
    ("listTaskGroup", ("G",), {"query": {"limit": 1.5}}, "must be str, int or bool"),
])
def test_misuse_is_a_call_error_naming_method_and_signature(queue, name, args, kwargs, problem):
    with pytest.raises(CallError) as info:
        getattr(queue, name)(*args, **kwargs)
    assert problem in str(info.value)
    assert str(info.value).startswith(spec(name).signature_text)
    assert isinstance(info.value, TypeError)
    assert info.value.method == name


def test_query_is_encoded_and_none_values_dropped(queue):
    url = queue.buildUrl("listTaskGroup", "G", query={"limit": 5, "continuationToken": "a b/c"})
    assert url == f"{ROOT}/api/queue/v1/task-group/G/list?limit=5&continuationToken=a+b%2Fc"
    assert queue.buildUrl("listTaskGroup", "G", query={"continuationToken": None}).endswith("/list")
    assert encode_query({"a": 1}) == "a=1"
    workers = client_class("WorkerManager")({"rootUrl": ROOT})
    url = workers.buildUrl("listWorkers", "p", "w", query={"quarantined": True})
    assert url.endswith("/provisioners/p/worker-types/w/workers?quarantined=true")


def test_build_url_needs_no_payload(queue):
    assert queue.buildUrl("createTask", "T") == f"{ROOT}/api/queue/v1/task/T"
    assert queue.buildUrl("createTask", taskId="T") == f"{ROOT}/api/queue/v1/task/T"
    with pytest.raises(CallError, match="no method 'tsk'; did you mean 'task'"):
        queue.buildUrl("tsk", "T")


# --------------------------------------------------------------------------- URLs and options


def test_url_forms():
    Queue, Scheduler = client_class("Queue"), client_class("Scheduler")
    assert Queue({"rootUrl": ROOT + "/"}).buildUrl("task", "a/b é") == f"{ROOT}/api/queue/v1/task/a%2Fb%20%C3%A9"
    assert Queue({"rootUrl": "https://taskcluster.net"}).buildUrl("task", "x") == "https://queue.taskcluster.net/v1/task/x"
    legacy = {"baseUrl": "https://queue.taskcluster.net/v1/"}
    assert Queue(legacy).buildUrl("task", "x") == "https://queue.taskcluster.net/v1/task/x"
    assert Scheduler().buildUrl("info", "G") == "https://scheduler.taskcluster.net/v1/task-graph/G/info"
    assert Scheduler(rootUrl=ROOT).buildUrl("ping") == f"{ROOT}/api/scheduler/v1/ping"
    with pytest.raises(ConfigError, match="rootUrl"):
        Queue()
    with pytest.raises(ConfigError, match="rootUrl"):
        Queue(rootUrl="tc.example.com")


def test_options_validated_with_suggestions_and_never_mutated():
    Queue = client_class("Queue")
    options = {"rootUrl": ROOT, "credentials": {"clientId": "c", "accessToken": "t",
                                                "certificate": json.dumps({"version": 1})},
               "authorizedScopes": ["a"], "maxRetries": 2}
    before = copy.deepcopy(options)
    client = Queue(options, timeout=5)
    assert options == before
    assert client.max_retries == 2
    assert client.timeout == 5
    assert client.authorized_scopes == ("a",)
    assert client.options["signedUrlExpiration"] == 900
    assert "credentials" not in client.options
    with pytest.raises(ConfigError, match="'maxRetires'; did you mean 'maxRetries'") as info:
        Queue({"rootUrl": ROOT, "maxRetires": 3})
    assert info.value.option == "maxRetires"
    with pytest.raises(ConfigError, match="unknown option 'zzz'; known: rootUrl, baseUrl, credentials"):
        Queue({"rootUrl": ROOT, "zzz": 3})
    # every problem of the credentials option is a CredentialsError (the one reader's)
    with pytest.raises(CredentialsError, match="'acessToken'; did you mean 'accessToken'\\?$"):
        Queue({"rootUrl": ROOT, "credentials": {"clientId": "c", "acessToken": "t"}})
    with pytest.raises(CredentialsError, match="credentials must be a dict, not str"):
        Queue({"rootUrl": ROOT, "credentials": "c:t"})
    for bad in ({"maxRetries": -1}, {"maxRetries": True}, {"maxRetries": 1.5}, {"timeout": 0},
                {"timeout": "30"}, {"signedUrlExpiration": 0}, {"authorizedScopes": "a"},
                {"authorizedScopes": 5}, {"authorizedScopes": [1]}):
        with pytest.raises(ConfigError):
            Queue({"rootUrl": ROOT, **bad})
    assert Queue(rootUrl=ROOT, timeout=(1, 5), maxRetries=0).timeout == (1, 5)


@pytest.mark.parametrize("creds, problem", [
    ({"clientId": "c"}, "accessToken is missing"),
    ({"accessToken": TOKEN}, "clientId is missing"),
    ({"clientId": "c", "accessToken": TOKEN.encode()}, "accessToken must be str"),
    ({"clientId": 3, "accessToken": TOKEN}, "clientId must be str"),
    ({"clientId": "c", "accessToken": TOKEN, "certificate": "{not json"}, "certificate is not valid JSON"),
    ({"clientId": "c", "accessToken": TOKEN, "certificate": "[1]"}, "certificate must be a dict"),
])
def test_bad_credentials_never_show_the_token(creds, problem):
    with pytest.raises(CredentialsError, match=problem) as info:
        client_class("Queue")({"rootUrl": ROOT, "credentials": creds})
    assert "sekrit" not in str(info.value)
    assert "sekrit" not in repr(info.value)


def test_environment_fills_what_is_missing(monkeypatch):
    monkeypatch.setenv("TASKCLUSTER_ROOT_URL", "https://env.example.com/")
    monkeypatch.setenv("TASKCLUSTER_CLIENT_ID", "env-client")
    monkeypatch.setenv("TASKCLUSTER_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("TASKCLUSTER_CERTIFICATE", json.dumps({"version": 1, "seed": "s"}))
    Queue = client_class("Queue")
    client = Queue()
    assert client.base_url == "https://env.example.com/api/queue/v1"
    assert client.client_id == "env-client"
    assert client.auth.ext  # the certificate travels in ext
    explicit = Queue({"rootUrl": ROOT, "credentials": None})
    assert explicit.base_url.startswith(ROOT)
    assert explicit.client_id is None
    assert explicit.auth is None
    assert Queue({"credentials": {}}).client_id is None  # {} is anonymous too, as the official client
    legacy = Queue({"baseUrl": "https://queue.taskcluster.net/v1"})  # a baseUrl: no root from the environment
    assert legacy.root_url is None
    assert legacy.client_id == "env-client"
    monkeypatch.delenv("TASKCLUSTER_ACCESS_TOKEN")
    with pytest.raises(CredentialsError, match="environment: accessToken is missing"):
        Queue()
    monkeypatch.setenv("TASKCLUSTER_CLIENT_ID", "")  # empty is unset; a lone certificate is ignored
    assert Queue().client_id is None
    assert Queue().auth is None


@pytest.mark.parametrize("options", [
    {"rootUrl": ROOT},
    {"rootUrl": ROOT, "credentials": None},
    {"credentials": {"clientId": "opt-client", "accessToken": TOKEN, "certificate": {"version": 1}}},
    {"baseUrl": "https://queue.taskcluster.net/v1", "authorizedScopes": ["queue:get-task:*"]},
])
def test_client_takes_root_url_and_credentials_from_the_one_reader(monkeypatch, options):
    from tclisten.taskcluster.credentials import read_options

    monkeypatch.setenv("TASKCLUSTER_ROOT_URL", "https://env.example.com")
    monkeypatch.setenv("TASKCLUSTER_CLIENT_ID", "env-client")
    monkeypatch.setenv("TASKCLUSTER_ACCESS_TOKEN", TOKEN)
    deployment = read_options(options)
    client = client_class("Queue")(options)
    creds = deployment.credentials
    assert client.root_url == deployment.root_url
    assert client.client_id == (creds.clientId if creds else None)
    if creds is not None:
        expected = HawkAuth(creds.clientId, creds.accessToken, creds.ext(options.get("authorizedScopes")))
        assert client.auth == expected  # the same key, the same ext
        assert client.auth.ext == expected.ext
    else:
        assert client.auth is None


def test_only_the_credentials_module_names_the_environment_variables():
    """One owner: no other module of the REST side reads TASKCLUSTER_* by name."""
    import ast

    import tclisten.taskcluster

    names = {"TASKCLUSTER_ROOT_URL", "TASKCLUSTER_CLIENT_ID", "TASKCLUSTER_ACCESS_TOKEN",
             "TASKCLUSTER_CERTIFICATE"}
    package = Path(tclisten.taskcluster.__file__).parent
    readers = {path.name for path in package.rglob("*.py")
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.Constant) and node.value in names}
    assert readers == {"credentials.py"}


def test_token_stays_out_of_repr_options_and_pickles():
    client = client_class("Queue")({"rootUrl": ROOT, "credentials": CREDS})
    shown = repr(client) + repr(client.options) + repr(client.auth) + repr(vars(client))
    assert "sekrit" not in shown
    assert "tester" in repr(client)
    err = pickle.loads(pickle.dumps(TaskclusterRestFailure("m", status_code=404, url="u")))
    assert err.status_code == 404
    assert err.url == "u"


def test_session_reads_environment_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/custom.pem")
    client = client_class("Queue")({"rootUrl": ROOT})
    assert client.session.trust_env is False
    assert client.session.proxies["https"] == "http://proxy.example.com:3128"
    assert client.session.verify == "/etc/ssl/custom.pem"
    monkeypatch.setenv("NO_PROXY", "tc.example.com")
    assert client_class("Queue")({"rootUrl": ROOT}).session.proxies == {}


def test_retry_delay_is_the_official_backoff():
    assert retry_delay(0) == 0
    for n in range(1, 12):
        for _ in range(50):
            assert min(0.075 * 2 ** (n - 1), 30) <= retry_delay(n) <= min(0.125 * 2 ** (n - 1), 30)


# --------------------------------------------------------------------------- real HTTP


def make(server, **options):
    return client_class("Queue")({"rootUrl": server.url, **options})


def test_get_put_and_204(serve):
    def app(request):
        if request["method"] == "DELETE":
            return 204, {}, b""
        return 200, {}, {"echo": request["path"], "body": request["body"].decode()}

    server = serve(app)
    queue = make(server)
    assert queue.task("a/b") == {"echo": "/api/queue/v1/task/a%2Fb", "body": ""}
    import datetime
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    answer = queue.createTask("T", {"deadline": when, "n": [1, "é"]})
    assert json.loads(answer["body"]) == {"deadline": "2026-01-02T03:04:05Z", "n": [1, "é"]}
    assert answer["body"] == json.dumps({"deadline": "2026-01-02T03:04:05Z", "n": [1, "é"]},
                                        separators=(",", ":"))
    put = server.requests[1]
    assert put["method"] == "PUT"
    assert put["headers"]["Content-Type"] == "application/json"
    assert "Authorization" not in put["headers"]  # no credentials, no Hawk header
    assert queue.ping() == {"echo": "/api/queue/v1/ping", "body": ""}
    peers = {r["peer"] for r in server.requests}
    assert len(peers) == 1  # one keep-alive connection for every call of a client
    assert client_class("Hooks")({"rootUrl": server.url}).removeHook("g", "h") is None


def test_payload_dates_go_out_as_utc_with_z(serve):
    """One encoder (utils.dumpJson) for every JSON body: a date at +02:00 is sent converted
    to UTC with a Z, a naive one as UTC; the text is what dumpJson gives."""
    import datetime

    from tclisten.taskcluster.utils import dumpJson

    server = serve(lambda request: (200, {}, {"body": request["body"].decode()}))
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    payload = {"deadline": datetime.datetime(2026, 1, 2, 5, 4, 5, 250000, tzinfo=plus2),
               "expires": datetime.datetime(2027, 1, 1), "day": datetime.date(2026, 1, 2), "raw": b"x"}
    sent = make(server).createTask("T", payload)["body"]
    assert json.loads(sent) == {"deadline": "2026-01-02T03:04:05.250000Z", "expires": "2027-01-01T00:00:00Z",
                                "day": "2026-01-02", "raw": "x"}
    assert sent == dumpJson(payload)


def test_payload_dates_compared_with_the_official_client():
    """Naive and UTC dates read as the official client writes them; for other offsets the
    official client keeps the offset ("+02:00") where tclisten sends the same instant in UTC."""
    import datetime

    official = pytest.importorskip("taskcluster.utils")
    from tclisten.taskcluster.utils import dumpJson

    for when in (datetime.datetime(2026, 1, 2, 3, 4, 5), datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)):
        assert dumpJson({"when": when}) == official.dumpJson({"when": when})
    plus2 = datetime.datetime(2026, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    ours, theirs = json.loads(dumpJson({"w": plus2}))["w"], json.loads(official.dumpJson({"w": plus2}))["w"]
    assert (ours, theirs) == ("2026-01-02T03:04:05Z", "2026-01-02T05:04:05+02:00")
    assert datetime.datetime.fromisoformat(ours.replace("Z", "+00:00")) == datetime.datetime.fromisoformat(theirs)


def test_urls_in_errors_and_logs_are_scrubbed(serve, no_wait, caplog):
    """Passwords in a URL are masked (user:****) by tclisten.redact (its doctests show bewits
    dropped too); the query stays."""
    with pytest.raises(ConfigError) as info:
        client_class("Queue")({"rootUrl": "ftp://me:pa55word@tc.example.com"})
    assert "pa55word" not in str(info.value)
    assert "me:****@tc.example.com" in str(info.value)
    server = serve(ok({"message": "busy"}, 503))
    root = server.url.replace("http://", "http://me:pa55word@")
    queue = client_class("Queue")({"rootUrl": root, "maxRetries": 1})
    caplog.set_level("WARNING", logger="tclisten.taskcluster.client")
    with pytest.raises(TaskclusterConnectionError) as info:
        queue.listTaskGroup("G", query={"limit": 2})
    err = info.value
    expected = f"{server.url.replace('http://', 'http://me:****@')}/api/queue/v1/task-group/G/list?limit=2"
    assert err.url == expected
    assert err.__cause__.url == expected
    shown = str(err) + repr(err.__dict__) + str(err.__cause__) + caplog.text
    assert "pa55word" not in shown
    assert expected in caplog.text


def test_payload_that_is_not_json_is_a_call_error(serve):
    queue = make(serve(ok()))
    with pytest.raises(CallError, match="payload is not JSON"):
        queue.createTask("T", {"x": object()})


@pytest.mark.parametrize("status, cls", [(400, TaskclusterRestFailure), (404, TaskclusterRestFailure),
                                         (401, TaskclusterAuthFailure), (403, TaskclusterAuthFailure)])
def test_4xx_raise_at_once_with_context(serve, no_wait, status, cls):
    body = {"code": "X", "message": "Task not found", "requestInfo": {}}
    server = serve(ok(body, status, {"x-for-request-id": "req-1"}))
    with pytest.raises(cls) as info:
        make(server, credentials=CREDS).task("T")
    err = info.value
    assert (err.status_code, err.message, err.method, err.request_id) == (status, "Task not found", "GET", "req-1")
    assert err.url == f"{server.url}/api/queue/v1/task/T"
    assert err.body == body
    assert len(server.requests) == 1
    assert no_wait == []
    assert "sekrit" not in str(err) + repr(err) + repr(err.__dict__)
    assert pickle.loads(pickle.dumps(err)).status_code == status


def test_error_without_json_message(serve):
    server = serve(lambda request: (400, {"x-request-id": "r2"}, b"plain words"))
    with pytest.raises(TaskclusterRestFailure) as info:
        make(server).task("T")
    assert info.value.body == "plain words"
    assert info.value.request_id == "r2"
    assert "400" in info.value.message


def test_2xx_that_is_not_json_is_a_clear_error(serve):
    server = serve(lambda request: (200, {"Content-Type": "text/html"}, b"<html>"))
    with pytest.raises(TaskclusterRestFailure, match="not JSON") as info:
        make(server).task("T")
    assert info.value.status_code == 200
    assert info.value.body == "<html>"


def test_5xx_retried_until_success(serve, no_wait):
    def app(request):
        return (503, {}, {"message": "busy"}) if len(server.requests) <= 3 else (200, {}, {"ok": 1})

    server = serve(app)
    assert make(server).task("T") == {"ok": 1}
    assert len(server.requests) == 4
    assert len(no_wait) == 3
    for n, delay in enumerate(no_wait, start=1):
        assert 0.075 * 2 ** (n - 1) <= delay <= 0.125 * 2 ** (n - 1)


def test_5xx_exhausted_is_a_connection_error_after_six_attempts(serve, no_wait):
    server = serve(ok({"message": "down"}, 500, {"x-request-id": "r5"}))
    with pytest.raises(TaskclusterConnectionError) as info:
        make(server).task("T")
    assert len(server.requests) == 6
    assert len(no_wait) == 5
    assert info.value.status_code == 500
    assert info.value.attempts == 6
    cause = info.value.__cause__
    assert isinstance(cause, TaskclusterRestFailure)
    assert cause.message == "down"
    assert cause.request_id == "r5"


def test_retries_real_backoff_is_short_at_first(serve):
    server = serve(lambda request: (502, {}, b"") if len(server.requests) == 1 else (200, {}, {}))
    assert make(server, maxRetries=1).task("T") == {}


def test_connection_refused_is_retried_then_chained(no_wait):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the with ends: nothing listens there
    queue = client_class("Queue")({"rootUrl": f"http://127.0.0.1:{port}", "maxRetries": 2})
    with pytest.raises(TaskclusterConnectionError, match="3 attempts") as info:
        queue.ping()
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert len(no_wait) == 2


def test_silent_server_times_out(serve, no_wait):
    server = serve(lambda request: None)
    queue = make(server, timeout=0.3, maxRetries=1)
    with pytest.raises(TaskclusterConnectionError) as info:
        queue.task("T")
    assert isinstance(info.value.__cause__, requests.Timeout)
    assert len(server.requests) == 2


def test_pagination_follows_continuation_tokens(serve):
    pages = {None: {"tasks": [1, 2], "continuationToken": "t1"},
             "t1": {"tasks": [3], "continuationToken": "t 2"},
             "t 2": {"tasks": [4]}}

    def app(request):
        from urllib.parse import parse_qs, urlsplit
        query = parse_qs(urlsplit(request["path"]).query)
        assert query["limit"] == ["2"]
        return 200, {}, pages[query.get("continuationToken", [None])[0]]

    server = serve(app)
    queue = make(server)
    assert list(queue.paginate("listTaskGroup", "G", query={"limit": 2})) == list(pages.values())
    assert list(queue.iterate("listTaskGroup", taskGroupId="G", query={"limit": 2})) == [1, 2, 3, 4]
    assert list(queue.iterate("listTaskGroup", "G", items="tasks", query={"limit": 2})) == [1, 2, 3, 4]
    with pytest.raises(CallError, match="does not paginate"):
        queue.paginate("task", "T")
    with pytest.raises(CallError, match="unknown query option"):
        queue.paginate("listTaskGroup", "G", query={"limt": 2})


def test_ping_and_threads_share_one_client(serve):
    server = serve(ok({"alive": True}))
    queue = make(server)
    results, errors = [], []

    def work():
        try:
            for _ in range(10):
                results.append(queue.ping())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [{"alive": True}] * 60
    with queue:
        assert queue.ping() == {"alive": True}
    assert queue.ping() == {"alive": True}  # still usable after close


def test_redirect_answer_is_returned_not_followed(serve):
    answer = {"storageType": "s3", "url": "http://127.0.0.1:9/elsewhere"}
    server = serve(ok(answer, 303, {"Location": answer["url"]}))
    assert make(server).getArtifact("T", 0, "public/log.txt") == answer
    assert len(server.requests) == 1


# --------------------------------------------------------------------------- FakeTaskcluster
# The project's own fake deployment (tclisten.testing.fakeserver): Hawk, bewits, temporary
# credentials and scopes checked as Taskcluster checks them.


@pytest.fixture
def fake():
    fakeserver = pytest.importorskip("tclisten.testing.fakeserver")
    clients = {"tester": {"accessToken": TOKEN, "scopes": ["queue:*", "auth:create-client:tester/*"]}}
    with fakeserver.FakeTaskcluster(clients=clients) as tc:
        yield tc


def fake_queue(tc, **options):
    return client_class("Queue")({"rootUrl": tc.root_url, "credentials": CREDS, **options})


def test_fake_deployment_accepts_signed_calls_and_decodes_the_arguments(fake):
    fake.respond("queue", "task", lambda call: {"taskId": call.args["taskId"]})
    fake.respond("queue", "createTask", lambda call: {"got": call.body})
    queue = fake_queue(fake)
    assert queue.task("a/b c") == {"taskId": "a/b c"}
    payload = {"taskQueueId": "p/w", "schedulerId": "s", "projectId": "none", "priority": "lowest",
               "routes": [], "scopes": []}
    assert queue.createTask(payload, taskId="T") == {"got": payload}
    assert [(c.function, c.auth, c.client_id, c.status) for c in fake.calls] == [
        ("task", "hawk", "tester", 200), ("createTask", "hawk", "tester", 200)]


def test_fake_deployment_temporary_credentials_and_authorized_scopes(fake):
    from tclisten.taskcluster.credentials import createTemporaryCredentials
    from tclisten.taskcluster.utils import fromNow

    fake.respond("queue", "task", {"ok": True})
    temp = createTemporaryCredentials("tester", TOKEN, fromNow("-1 min"), fromNow("1 hour"),
                                      ["queue:get-task:*"], name="tester/tmp")
    queue = client_class("Queue")({"rootUrl": fake.root_url, "credentials": temp})
    assert queue.task("T") == {"ok": True}
    assert fake.calls[-1].client_id == "tester/tmp"
    assert fake.calls[-1].scopes == ["queue:get-task:*"]
    narrowed = fake_queue(fake, authorizedScopes=["queue:get-task:other"])
    with pytest.raises(TaskclusterAuthFailure) as info:
        narrowed.task("T")
    assert info.value.status_code == 403
    assert info.value.request_id
    assert TOKEN not in str(info.value)
    assert temp["accessToken"] not in str(info.value)


def test_fake_deployment_retries_and_timeouts(fake, no_wait):
    fake.respond("queue", "task", {"ok": True})
    fake.fail_next(3)
    assert fake_queue(fake).task("T") == {"ok": True}
    assert len(fake.calls) == 4
    assert len(no_wait) == 3
    fake.fail_next(2, status=503)
    with pytest.raises(TaskclusterConnectionError) as info:
        fake_queue(fake, maxRetries=1).task("T")
    assert info.value.status_code == 503
    fake.hang(True)
    try:
        with pytest.raises(TaskclusterConnectionError) as info:
            fake_queue(fake, maxRetries=0, timeout=0.3).task("T")
        assert isinstance(info.value.__cause__, requests.Timeout)
    finally:
        fake.hang(False)


def test_fake_deployment_accepts_signed_urls(fake):
    fake.respond("queue", "task", {"ok": True})
    fake.respond("queue", "listTaskGroup", {"tasks": []})
    queue = fake_queue(fake)
    for url in (queue.buildSignedUrl("task", "T"),
                queue.buildSignedUrl("listTaskGroup", "G", query={"limit": 2}, expiration=30)):
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200, answer.text
        assert fake.calls[-1].auth == "bewit"
    assert fake.calls[-1].query == {"limit": "2"}


def test_fake_deployment_paginates(fake):
    fake.respond_sequence("queue", "listTaskGroup", [
        {"tasks": [1, 2], "continuationToken": "c1"}, {"tasks": [3]}])
    assert list(fake_queue(fake).iterate("listTaskGroup", "G", query={"limit": 2})) == [1, 2, 3]
    assert [c.query for c in fake.calls] == [{"limit": "2"}, {"limit": "2", "continuationToken": "c1"}]


@pytest.mark.parametrize("name", OFFICIAL_NAMES)
def test_every_function_reaches_its_route_on_the_fake_deployment(name):
    fakeserver = pytest.importorskip("tclisten.testing.fakeserver")
    with fakeserver.FakeTaskcluster(verify_hawk=False) as tc:
        client = client_class(name)({"rootUrl": tc.root_url, "maxRetries": 0})
        for fn in client.reference.functions:
            values = [f"v{i}/é" for i in range(len(fn.args))]
            args = values + ([{"k": 1}] if fn.input else [])
            try:
                getattr(client, fn.name)(*args)
            except TaskclusterRestFailure:
                pass  # nothing told the fake what to answer: 404 (or a scope refusal)
            call = tc.calls[-1]
            assert (call.function, call.args) == (fn.name, dict(zip(fn.args, values))), fn.name
