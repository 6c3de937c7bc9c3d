"""FakeTaskcluster driven over real loopback HTTP with plain requests + mohawk."""

from __future__ import annotations

import datetime
import json
import threading
import time

import mohawk
import mohawk.base
import mohawk.bewit
import pytest
import requests

from support.faultkit import wait_until
from tclisten.taskcluster.credentials import createTemporaryCredentials, make_ext, sign_certificate
from tclisten.exceptions import CallError, ConfigError
from tclisten.testing.fakeserver import Call, FakeTaskcluster, Response, error_body
from tclisten.taskcluster.utils import fromNow

CLIENTS = {
    "tester": {"accessToken": "tester-token", "scopes": ["queue:*", "auth:create-client:tester/*"]},
    "limited": {"accessToken": "limited-token", "scopes": ["queue:get-task:T1", "assume:project:ci"]},
}
ROLES = {"project:*": ["index:find-task:*"]}


@pytest.fixture
def tc():
    with FakeTaskcluster(clients=CLIENTS, roles=ROLES) as server:
        server.respond("queue", "task", lambda call: {"taskId": call.args["taskId"]})
        yield server


@pytest.fixture
def session():
    with requests.Session() as s:
        s.trust_env = False
        yield s


def hawk(session, method, url, client_id, token, *, body=None, ext=None, **kw):
    content = json.dumps(body).encode() if body is not None else b""
    ctype = "application/json" if body is not None else ""
    sender = mohawk.Sender({"id": client_id, "key": token, "algorithm": "sha256"}, url, method,
                           content=content, content_type=ctype, ext=ext, **kw)
    headers = {"Authorization": sender.request_header}
    if body is not None:
        headers["Content-Type"] = ctype
    return session.request(method, url, data=content or None, headers=headers, timeout=10)


def bewit_url(url, client_id, token, *, expires_in=60, ext=None):
    resource = mohawk.base.Resource(credentials={"id": client_id, "key": token, "algorithm": "sha256"},
                                    method="GET", url=url, timestamp=int(time.time()) + expires_in,
                                    nonce="", ext=ext)
    bewit = mohawk.bewit.get_bewit(resource).rstrip("=")
    return url + ("&" if "?" in url else "?") + "bewit=" + bewit


def temp_creds(issuer="tester", token="tester-token", scopes=("queue:get-task:*",), name=None,
               start="-1 min", expiry="1 hour"):
    made = createTemporaryCredentials(issuer, token, fromNow(start), fromNow(expiry), list(scopes), name=name)
    return made["clientId"], made["accessToken"], json.loads(made["certificate"])


# --------------------------------------------------------------------------- Hawk header


def test_good_header_is_accepted_and_recorded(tc, session):
    url = tc.root_url + "/api/queue/v1/task/T1?x=1"
    reply = hawk(session, "GET", url, "tester", "tester-token")
    assert reply.status_code == 200
    assert reply.json() == {"taskId": "T1"}
    assert reply.headers["x-for-request-id"]
    (call,) = tc.calls
    assert (call.service, call.function, call.method, call.args, call.query) == (
        "queue", "task", "GET", {"taskId": "T1"}, {"x": "1"})
    assert call.client_id == "tester"
    assert call.auth == "hawk"
    assert call.status == 200
    assert "queue:*" in call.scopes
    assert call.request_id == reply.headers["x-for-request-id"]


def test_bad_mac_is_401_and_names_no_token(tc, session):
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "tester", "wrong-token")
    assert reply.status_code == 401
    body = reply.json()
    assert body["code"] == "AuthenticationFailed"
    assert "tester-token" not in reply.text
    assert "wrong-token" not in reply.text
    assert reply.headers["x-for-request-id"]
    assert tc.calls[0].status == 401


def test_unknown_client_is_401(tc, session):
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "nobody", "x")
    assert reply.status_code == 401
    assert "nobody" in reply.json()["message"]


def test_malformed_header_is_401(tc, session):
    reply = session.get(tc.root_url + "/api/queue/v1/task/T1", headers={"Authorization": "Hawk garbage"})
    assert reply.status_code == 401


