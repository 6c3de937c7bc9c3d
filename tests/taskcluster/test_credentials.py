"""tclisten.taskcluster.credentials: temporary credentials (checked against the official client),
certificate verification, the Hawk ext, and the Credentials value."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import inspect
import json
import pickle
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tclisten.taskcluster import credentials as creds_mod
from tclisten.taskcluster import utils
from tclisten.taskcluster.credentials import (Credentials, Deployment, createTemporaryCredentials,
                                             create_temporary_credentials, derive_access_token, make_ext,
                                             normalize_credentials, parse_ext, read_options, sign_certificate,
                                             signature_text, verify_certificate)
from tclisten.exceptions import CredentialsError

START = datetime.datetime(2030, 1, 1, 0, 0, 0)
EXPIRY = datetime.datetime(2030, 1, 2, 0, 0, 0)
START_MS = 1893456000000
SEED_PARTS = ["AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBw"]


@pytest.fixture
def fixed_seed(monkeypatch):
    """Both our slugId source and the official client's give the same two slugids."""
    def fixed():
        parts = iter(SEED_PARTS * 10)
        return lambda: next(parts)
    monkeypatch.setattr(utils, "slugId", fixed())
    try:
        import taskcluster.client
        import taskcluster.utils
    except ImportError:
        return None
    monkeypatch.setattr(taskcluster.utils, "slugId", fixed())
    return taskcluster


def test_shape_and_types():
    out = createTemporaryCredentials("issuer", "tok", START, EXPIRY, ["a", "b:*"])
    assert set(out) == {"clientId", "accessToken", "certificate"}
    assert all(isinstance(v, str) for v in out.values())
    cert = json.loads(out["certificate"])
    assert list(cert) == ["version", "scopes", "start", "expiry", "seed", "signature"]
    assert cert["version"] == 1
    assert cert["scopes"] == ["a", "b:*"]
    assert cert["start"] == START_MS
    assert cert["expiry"] == START_MS + 86400000
    assert len(cert["seed"]) == 44
    assert "issuer" not in cert
    assert out["clientId"] == "issuer"
    assert " " not in out["certificate"]  # compact, as the official client writes it


def test_signature_and_token_recomputed_by_hand():
    out = createTemporaryCredentials("issuer", "tok", START, EXPIRY, ["a", "b"], name="issuer/named")
    cert = json.loads(out["certificate"])
    text = "\n".join(["version:1", "clientId:issuer/named", "issuer:issuer", f"seed:{cert['seed']}",
                      f"start:{cert['start']}", f"expiry:{cert['expiry']}", "scopes:", "a", "b"])
    assert signature_text(cert, "issuer/named") == text
    expected_sig = base64.b64encode(hmac.new(b"tok", text.encode(), hashlib.sha256).digest()).decode()
    assert cert["signature"] == expected_sig
    token = base64.urlsafe_b64encode(hmac.new(b"tok", cert["seed"].encode(), hashlib.sha256).digest())
    assert out["accessToken"] == token.decode().rstrip("=")
    assert "=" not in out["accessToken"]
    assert "+" not in out["accessToken"]
    assert "/" not in out["accessToken"]
    assert out["clientId"] == "issuer/named"
    assert cert["issuer"] == "issuer"
    assert list(cert) == ["version", "scopes", "start", "expiry", "seed", "issuer", "signature"]


@pytest.mark.parametrize("name", [None, "issuer/named"])
@pytest.mark.parametrize("start, expiry", [
    (START, EXPIRY),
    (START.replace(tzinfo=datetime.timezone.utc), EXPIRY.replace(tzinfo=datetime.timezone.utc)),
    (START.replace(microsecond=999), EXPIRY.replace(microsecond=5)),
])
def test_same_as_official_client(fixed_seed, name, start, expiry):
    if fixed_seed is None:
        pytest.skip("taskcluster is not importable")
    ours = createTemporaryCredentials("issuer", "tok", start, expiry, ["a", "b:*"], name=name)
    theirs = fixed_seed.createTemporaryCredentials("issuer", "tok", start, expiry, ["a", "b:*"], name=name)
    token = theirs["accessToken"]
    assert ours["accessToken"] == (token.decode() if isinstance(token, bytes) else token)
    assert ours["clientId"] == theirs["clientId"]
    assert ours["certificate"] == theirs["certificate"]


