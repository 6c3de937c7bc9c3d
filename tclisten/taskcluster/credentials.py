"""Taskcluster credentials: checking them, issuing temporary ones, and the Hawk ``ext``.

Permanent credentials are a clientId and an accessToken.  *Temporary* credentials add a
certificate signed with the issuer's accessToken; their accessToken is derived from the
certificate's seed, and every request carries the certificate in Hawk's ``ext``::

    >>> import datetime
    >>> temp = createTemporaryCredentials("ci", "issuer-token", datetime.datetime(2030, 1, 1),
    ...                                   datetime.datetime(2030, 1, 2), ["queue:get-task:*"])
    >>> sorted(temp)
    ['accessToken', 'certificate', 'clientId']
    >>> Credentials.from_dict(temp)
    Credentials(clientId='ci', accessToken=<hidden>, temporary, scopes=['queue:get-task:*'])

:func:`read_options` is the one reader of a client's ``credentials`` option and of the
``TASKCLUSTER_*`` environment variables; every client, and anyone else, goes through it.

No message or repr here ever shows an accessToken.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import hmac
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Union

from . import utils
from ..exceptions import ConfigError, CredentialsError, did_you_mean

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_TEMPORARY_DURATION",
    "Credentials",
    "Deployment",
    "ENVIRONMENT",
    "createTemporaryCredentials",
    "create_temporary_credentials",
    "derive_access_token",
    "make_ext",
    "normalize_credentials",
    "parse_ext",
    "read_options",
    "signature_text",
    "sign_certificate",
    "verify_certificate",
]

#: Longest life a temporary certificate may have.
MAX_TEMPORARY_DURATION = datetime.timedelta(days=31)
_MAX_DURATION_MS = int(MAX_TEMPORARY_DURATION.total_seconds() * 1000)

Time = Union[datetime.datetime, str, int, float]
_VALID_SCOPE = re.compile(r"[\x20-\x7e]*\Z")


def _text(value: Any, what: str, *, allow_empty: bool = False) -> str:
    if isinstance(value, (bytes, bytearray)):
        raise CredentialsError(f"{what} must be str, not bytes: decode it first (value.decode())",
                               field=what)
    if not isinstance(value, str):
        raise CredentialsError(f"{what} must be str, not {type(value).__name__}", field=what)
    if not value and not allow_empty:
        raise CredentialsError(f"{what} is empty", field=what)
    return value


def _scope_list(scopes: Any, what: str = "scopes") -> list[str]:
    try:
        return utils.scope_list(scopes, what)
    except ConfigError as exc:
        raise CredentialsError(exc.message, field=what) from None


# --------------------------------------------------------------------------- certificates


def signature_text(certificate: Mapping[str, Any], client_id: str | None = None) -> str:
    """The text a certificate's signature covers (lines joined by ``\\n``).

    ``client_id`` is the temporary clientId; it is part of the text only for named
    credentials (a certificate with ``issuer``).

    >>> signature_text({"version": 1, "seed": "s", "start": 1, "expiry": 2, "scopes": ["a"]})
    'version:1\\nseed:s\\nstart:1\\nexpiry:2\\nscopes:\\na'
    """
    lines = [f"version:{certificate['version']}"]
    if certificate.get("issuer") is not None:
        if client_id is None:
            raise CredentialsError("a named certificate's signature covers its clientId: give client_id")
        lines += [f"clientId:{client_id}", f"issuer:{certificate['issuer']}"]
    lines += [f"seed:{certificate['seed']}", f"start:{certificate['start']}",
              f"expiry:{certificate['expiry']}", "scopes:"]
    lines += list(certificate["scopes"])
    return "\n".join(lines)


def sign_certificate(certificate: Mapping[str, Any], issuer_access_token: str,
                     client_id: str | None = None) -> str:
    """Standard base64 of HMAC-SHA256(issuer accessToken, :func:`signature_text`).

    >>> len(sign_certificate({"version": 1, "seed": "s", "start": 1, "expiry": 2, "scopes": []}, "tok"))
    44
    """
    key = _text(issuer_access_token, "accessToken").encode("utf-8")
    digest = hmac.new(key, signature_text(certificate, client_id).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def derive_access_token(issuer_access_token: str, seed: str) -> str:
    """The temporary accessToken: base64url, unpadded, of HMAC-SHA256(issuer token, seed).

    >>> len(derive_access_token("tok", "A" * 44))
    43
    """
    key = _text(issuer_access_token, "accessToken").encode("utf-8")
    digest = hmac.new(key, seed.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _new_seed() -> str:
    # Looked up on the module at call time so tests can fix the seed.
    return utils.slugId() + utils.slugId()


def createTemporaryCredentials(clientId: str, accessToken: str, start: Time, expiry: Time,
                               scopes: Iterable[str], name: str | None = None, *,
                               certificate: Any = None) -> dict[str, str]:
    """Issue temporary credentials from permanent ones (the 2015 client's function).

    ``start`` and ``expiry`` are datetimes (naive means UTC; :func:`tclisten.taskcluster.utils.fromNow`
    gives suitable ones), ISO 8601 strings or epoch milliseconds; at most 31 days apart.
    With ``name`` the credentials are *named*: their clientId is ``name`` and the
    certificate records the issuer (the issuer then needs ``auth:create-client:<name>``).
    Passing the issuer's own ``certificate`` is refused: temporary credentials cannot issue
    temporary credentials.

    Returns ``{"clientId", "accessToken", "certificate"}``, all ``str``; ``certificate`` is
    compact JSON, as the official client returns it.

    >>> from tclisten.taskcluster.utils import fromNow
    >>> temp = createTemporaryCredentials("me", "tok", fromNow("-5 min"), fromNow("1 hour"), ["a"], name="me/tmp")
    >>> temp["clientId"], json.loads(temp["certificate"])["issuer"]
    ('me/tmp', 'me')
    """
    if certificate is not None:
        raise CredentialsError("temporary credentials cannot issue temporary credentials: "
                               "issue them from permanent credentials (no certificate)")
    clientId = _text(clientId, "clientId")
    accessToken = _text(accessToken, "accessToken")
    if name is not None:
        name = _text(name, "name")
    scopes = _scope_list(scopes)
    start_ms = utils.to_epoch_ms(start)
    expiry_ms = utils.to_epoch_ms(expiry)
    if start_ms >= expiry_ms:
        raise CredentialsError("start must be before expiry", start=start_ms, expiry=expiry_ms)
    if expiry_ms - start_ms > _MAX_DURATION_MS:
        raise CredentialsError("temporary credentials may live at most 31 days (expiry - start)",
                               start=start_ms, expiry=expiry_ms)

    # Same key order as the official client, so certificates read alike.
    cert: dict[str, Any] = {"version": 1, "scopes": scopes, "start": start_ms,
                            "expiry": expiry_ms, "seed": _new_seed()}
    if name is not None:
        cert["issuer"] = clientId
    cert["signature"] = sign_certificate(cert, accessToken, client_id=name)
    return {
        "clientId": name if name is not None else clientId,
        "accessToken": derive_access_token(accessToken, cert["seed"]),
        "certificate": utils.dumpJson(cert),
    }


def _millis(certificate: Mapping[str, Any], key: str) -> float:
    value = certificate.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CredentialsError(f"ext.certificate.{key} must be a number (epoch milliseconds)")
    return value


def verify_certificate(certificate: Any, client_id: str,
                       issuer_lookup: Callable[[str], tuple[str, Iterable[str]]], *,
                       now: float | None = None, clock_skew: float = 300.0) -> tuple[str, list[str]]:
    """Check a temporary certificate as Taskcluster's auth service does.

    ``client_id`` is the clientId the request presented; ``issuer_lookup(issuer_id)`` returns
    the issuer's ``(accessToken, scopes)`` or raises ``KeyError``.  Returns the temporary
    accessToken (the Hawk key) and the certificate's scopes; raises
    :class:`CredentialsError` saying what is wrong (never showing a token).

    >>> temp = createTemporaryCredentials("ci", "tok", "2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z", ["a"])
    >>> key, scopes = verify_certificate(json.loads(temp["certificate"]), "ci", lambda _: ("tok", ["*"]),
    ...                                  now=1893499200)
    >>> key == temp["accessToken"], scopes
    (True, ['a'])
    """
    seed, scopes, issuer = _certificate_fields(certificate, client_id)
    _check_validity(certificate, now=time.time() if now is None else now, clock_skew=clock_skew)
    try:
        issuer_token, issuer_scopes = issuer_lookup(issuer)
    except KeyError:
        raise CredentialsError(f"ext.certificate issuer {issuer!r} is not a known client") from None
    named = client_id if "issuer" in certificate else None
    _check_issued(certificate, issuer, issuer_token, list(issuer_scopes), scopes, named)
    return derive_access_token(issuer_token, seed), scopes


def _certificate_fields(certificate: Any, client_id: str) -> tuple[str, list[str], str]:
    """The certificate's shape checked, field by field: its seed, scopes and issuer."""
    fail = CredentialsError
    if not isinstance(certificate, Mapping):
        raise fail("ext.certificate must be a JSON object")
    if certificate.get("version") != 1:
        raise fail("ext.certificate.version must be 1")
    seed = certificate.get("seed")
    if not isinstance(seed, str) or len(seed) != 44:
        raise fail("ext.certificate.seed must be a string of 44 characters")
    for key in ("start", "expiry"):  # numbers; whether they hold now is _check_validity's
        _millis(certificate, key)
    if not isinstance(certificate.get("signature"), str):
        raise fail("ext.certificate.signature must be a string")
    scopes = _scope_list(certificate.get("scopes"), "ext.certificate.scopes")
    if not all(_VALID_SCOPE.match(scope) for scope in scopes):
        raise fail("ext.certificate.scopes must be printable ASCII strings")
    issuer = client_id
    if "issuer" in certificate:
        issuer = certificate["issuer"]
        if not isinstance(issuer, str) or not issuer:
            raise fail("ext.certificate.issuer must be a non-empty string")
        if issuer == client_id:
            raise fail("ext.certificate.issuer must differ from the clientId of named credentials")
    elif "clientId" in certificate:
        raise fail("ext.certificate.clientId may only be used with ext.certificate.issuer")
    return seed, scopes, issuer


def _check_validity(certificate: Mapping[str, Any], *, now: float, clock_skew: float) -> None:
    """At most 31 days long, and valid at ``now`` (epoch seconds) give or take ``clock_skew``."""
    start, expiry = _millis(certificate, "start"), _millis(certificate, "expiry")
    if expiry - start > _MAX_DURATION_MS:
        raise CredentialsError("ext.certificate cannot be valid for more than 31 days")
    now_ms = now * 1000
    if start > now_ms + clock_skew * 1000:
        raise CredentialsError("ext.certificate.start is in the future")
    if expiry < now_ms - clock_skew * 1000:
        raise CredentialsError("ext.certificate.expiry is in the past: the temporary credentials have expired")


def _check_issued(certificate: Mapping[str, Any], issuer: str, issuer_token: str, issuer_scopes: list[str],
                  scopes: list[str], named: str | None) -> None:
    """Signed with the issuer's accessToken, granting no scope the issuer lacks (and, for
    named credentials, an issuer allowed to create that client)."""
    fail = CredentialsError
    expected = sign_certificate(certificate, issuer_token, client_id=named)
    if not hmac.compare_digest(expected, certificate["signature"]):
        raise fail("ext.certificate.signature is not valid (wrong issuer accessToken, or altered certificate)")
    lacking = [s for s in scopes if not utils.scope_satisfied(issuer_scopes, s)]
    if lacking:
        raise fail(f"ext.certificate issuer {issuer!r} does not have the scopes it granted: {lacking}")
    if named is not None and not utils.scope_satisfied(issuer_scopes, f"auth:create-client:{named}"):
        raise fail(f"ext.certificate issuer {issuer!r} lacks auth:create-client:{named} for named credentials")


# --------------------------------------------------------------------------- Hawk ext


def make_ext(certificate: Mapping[str, Any] | None = None,
             authorized_scopes: Iterable[str] | None = None) -> str | None:
    """The Hawk ``ext`` Taskcluster expects: base64 of compact JSON with ``certificate``
    and/or ``authorizedScopes``, ``+``/``/`` made url-safe, ``=`` kept; None when neither.

    >>> parse_ext(make_ext(authorized_scopes=["a"]))
    {'authorizedScopes': ['a']}
    """
    ext: dict[str, Any] = {}
    if certificate is not None:
        ext["certificate"] = dict(certificate)
    if authorized_scopes is not None:
        ext["authorizedScopes"] = _scope_list(authorized_scopes, "authorizedScopes")
    if not ext:
        return None
    return base64.urlsafe_b64encode(utils.dumpJson(ext).encode("utf-8")).decode("ascii")


def parse_ext(ext: str | None) -> dict[str, Any]:
    """Decode a Hawk ``ext`` (url-safe or standard base64, padding optional) to a dict.

    Raises :class:`CredentialsError` when it is not base64 of a JSON object.

    >>> parse_ext("eyJhdXRob3JpemVkU2NvcGVzIjpbXX0=")
    {'authorizedScopes': []}
    """
    if not ext:
        return {}
    text = ext.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        data = json.loads(base64.b64decode(text, validate=True).decode("utf-8"))
    except ValueError:
        raise CredentialsError("Hawk ext is not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise CredentialsError("Hawk ext must encode a JSON object")
    return data


# --------------------------------------------------------------------------- a credentials value


def _certificate_dict(certificate: Any) -> dict[str, Any] | None:
    """A certificate as a dict (from a dict or its JSON text).  Like the official clients,
    nothing checks its fields: the auth service judges them (:func:`verify_certificate`)."""
    if certificate is None or certificate == "":
        return None
    if isinstance(certificate, (bytes, bytearray)):
        raise CredentialsError("certificate must be a dict or JSON str, not bytes", field="certificate")
    if isinstance(certificate, str):
        try:
            certificate = json.loads(certificate)
        except ValueError:
            raise CredentialsError("certificate is not valid JSON", field="certificate") from None
    if not isinstance(certificate, Mapping):
        raise CredentialsError(f"certificate must be a dict or JSON str, not {type(certificate).__name__}",
                               field="certificate")
    return copy.deepcopy(dict(certificate))


@dataclass(frozen=True)
class Credentials:
    """Checked Taskcluster credentials; the repr never shows the accessToken.

    >>> creds = Credentials("tester", "s3cret")
    >>> creds
    Credentials(clientId='tester', accessToken=<hidden>)
    >>> creds.ext(authorized_scopes=["queue:*"]) is not None
    True
    """

    clientId: str
    accessToken: str = field(repr=False)
    certificate: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "clientId", _text(self.clientId, "clientId"))
        object.__setattr__(self, "accessToken", _text(self.accessToken, "accessToken"))
        object.__setattr__(self, "certificate", _certificate_dict(self.certificate))

    def __repr__(self) -> str:
        extra = ""
        if self.certificate is not None:
            extra = f", temporary, scopes={self.certificate.get('scopes')!r}"
        return f"Credentials(clientId={self.clientId!r}, accessToken=<hidden>{extra})"

    __str__ = __repr__

    @property
    def temporary(self) -> bool:
        return self.certificate is not None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Credentials) -> Credentials:
        """From ``{"clientId", "accessToken", "certificate"?}``; unknown keys are refused.

        >>> Credentials.from_dict({"clientId": "me", "accessToken": "tok"})
        Credentials(clientId='me', accessToken=<hidden>)
        """
        credentials = normalize_credentials(data)
        if credentials is None:
            raise CredentialsError("credentials: clientId and accessToken are missing", field="clientId")
        return credentials

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """From ``TASKCLUSTER_CLIENT_ID``/``_ACCESS_TOKEN``/``_CERTIFICATE`` (as
        :func:`read_options` reads them); None if unset.

        >>> Credentials.from_environment({"TASKCLUSTER_CLIENT_ID": "me", "TASKCLUSTER_ACCESS_TOKEN": "tok"})
        Credentials(clientId='me', accessToken=<hidden>)
        """
        return read_options({}, environ).credentials

    def as_dict(self) -> dict[str, Any]:
        """The dict form (certificate as JSON text, as the official clients use)."""
        out: dict[str, Any] = {"clientId": self.clientId, "accessToken": self.accessToken}
        if self.certificate is not None:
            out["certificate"] = utils.dumpJson(self.certificate)
        return out

    def hawk_credentials(self) -> dict[str, str]:
        """The credentials dict mohawk wants (``id``, ``key``, ``algorithm``)."""
        return {"id": self.clientId, "key": self.accessToken, "algorithm": "sha256"}

    def ext(self, authorized_scopes: Iterable[str] | None = None) -> str | None:
        """The Hawk ``ext`` for requests made with these credentials."""
        return make_ext(self.certificate, authorized_scopes)

    def is_expired(self, margin: float = 0.0) -> bool:
        """True when temporary and the certificate has expired (within ``margin`` seconds)."""
        return self.certificate is not None and utils.isExpired(self.certificate, margin=margin)

    def create_temporary(self, start: Time, expiry: Time, scopes: Iterable[str],
                         name: str | None = None) -> Credentials:
        """Issue temporary credentials from these (refused if these are temporary)."""
        return Credentials.from_dict(createTemporaryCredentials(
            self.clientId, self.accessToken, start, expiry, scopes, name, certificate=self.certificate))


