"""Hawk request signing and bewits (signed URLs) for Taskcluster.

:class:`HawkAuth` is a ``requests`` auth hook: requests calls it for every attempt, so each
retry carries a fresh timestamp and nonce.  The ``ext`` field carries what narrows or proves
the credentials (the certificate of temporary credentials, ``authorizedScopes``) as
base64 of compact JSON with ``+`` -> ``-`` and ``/`` -> ``_``.

The ``Authorization`` header is built here, not by ``mohawk.Sender``: the same bytes (for the
same timestamp and nonce; tests/taskcluster/test_hawk_sign.py checks it over many requests),
without what a Sender costs on every call (two ``pprint`` renderings for debug logs, the
hash of the empty payload, a ``urlparse``, a regex check of every header value).  What does
not change between calls (the key's HMAC pads, the checked id and ``ext``, a host's line of
the normalized string, the hash of an empty payload) is computed once.  Bewits, rarer, are
still mohawk's.

>>> import requests
>>> auth = HawkAuth("my-client", "my-token")
>>> request = requests.Request("GET", "https://tc.example.com/api/queue/v1/ping", auth=auth).prepare()
>>> header = request.headers["Authorization"]
>>> header.startswith("Hawk ") and 'id="my-client"' in header and "my-token" not in header
True
>>> auth
HawkAuth(client_id='my-client')
"""

from __future__ import annotations

import binascii
import hashlib
import os
import re
import time
from typing import Any, NamedTuple
from urllib.parse import urlparse, urlsplit

import requests.auth

from .credentials import make_ext  # the ext format lives with the credentials it carries

__all__ = ["HawkAuth", "bewit", "make_ext", "payload_hash", "request_header", "sign_url"]

#: What mohawk.util accepts in a header value: ``!#$%&'()*+,-./:;<=>?@[]^_`{|}~``, space,
#: letters and digits (no quote, no backslash, nothing outside ASCII).
_HEADER_VALUE = re.compile(r"^[ a-zA-Z0-9_\!#\$%&'\(\)\*\+,\-\./\:;<\=>\?@\[\]\^`\{\|\}~]*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}  # what mohawk gives a URL without a port
_BLOCK = 64  # SHA-256's block size, for the HMAC pads (RFC 2104)
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_PAYLOAD = b"hawk.1.payload\n"
_CACHE_LIMIT = 64  # hosts and content types remembered per HawkAuth
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(digest: bytes) -> str:
    """Standard base64 (``base64.b64encode`` without its Python layer)."""
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


def _header_value(value: Any) -> str:
    """``mohawk.util.prepare_header_val``: bytes decoded as UTF-8, then Hawk's characters only."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not _HEADER_VALUE.match(value):
        import mohawk.exc  # untyped: setup.cfg lets mypy take it as Any

        raise mohawk.exc.BadHeaderValue(f"header value name=? value={value!r} contained an illegal character")
    return value


def _attribute(value: Any) -> str:
    """``mohawk.util.normalize_header_attr``: bytes decoded as UTF-8."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _content_type(content_type: str) -> str:
    """``mohawk.util.parse_content_type``: the media type, lower case, without parameters."""
    return content_type.split(";")[0].strip().lower() if content_type else ""


def payload_hash(content: bytes | str, content_type: str) -> str:
    """Hawk's payload hash: base64 of SHA-256 over ``hawk.1.payload\\n{type}\\n{body}\\n``.

    ``{type}`` is the Content-Type without parameters, in lower case; str bodies hash as UTF-8.

    >>> payload_hash(b"", "")
    'B0weSUXsMcb5UhL41FZbrUJCAotzSI3HawE1NPLRUz8='
    """
    if isinstance(content, str):
        content = content.encode("utf-8")
    digest = hashlib.sha256(_PAYLOAD + _content_type(content_type).encode("utf-8") + b"\n")
    digest.update(content)
    digest.update(b"\n")
    return _b64(digest.digest())


class _Signer(NamedTuple):
    """What a HawkAuth's requests share: the HMAC pads, the fixed tails of the header and
    the normalized string, and caches by host and content type."""

    inner: Any  # hashlib object: SHA-256 fed key ^ ipad
    outer: Any  # hashlib object: SHA-256 fed key ^ opad
    id_attribute: str  # '", id="{id}", ts="'
    header_tail: str  # ', ext="..."' (and app, dlg) or ''
    normalized_tail: str  # '{ext}\n' (and '{app}\n{dlg}\n')
    hosts: dict[tuple[str, str], str]  # (scheme, netloc) -> '{host}\n{port}\n'
    content_types: dict[str, Any]  # Content-Type -> SHA-256 fed hawk.1.payload\n{type}\n
    empty_hashes: dict[str, str]  # Content-Type -> the payload hash of an empty body


def _signer(client_id: Any, access_token: Any, ext: Any, app: Any = None, dlg: Any = None) -> _Signer:
    """Check and precompute what mohawk checks and computes on every call (same errors)."""
    client_id = _header_value(client_id)
    key = access_token if isinstance(access_token, bytes) else access_token.encode("ascii")
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    tail = ""
    for name, value in (("ext", ext), ("app", app), ("dlg", dlg)):
        if value:  # mohawk leaves empty ones out of the header
            tail += f', {name}="{_header_value(value)}"'
    normalized = f"{_attribute(ext or '')}\n"
    if app:  # mohawk signs dlg only with an app
        normalized += f"{_attribute(app)}\n{_attribute(dlg or '')}\n"
    return _Signer(hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD)),
                   f'", id="{client_id}", ts="', tail, normalized, {}, {}, {"": payload_hash(b"", "")})