def test_payload_hash_checked_when_present(tc, session):
    tc.respond("queue", "createTask", lambda call: {"status": {"taskId": call.args["taskId"]}})
    url = tc.root_url + "/api/queue/v1/task/T9"
    task = {"taskQueueId": "prov/wt", "scopes": [], "routes": []}
    assert hawk(session, "PUT", url, "tester", "tester-token", body=task).status_code == 200
    assert tc.calls[-1].body == task

    sender = mohawk.Sender({"id": "tester", "key": "tester-token", "algorithm": "sha256"}, url, "PUT",
                           content=json.dumps(task), content_type="application/json")
    tampered = session.put(url, data=json.dumps({**task, "priority": "highest"}),
                           headers={"Authorization": sender.request_header, "Content-Type": "application/json"})
    assert tampered.status_code == 401
    assert "hash" in tampered.json()["message"]

    unhashed = mohawk.Sender({"id": "tester", "key": "tester-token", "algorithm": "sha256"}, url, "PUT",
                             content=mohawk.base.EmptyValue, content_type=mohawk.base.EmptyValue,
                             always_hash_content=False)
    reply = session.put(url, data=json.dumps(task),
                        headers={"Authorization": unhashed.request_header, "Content-Type": "application/json"})
    assert reply.status_code == 200


def test_stale_timestamp_and_replayed_nonce_are_401(tc, session):
    url = tc.root_url + "/api/queue/v1/task/T1"
    old = hawk(session, "GET", url, "tester", "tester-token", _timestamp=int(time.time()) - 3600)
    assert old.status_code == 401
    assert "timestamp" in old.json()["message"]
    sender = mohawk.Sender({"id": "tester", "key": "tester-token", "algorithm": "sha256"}, url, "GET",
                           content="", content_type="")
    assert session.get(url, headers={"Authorization": sender.request_header}).status_code == 200
    again = session.get(url, headers={"Authorization": sender.request_header})
    assert again.status_code == 401
    assert "nonce" in again.json()["message"]


# --------------------------------------------------------------------------- bewits


def test_bewit_accepted(tc, session):
    url = bewit_url(tc.root_url + "/api/queue/v1/task/T1", "tester", "tester-token")
    reply = session.get(url)
    assert reply.status_code == 200
    assert tc.calls[-1].auth == "bewit"
    assert tc.calls[-1].client_id == "tester"
    assert tc.calls[-1].query == {}


def test_bewit_after_other_query_parameters(tc, session):
    url = bewit_url(tc.root_url + "/api/queue/v1/task/T1?a=1&b=two", "tester", "tester-token")
    assert session.get(url).status_code == 200
    assert tc.calls[-1].query == {"a": "1", "b": "two"}


def test_bewit_before_other_query_parameters(tc, session):
    signed = bewit_url(tc.root_url + "/api/queue/v1/task/T1?a=1", "tester", "tester-token")
    base, query = signed.split("?")
    a, bewit = query.split("&")
    moved = f"{base}?{bewit}&{a}"
    assert session.get(moved).status_code == 200


def test_expired_bewit_rejected(tc, session):
    url = bewit_url(tc.root_url + "/api/queue/v1/task/T1", "tester", "tester-token", expires_in=-10)
    reply = session.get(url)
    assert reply.status_code == 401
    assert "expired" in reply.json()["message"]


def test_bewit_for_another_url_or_key_rejected(tc, session):
    url = bewit_url(tc.root_url + "/api/queue/v1/task/T1", "tester", "tester-token")
    assert session.get(url.replace("/T1", "/T2")).status_code == 401
    bad = bewit_url(tc.root_url + "/api/queue/v1/task/T1", "tester", "other-token")
    assert session.get(bad).status_code == 401
    assert session.get(tc.root_url + "/api/queue/v1/task/T1?bewit=!!!").status_code == 401


def test_bewit_only_on_get(tc, session):
    tc.respond("queue", "cancelTask", {})
    url = bewit_url(tc.root_url + "/api/queue/v1/task/T1/cancel", "tester", "tester-token")
    assert session.post(url).status_code == 401


def test_bewit_with_temporary_credentials(tc, session):
    client_id, token, cert = temp_creds()
    url = bewit_url(tc.root_url + "/api/queue/v1/task/T1", client_id, token, ext=make_ext(cert))
    assert session.get(url).status_code == 200


# --------------------------------------------------------------------------- temporary credentials


@pytest.mark.parametrize("name", [None, "tester/temp"])
def test_temporary_credentials_accepted(tc, session, name):
    client_id, token, cert = temp_creds(name=name)
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", client_id, token, ext=make_ext(cert))
    assert reply.status_code == 200, reply.text
    assert tc.calls[-1].client_id == (name or "tester")
    assert tc.calls[-1].scopes == ["queue:get-task:*"]


