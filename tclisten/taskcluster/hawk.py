"""Hawk request signing and bewits (signed URLs) for Taskcluster, built on mohawk.

:class:`HawkAuth` is a ``requests`` auth hook: requests calls it for every attempt, so each
retry carries a fresh timestamp and nonce.  The ``ext`` field carries what narrows or proves
the credentials (the certificate of temporary credentials, ``authorizedScopes``) as
base64 of compact JSON with ``+`` -> ``-`` and ``/`` -> ``_``.

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

import time

import mohawk  # untyped: setup.cfg lets mypy take it as Any
import mohawk.base
import mohawk.bewit
import requests.auth

from .credentials import make_ext  # the ext format lives with the credentials it carries

__all__ = ["HawkAuth", "bewit", "make_ext", "sign_url"]


class HawkAuth(requests.auth.AuthBase):
    """Sign each request with Hawk (SHA-256): id = clientId, key = accessToken.

    The payload hash covers the body and its Content-Type.  The token never appears in
    the repr.  Instances hold no per-request state, so one may serve several threads.

    >>> HawkAuth("c", "t", ext=make_ext(authorized_scopes=[])).ext
    'eyJhdXRob3JpemVkU2NvcGVzIjpbXX0='
    """

    def __init__(self, client_id: str, access_token: str, ext: str | None = None) -> None:
        self.client_id = client_id
        self.ext = ext
        self._credentials = {"id": client_id, "key": access_token, "algorithm": "sha256"}

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body
        content_type = request.headers.get("Content-Type", "")
        if body is None:
            body = b""
        elif not isinstance(body, (bytes, str)):
            raise TypeError("HawkAuth signs bytes or str bodies only (no streams)")
        sender = mohawk.Sender(self._credentials, request.url, request.method,
                               content=body, content_type=content_type, ext=self.ext)
        request.headers["Authorization"] = sender.request_header
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
