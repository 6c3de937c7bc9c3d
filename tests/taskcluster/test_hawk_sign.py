"""tclisten's own Hawk signer against mohawk's: the same Authorization header, byte for byte,
for the same timestamp and nonce, over many methods, URLs, payloads, exts, apps and keys;
the same errors where mohawk refuses; and headers mohawk's Receiver accepts."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random

import mohawk
import mohawk.exc
import mohawk.util
import pytest
import requests

from tclisten.taskcluster import hawk
from tclisten.taskcluster.hawk import HawkAuth, make_ext, payload_hash, request_header

CERT = {"version": 1, "scopes": ["queue:*", "assume:x"], "start": 1700000000000, "expiry": 1700000900000,
        "seed": "s" * 44, "signature": "sig+/=", "issuer": "root"}
EXTS = [None, "", make_ext(authorized_scopes=[]), make_ext(authorized_scopes=["~?{?bb", "queue:get-task:*"]),
        make_ext(CERT), make_ext(CERT, ["queue:*"]), make_ext(CERT, [])]
URLS = [
    "https://tc.example.com/api/queue/v1/task/fQGgk0ZbTSOcE6gWAqqH7g",
    "http://127.0.0.1:41234/api/queue/v1/task/fQGgk0ZbTSOcE6gWAqqH7g",
    "http://127.0.0.1/api/queue/v1/ping",
    "https://tc.example.com:443/api/queue/v1/ping",
    "https://tc.example.com:8443/api/index/v1/tasks/a.b?limit=2&continuationToken=x%2Fy",
    "https://TC.Example.COM/api/queue/v1/task/a%2Fb",
    "HTTPS://tc.example.com/x",
    "http://[::1]:8080/api/queue/v1/task/T?x=1",
    "http://[::1]/api",
    "https://user:pw@tc.example.com:444/p?q",
    "https://tc.example.com",
    "https://tc.example.com?only=query",
    "https://tc.example.com/a;params/b;p=1?x=1",
    "https://tc.example.com/a/b;p=1?x=;y",
    "https://tc.example.com/a/b?x=1#fragment",
    "https://tc.example.com/a#frag?not-query",
    "https://tc.example.com/%E2%82%AC/?q=%C3%A9",
    "https://tc.example.com/é/ü?ß=1",
    "ftp://files.example.com/pub/x",
    "ftp://files.example.com:2121/pub/x",
    "https://tc.example.com/api/secrets/v1/secret/a%20b?x=1&x=2&y=",
]
METHODS = ["GET", "get", "PUT", "Post", "delete", "PATCH", "HEAD"]
PAYLOADS = [(b"", ""), ("", ""), (b"", "application/json"), (b'{"x":[1,2]}', "application/json"),
            ('{"é":"€"}', "application/json; charset=utf-8"), (b"\x00\xff\n" * 50, "Application/Octet-Stream"),
            (b"x" * 100_000, " text/plain ; q=1"), ("plain", ""), (b"", "TEXT/HTML;charset=x")]
KEYS = ["t", "hawk-sekrit-token-0123456789abcdef", "k" * 64, "k" * 65, "K" * 200, b"bytes-key\x00\xff", ""]
IDS = ["tester", "project/releng/x:y@z", "c", b"bytes-id", "static/taskcluster/root", "sp ace"]


def theirs(client_id, key, url, method, content=b"", content_type="", ext=None, app=None, dlg=None,
           timestamp=1700000123, nonce="AbC-_9"):
    return mohawk.Sender({"id": client_id, "key": key, "algorithm": "sha256"}, url, method, content=content,
                         content_type=content_type, ext=ext, app=app, dlg=dlg, nonce=nonce,
                         _timestamp=timestamp).request_header


def ours(client_id, key, url, method, content=b"", content_type="", ext=None, app=None, dlg=None,
         timestamp=1700000123, nonce="AbC-_9"):
    return request_header(client_id, key, url, method, content, content_type, ext, app=app, dlg=dlg,
                          timestamp=timestamp, nonce=nonce)


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("method", METHODS)
def test_same_header_as_mohawk_for_urls_and_methods(url, method):
    for ext in (None, EXTS[5]):
        assert ours("tester", "tok", url, method, ext=ext) == theirs("tester", "tok", url, method, ext=ext)


@pytest.mark.parametrize("content,content_type", PAYLOADS)
@pytest.mark.parametrize("ext", EXTS)
def test_same_header_as_mohawk_for_payloads_and_exts(content, content_type, ext):
    for url, method in (("https://tc.example.com/api/queue/v1/task/T", "PUT"), (URLS[4], "POST")):
        assert (ours("tester", "tok", url, method, content, content_type, ext)
                == theirs("tester", "tok", url, method, content, content_type, ext))


@pytest.mark.parametrize("client_id", IDS)
@pytest.mark.parametrize("key", KEYS)
def test_same_header_as_mohawk_for_ids_and_keys(client_id, key):
    for content, content_type in PAYLOADS[2:5]:
        assert (ours(client_id, key, URLS[1], "PUT", content, content_type, EXTS[3])
                == theirs(client_id, key, URLS[1], "PUT", content, content_type, EXTS[3]))


@pytest.mark.parametrize("app,dlg", [(None, None), ("", ""), ("app-1", None), ("app-1", ""), ("app-1", "dlg-2"),
                                     (None, "dlg-only"), ("", "dlg-only")])
def test_same_header_as_mohawk_with_app_and_dlg(app, dlg):
    for ext in (None, "some ext", EXTS[4]):
        assert (ours("tester", "tok", URLS[4], "POST", b"{}", "application/json", ext, app, dlg)
                == theirs("tester", "tok", URLS[4], "POST", b"{}", "application/json", ext, app, dlg))


@pytest.mark.parametrize("timestamp,nonce", [(1, "n"), ("1700000000", "abcdef"), (2_000_000_000, "-_-_-_"),
                                             (1700000000, ""), (1700000000, b"byt3s")])
def test_same_header_as_mohawk_for_timestamps_and_nonces(timestamp, nonce):
    assert (ours("tester", "tok", URLS[0], "GET", timestamp=timestamp, nonce=nonce)
            == theirs("tester", "tok", URLS[0], "GET", timestamp=timestamp, nonce=nonce))


def test_same_header_as_mohawk_for_random_combinations():
    rng = random.Random(20260601)
    alphabet = "abcXYZ019-._~!$&'()*+,;=:@/?%é€ "
    for _ in range(600):
        url = rng.choice(URLS)
        if rng.random() < 0.5:
            url += rng.choice(("/", "?", "&", "")) + "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        content = bytes(rng.randrange(256) for _ in range(rng.randrange(3) and rng.randrange(300)))
        if rng.random() < 0.3:
            content = content.decode("latin-1")
        args = ("".join(rng.choice("abcXYZ019/:@-_.") for _ in range(rng.randrange(1, 30))),
                "".join(rng.choice("abcXYZ019-_") for _ in range(rng.randrange(100))), url, rng.choice(METHODS),
                content, rng.choice([ct for _, ct in PAYLOADS]), rng.choice(EXTS))
        kwargs = {"app": rng.choice([None, "", "app"]), "dlg": rng.choice([None, "", "dlg"]),
                  "timestamp": rng.randrange(1, 2**31), "nonce": "".join(rng.choice("aZ09-_") for _ in range(6))}
        assert ours(*args, **kwargs) == theirs(*args, **kwargs), (args, kwargs)


def test_payload_hash_and_hmac_are_the_standard_ones():
    for content, content_type in PAYLOADS:
        raw = content.encode() if isinstance(content, str) else content
        expected = mohawk.util.calculate_payload_hash(raw, "sha256", content_type).decode()
        assert payload_hash(content, content_type) == expected
    for key in KEYS:  # the precomputed pads are HMAC (RFC 2104), also for keys longer than a block
        raw = key if isinstance(key, bytes) else key.encode()
        signer = hawk._signer("c", key, None)
        inner = signer.inner.copy()
        inner.update(b"message")
        outer = signer.outer.copy()
        outer.update(inner.digest())
        assert outer.digest() == hmac.new(raw, b"message", hashlib.sha256).digest()


def parsed(header: str) -> dict:
    return mohawk.util.parse_authorization_header(header)


def sign(auth, method, url, **kwargs):
    return requests.Request(method, url, auth=auth, **kwargs).prepare()


@pytest.mark.parametrize("ext", EXTS)
def test_hawk_auth_header_is_mohawks_for_its_own_timestamp_and_nonce(ext):
    auth = HawkAuth("tester", "tok", ext=ext)
    cases = [("GET", URLS[0], {}), ("GET", URLS[4], {"params": {"a": "b c", "d": "é"}}),
             ("PUT", URLS[1], {"data": b'{"x":1}', "headers": {"Content-Type": "application/json"}}),
             ("POST", URLS[7], {"json": {"é": [1, 2]}}), ("DELETE", URLS[3], {}),
             ("POST", URLS[2], {"data": "text body é", "headers": {"Content-Type": "Text/Plain; charset=utf-8"}}),
             ("GET", URLS[0], {})]  # again: the cached host line and empty hash
    for method, url, kwargs in cases:
        request = sign(auth, method, url, **kwargs)
        header = request.headers["Authorization"]
        attributes = parsed(header)
        assert len(attributes["nonce"]) == 6
        assert set(attributes["nonce"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert header == theirs("tester", "tok", request.url, request.method, request.body or b"",
                                request.headers.get("Content-Type", ""), ext,
                                timestamp=attributes["ts"], nonce=attributes["nonce"])
        body = request.body or b""
        mohawk.Receiver(lambda _id: {"id": "tester", "key": "tok", "algorithm": "sha256"}, header, request.url,
                        request.method, content=body.encode() if isinstance(body, str) else body,
                        content_type=request.headers.get("Content-Type", ""),
                        seen_nonce=lambda *args: False)
        assert ("ext" in attributes) == bool(ext)


def test_hawk_auth_uses_fresh_nonces_and_current_time(monkeypatch):
    auth = HawkAuth("tester", "tok")
    nonces = {parsed(sign(auth, "GET", URLS[0]).headers["Authorization"])["nonce"] for _ in range(200)}
    assert len(nonces) > 190
    monkeypatch.setattr(hawk.time, "time", lambda: 1234567890.9)
    assert parsed(sign(auth, "GET", URLS[0]).headers["Authorization"])["ts"] == "1234567890"


def test_hawk_auth_caches_stay_bounded_and_right():
    auth = HawkAuth("tester", "tok")
    for port, content_type in itertools.product(range(1000, 1100), ("a/b", "C/D; x=1")):
        url = f"http://host-{port % 7}.example.com:{port}/p?q={port}"
        for body in (b"", b"body"):
            request = sign(auth, "PUT", url, data=body, headers={"Content-Type": f"{content_type}{port}"})
            attributes = parsed(request.headers["Authorization"])
            assert request.headers["Authorization"] == theirs(
                "tester", "tok", url, "PUT", body, f"{content_type}{port}",
                timestamp=attributes["ts"], nonce=attributes["nonce"])
    signer = auth._signer
    assert len(signer.hosts) <= hawk._CACHE_LIMIT
    assert len(signer.content_types) <= hawk._CACHE_LIMIT
    assert len(signer.empty_hashes) <= hawk._CACHE_LIMIT


def test_changing_ext_or_client_id_is_signed():
    auth = HawkAuth("tester", "tok")
    assert "ext" not in parsed(sign(auth, "GET", URLS[0]).headers["Authorization"])
    auth.ext = EXTS[3]
    attributes = parsed(sign(auth, "GET", URLS[0]).headers["Authorization"])
    assert attributes["ext"] == EXTS[3]
    auth.client_id = "other"
    request = sign(auth, "GET", URLS[0])
    attributes = parsed(request.headers["Authorization"])
    assert attributes["id"] == "other"
    assert request.headers["Authorization"] == theirs("other", "tok", URLS[0], "GET", ext=EXTS[3],
                                                      timestamp=attributes["ts"], nonce=attributes["nonce"])
    assert auth._credentials == {"id": "other", "key": "tok", "algorithm": "sha256"}


@pytest.mark.parametrize("kwargs,error", [
    ({"client_id": 'quo"te'}, mohawk.exc.BadHeaderValue), ({"client_id": "back\\slash"}, mohawk.exc.BadHeaderValue),
    ({"client_id": "new\nline"}, mohawk.exc.BadHeaderValue), ({"client_id": "é"}, mohawk.exc.BadHeaderValue),
    ({"ext": 'e"xt'}, mohawk.exc.BadHeaderValue), ({"app": "a\\pp"}, mohawk.exc.BadHeaderValue),
    ({"dlg": "d\tlg"}, mohawk.exc.BadHeaderValue), ({"nonce": 'n"once'}, mohawk.exc.BadHeaderValue),
    ({"key": "tökén"}, UnicodeEncodeError), ({"url": ""}, ValueError),
    ({"url": "https://tc.example.com:99999/x"}, ValueError), ({"url": "https://tc.example.com:port/x"}, ValueError),
])
def test_refuses_what_mohawk_refuses(kwargs, error):
    arguments = {"client_id": "tester", "key": "tok", "url": URLS[0], "method": "GET", "ext": None, "app": None,
                 "dlg": None, "nonce": "abcdef"}
    arguments.update(kwargs)
    with pytest.raises(error):
        theirs(**arguments)
    with pytest.raises(error):
        ours(**arguments)


def test_hawk_auth_fails_at_the_call_like_mohawk():
    auth = HawkAuth('bad"id', "tok")  # constructing never fails; signing does, every time
    for _ in range(2):
        with pytest.raises(mohawk.exc.BadHeaderValue):
            sign(auth, "GET", URLS[0])
    auth = HawkAuth("tester", "tök")
    with pytest.raises(UnicodeEncodeError):
        sign(auth, "GET", URLS[0])
    request = requests.Request("POST", URLS[0]).prepare()
    request.body = iter([b"chunk"])
    with pytest.raises(TypeError, match="no streams"):
        HawkAuth("tester", "tok")(request)


def test_a_bytes_content_type_is_signed_as_the_server_reads_it():
    auth = HawkAuth("tester", "tok")
    request = sign(auth, "PUT", URLS[1], data=b"{}", headers={"Content-Type": b"Application/JSON; charset=\xe9"})
    header = request.headers["Authorization"]
    mohawk.Receiver(lambda _id: {"id": "tester", "key": "tok", "algorithm": "sha256"}, header, request.url,
                    "PUT", content=b"{}", content_type="Application/JSON; charset=\xe9",
                    seen_nonce=lambda *args: False)