def test_official_client_temporary_credentials_accepted(tc, session):
    taskcluster = pytest.importorskip("taskcluster")
    made = taskcluster.createTemporaryCredentials(
        "tester", "tester-token", datetime.datetime.utcnow() - datetime.timedelta(minutes=1),
        datetime.datetime.utcnow() + datetime.timedelta(hours=1), ["queue:get-task:T1"], name="tester/official")
    token = made["accessToken"]
    token = token.decode() if isinstance(token, bytes) else token
    ext = make_ext(json.loads(made["certificate"]))
    url = tc.root_url + "/api/queue/v1/task/T1"
    assert hawk(session, "GET", url, made["clientId"], token, ext=ext).status_code == 200
    assert hawk(session, "GET", url.replace("T1", "T2"), made["clientId"], token, ext=ext).status_code == 403


def test_official_client_signed_request_accepted(tc):
    taskcluster = pytest.importorskip("taskcluster")
    queue = taskcluster.Queue({"rootUrl": tc.root_url, "maxRetries": 0,
                               "credentials": {"clientId": "tester", "accessToken": "tester-token"}})
    assert queue.task("T1") == {"taskId": "T1"}
    url = queue.buildSignedUrl("task", "T1")
    assert requests.get(url, timeout=10).status_code == 200
    assert tc.calls[-1].auth == "bewit"


def test_expired_certificate_rejected(tc, session):
    client_id, token, cert = temp_creds(start="-3 hours", expiry="-2 hours")
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", client_id, token, ext=make_ext(cert))
    assert reply.status_code == 401
    assert "expired" in reply.json()["message"]


def test_certificate_not_yet_valid_rejected(tc, session):
    client_id, token, cert = temp_creds(start="2 hours", expiry="3 hours")
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", client_id, token, ext=make_ext(cert))
    assert reply.status_code == 401
    assert "future" in reply.json()["message"]


def test_bad_certificate_signature_rejected(tc, session):
    client_id, token, cert = temp_creds()
    cert["scopes"] = ["queue:*"]  # widened after signing
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", client_id, token, ext=make_ext(cert))
    assert reply.status_code == 401
    assert "signature" in reply.json()["message"]


def test_certificate_signed_with_wrong_issuer_token_rejected(tc, session):
    client_id, token, cert = temp_creds(token="not-the-issuer-token")
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", client_id, token, ext=make_ext(cert))
    assert reply.status_code == 401


def test_certificate_granting_more_than_issuer_has_rejected(tc, session):
    client_id, token, cert = temp_creds(scopes=["auth:*"])
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", client_id, token, ext=make_ext(cert))
    assert reply.status_code == 401
    assert "scopes" in reply.json()["message"]


def test_named_certificate_needs_create_client_scope(tc, session):
    client_id, token, cert = temp_creds(issuer="limited", token="limited-token",
                                        scopes=["queue:get-task:T1"], name="someone")
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", client_id, token, ext=make_ext(cert))
    assert reply.status_code == 401
    assert "auth:create-client:someone" in reply.json()["message"]


def test_certificate_over_31_days_rejected(tc, session):
    now = int(time.time() * 1000)
    cert = {"version": 1, "scopes": [], "start": now - 60_000, "expiry": now + 32 * 86400_000,
            "seed": "A" * 44}
    cert["signature"] = sign_certificate(cert, "tester-token")
    from tclisten.taskcluster.credentials import derive_access_token
    token = derive_access_token("tester-token", cert["seed"])
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "tester", token, ext=make_ext(cert))
    assert reply.status_code == 401
    assert "31 days" in reply.json()["message"]


def test_temporary_token_must_be_the_derived_one(tc, session):
    client_id, _token, cert = temp_creds()
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", client_id, "tester-token",
                 ext=make_ext(cert))
    assert reply.status_code == 401
    assert "mac" in reply.json()["message"].lower()


def test_malformed_ext_rejected(tc, session):
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "tester", "tester-token",
                 ext="not-base64-json")
    assert reply.status_code == 401


# --------------------------------------------------------------------------- scopes


