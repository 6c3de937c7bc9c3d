"""A tiny Hawk-verifying ``GET /api/queue/v1/task/<taskId>`` server for the REST benchmark.

Used when ``tclisten.testing.fakeserver.FakeTaskcluster`` cannot be imported.  HTTP/1.1 keep-alive,
threaded, every request verified with ``mohawk.Receiver`` (SHA-256, 60 s skew, nonces not
tracked), TCP_NODELAY, answering a fixed task definition.

>>> server = serve(0)
>>> server.server_address[0]
'127.0.0.1'
>>> server.server_close()
"""

from __future__ import annotations

import json
import logging
import re
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import mohawk
import mohawk.exc

logger = logging.getLogger(__name__)

CLIENT_ID = "bench-client"
ACCESS_TOKEN = "bench-token-not-a-secret"
TASK = {
    "provisionerId": "bench-prov-a", "workerType": "t-linux-large", "schedulerId": "level-3",
    "taskGroupId": "BenchGroupGGGGGGGGGGGG", "routes": ["index.bench.latest"], "priority": "lowest",
    "retries": 5, "created": "2026-06-01T17:28:20.788Z", "deadline": "2026-06-02T17:28:20.788Z",
    "expires": "2027-06-01T17:28:20.788Z", "scopes": [], "dependencies": [], "requires": "all-completed",
    "payload": {"image": "ubuntu:22.04", "command": ["true"], "maxRunTime": 600},
    "metadata": {"name": "bench", "description": "a benchmark task", "owner": "bench@example.com",
                 "source": "https://example.com/bench"},
    "tags": {}, "extra": {},
}
_BODY = json.dumps(TASK).encode()
_ROUTE = re.compile(r"^/api/queue/v1/task/([A-Za-z0-9_-]{22})$")


def _lookup(sender_id: str) -> dict[str, Any]:
    if sender_id != CLIENT_ID:
        raise mohawk.exc.CredentialsLookupError(f"unknown client {sender_id}")
    return {"id": CLIENT_ID, "key": ACCESS_TOKEN, "algorithm": "sha256"}


def _seen_nonce(sender_id: str, nonce: str, timestamp: str) -> bool:
    """Nonces are not tracked (a benchmark replays nothing); saying so keeps mohawk quiet."""
    return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Like Node (Taskcluster's servers), no Nagle: a keep-alive client must not wait for
        # a delayed ACK between the header and body segments.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no per-request lines
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        host = self.headers.get("Host", "127.0.0.1")
        match = _ROUTE.match(self.path)
        if match is None:
            return self._send(404, b'{"code":"ResourceNotFound"}')
        try:
            mohawk.Receiver(_lookup, self.headers.get("Authorization", ""), f"http://{host}{self.path}",
                            "GET", content=b"", content_type=self.headers.get("Content-Type", ""),
                            seen_nonce=_seen_nonce)
        except mohawk.exc.HawkFail as exc:
            return self._send(401, json.dumps({"code": "AuthenticationFailed", "message": str(exc)}).encode())
        self._send(200, _BODY)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self._headers_buffer.append(b"\r\n" + body)  # headers and body in one segment
        self.flush_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def serve(port: int = 0) -> ThreadingHTTPServer:
    """A bound (not yet serving) server on 127.0.0.1:``port``."""
    return _Server(("127.0.0.1", port), _Handler)