def test_official_certificates_verify_with_our_code():
    taskcluster = pytest.importorskip("taskcluster")
    now = datetime.datetime.utcnow()
    for name in (None, "issuer/x"):
        theirs = taskcluster.createTemporaryCredentials(
            "issuer", "tok", now - datetime.timedelta(minutes=1), now + datetime.timedelta(hours=1), ["a"], name=name)
        key, scopes = verify_certificate(json.loads(theirs["certificate"]), theirs["clientId"],
                                         lambda issuer: ("tok", ["*"]))
        token = theirs["accessToken"]
        assert key == (token.decode() if isinstance(token, bytes) else token)
        assert scopes == ["a"]


def test_accepts_from_now_strings_and_epoch_ms():
    a = createTemporaryCredentials("i", "t", utils.fromNow("-1 min"), utils.fromNow("1 hour"), [])
    assert not utils.isExpired(a["certificate"])
    b = createTemporaryCredentials("i", "t", "2030-01-01T00:00:00Z", "2030-01-02T00:00:00.000Z", [])
    assert json.loads(b["certificate"])["start"] == START_MS
    c = createTemporaryCredentials("i", "t", START_MS, START_MS + 1000, ())
    assert json.loads(c["certificate"])["expiry"] == START_MS + 1000


def test_seed_differs_each_time():
    seeds = {json.loads(createTemporaryCredentials("i", "t", START, EXPIRY, [])["certificate"])["seed"]
             for _ in range(20)}
    assert len(seeds) == 20


def test_bytes_token_rejected_clearly():
    with pytest.raises(CredentialsError, match="accessToken must be str, not bytes"):
        createTemporaryCredentials("i", b"tok", START, EXPIRY, [])  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs, match", [
    ({"clientId": b"i"}, "clientId"),
    ({"clientId": ""}, "clientId"),
    ({"clientId": None}, "clientId"),
    ({"accessToken": 5}, "accessToken"),
    ({"scopes": "queue:*"}, "scopes"),
    ({"scopes": ["a", 5]}, "scopes"),
    ({"scopes": None}, "scopes"),
    ({"start": EXPIRY, "expiry": START}, "before"),
    ({"start": START, "expiry": START}, "before"),
    ({"expiry": START + datetime.timedelta(days=31, seconds=1)}, "31 days"),
    ({"name": ""}, "name"),
    ({"name": 5}, "name"),
    ({"start": "yesterday"}, "ISO"),
])
def test_bad_input(kwargs, match):
    args = {"clientId": "i", "accessToken": "secret-tok", "start": START, "expiry": EXPIRY, "scopes": ["a"]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match) as info:
        createTemporaryCredentials(**args)
    assert "secret-tok" not in str(info.value)


def test_31_days_exactly_is_allowed():
    out = createTemporaryCredentials("i", "t", START, START + datetime.timedelta(days=31), [])
    cert = json.loads(out["certificate"])
    assert cert["expiry"] - cert["start"] == 31 * 86400 * 1000


def test_temporary_cannot_issue_temporary():
    temp = createTemporaryCredentials("i", "t", START, EXPIRY, ["a"])
    with pytest.raises(CredentialsError, match="cannot issue"):
        createTemporaryCredentials(temp["clientId"], temp["accessToken"], START, EXPIRY, ["a"],
                                   certificate=temp["certificate"])
    with pytest.raises(CredentialsError, match="cannot issue"):
        Credentials.from_dict(temp).create_temporary(START, EXPIRY, ["a"])
    with pytest.raises(CredentialsError, match="cannot issue"):
        create_temporary_credentials(temp, start=START, expiry=EXPIRY, scopes=["a"])


def test_snake_case_form():
    perm = Credentials("me", "tok")
    temp = create_temporary_credentials(perm, start=START, expiry=EXPIRY, scopes=["a"], name="me/x")
    assert temp.temporary
    assert temp.clientId == "me/x"
    assert temp.certificate["issuer"] == "me"
    temp2 = create_temporary_credentials({"clientId": "me", "accessToken": "tok"}, start=START, expiry=EXPIRY,
                                         scopes=["a"])
    assert temp2.clientId == "me"