def test_authorized_scopes_narrow(tc, session):
    url = tc.root_url + "/api/queue/v1/task/T1"
    narrow = make_ext(authorized_scopes=["queue:get-task:T1"])
    assert hawk(session, "GET", url, "tester", "tester-token", ext=narrow).status_code == 200
    assert tc.calls[-1].scopes == ["queue:get-task:T1"]
    other = make_ext(authorized_scopes=["queue:get-task:T2"])
    reply = hawk(session, "GET", url, "tester", "tester-token", ext=other)
    assert reply.status_code == 403
    assert reply.json()["code"] == "InsufficientScopes"
    assert "queue:get-task:T1" in reply.json()["message"]


def test_authorized_scopes_cannot_overstep(tc, session):
    ext = make_ext(authorized_scopes=["auth:*"])
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "tester", "tester-token", ext=ext)
    assert reply.status_code == 401
    assert "oversteps" in reply.json()["message"]


def test_authorized_scopes_with_temporary_credentials(tc, session):
    client_id, token, cert = temp_creds(scopes=["queue:get-task:*"])
    ext = make_ext(cert, authorized_scopes=["queue:get-task:T2"])
    url = tc.root_url + "/api/queue/v1/task/T1"
    assert hawk(session, "GET", url, client_id, token, ext=ext).status_code == 403
    assert hawk(session, "GET", url.replace("T1", "T2"), client_id, token, ext=ext).status_code == 200


def test_insufficient_scopes_403(tc, session):
    url = tc.root_url + "/api/queue/v1/task/T2"
    reply = hawk(session, "GET", url, "limited", "limited-token")
    assert reply.status_code == 403
    assert reply.json()["code"] == "InsufficientScopes"


def test_roles_expand_scopes(tc, session):
    tc.respond("index", "findTask", {"taskId": "X"})
    url = tc.root_url + "/api/index/v1/task/project.ci.latest"
    assert hawk(session, "GET", url, "limited", "limited-token").status_code == 200
    assert "index:find-task:*" in tc.calls[-1].scopes


def test_anonymous_requests(session):
    with FakeTaskcluster(clients=CLIENTS, roles={"anonymous": ["queue:get-task:public*"]}) as tc:
        tc.respond("queue", "task", {})
        assert session.get(tc.root_url + "/api/queue/v1/task/publicX").status_code == 200
        assert tc.calls[-1].client_id is None
        assert tc.calls[-1].auth is None
        reply = session.get(tc.root_url + "/api/queue/v1/task/T1")
        assert reply.status_code == 403
        assert "anonymous" in reply.json()["message"]


def test_scope_enforcement_can_be_turned_off(session):
    with FakeTaskcluster(clients=CLIENTS, enforce_scopes=False) as tc:
        tc.respond("queue", "task", {})
        assert session.get(tc.root_url + "/api/queue/v1/task/T1").status_code == 200
        assert hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "tester", "bad").status_code == 401


def test_no_clients_means_no_enforcement_and_verify_hawk_off(session):
    with FakeTaskcluster(verify_hawk=False) as tc:
        tc.respond("queue", "task", {})
        reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "whoever", "whatever")
        assert reply.status_code == 200
        assert tc.calls[-1].client_id == "whoever"


def test_create_task_scopes_use_the_payload(tc, session):
    tc.respond("queue", "createTask", {"status": {}})
    url = tc.root_url + "/api/queue/v1/task/T3"
    task = {"taskQueueId": "prov/wt", "scopes": ["secrets:get:x"], "routes": ["index.a"], "priority": "high"}
    ext = make_ext(authorized_scopes=["queue:create-task:high:prov/wt", "queue:route:index.*",
                                      "queue:scheduler-id:-", "queue:create-task:project:none"])
    reply = hawk(session, "PUT", url, "tester", "tester-token", body=task, ext=ext)
    assert reply.status_code == 403
    assert "secrets:get:x" in reply.json()["message"]
    ok = {**task, "scopes": []}
    assert hawk(session, "PUT", url, "tester", "tester-token", body=ok, ext=ext).status_code == 200
    # a scope for a higher priority also allows a lower one
    low = {**ok, "priority": "low"}
    assert hawk(session, "PUT", url, "tester", "tester-token", body=low, ext=ext).status_code == 200
    highest = {**ok, "priority": "highest"}
    assert hawk(session, "PUT", url, "tester", "tester-token", body=highest, ext=ext).status_code == 403