def _host_lines(signer: _Signer, parts: Any) -> str:
    key = (parts.scheme, parts.netloc)
    lines = signer.hosts.get(key)
    if lines is None:
        port = parts.port  # raises ValueError for a bad port, as mohawk does
        if port is None:
            port = _DEFAULT_PORTS.get(parts.scheme)
        lines = f"{parts.hostname or ''}\n{port}\n"
        if len(signer.hosts) >= _CACHE_LIMIT:
            signer.hosts.clear()
        signer.hosts[key] = lines
    return lines


def _hash_of(signer: _Signer, content: bytes | str, content_type: str) -> str:
    if not content:
        found = signer.empty_hashes.get(content_type)
        if found is None:
            found = payload_hash(b"", content_type)
            if len(signer.empty_hashes) >= _CACHE_LIMIT:
                signer.empty_hashes.clear()
            signer.empty_hashes[content_type] = found
        return found
    if isinstance(content, str):
        content = content.encode("utf-8")
    start = signer.content_types.get(content_type)
    if start is None:
        start = hashlib.sha256(_PAYLOAD + _content_type(content_type).encode("utf-8") + b"\n")
        if len(signer.content_types) >= _CACHE_LIMIT:
            signer.content_types.clear()
        signer.content_types[content_type] = start
    digest = start.copy()
    digest.update(content)
    digest.update(b"\n")
    return _b64(digest.digest())


def _nonce() -> str:
    """mohawk's: the first 6 characters of url-safe base64 of 6 random bytes."""
    return binascii.b2a_base64(os.urandom(6), newline=False)[:6].translate(_URLSAFE).decode("ascii")


def _header(signer: _Signer, url: str, method: str, content: bytes | str, content_type: str,
            timestamp: str, nonce: str) -> str:
    """The ``Authorization`` header ``mohawk.Sender`` makes for these arguments."""
    if not url:
        raise ValueError("url was empty")
    parts = urlsplit(url)  # lru-cached by the standard library
    path = parts.path
    if ";" in path:  # urlparse, as mohawk uses, takes ';params' off the last segment
        path = urlparse(url).path
    query = parts.query
    content_hash = _hash_of(signer, content, content_type)
    normalized = (f"hawk.1.header\n{timestamp}\n{nonce}\n{method.upper()}\n"
                  f"{f'{path}?{query}' if query else path}\n{_host_lines(signer, parts)}"
                  f"{content_hash}\n{signer.normalized_tail}")
    inner = signer.inner.copy()
    inner.update(normalized.encode("utf-8"))
    outer = signer.outer.copy()
    outer.update(inner.digest())
    return (f'Hawk mac="{_b64(outer.digest())}", hash="{content_hash}{signer.id_attribute}'
            f'{timestamp}", nonce="{nonce}"{signer.header_tail}')


