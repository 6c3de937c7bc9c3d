"""Where the broker is, how to connect to it, and what to say when it refuses.

A listener's broker is one URL, a failover list (``url1;url2``, kombu's form, or a list), or
Pulse credentials (``amqps://<user>:<password>@pulse.mozilla.org:5671/``, certificate
verified).  Every URL is shown scrubbed (:mod:`tclisten.redact`).  Errors name host, port,
vhost and user, never the password.

>>> address = BrokerAddress.resolve("amqp://me:secret@n1:5672/v;amqp://me:secret@n2:5672/v")
>>> address.user, address
('me', <BrokerAddress amqp://me:****@n1:5672/v;amqp://me:****@n2:5672/v>)
>>> address.where(1)
"n2:5672 vhost 'v' as user 'me'"
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from kombu import Connection

from .exceptions import BrokerError, ConfigError
from .redact import scrub_url, split_urls

logger = logging.getLogger(__name__)

__all__ = ["BrokerAddress", "PULSE_HOST", "connect", "describe_error", "wait_for_broker"]

PULSE_HOST = "pulse.mozilla.org"
TLS_SCHEMES = ("amqps", "pyamqps")
CONNECT_TIMEOUT = 15.0
# py-amqp's default TCP_USER_TIMEOUT (1 s) drops the connection whenever a busy broker is slow
# to read (seen with a fast publisher under flow control); heartbeats already find dead peers.
TCP_USER_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class BrokerAddress:
    """The broker URLs of a listener (several for failover), the user that names its queues,
    and the TLS context when the URLs use TLS."""

    urls: tuple[str, ...]
    user: str
    ssl: ssl.SSLContext | None = field(default=None, compare=False)

    @classmethod
    def resolve(cls, broker_url: str | Iterable[str] | None = None, *, pulse_username: str | None = None,
                pulse_password: str | None = None, pulse_host: str | None = None,
                environ: Any = None) -> "BrokerAddress | None":
        """The address from a URL or a list of them (or ``TCLISTEN_BROKER_URL``), else from
        Pulse credentials (or ``PULSE_*``); None when neither is given."""
        env = os.environ if environ is None else environ
        given = broker_url if broker_url is not None else env.get("TCLISTEN_BROKER_URL")
        if given:
            urls = tuple(split_urls(given))
            if not urls:
                raise ConfigError("broker_url holds no URL")
            users = {cls._user_of(url) for url in urls}
            if len(users) > 1:
                raise ConfigError(f"the failover URLs {scrub_url(urls)} log in as different users "
                                  f"({', '.join(sorted(users))}); the user names the queue: use one")
            tls = {urllib.parse.urlsplit(url).scheme in TLS_SCHEMES for url in urls}
            if len(tls) > 1:
                raise ConfigError(f"the failover URLs {scrub_url(urls)} mix TLS and plain AMQP; use one")
            return cls(urls, users.pop(), ssl.create_default_context() if tls.pop() else None)
        username = pulse_username or env.get("PULSE_USERNAME")
        password = pulse_password or env.get("PULSE_PASSWORD")
        if not username or not password:
            return None
        host = pulse_host or env.get("PULSE_HOST") or PULSE_HOST
        quote = urllib.parse.quote
        url = f"amqps://{quote(username, safe='')}:{quote(password, safe='')}@{host}:5671/"
        return cls((url,), username, ssl.create_default_context())

    @staticmethod
    def _user_of(url: str) -> str:
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ConfigError(f"broker URL {scrub_url(url)!r} is not a URL: {exc}") from None
        if parts.scheme not in ("amqp", "amqps", "pyamqp", "pyamqps", "memory"):
            raise ConfigError(f"broker URL {scrub_url(url)!r}: scheme {parts.scheme!r} is not AMQP "
                              "(amqp://, amqps://) or memory://")
        return urllib.parse.unquote(parts.username) if parts.username else "guest"

    @property
    def memory(self) -> bool:
        return self.urls[0].startswith("memory:")

    def where(self, index: int = 0) -> str:
        """``host:port vhost '/' as user 'u'`` of one URL: what an error may say of it."""
        parts = urllib.parse.urlsplit(self.urls[index % len(self.urls)])
        vhost = urllib.parse.unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        port = parts.port or (5671 if parts.scheme in TLS_SCHEMES else 5672)
        return f"{parts.hostname or 'localhost'}:{port} vhost {vhost!r} as user {self.user!r}"

    def everywhere(self) -> str:
        return "; ".join(self.where(i) for i in range(len(self.urls)))

    def __repr__(self) -> str:
        return f"<BrokerAddress {scrub_url(self.urls)}>"

    __str__ = __repr__


def connect(address: BrokerAddress, *, heartbeat: int, buffered: bool = True) -> Connection:
    """A new kombu connection (not yet open) to ``address``: publisher confirms on, failover
    across every URL in order, and the buffered frame reader (:mod:`tclisten.transport`)
    unless ``buffered=False``."""
    options: dict[str, Any] = {"confirm_publish": True}
    if address.memory:
        options["polling_interval"] = 0.05  # kombu polls virtual transports: stop promptly
    elif hasattr(socket, "TCP_USER_TIMEOUT"):
        options["socket_settings"] = {socket.TCP_USER_TIMEOUT: TCP_USER_TIMEOUT_MS}
    from .transport import BufferedConnection

    kind = BufferedConnection if buffered else Connection
    urls = list(address.urls)
    return kind(urls if len(urls) > 1 else urls[0], heartbeat=heartbeat, ssl=_tls_options(address),
                connect_timeout=CONNECT_TIMEOUT, transport_options=options, failover_strategy="round-robin")


def _tls_options(address: BrokerAddress) -> dict[str, Any] | bool:
    """py-amqp's TLS options: it ignores an SSLContext (it builds its own, checking the
    certificate chain but not the host name), so give it the verification explicitly.
    With several URLs the host name of each is not known here: the chain is still checked."""
    if address.ssl is None:
        return False
    hosts = {urllib.parse.urlsplit(url).hostname for url in address.urls}
    tls: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
    if len(hosts) == 1:
        tls["server_hostname"] = hosts.pop()
    return tls


def describe_error(exc: BaseException, address: BrokerAddress, index: int | None = None) -> str:
    """One line for a broker error: what happened and where, never a password."""
    text = str(exc).strip() or type(exc).__name__
    for url in address.urls:  # a library may have put the URL in its text
        text = text.replace(url, scrub_url(url))
    where = address.where(index) if index is not None else address.everywhere()
    if "ACCESS_REFUSED" in text or type(exc).__name__ == "AccessRefused":
        return f"the broker at {where} refused the login (check the user and password): {text}"
    return f"{type(exc).__name__}: {text} ({where})"


def refused_login(exc: BaseException) -> bool:
    """A refused login is configuration, not an outage: never retried for ever."""
    return type(exc).__name__ == "AccessRefused" or "ACCESS_REFUSED" in str(exc)


def wait_for_broker(address: BrokerAddress, *, heartbeat: int, limit: float | None,
                    sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once the broker accepts a login; retry with capped backoff (1, 2, 4 ... 30 s),
    logging each attempt, for at most ``limit`` seconds (None: for ever; 0: one try).
    A refused login fails at once.  Raises :class:`BrokerError` naming where it tried."""
    started = time.monotonic()
    delay, attempt = 1.0, 0
    while True:
        attempt += 1
        conn = connect(address, heartbeat=heartbeat)
        index = attempt - 1
        try:
            conn.ensure_connection(max_retries=0, reraise_as_library_errors=False)  # one try, no sleep
            return
        except Exception as exc:  # noqa: BLE001 - every failure is described, then retried or raised
            if refused_login(exc):
                raise BrokerError(describe_error(exc, address, index)) from None
            waited = time.monotonic() - started
            if limit is not None and waited + delay > limit:
                raise BrokerError(f"no broker after {waited:.0f} s and {attempt} attempt(s): "
                                  f"{describe_error(exc, address, index)}") from None
            logger.warning("broker not reachable (attempt %d): %s; next try in %.0f s", attempt,
                           describe_error(exc, address, index), delay)
        finally:
            conn.release()
        sleep(delay)
        delay = min(delay * 2, 30.0)