def test_public_artifacts_need_no_scope(session):
    with FakeTaskcluster(clients=CLIENTS) as tc:
        tc.respond("queue", "getLatestArtifact", Response(303, None, {"Location": "http://example.invalid/a"}))
        url = tc.root_url + "/api/queue/v1/task/T1/artifacts/public%2Flogs%2Flive.log"
        reply = session.get(url, allow_redirects=False)
        assert reply.status_code == 303
        assert reply.headers["Location"] == "http://example.invalid/a"
        assert tc.calls[-1].args == {"taskId": "T1", "name": "public/logs/live.log"}
        private = session.get(url.replace("public%2F", "private%2F"), allow_redirects=False)
        assert private.status_code == 403


def test_unencoded_slashes_in_last_argument(tc, session):
    tc.respond("queue", "getLatestArtifact", {"ok": True})
    url = tc.root_url + "/api/queue/v1/task/T1/artifacts/public/a/b.txt"
    assert hawk(session, "GET", url, "tester", "tester-token").status_code == 200
    assert tc.calls[-1].args["name"] == "public/a/b.txt"


# --------------------------------------------------------------------------- answers


def test_unanswered_function_and_unknown_path_are_404_json(tc, session):
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/provisioners", "tester", "tester-token")
    assert reply.status_code == 404
    assert reply.json()["code"] == "ResourceNotFound"
    assert "tc.respond" in reply.json()["message"]
    assert session.get(tc.root_url + "/nothing/here").status_code == 404
    assert session.get(tc.root_url + "/api/nosuch/v1/ping").status_code == 404
    assert tc.calls[-1].service is None


def test_ping_answers_by_default(tc, session):
    for service in ("queue", "auth", "index", "secrets"):
        reply = session.get(f"{tc.root_url}/api/{service}/v1/ping")
        assert reply.status_code == 200
        assert reply.json()["alive"] is True


def _answer_secrets(fake):
    fake.respond("secrets", "get", {"secret": {"a": 1}})
    fake.respond("secrets", "list", lambda call: (202, {"secrets": []}, {"X-Extra": "yes"}))
    fake.respond("secrets", "remove", Response(204))
    fake.respond("Secrets", "set", Response(200, b"<html>not json</html>", content_type="text/html"))


def test_respond_forms(tc, session):
    url = tc.root_url + "/api/secrets/v1/secret/"
    _answer_secrets(tc)
    assert hawk(session, "GET", url + "name", "tester", "tester-token").status_code == 403
    with FakeTaskcluster(enforce_scopes=False) as open_tc:
        _answer_secrets(open_tc)
        base = open_tc.root_url + "/api/secrets/v1"
        assert session.get(base + "/secret/a%2Fb").json() == {"secret": {"a": 1}}
        assert open_tc.calls[-1].args == {"name": "a/b"}
        listed = session.get(base + "/secrets")
        assert (listed.status_code, listed.headers["X-Extra"]) == (202, "yes")
        removed = session.delete(base + "/secret/x")
        assert removed.status_code == 204
        assert removed.content == b""
        html = session.put(base + "/secret/x", json={"expires": "2030-01-01T00:00:00Z", "secret": {}})
        assert html.headers["Content-Type"] == "text/html"
        assert html.content == b"<html>not json</html>"
        assert open_tc.calls[-1].body == {"expires": "2030-01-01T00:00:00Z", "secret": {}}


def test_respond_with_status_and_error_body(session):
    with FakeTaskcluster() as tc:
        tc.respond("queue", "task", error_body("ResourceNotFound", "no task"), status=404)
        reply = session.get(tc.root_url + "/api/queue/v1/task/T1")
        assert reply.status_code == 404
        assert reply.json()["message"] == "no task"


def test_respond_sequence(session):
    with FakeTaskcluster() as tc:
        tc.respond("queue", "status", {"n": "default"})
        tc.respond_sequence("queue", "status", [{"n": 1}, (500, {"n": 2}), lambda call: {"n": 3}])
        url = tc.root_url + "/api/queue/v1/task/T1/status"
        got = [(r.status_code, r.json()["n"]) for r in (session.get(url) for _ in range(4))]
        assert got == [(200, 1), (500, 2), (200, 3), (200, "default")]
        assert [c.status for c in tc.calls_to("queue", "status")] == [200, 500, 200, 200]


def test_responder_that_raises_gives_500(session):
    with FakeTaskcluster() as tc:
        tc.respond("queue", "task", lambda call: 1 / 0)
        reply = session.get(tc.root_url + "/api/queue/v1/task/T1")
        assert reply.status_code == 500
        assert reply.json()["code"] == "InternalServerError"


