"""How the fake Taskcluster decides who calls and what they may do, as the auth service does.

:class:`_Authenticator` checks a request's Hawk ``Authorization`` header or bewit with mohawk,
the certificate of temporary credentials (signature, dates, issuer, derived key) and
``authorizedScopes``; :func:`_derived_params` adds the scope-expression parameters that a
real service computes from the request.  Used by :mod:`tclisten.testing.fakeserver` only.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from typing import Any, Iterable, Mapping

import mohawk
import mohawk.bewit
import mohawk.exc
import mohawk.util

from ..taskcluster import utils
from ..taskcluster.credentials import parse_ext, verify_certificate
from ..exceptions import ConfigError, CredentialsError


_PRIORITIES = ["highest", "very-high", "high", "medium", "low", "very-low", "lowest"]


def _derived_params(service: str, function: str, args: Mapping[str, str], body: Any) -> dict[str, Any]:
    """Parameters a real service computes before authorizing (what the fake knows of them)."""
    payload = body if isinstance(body, dict) else {}
    if service == "queue" and function == "createTask":
        provisioner, _, worker_type = str(payload.get("taskQueueId", "/")).partition("/")
        priority = payload.get("priority", "lowest")
        priority = "lowest" if priority == "normal" else priority
        index = _PRIORITIES.index(priority) if priority in _PRIORITIES else len(_PRIORITIES) - 1
        return {"scopes": payload.get("scopes", []), "routes": payload.get("routes", []),
                "projectId": payload.get("projectId", "none"),
                "schedulerId": payload.get("schedulerId", "-"),
                "provisionerId": payload.get("provisionerId", provisioner),
                "workerType": payload.get("workerType", worker_type),
                "priorities": _PRIORITIES[:index + 1]}
    if service == "queue" and function in ("getArtifact", "getLatestArtifact", "artifact", "latestArtifact"):
        name = args.get("name", "")
        return {"names": [] if name.startswith("public/") else [name]}
    if service == "queue" and function == "declareWorker":
        return {"properties": sorted(payload)}
    if service == "auth" and "level" in args:
        return {"levelIsReadOnly": args["level"] == "read-only"}
    if service == "auth" and function in ("updateClient", "updateRole"):
        return {"scopesAdded": payload.get("scopes", [])}
    return {}


_UNRESOLVED = "\x00unresolved\x00"


def _drop_unresolved(expr: Any) -> Any:
    """Treat parts naming parameters the fake could not know as satisfied."""
    if isinstance(expr, str):
        return None if _UNRESOLVED in expr else expr
    (op, items), = expr.items()
    kept = [_drop_unresolved(item) for item in items]
    if op == "AnyOf" and any(item is None for item in kept):
        return None
    return {op: [item for item in kept if item is not None]}


# --------------------------------------------------------------------------- Hawk


class _AuthError(Exception):
    """Why a request's credentials were refused (the 401 message; never shows a token)."""


_BEWIT = re.compile(r"(^|&)bewit=([^&]*)")


def _strip_bewit(url: str) -> tuple[str | None, str]:
    """Split ``bewit=`` out of a URL's query, keeping the other parameters in order."""
    base, sep, query = url.partition("?")
    found = _BEWIT.search(query)
    if not sep or not found:
        return None, url
    rest = "&".join(p for p in (query[:found.start()], query[found.end():].lstrip("&")) if p)
    return found.group(2), base + ("?" + rest if rest else "")