def test_errors_pickle():
    try:
        createTemporaryCredentials("i", "t", EXPIRY, START, [])
    except CredentialsError as exc:
        again = pickle.loads(pickle.dumps(exc))
        assert str(again) == str(exc)
        assert again.start == exc.start


# --------------------------------------------------------------------------- verify_certificate


def issued(scopes=("a",), name=None, start="-1 min", expiry="1 hour", token="issuer-tok"):
    out = createTemporaryCredentials("issuer", token, utils.fromNow(start), utils.fromNow(expiry),
                                     list(scopes), name=name)
    return out["clientId"], out["accessToken"], json.loads(out["certificate"])


def lookup(scopes=("*",)):
    def find(issuer):
        if issuer != "issuer":
            raise KeyError(issuer)
        return "issuer-tok", list(scopes)
    return find


@pytest.mark.parametrize("name", [None, "issuer/named"])
def test_verify_good(name):
    client_id, token, cert = issued(name=name)
    assert verify_certificate(cert, client_id, lookup()) == (token, ["a"])


def check_fails(cert, client_id, match, find=None, **kw):
    with pytest.raises(CredentialsError, match=match) as info:
        verify_certificate(cert, client_id, find or lookup(), **kw)
    assert "issuer-tok" not in str(info.value)


def test_verify_failures():
    client_id, _, cert = issued()
    check_fails("text", client_id, "JSON object")
    check_fails({**cert, "version": 2}, client_id, "version")
    check_fails({**cert, "seed": "short"}, client_id, "seed")
    check_fails({**cert, "start": "x"}, client_id, "start")
    check_fails({**cert, "expiry": "1.5"}, client_id, "expiry")
    check_fails({**cert, "expiry": True}, client_id, "expiry")
    check_fails({**cert, "clientId": "x"}, client_id, "clientId")
    check_fails({**cert, "scopes": "a"}, client_id, "scopes")
    check_fails({**cert, "signature": None}, client_id, "signature")
    check_fails({**cert, "scopes": ["a", "b"]}, client_id, "signature")
    check_fails({**cert, "scopes": ["a\n"]}, client_id, "printable")
    check_fails(cert, "someone-else", "not a known client")
    check_fails(cert, client_id, "scopes it granted", find=lookup(["b"]))
    _, _, expired = issued(start="-3 hours", expiry="-2 hours")
    check_fails(expired, client_id, "expired")
    _, _, future = issued(start="2 hours", expiry="3 hours")
    check_fails(future, client_id, "future")
    _, _, wrong_key = issued(token="other-tok")
    check_fails(wrong_key, client_id, "signature")


def test_verify_clock_skew():
    client_id, _, cert = issued(start="-3 hours", expiry="-2 min")
    verify_certificate(cert, client_id, lookup())  # within the default 5 minutes
    check_fails(cert, client_id, "expired", clock_skew=60)
    _, _, soon = issued(start="2 min", expiry="1 hour")
    verify_certificate(soon, client_id, lookup())
    check_fails(soon, client_id, "future", clock_skew=10)


def test_verify_over_31_days():
    now = int(time.time() * 1000)
    cert = {"version": 1, "scopes": [], "start": now, "expiry": now + 32 * 86400000, "seed": "s" * 44}
    cert["signature"] = sign_certificate(cert, "issuer-tok")
    check_fails(cert, "issuer", "31 days")


def test_verify_named():
    client_id, _, cert = issued(name="issuer/named")
    check_fails(cert, "issuer/other", "signature")  # the name is signed
    check_fails(cert, client_id, "auth:create-client:issuer/named", find=lookup(["a"]))
    verify_certificate(cert, client_id, lookup(["a", "auth:create-client:issuer/*"]))
    check_fails({**cert, "issuer": 5}, client_id, "issuer")
    check_fails(cert, "issuer", "differ")


def test_signature_text_needs_client_id_when_named():
    _, _, cert = issued(name="issuer/named")
    with pytest.raises(CredentialsError, match="client_id"):
        signature_text(cert)


def test_derive_access_token():
    assert derive_access_token("tok", "seed") == base64.urlsafe_b64encode(
        hmac.new(b"tok", b"seed", hashlib.sha256).digest()).decode().rstrip("=")
    with pytest.raises(CredentialsError):
        derive_access_token(b"tok", "seed")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- ext