def test_non_json_request_body_is_400(session):
    with FakeTaskcluster() as tc:
        tc.respond("queue", "createTask", {})
        reply = session.put(tc.root_url + "/api/queue/v1/task/T1", data=b"{not json")
        assert reply.status_code == 400
        assert reply.json()["code"] == "MalformedPayload"


def test_chunked_request_body(session):
    with FakeTaskcluster() as tc:
        tc.respond("queue", "createTask", {})
        chunks = iter([b'{"a": ', b"[1, 2]}"])
        assert session.put(tc.root_url + "/api/queue/v1/task/T1", data=chunks).status_code == 200
        assert tc.calls[-1].body == {"a": [1, 2]}


def test_head_request(session):
    with FakeTaskcluster() as tc:
        tc.respond("queue", "task", {"big": "x" * 100})
        reply = session.head(tc.root_url + "/api/queue/v1/task/T1")
        assert reply.status_code == 200
        assert reply.content == b""
        assert session.get(tc.root_url + "/api/queue/v1/task/T1").json()["big"] == "x" * 100


def test_configuration_errors():
    tc = FakeTaskcluster()
    with pytest.raises(ConfigError, match="queue.nope"):
        tc.respond("queue", "nope", {})
    with pytest.raises(ConfigError):
        tc.fail_next(1, status=200)
    with pytest.raises(ConfigError, match="accessToken"):
        FakeTaskcluster(clients={"x": {"scopes": []}})
    with pytest.raises(ConfigError, match="unknown keys"):
        FakeTaskcluster(clients={"x": {"accessToken": "t", "scope": []}})
    with pytest.raises(ConfigError):
        FakeTaskcluster(clients={"x": {"accessToken": "t", "scopes": "queue:*"}})
    with pytest.raises(CallError):
        tc.url("queue", "task")
    with pytest.raises(ConfigError):
        tc.root_url


def test_url_helper(tc, session):
    url = tc.url("queue", "task", taskId="T1")
    assert url == tc.root_url + "/api/queue/v1/task/T1"
    assert hawk(session, "GET", url, "tester", "tester-token").json() == {"taskId": "T1"}


# --------------------------------------------------------------------------- faults


def test_fail_next(tc, session):
    tc.fail_next(2, status=503)
    url = tc.root_url + "/api/queue/v1/task/T1"
    statuses = [hawk(session, "GET", url, "tester", "tester-token").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [c.status for c in tc.calls] == [503, 503, 200]
    failed = hawk(session, "GET", url, "tester", "tester-token")
    assert failed.status_code == 200


def test_fail_next_precedes_auth(tc, session):
    tc.fail_next(1)
    reply = hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "tester", "bad-token")
    assert reply.status_code == 500
    assert reply.json()["code"] == "InternalServerError"