# --------------------------------------------------------------------------- reading options

#: The standard environment variables, by the option (or credentials key) each stands for.
ENVIRONMENT: Mapping[str, str] = dict((
    ("rootUrl", "TASKCLUSTER_ROOT_URL"), ("clientId", "TASKCLUSTER_CLIENT_ID"),
    ("accessToken", "TASKCLUSTER_ACCESS_TOKEN"), ("certificate", "TASKCLUSTER_CERTIFICATE")))
_KEYS = ("clientId", "accessToken", "certificate")
# (where credentials came from, how to give both or neither there)
_FROM_OPTION = ("credentials", "give both clientId and accessToken, or neither")
_FROM_ENVIRONMENT = ("TASKCLUSTER_* environment",
                     "set both TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN, or neither")


class Deployment(NamedTuple):
    """Where a client calls (``root_url``, None when only a ``baseUrl`` says it) and as whom
    (``credentials``, None for anonymous calls), as :func:`read_options` found them."""

    root_url: str | None
    credentials: Credentials | None


def read_options(options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Deployment:
    """The rootUrl and credentials of client ``options``, the environment filling what the
    options leave out: the one reader of the ``credentials`` option and of ``TASKCLUSTER_*``.

    - rootUrl: the ``rootUrl`` option; else, unless a ``baseUrl`` is given,
      ``TASKCLUSTER_ROOT_URL``.
    - credentials: the ``credentials`` option when it is given at all (``None`` or ``{}``
      mean anonymous); else ``TASKCLUSTER_CLIENT_ID``, ``TASKCLUSTER_ACCESS_TOKEN`` and
      ``TASKCLUSTER_CERTIFICATE`` (a JSON object).

    An empty variable counts as unset.  clientId and accessToken come both or neither (a
    :class:`CredentialsError` otherwise); a certificate without them is ignored, as the
    official client ignores it.

    >>> env = {"TASKCLUSTER_ROOT_URL": "https://tc.example.com", "TASKCLUSTER_CLIENT_ID": "me",
    ...        "TASKCLUSTER_ACCESS_TOKEN": "tok"}
    >>> read_options({}, env)
    Deployment(root_url='https://tc.example.com', credentials=Credentials(clientId='me', accessToken=<hidden>))
    >>> read_options({"baseUrl": "https://queue.taskcluster.net/v1", "credentials": None}, env)
    Deployment(root_url=None, credentials=None)
    """
    env = os.environ if environ is None else environ
    root = options.get("rootUrl")
    if root is None and options.get("baseUrl") is None:
        root = env.get(ENVIRONMENT["rootUrl"]) or None
    if "credentials" in options:
        return Deployment(root, _read_credentials(options["credentials"], _FROM_OPTION))
    found = {key: env.get(ENVIRONMENT[key]) or None for key in _KEYS}
    return Deployment(root, _read_credentials(found, _FROM_ENVIRONMENT))


def _read_credentials(data: Any, source: tuple[str, str]) -> Credentials | None:
    origin, both_or_neither = source
    if data is None or isinstance(data, Credentials):
        return data
    if not isinstance(data, Mapping):
        raise CredentialsError(f"{origin} must be a dict, not {type(data).__name__}", field=origin)
    for key in data:
        if key not in _KEYS:
            hint = did_you_mean(str(key), _KEYS, known=True)
            raise CredentialsError(f"{origin}: unknown key {key!r}; {hint}".rstrip(), field=key)
    client_id, token = data.get("clientId"), data.get("accessToken")
    if not client_id and not token:
        if data.get("certificate"):
            logger.warning("%s: a certificate without clientId and accessToken is ignored", origin)
        return None
    if not client_id or not token:
        missing = "accessToken" if client_id else "clientId"
        raise CredentialsError(f"{origin}: {missing} is missing ({both_or_neither})", field=missing)
    try:
        return Credentials(client_id, token, data.get("certificate"))
    except CredentialsError as exc:  # say where the bad value came from
        raise CredentialsError(f"{origin}: {exc.message}", field=getattr(exc, "field", None)) from None


def normalize_credentials(credentials: Any) -> Credentials | None:
    """Check credentials given as a dict or :class:`Credentials`; None (or ``{}``) stays
    None (anonymous), as in a client's ``credentials`` option.

    >>> normalize_credentials({"clientId": "a", "accessToken": "b"}).clientId
    'a'
    >>> normalize_credentials({}) is None
    True
    """
    return _read_credentials(credentials, _FROM_OPTION)


def create_temporary_credentials(credentials: Credentials | Mapping[str, Any], *, start: Time,
                                 expiry: Time, scopes: Iterable[str],
                                 name: str | None = None) -> Credentials:
    """Snake-case form taking a credentials value: issue temporary credentials from it.

    >>> perm = Credentials("me", "tok")
    >>> create_temporary_credentials(perm, start="2030-01-01T00:00:00Z",
    ...                              expiry="2030-01-02T00:00:00Z", scopes=["a"]).temporary
    True
    """
    return Credentials.from_dict(credentials).create_temporary(start, expiry, scopes, name)