def test_ext_round_trip_and_format():
    _, _, cert = issued()
    ext = make_ext(cert, ["a"])
    assert parse_ext(ext) == {"certificate": cert, "authorizedScopes": ["a"]}
    assert "+" not in ext
    assert "/" not in ext
    raw = base64.b64decode(ext.replace("-", "+").replace("_", "/"))
    assert raw == json.dumps({"certificate": cert, "authorizedScopes": ["a"]}, separators=(",", ":")).encode()
    assert make_ext() is None
    assert parse_ext(make_ext(authorized_scopes=[])) == {"authorizedScopes": []}
    assert parse_ext(make_ext(certificate=cert)) == {"certificate": cert}


def test_ext_matches_official_client():
    taskcluster = pytest.importorskip("taskcluster")
    _, _, cert = issued()
    client = taskcluster.Queue({"rootUrl": "https://tc.example.com", "authorizedScopes": ["a"],
                                "credentials": {"clientId": "c", "accessToken": "t",
                                                "certificate": json.dumps(cert)}})
    theirs = client.makeHawkExt()
    theirs = theirs.decode() if isinstance(theirs, bytes) else theirs
    assert parse_ext(theirs) == parse_ext(make_ext(cert, ["a"]))


def test_parse_ext_accepts_standard_and_unpadded():
    payload = json.dumps({"authorizedScopes": ["a?>"]}).encode()
    standard = base64.b64encode(payload).decode()
    assert parse_ext(standard) == {"authorizedScopes": ["a?>"]}
    assert parse_ext(standard.rstrip("=")) == {"authorizedScopes": ["a?>"]}
    assert parse_ext(None) == {}
    assert parse_ext("") == {}


@pytest.mark.parametrize("bad", ["!!!", base64.b64encode(b"[1]").decode(), base64.b64encode(b"{x").decode()])
def test_parse_ext_rejects(bad):
    with pytest.raises(CredentialsError, match="ext"):
        parse_ext(bad)


def test_make_ext_rejects_bad_scopes():
    with pytest.raises(CredentialsError):
        make_ext(authorized_scopes="queue:*")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Credentials


def test_repr_never_shows_token():
    perm = Credentials("tester", "super-secret-token")
    for text in (repr(perm), str(perm), f"{perm}", repr([perm]), repr({"c": perm})):
        assert "super-secret-token" not in text
        assert "tester" in text
    temp = Credentials.from_dict(createTemporaryCredentials("i", "super-secret-token", START, EXPIRY, ["a"]))
    assert temp.accessToken not in repr(temp)
    assert "super-secret-token" not in repr(temp)
    assert "temporary" in repr(temp)


def test_from_dict_forms():
    out = createTemporaryCredentials("i", "t", START, EXPIRY, ["a"])
    from_text = Credentials.from_dict(out)
    from_obj = Credentials.from_dict({**out, "certificate": json.loads(out["certificate"])})
    assert from_text == from_obj
    assert from_text.certificate["scopes"] == ["a"]
    assert from_text.as_dict() == out
    assert Credentials.from_dict(from_text) is from_text
    plain = Credentials.from_dict({"clientId": "c", "accessToken": "t", "certificate": None})
    assert plain.certificate is None
    assert plain.as_dict() == {"clientId": "c", "accessToken": "t"}
    assert Credentials.from_dict({"clientId": "c", "accessToken": "t", "certificate": ""}).certificate is None
    assert plain.hawk_credentials() == {"id": "c", "key": "t", "algorithm": "sha256"}
    assert plain.ext() is None
    assert parse_ext(plain.ext(["x"])) == {"authorizedScopes": ["x"]}
    assert parse_ext(from_text.ext())["certificate"] == json.loads(out["certificate"])


def test_from_dict_does_not_mutate():
    cert = json.loads(createTemporaryCredentials("i", "t", START, EXPIRY, ["a"])["certificate"])
    data = {"clientId": "c", "accessToken": "t", "certificate": cert}
    snapshot = json.dumps(data, sort_keys=True)
    Credentials.from_dict(data).certificate["scopes"].append("zzz")
    assert json.dumps(data, sort_keys=True) == snapshot