def test_hang_until_released(tc, session):
    url = tc.root_url + "/api/queue/v1/task/T1"
    tc.hang(True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(url, timeout=0.3)
    held: list = []
    worker = threading.Thread(target=lambda: held.append(requests.get(url, timeout=10)))
    worker.start()
    tc.hang(False)
    worker.join(10)
    assert held
    assert held[0].status_code == 403  # anonymous, answered once released
    assert session.get(tc.root_url + "/api/queue/v1/ping", timeout=10).status_code == 200


def test_stop_releases_hung_requests_and_closes_connections(capfd):
    tc = FakeTaskcluster().start()
    tc.respond("queue", "task", {})
    with requests.Session() as s:
        assert s.get(tc.root_url + "/api/queue/v1/task/T1").status_code == 200  # keep-alive open
        tc.hang(True)
        results: list = []

        def hung():
            try:
                results.append(requests.get(tc.root_url + "/api/queue/v1/task/T1", timeout=10).status_code)
            except requests.RequestException as exc:
                results.append(type(exc))

        worker = threading.Thread(target=hung)
        worker.start()
        wait_until(lambda: len(tc.calls) >= 2, 10, "the hung request to reach the fake", interval=0.01)
        url = tc.root_url
        tc.stop()
        worker.join(10)
        assert not worker.is_alive()
        assert results
        with pytest.raises(requests.exceptions.ConnectionError):
            s.get(url + "/api/queue/v1/ping", timeout=5)
    tc.stop()  # idempotent
    assert not tc.running
    assert capfd.readouterr().err == ""


# --------------------------------------------------------------------------- recording, threads, quiet


def test_concurrent_requests_are_all_recorded(tc):
    errors: list = []

    def worker(n):
        with requests.Session() as s:
            s.trust_env = False
            for i in range(10):
                r = hawk(s, "GET", f"{tc.root_url}/api/queue/v1/task/T{n}-{i}", "tester", "tester-token")
                if r.status_code != 200:
                    errors.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    calls = tc.calls
    assert len(calls) == 80
    assert len({c.request_id for c in calls}) == 80
    assert {c.args["taskId"] for c in calls} == {f"T{n}-{i}" for n in range(8) for i in range(10)}
    assert all(isinstance(c, Call) for c in calls)


def test_calls_returns_a_copy_and_reset_clears(tc, session):
    session.get(tc.root_url + "/api/queue/v1/ping")
    calls = tc.calls
    calls.clear()
    assert len(tc.calls) == 1
    tc.fail_next(3)
    tc.reset()
    assert tc.calls == []
    assert session.get(tc.root_url + "/api/queue/v1/ping").status_code == 200


def test_keep_alive_connection_reused(tc, session):
    for _ in range(5):
        session.get(tc.root_url + "/api/queue/v1/ping")
    assert tc.open_connections == 1


def test_nothing_printed_per_request(tc, session, capfd):
    hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "tester", "tester-token")
    hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "tester", "bad")
    session.get(tc.root_url + "/nothing")
    session.get(tc.root_url + "/api/queue/v1/task/T1?bewit=zzz")
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_call_repr_shows_no_headers(tc, session):
    hawk(session, "GET", tc.root_url + "/api/queue/v1/task/T1", "tester", "tester-token")
    assert "Hawk" not in repr(tc.calls[0])


# --------------------------------------------------------------------------- more faults, helpers