def request_header(client_id: str, access_token: str, url: str, method: str, content: bytes | str = b"",
                   content_type: str = "", ext: str | None = None, *, app: str | None = None,
                   dlg: str | None = None, timestamp: int | str | None = None, nonce: str | None = None) -> str:
    """The Hawk (SHA-256) ``Authorization`` header of one request, the payload hashed.

    Byte for byte what ``mohawk.Sender(credentials, url, method, content=content,
    content_type=content_type, ext=ext, app=app, dlg=dlg, nonce=nonce, _timestamp=timestamp)``
    gives as ``request_header``; ``timestamp`` defaults to now, ``nonce`` to a fresh one.

    >>> print(request_header("c", "t", "https://tc.example.com/x?a=1", "get",
    ...                      timestamp=1, nonce="n"))  # doctest: +NORMALIZE_WHITESPACE
    Hawk mac="413jcbYDnTVVAyi/LftlgghSI+jY+u9mfXe3RR7D26Q=", hash="B0weSUXsMcb5UhL41FZbrUJCAotzSI3HawE1NPLRUz8=",
    id="c", ts="1", nonce="n"
    """
    signer = _signer(client_id, access_token, ext, app, dlg)
    return _header(signer, url, method, content, content_type, _header_value(str(timestamp or int(time.time()))),
                   _nonce() if nonce is None else _header_value(nonce))


class HawkAuth(requests.auth.AuthBase):
    """Sign each request with Hawk (SHA-256): id = clientId, key = accessToken.

    The payload hash covers the body and its Content-Type.  The token never appears in
    the repr.  Instances hold no per-request state, so one may serve several threads.

    >>> HawkAuth("c", "t", ext=make_ext(authorized_scopes=[])).ext
    'eyJhdXRob3JpemVkU2NvcGVzIjpbXX0='
    """

    def __init__(self, client_id: str, access_token: str, ext: str | None = None) -> None:
        self._credentials = {"id": client_id, "key": access_token, "algorithm": "sha256"}
        self._ext = ext
        self._signer: _Signer | None = None  # made by the first call: a bad id fails there, as with mohawk

    # Changing the id or ext drops what was precomputed from them.
    @property
    def client_id(self) -> str:
        return self._credentials["id"]

    @client_id.setter
    def client_id(self, value: str) -> None:
        self._credentials["id"], self._signer = value, None

    @property
    def ext(self) -> str | None:
        return self._ext

    @ext.setter
    def ext(self, value: str | None) -> None:
        self._ext, self._signer = value, None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body
        if body is None:
            body = b""
        elif not isinstance(body, (bytes, str)):
            raise TypeError("HawkAuth signs bytes or str bodies only (no streams)")
        headers = request.headers
        content_type = headers.get("Content-Type", "")
        if isinstance(content_type, bytes):  # sent as is: the server reads it as Latin-1
            content_type = content_type.decode("latin-1")
        signer = self._signer
        if signer is None:
            credentials = self._credentials
            signer = self._signer = _signer(credentials["id"], credentials["key"], self._ext)
        headers["Authorization"] = _header(signer, request.url or "", request.method or "", body, content_type,
                                           str(int(time.time())), _nonce())
        return request

    def __repr__(self) -> str:
        return f"HawkAuth(client_id={self.client_id!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, HawkAuth) and self._credentials == other._credentials
                and self.ext == other.ext)

    __hash__ = None  # type: ignore[assignment]


def bewit(url: str, client_id: str, access_token: str, expires_at: int, ext: str | None = None) -> str:
    """The bewit for a GET of ``url`` valid until ``expires_at`` (seconds since the epoch).

    base64url without padding of ``clientId\\expiry\\mac\\ext`` (mac in standard base64).

    >>> len(bewit("https://tc.example.com/api/queue/v1/task/x", "c", "t", 2000000000)) > 40
    True
    """
    import mohawk.base  # untyped: setup.cfg lets mypy take it as Any
    import mohawk.bewit

    resource = mohawk.base.Resource(
        credentials={"id": client_id, "key": access_token, "algorithm": "sha256"},
        method="GET", url=url, timestamp=str(int(expires_at)), nonce="", ext=ext)
    return mohawk.bewit.get_bewit(resource).rstrip("=")


def sign_url(url: str, client_id: str, access_token: str, expires_in: float = 900,
             ext: str | None = None, now: float | None = None) -> str:
    """``url`` with ``bewit=`` appended (after ``?`` or ``&``), valid ``expires_in`` seconds.

    >>> sign_url("https://tc.example.com/x?a=1", "c", "t").startswith("https://tc.example.com/x?a=1&bewit=")
    True
    """
    expires_at = int((time.time() if now is None else now) + expires_in)
    token = bewit(url, client_id, access_token, expires_at, ext)
    return f"{url}{'&' if '?' in url else '?'}bewit={token}"