@pytest.mark.parametrize("data, match", [
    ({"clientId": "c"}, "accessToken"),
    ({"accessToken": "t"}, "clientId"),
    ({"clientId": "c", "accessToken": "t", "acessToken": "x"}, "unknown"),
    ({"clientId": "c", "accessToken": b"t"}, "bytes"),
    ({"clientId": 1, "accessToken": "t"}, "clientId"),
    ({"clientId": "c", "accessToken": "t", "certificate": "{bad"}, "JSON"),
    ({"clientId": "c", "accessToken": "t", "certificate": b"{}"}, "bytes"),
    ({"clientId": "c", "accessToken": "t", "certificate": 5}, "certificate"),
    ("c:t", "dict"),
    ({}, "clientId and accessToken are missing"),
])
def test_from_dict_rejects(data, match):
    with pytest.raises(CredentialsError, match=match) as info:
        Credentials.from_dict(data)  # type: ignore[arg-type]
    assert "'t'" not in str(info.value)


def test_certificate_fields_are_the_auth_service_s_to_judge():
    """As the official client: any JSON object travels as the certificate, unchecked."""
    partial = Credentials.from_dict({"clientId": "c", "accessToken": "t", "certificate": '{"version": 1}'})
    assert partial.certificate == {"version": 1}
    assert partial.temporary
    assert parse_ext(partial.ext()) == {"certificate": {"version": 1}}
    assert repr(partial) == "Credentials(clientId='c', accessToken=<hidden>, temporary, scopes=None)"


def test_normalize_credentials():
    assert normalize_credentials(None) is None
    assert normalize_credentials({}) is None
    assert normalize_credentials({"clientId": None, "accessToken": None}) is None  # the official defaults
    assert normalize_credentials({"clientId": "c", "accessToken": "t"}) == Credentials("c", "t")
    creds = Credentials("c", "t")
    assert normalize_credentials(creds) is creds


def test_from_environment():
    cert = createTemporaryCredentials("i", "t", START, EXPIRY, ["a"])["certificate"]
    assert Credentials.from_environment({}) is None
    env = {"TASKCLUSTER_CLIENT_ID": "c", "TASKCLUSTER_ACCESS_TOKEN": "t"}
    assert Credentials.from_environment(env) == Credentials("c", "t")
    assert Credentials.from_environment({**env, "TASKCLUSTER_CERTIFICATE": cert}).temporary
    with pytest.raises(CredentialsError, match="both"):
        Credentials.from_environment({"TASKCLUSTER_CLIENT_ID": "c"})


# --------------------------------------------------------------------------- read_options: the one reader

ENV = {"TASKCLUSTER_ROOT_URL": "https://env.example.com", "TASKCLUSTER_CLIENT_ID": "env",
       "TASKCLUSTER_ACCESS_TOKEN": "env-token"}


@pytest.mark.parametrize("options, environ, root_url, client_id", [
    ({}, {}, None, None),
    ({}, ENV, "https://env.example.com", "env"),
    ({"rootUrl": "https://opt.example.com"}, ENV, "https://opt.example.com", "env"),
    ({"baseUrl": "https://queue.taskcluster.net/v1"}, ENV, None, "env"),
    ({"credentials": None}, ENV, "https://env.example.com", None),
    ({"credentials": {}}, ENV, "https://env.example.com", None),
    ({"credentials": {"clientId": "opt", "accessToken": "t"}}, ENV, "https://env.example.com", "opt"),
    ({"credentials": Credentials("obj", "t")}, ENV, "https://env.example.com", "obj"),
    ({}, {key: "" for key in ENV}, None, None),  # empty variables count as unset
    ({}, {"TASKCLUSTER_CERTIFICATE": '{"version": 1}'}, None, None),  # a lone certificate is ignored
    ({"credentials": {"certificate": {"version": 1}}}, {}, None, None),
])
def test_read_options(options, environ, root_url, client_id):
    deployment = read_options(options, environ)
    assert isinstance(deployment, Deployment)
    assert deployment.root_url == root_url
    assert (deployment.credentials.clientId if deployment.credentials else None) == client_id


