"""A private RabbitMQ node with a TLS listener, for the TLS benchmark: the bench makes its own
CA and a server certificate for ``localhost`` / ``127.0.0.1`` signed by it (openssl), starts a
:class:`tests/support/nodes.Node` with ``listeners.ssl.default`` on a free port next to its
plain listener, and removes everything afterwards.  The machine's own broker is not touched.

Clients verify the certificate, host name included: tclisten is given
``amqps://guest:guest@localhost:PORT//`` and finds the CA through ``SSL_CERT_FILE`` (py-amqp
loads the default verify paths when it has no ``ca_certs``); the others get ``ca_certs``.

    with TlsNode() as node:
        node.url        # amqp://guest:guest@127.0.0.1:P1//   (publishing, declaring, counting)
        node.tls_url    # amqps://guest:guest@localhost:P2//  (consuming)
        node.ca         # the CA certificate (PEM)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import common

sys.path.insert(0, str(common.ROOT / "tests"))


def unavailable() -> str | None:
    """Why no TLS node can run here, or None."""
    if not shutil.which("openssl"):
        return "openssl is not installed"
    try:
        from support.nodes import rabbitmq_available
    except ImportError as exc:
        return f"tests/support/nodes.py cannot be imported ({exc})"
    return rabbitmq_available()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, and a server key and certificate for localhost and 127.0.0.1 signed by it."""
    paths = {name: folder / f"{name}.pem" for name in ("ca", "ca-key", "server", "server-key", "server-csr")}
    ext = folder / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tclisten bench CA",
            "-keyout", str(paths["ca-key"]), "-out", str(paths["ca"]))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", str(paths["server-key"]),
            "-out", str(paths["server-csr"]))
    openssl("x509", "-req", "-in", str(paths["server-csr"]), "-CA", str(paths["ca"]), "-CAkey", str(paths["ca-key"]),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(paths["server"]))
    for path in folder.iterdir():
        path.chmod(0o644)  # the node runs as the rabbitmq user
    folder.chmod(0o755)
    return paths


class TlsNode:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tclisten-bench-tls-"))
        self.tls_port = _free_port()
        self.node: Any = None
        self.ca = ""

    def start(self) -> "TlsNode":
        from support.nodes import Node

        paths = make_certificates(self.folder)
        self.ca = str(paths["ca"])
        self.node = Node(config=[
            f"listeners.ssl.default = 127.0.0.1:{self.tls_port}",
            f"ssl_options.cacertfile = {paths['ca']}",
            f"ssl_options.certfile = {paths['server']}",
            f"ssl_options.keyfile = {paths['server-key']}",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
        ])
        self.node.start()
        return self

    @property
    def beam_pid(self) -> int | None:
        return self.node.beam_pid() if self.node is not None else None

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def tls_url(self) -> str:
        return f"amqps://guest:guest@localhost:{self.tls_port}//"

    def destroy(self) -> None:
        try:
            if self.node is not None:
                self.node.destroy()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "TlsNode":
        try:
            return self.start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.destroy()
