"""Hawk and bewits end to end: a loopback server verifies every request with mohawk's
Receiver (payload hash included, replayed nonces refused) and every signed URL with
mohawk's bewit check, the way a Taskcluster service does."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mohawk
import mohawk.bewit
import mohawk.exc
import pytest
import requests

import tclisten.taskcluster.client as client_module
from tclisten.taskcluster.client import client_class
from tclisten.exceptions import CallError, CredentialsError, TaskclusterAuthFailure
from tclisten.taskcluster.hawk import HawkAuth, bewit, make_ext, sign_url

TOKEN = "hawk-sekrit-token-0123456789abcdef"
CREDS = {"clientId": "tester", "accessToken": TOKEN}
CERT = {"version": 1, "scopes": ["queue:*"], "start": 1, "expiry": 2, "seed": "s" * 44,
        "signature": "sig+/="}


def decode_ext(ext: str | None):
    if not ext:
        return None
    return json.loads(base64.b64decode(ext.replace("-", "+").replace("_", "/")))


def check_bewit(url: str) -> str:
    """Taskcluster's bewit is base64url without padding; mohawk's checker wants it padded
    standard base64 around a standard-base64 mac, so translate then check."""
    match = re.search(r"[?&]bewit=([^&]+)", url)
    raw = match.group(1)
    inner = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    standard = base64.b64encode(inner).decode()
    mohawk.bewit.check_bewit(url.replace(raw, standard), lambda cid: _lookup(cid))
    return inner.decode().split("\\")[3]


def _lookup(client_id: str) -> dict:
    if client_id != "tester":
        raise LookupError(client_id)
    return {"id": client_id, "key": TOKEN, "algorithm": "sha256"}


class HawkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without this, Nagle + delayed ACK stall every
    # keep-alive response ~40 ms (a real deployment answers in one segment)
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = f"http://{self.headers['Host']}{self.path}"
        try:
            if "bewit=" in self.path:
                ext = check_bewit(url)
                nonce = None
            else:
                receiver = mohawk.Receiver(
                    _lookup, self.headers.get("Authorization"), url, self.command,
                    content=body, content_type=self.headers.get("Content-Type", ""),
                    seen_nonce=server.seen_nonce)
                ext, nonce = receiver.parsed_header.get("ext"), receiver.parsed_header["nonce"]
            status, answer = 200, {"ext": decode_ext(ext), "body": body.decode()}
        except mohawk.exc.HawkFail as exc:
            status, answer, nonce = 401, {"message": f"Hawk: {type(exc).__name__}"}, None
        with server.lock:
            server.log.append((status, nonce))
            if status == 200 and server.fail_first and len(server.log) == 1:
                status, answer = 500, {"message": "try again"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = _handle

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hawk_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), HawkHandler)
    server.daemon_threads = True
    server.lock, server.log, server.fail_first, nonces = threading.Lock(), [], False, set()

    def seen_nonce(sender_id, nonce, timestamp):
        key = (sender_id, nonce, timestamp)
        with server.lock:
            if key in nonces:
                return True
            nonces.add(key)
            return False

    server.seen_nonce = seen_nonce
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def queue_for(server, **options):
    return client_class("Queue")({"rootUrl": server.url, "credentials": CREDS, **options})


def test_signed_get_and_put_verify_with_payload_hash(hawk_server):
    queue = queue_for(hawk_server)
    assert queue.task("a/b") == {"ext": None, "body": ""}
    answer = queue.createTask("T", {"x": [1, 2]})
    assert answer == {"ext": None, "body": '{"x":[1,2]}'}
    assert [status for status, _ in hawk_server.log] == [200, 200]


def test_body_or_content_type_changed_after_signing_is_refused(hawk_server):
    auth = HawkAuth("tester", TOKEN)
    url = f"{hawk_server.url}/api/queue/v1/task/T"
    with requests.Session() as session:
        for change in ({"body": b'{"x":2}'}, {"headers": {"Content-Type": "text/plain"}}):
            request = requests.Request("PUT", url, data=b'{"x":1}', auth=auth,
                                       headers={"Content-Type": "application/json"}).prepare()
            if "body" in change:
                request.body = change["body"]
            else:
                request.headers.update(change["headers"])
            assert session.send(request).status_code == 401
        good = requests.Request("PUT", url, data=b'{"x":1}', auth=auth,
                                headers={"Content-Type": "application/json"}).prepare()
        assert session.send(good).status_code == 200


def test_wrong_token_is_an_auth_failure_not_retried(hawk_server):
    queue = client_class("Queue")({"rootUrl": hawk_server.url,
                                   "credentials": {"clientId": "tester", "accessToken": "wrong"}})
    with pytest.raises(TaskclusterAuthFailure) as info:
        queue.task("T")
    assert info.value.status_code == 401
    assert "MacMismatch" in info.value.message
    assert len(hawk_server.log) == 1
    assert "wrong" not in str(info.value)


def test_every_retry_is_signed_afresh(hawk_server, monkeypatch):
    monkeypatch.setattr(client_module, "_sleep", lambda seconds: None)
    hawk_server.fail_first = True
    assert queue_for(hawk_server).task("T")["body"] == ""
    (first, nonce1), (second, nonce2) = hawk_server.log
    assert first == second == 200
    assert nonce1 != nonce2  # a replayed header would be refused


def test_ext_carries_certificate_and_authorized_scopes(hawk_server):
    creds = {**CREDS, "certificate": CERT}
    queue = queue_for(hawk_server, authorizedScopes=["queue:get-task:*"])
    assert queue.task("T")["ext"] == {"authorizedScopes": ["queue:get-task:*"]}
    queue = client_class("Queue")({"rootUrl": hawk_server.url, "credentials": creds,
                                   "authorizedScopes": []})
    assert queue.task("T")["ext"] == {"certificate": CERT, "authorizedScopes": []}
    as_text = {**CREDS, "certificate": json.dumps(CERT)}
    queue = client_class("Queue")({"rootUrl": hawk_server.url, "credentials": as_text})
    assert queue.task("T")["ext"] == {"certificate": CERT}


def test_make_ext_is_urlsafe_base64_of_compact_json():
    assert make_ext() is None
    scopes = ["~?{?bb"]  # found by search: gives both '+' and '/' in standard base64
    ext = make_ext(CERT, scopes)
    compact = json.dumps({"certificate": CERT, "authorizedScopes": scopes}, separators=(",", ":"))
    standard = base64.b64encode(compact.encode()).decode()
    assert "+" in standard
    assert "/" in standard
    assert ext == standard.replace("+", "-").replace("/", "_")
    assert decode_ext(make_ext(authorized_scopes=[])) == {"authorizedScopes": []}


def test_signed_urls_work_with_and_without_query(hawk_server):
    queue = queue_for(hawk_server, authorizedScopes=["queue:list-task-group:G"])
    plain = queue.buildSignedUrl("task", "a/b")
    assert "/task/a%2Fb?bewit=" in plain
    with_query = queue.buildSignedUrl("listTaskGroup", "G", query={"limit": 2}, expiration=60)
    assert "/list?limit=2&bewit=" in with_query
    for url in (plain, with_query):
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["ext"] == {"authorizedScopes": ["queue:list-task-group:G"]}
    assert requests.get(with_query.replace("limit=2", "limit=3"), timeout=10).status_code == 401


def test_bewit_format_and_expiry(hawk_server):
    url = f"{hawk_server.url}/api/queue/v1/task/T"
    token = bewit(url, "tester", TOKEN, 2_000_000_000)
    assert "=" not in token
    assert "+" not in token
    assert "/" not in token
    client_id, expiry, mac, ext = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("\\")
    assert (client_id, expiry, ext) == ("tester", "2000000000", "")
    assert len(base64.b64decode(mac)) == 32  # sha256, in standard base64
    expired = sign_url(url, "tester", TOKEN, expires_in=10, now=time.time() - 1000)
    assert requests.get(expired, timeout=10).status_code == 401
    assert requests.get(sign_url(url, "tester", TOKEN), timeout=10).status_code == 200


def test_signed_urls_need_get_and_credentials():
    queue = client_class("Queue")({"rootUrl": "https://tc.example.com", "credentials": CREDS})
    with pytest.raises(CallError, match="GET methods only"):
        queue.buildSignedUrl("createTask", "T")
    with pytest.raises(CallError, match="expiration"):
        queue.buildSignedUrl("task", "T", expiration=-5)
    with pytest.raises(CredentialsError):
        client_class("Queue")({"rootUrl": "https://tc.example.com"}).buildSignedUrl("task", "T")


def test_hawk_auth_hides_the_token():
    auth = HawkAuth("tester", TOKEN, ext=make_ext(authorized_scopes=["a"]))
    assert TOKEN not in repr(auth)
    assert "tester" in repr(auth)
    assert auth == HawkAuth("tester", TOKEN, ext=make_ext(authorized_scopes=["a"]))
    assert auth != HawkAuth("tester", "other", ext=make_ext(authorized_scopes=["a"]))