def test_read_options_takes_the_process_environment_by_default(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TASKCLUSTER_CERTIFICATE", '{"version": 1, "scopes": ["a"]}')
    assert read_options({}) == read_options({}, dict(ENV, TASKCLUSTER_CERTIFICATE='{"version": 1, "scopes": ["a"]}'))
    assert read_options({}).credentials.certificate == {"version": 1, "scopes": ["a"]}
    assert Credentials.from_environment() == read_options({}).credentials


@pytest.mark.parametrize("options, environ, match", [
    ({}, {"TASKCLUSTER_CLIENT_ID": "c"},
     r"TASKCLUSTER_\* environment: accessToken is missing \(set both TASKCLUSTER_CLIENT_ID and "
     r"TASKCLUSTER_ACCESS_TOKEN, or neither\)"),
    ({}, {"TASKCLUSTER_ACCESS_TOKEN": "t"}, r"environment: clientId is missing"),
    ({}, {**ENV, "TASKCLUSTER_CERTIFICATE": "{oops"}, r"environment: certificate is not valid JSON"),
    ({"credentials": {"accessToken": "t"}}, ENV,
     r"credentials: clientId is missing \(give both clientId and accessToken, or neither\)"),
    ({"credentials": {"clientId": "c", "accessToken": 5}}, ENV, r"credentials: accessToken must be str, not int"),
    ({"credentials": {"clientId": "c", "acessToken": "t"}}, ENV,
     r"credentials: unknown key 'acessToken'; did you mean 'accessToken'\?$"),
    ({"credentials": {"clientId": "c", "accessToken": "t", "zzz": 1}}, ENV,
     r"unknown key 'zzz'; known: clientId, accessToken, certificate\.$"),
    ({"credentials": ["c", "t"]}, ENV, r"credentials must be a dict, not list"),
])
def test_read_options_rejects(options, environ, match):
    with pytest.raises(CredentialsError, match=match) as info:
        read_options(options, environ)
    assert "env-token" not in str(info.value)


def test_a_lone_certificate_is_ignored_with_a_warning(caplog):
    caplog.set_level("WARNING", logger="tclisten.taskcluster.credentials")
    assert read_options({}, {"TASKCLUSTER_CERTIFICATE": '{"version": 1}'}).credentials is None
    assert "certificate without clientId and accessToken is ignored" in caplog.text


def test_read_options_does_not_mutate():
    options = {"credentials": {"clientId": "c", "accessToken": "t", "certificate": {"scopes": ["a"]}}}
    snapshot = json.dumps(options, sort_keys=True)
    read_options(options, {}).credentials.certificate["scopes"].append("b")
    assert json.dumps(options, sort_keys=True) == snapshot


def test_is_expired():
    assert not Credentials("c", "t").is_expired()
    _, token, cert = issued(start="-3 hours", expiry="-1 hour")
    assert Credentials("issuer", token, cert).is_expired()
    _, token, cert = issued()
    assert not Credentials("issuer", token, cert).is_expired()
    assert Credentials("issuer", token, cert).is_expired(margin=7200)


@pytest.mark.parametrize("module", [creds_mod, utils], ids=lambda module: module.__name__)
def test_module_exports_are_defined_there_and_documented(module):
    for name in module.__all__:
        assert name in vars(module), f"{module.__name__}.__all__ names {name!r}, which it does not define"
        value = vars(module)[name]
        if callable(value):
            assert inspect.getdoc(value), f"{module.__name__}.{name} has no docstring"


PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


@given(scopes=st.lists(PRINTABLE, max_size=6), name=st.one_of(st.none(), PRINTABLE.filter(bool)),
       token=st.text(min_size=1, max_size=30), minutes=st.integers(1, 31 * 24 * 60))
@settings(deadline=None, max_examples=150)
def test_issued_credentials_always_verify(scopes, name, token, minutes):
    if name == "issuer":
        return
    start = datetime.datetime.utcnow() - datetime.timedelta(minutes=1)
    out = createTemporaryCredentials("issuer", token, start, start + datetime.timedelta(minutes=minutes),
                                     scopes, name=name)
    assert out["clientId"] == (name or "issuer")
    key, granted = verify_certificate(json.loads(out["certificate"]), out["clientId"],
                                      lambda issuer: (token, ["*"]))
    assert key == out["accessToken"]
    assert granted == scopes
