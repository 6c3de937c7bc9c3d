"""Same call, same request: for every function of every bundled API reference, tclisten's
method and URL equal those of PyPI's official ``taskcluster`` client (test-only dependency).

The official client is fed the very same references (its ``createApiClient``), so the
comparison covers every bundled function, including those its own release no longer ships;
its shipped classes are checked too, where they have the function.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

taskcluster = pytest.importorskip("taskcluster")
from taskcluster.client import createApiClient  # noqa: E402

from tclisten.taskcluster.client import bundled_services, client_class  # noqa: E402
from tclisten.taskcluster.references import bundled, reference_facts  # noqa: E402

ROOT = "https://tc.example.com"
CREDS = {"clientId": "tester", "accessToken": "official-compare-token"}
CERT = {"version": 1, "scopes": ["queue:*"], "start": 1, "expiry": 2, "seed": "s" * 44, "signature": "x+/="}


def official_class(name: str):
    return createApiClient(name, {"reference": json.loads(json.dumps(reference_facts(bundled()[name])))})


def call_values(name: str):
    """For each function: route values (str with characters that need encoding, and ints),
    and a query using every option the function declares."""
    for fn in client_class(name).reference.functions:
        values = [f"v{i}/x y~é" if i % 2 == 0 else i + 10 for i in range(len(fn.args))]
        query = {q: (f"q {q}/é" if i % 2 == 0 else i) for i, q in enumerate(fn.query)}
        yield fn, values, query


SERVICES = bundled_services()


@pytest.mark.parametrize("name", SERVICES)
def test_build_url_equals_official_for_every_function(name):
    ours = client_class(name)({"rootUrl": ROOT})
    theirs = official_class(name)({"rootUrl": ROOT})
    count = 0
    for fn, values, query in call_values(name):
        extra = {"payload": {}} if fn.input else {}
        assert ours.buildUrl(fn.name, *values) == theirs.buildUrl(fn.name, *values, **extra), fn.name
        if query:
            assert (ours.buildUrl(fn.name, *values, query=query)
                    == theirs.buildUrl(fn.name, *values, query=query, **extra)), fn.name
        count += 1
    assert count == len(bundled()[name].functions) > 0


@pytest.mark.parametrize("name", [n for n in SERVICES if hasattr(taskcluster, n)])
def test_build_url_equals_the_official_shipped_classes(name):
    ours = client_class(name)({"rootUrl": ROOT})
    theirs = getattr(taskcluster, name)({"rootUrl": ROOT})
    shared = [item for item in call_values(name) if item[0].name in theirs.funcinfo]
    assert len(shared) >= len(bundled()[name].functions) - 5  # Auth's azure* left the official release
    for fn, values, query in shared:
        assert theirs.funcinfo[fn.name]["method"] == fn.method
        extra = {"payload": {}} if fn.input else {}
        assert ours.buildUrl(fn.name, *values, query=query) == theirs.buildUrl(
            fn.name, *values, query=query, **extra), fn.name


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without this, Nagle + delayed ACK stall every
    # keep-alive response ~40 ms (a real deployment answers in one segment)
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append((self.command, self.path))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads, server.seen = True, []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", SERVICES)
def test_requests_sent_equal_official_for_every_function(recorder, name):
    """Intercept what each client really sends: same HTTP method, same path and query.

    One documented difference: without a query string, the official client strips the
    trailing ``/`` of a route like ``/clients/``; tclisten sends the route as the reference
    writes it (as the official client's own ``buildUrl`` and the JS client do)."""
    options = {"rootUrl": recorder.url, "credentials": CREDS}
    ours = client_class(name)(options)
    theirs = official_class(name)(dict(options, credentials=dict(CREDS)))
    for fn, values, query in call_values(name):
        extra = {"payload": {"k": 1}} if fn.input else {}
        for q in ({}, query) if query else ({},):
            recorder.seen.clear()
            assert getattr(theirs, fn.name)(*values, query=q, **extra) == {}
            assert getattr(ours, fn.name)(*values, query=q, **extra) == {}
            (their_method, their_path), (our_method, our_path) = recorder.seen
            assert our_method == their_method == fn.method.upper(), fn.name
            if not q and fn.route.endswith("/"):
                assert our_path == their_path + "/", fn.name
            else:
                assert our_path == their_path, fn.name


def test_signed_urls_and_ext_equal_official(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    creds = dict(CREDS, certificate=json.dumps(CERT))
    options = {"rootUrl": ROOT, "credentials": creds, "authorizedScopes": ["queue:get-task:*"]}
    ours = client_class("Queue")(options)
    theirs = official_class("Queue")(json.loads(json.dumps(options)))
    assert ours.auth.ext == theirs.makeHawkExt().decode()
    for args, kwargs in ((("T/1",), {}), (("G",), {"query": {"limit": 3}})):
        method = "task" if not kwargs else "listTaskGroup"
        assert (ours.buildSignedUrl(method, *args, expiration=120, **kwargs)
                == theirs.buildSignedUrl(method, *args, expiration=120, **kwargs))