def test_drop_next_gives_connection_errors(tc, session):
    tc.drop_next(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(tc.root_url + "/api/queue/v1/ping", timeout=10)
    assert session.get(tc.root_url + "/api/queue/v1/ping", timeout=10).status_code == 200
    assert [c.status for c in tc.calls] == [None, 200]


def test_wait_for_calls(tc):
    def later():
        time.sleep(0.05)
        requests.get(tc.root_url + "/api/queue/v1/ping", timeout=10)

    threading.Thread(target=later).start()
    calls = tc.wait_for_calls(1, timeout=10)
    assert calls[0].function == "ping"
    assert calls[0].status == 200
    with pytest.raises(TimeoutError):
        tc.wait_for_calls(2, timeout=0.05)
    tc.reset()
    with pytest.raises(TimeoutError):
        tc.wait_for_calls(1, timeout=0.01)


def test_client_options(tc):
    opts = tc.client_options("tester", maxRetries=0)
    assert opts == {"rootUrl": tc.root_url, "maxRetries": 0,
                    "credentials": {"clientId": "tester", "accessToken": "tester-token"}}
    assert tc.client_options() == {"rootUrl": tc.root_url}
    with pytest.raises(ConfigError):
        tc.client_options("nobody")


def test_official_client_with_client_options(tc):
    taskcluster = pytest.importorskip("taskcluster")
    queue = taskcluster.Queue(tc.client_options("limited", maxRetries=0))
    assert queue.task("T1") == {"taskId": "T1"}
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as info:
        queue.task("T2")
    assert info.value.status_code == 403


def test_serves_references_like_a_deployment(tc, session, tmp_path, monkeypatch):
    from tclisten.taskcluster import references

    manifest = session.get(tc.root_url + "/references/manifest.json").json()
    assert tc.root_url + "/references/queue/v1/api.json" in manifest["references"]
    assert tc.root_url + "/references/queue/v1/exchanges.json" in manifest["references"]
    api = session.get(tc.root_url + "/references/queue/v1/api.json").json()
    assert api["serviceName"] == "queue"
    assert any(e["name"] == "createTask" for e in api["entries"])
    assert session.get(tc.root_url + "/references/nope/v1/api.json").status_code == 404
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    loaded = references.load(tc.root_url)
    assert loaded["Queue"].function("task") == references.bundled()["Queue"].function("task")
    assert set(loaded) == set(references.bundled())


def test_custom_references(session):
    from tclisten.taskcluster.references import parse

    ref = parse({"serviceName": "fake", "apiVersion": "v2", "entries": [
        {"type": "function", "name": "thing", "method": "get", "route": "/thing/<id>", "args": ["id"],
         "scopes": "fake:thing:<id>"}]}, "inline")
    with FakeTaskcluster(references=[ref], clients=CLIENTS) as tc:
        tc.respond("fake", "thing", {"ok": 1})
        assert session.get(tc.root_url + "/api/fake/v2/thing/1").status_code == 403
        assert session.get(tc.root_url + "/api/queue/v1/ping").status_code == 404
    with FakeTaskcluster(references=[ref], clients={"c": {"accessToken": "t", "scopes": ["fake:thing:1"]}}) as tc:
        tc.respond("fake", "thing", {"ok": 1})
        assert hawk(session, "GET", tc.root_url + "/api/fake/v2/thing/1", "c", "t").json() == {"ok": 1}


def test_scope_params_hook(session):
    def params(call):
        return {"names": [call.args["name"]]}  # as if the artifact were private

    with FakeTaskcluster(clients=CLIENTS, scope_params={"queue.getLatestArtifact": params}) as tc:
        tc.respond("queue", "getLatestArtifact", {})
        url = tc.root_url + "/api/queue/v1/task/T1/artifacts/public%2Fx"
        assert session.get(url).status_code == 403
        assert hawk(session, "GET", url, "tester", "tester-token").status_code == 200


def test_docstring_examples_run():
    import doctest

    from tclisten.testing import fakeserver as module

    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


def test_add_client_while_serving(tc, session):
    url = tc.root_url + "/api/queue/v1/task/T1"
    assert hawk(session, "GET", url, "late", "late-token").status_code == 401
    tc.add_client("late", "late-token", ["queue:get-task:*"])
    assert hawk(session, "GET", url, "late", "late-token").status_code == 200
    with pytest.raises(ConfigError):
        tc.add_client("", "x")


def test_repr_shows_no_tokens(tc):
    assert "tester-token" not in repr(tc)
    assert "tester" in repr(tc)
    assert tc.root_url in repr(tc)


def test_every_caller_also_holds_the_anonymous_role(session):
    roles = {"anonymous": ["queue:get-task:public*"]}
    with FakeTaskcluster(clients=CLIENTS, roles=roles) as tc:
        tc.respond("queue", "task", {})
        url = tc.root_url + "/api/queue/v1/task/publicT"
        assert hawk(session, "GET", url, "limited", "limited-token").status_code == 200
        assert tc.calls[-1].scopes == CLIENTS["limited"]["scopes"]  # the implicit anonymous ones unlisted
        # authorizedScopes may name what the anonymous role grants, and cannot drop it
        ext = make_ext(authorized_scopes=["queue:get-task:publicT"])
        assert hawk(session, "GET", url, "limited", "limited-token", ext=ext).status_code == 200
        ext = make_ext(authorized_scopes=[])
        assert hawk(session, "GET", url, "tester", "tester-token", ext=ext).status_code == 200


def test_hawk_timestamp_skew_is_fifteen_minutes(tc, session):
    url = tc.root_url + "/api/queue/v1/task/T1"
    assert hawk(session, "GET", url, "tester", "tester-token", _timestamp=int(time.time()) - 600).status_code == 200
    assert hawk(session, "GET", url, "tester", "tester-token", _timestamp=int(time.time()) + 600).status_code == 200
    assert hawk(session, "GET", url, "tester", "tester-token", _timestamp=int(time.time()) - 1200).status_code == 401


def test_every_bundled_function_is_served(session):
    """Each function's URL (arguments with '/', spaces and non-ASCII) reaches that function."""
    from tclisten.taskcluster.references import APIReference, bundled

    with FakeTaskcluster(enforce_scopes=False) as tc:
        functions = [(ref.service_name, fn) for ref in bundled().values() if isinstance(ref, APIReference)
                     for fn in ref.functions]
        for service, fn in functions:
            tc.respond(service, fn.name, lambda call: {"function": call.function, "args": call.args})
        for service, fn in functions:
            args = {name: f"{name} a/b-é" for name in fn.args}
            reply = session.request(fn.method.upper(), tc.url(service, fn.name, **args),
                                    json={} if fn.input else None, timeout=10)
            assert reply.status_code == 200, (service, fn.name, reply.text)
            assert reply.json() == {"function": fn.name, "args": args}, (service, fn.name)
        assert len(tc.calls) == len(functions) > 150