class _Authenticator:
    """Checks Hawk headers and bewits against known clients, as Taskcluster's auth does."""

    def __init__(self, clients: Mapping[str, Mapping[str, Any]], roles: Mapping[str, Iterable[str]], *,
                 anonymous: Iterable[str], clock_skew: float, verify: bool) -> None:
        self.roles = {k: utils.scope_list(v, f"scopes of role {k!r}") for k, v in roles.items()}
        self.anonymous = utils.scope_list(anonymous, "anonymous_scopes")
        self.clients: dict[str, tuple[str, list[str]]] = {}
        for client_id, spec in clients.items():
            self.add_client(client_id, spec)
        self.clock_skew = clock_skew
        self.verify = verify
        self._nonces: dict[tuple, float] = {}
        self._nonce_lock = threading.Lock()

    def add_client(self, client_id: str, spec: Mapping[str, Any]) -> None:
        token = spec.get("accessToken") if isinstance(spec, Mapping) else None
        if not isinstance(client_id, str) or not client_id or not isinstance(token, str):
            raise ConfigError(f"client {client_id!r} needs a clientId and an 'accessToken' string")
        unknown = set(spec) - {"accessToken", "scopes"}
        if unknown:
            raise ConfigError(f"client {client_id!r}: unknown keys {sorted(unknown)}")
        scopes = utils.scope_list(spec.get("scopes", ()), f"scopes of client {client_id!r}")
        clients = dict(self.clients)  # replaced whole: readers never see a half-built dict
        clients[client_id] = (token, utils.expand_roles(scopes, self.roles))
        self.clients = clients

    def effective(self, scopes: Iterable[str]) -> list[str]:
        """Like Taskcluster, every caller also holds the anonymous scopes; roles expanded."""
        merged = list(scopes)
        merged += [s for s in self.anonymous if s not in merged]
        return utils.expand_roles(merged, self.roles)

    def _issuer(self, client_id: str) -> tuple[str, list[str]]:
        return self.clients[client_id]

    def _resolve(self, client_id: str, ext: str | None) -> tuple[dict, list[str]]:
        """The Hawk credentials (key) and scopes of a request's id and ext."""
        try:
            data = parse_ext(ext)
            if "certificate" in data:
                key, scopes = verify_certificate(data["certificate"], client_id, self._issuer)
            elif client_id in self.clients:
                key, scopes = self.clients[client_id]
            else:
                raise _AuthError(f"unknown clientId {client_id!r}")
            if "authorizedScopes" in data:
                wanted = data["authorizedScopes"]
                if not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
                    raise _AuthError("ext.authorizedScopes must be a list of strings")
                held = self.effective(scopes)
                lacking = [s for s in wanted if not utils.scope_satisfied(held, s)]
                if lacking:
                    raise _AuthError(f"ext.authorizedScopes oversteps your scopes: {lacking}")
                scopes = wanted
        except CredentialsError as exc:
            raise _AuthError(str(exc)) from None
        return {"id": client_id, "key": key, "algorithm": "sha256"}, utils.expand_roles(scopes, self.roles)

    def _seen_nonce(self, client_id: str, nonce: str, ts: str) -> bool:
        now = time.time()
        with self._nonce_lock:
            if len(self._nonces) > 20000:
                kept = [(k, t) for k, t in self._nonces.items() if t > now]
                self._nonces = dict(kept[-10000:])  # oldest first: keep the newest
            key = (client_id, nonce, ts)
            if key in self._nonces:
                return True
            self._nonces[key] = now + 2 * self.clock_skew
            return False

    def authenticate(self, method: str, url: str, headers: Any, body: bytes) -> tuple[str, list[str], str] | None:
        """``(clientId, scopes, "hawk" | "bewit")``, or None for an anonymous request."""
        header = headers.get("Authorization")
        bewit, stripped = _strip_bewit(url)
        if header:
            return self._header(method, url, header, headers, body)
        if bewit is not None:
            return self._bewit(method, bewit, stripped)
        return None

    def _header(self, method: str, url: str, header: str, headers: Any, body: bytes) -> tuple:
        # only id and ext are needed to find the key; mohawk.Receiver parses it fully
        scheme, _, attributes = header.partition(" ")
        parsed = {m.group("key"): m.group("value") for m in mohawk.util.HAWK_HEADER_RE.finditer(attributes)}
        client_id = parsed.get("id", "")
        if scheme.lower() != "hawk" or not client_id:
            raise _AuthError("malformed Hawk Authorization header")
        if not self.verify:
            return client_id, ["*"], "hawk"
        credentials, scopes = self._resolve(client_id, parsed.get("ext"))
        try:
            mohawk.Receiver(lambda _id: credentials, header, url, method, content=body,
                            content_type=headers.get("Content-Type", ""), seen_nonce=self._seen_nonce,
                            accept_untrusted_content=True, timestamp_skew_in_seconds=self.clock_skew)
        except mohawk.exc.MacMismatch:
            raise _AuthError("Bad mac: the request was not signed with this client's accessToken") from None
        except mohawk.exc.MisComputedContentHash:
            raise _AuthError("Bad payload hash: the body does not match the signed hash") from None
        except mohawk.exc.TokenExpired:
            raise _AuthError("Stale timestamp: the Hawk ts is outside the allowed clock skew") from None
        except mohawk.exc.AlreadyProcessed:
            raise _AuthError("Replayed request: this Hawk nonce was already used") from None
        except mohawk.exc.HawkFail as exc:
            raise _AuthError(f"Hawk verification failed ({type(exc).__name__})") from None
        return client_id, scopes, "hawk"

    def _bewit(self, method: str, bewit: str, stripped: str) -> tuple:
        if method not in ("GET", "HEAD"):
            raise _AuthError("a bewit is only accepted on GET requests")
        try:
            raw = urllib.parse.unquote(bewit)
            raw = raw.replace("-", "+").replace("_", "/")
            normal = raw + "=" * (-len(raw) % 4)
            parsed = mohawk.bewit.parse_bewit(normal)
        except (ValueError, UnicodeDecodeError, mohawk.exc.HawkFail):
            raise _AuthError("malformed bewit") from None
        if not self.verify:
            return parsed.id, ["*"], "bewit"
        credentials, scopes = self._resolve(parsed.id, parsed.ext or None)
        signed = stripped + ("&" if "?" in stripped else "?") + "bewit=" + normal
        try:
            mohawk.bewit.check_bewit(signed, lambda _id: credentials)
        except mohawk.exc.TokenExpired:
            raise _AuthError("the bewit has expired") from None
        except mohawk.exc.MacMismatch:
            raise _AuthError("Bad mac: the bewit was not signed with this client's accessToken") from None
        except mohawk.exc.HawkFail as exc:
            raise _AuthError(f"bewit verification failed ({type(exc).__name__})") from None
        return parsed.id, scopes, "bewit"


# --------------------------------------------------------------------------- the server
