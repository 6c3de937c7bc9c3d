"""Buffered frame reads against the real broker: bodies whole and in order (one of 1 MiB, over
frame_max), acks, heartbeats on an idle connection, a lost connection, far fewer reads than
frames, and the same over TLS through a loopback TLS proxy in front of the broker."""

from __future__ import annotations

import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import kombu
import pytest

from tclisten.transport import BufferedConnection, BufferedSSLTransport, BufferedTCPTransport

BIG = bytes(range(256)) * 4096  # 1 MiB, eight frames at the default frame_max of 128 KiB


@pytest.fixture
def queue(broker_url: str) -> Iterator[kombu.Queue]:
    """A durable queue of the test's own, deleted afterwards."""
    q = kombu.Queue(f"tclisten-test-transport-{uuid.uuid4().hex}", durable=True, auto_delete=False)
    with kombu.Connection(broker_url) as conn:
        q(conn.default_channel).declare()
        yield q
        q(conn.default_channel).delete()


def publish(broker_url: str, queue: kombu.Queue, bodies: list[bytes]) -> None:
    """Persistent messages, confirmed, so they are all in the queue before anyone consumes."""
    with kombu.Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for body in bodies:
            producer.publish(body, routing_key=queue.name, delivery_mode=2, serializer=None,
                             content_type="application/octet-stream")


def consume(conn: kombu.Connection, queue: kombu.Queue, count: int) -> list[bytes]:
    """``count`` bodies, each acked after it arrived."""
    bodies: list[bytes] = []

    def on_message(body: bytes, message: Any) -> None:
        bodies.append(body)
        message.ack()

    with conn.Consumer([queue], callbacks=[on_message], accept=None, prefetch_count=100):
        while len(bodies) < count:
            conn.drain_events(timeout=10)
    return bodies


def messages_left(broker_url: str, queue: kombu.Queue) -> int:
    with kombu.Connection(broker_url) as conn:
        return conn.default_channel.queue_declare(queue.name, passive=True).message_count


def count_reads(transport: Any, attribute: str) -> Callable[[], int]:
    """Count the transport's socket reads (a strace of recvfrom, without strace)."""
    calls = 0
    read = getattr(transport, attribute)

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return read(*args)

    setattr(transport, attribute, counting)
    return lambda: calls


def bodies_for(n: int) -> list[bytes]:
    bodies = [b'{"taskId": "%05d"}' % i for i in range(n)]
    bodies[n // 2] = BIG
    return bodies


def test_bodies_arrive_whole_in_order_and_acked(broker_url: str, queue: kombu.Queue) -> None:
    sent = bodies_for(300)
    publish(broker_url, queue, sent)
    with BufferedConnection(broker_url) as conn:
        assert type(conn.connection.transport) is BufferedTCPTransport
        assert conn.transport.driver_type == "amqp"
        assert consume(conn, queue, len(sent)) == sent
    assert messages_left(broker_url, queue) == 0


def test_far_fewer_reads_than_frames(broker_url: str, queue: kombu.Queue) -> None:
    sent = [b"m%d" % i for i in range(1000)]
    reads, frames = {}, {}
    for name, connection_cls, attribute in (("buffered", BufferedConnection, "_recv_into"),
                                            ("py-amqp", kombu.Connection, "_quick_recv")):
        publish(broker_url, queue, sent)
        with connection_cls(broker_url) as conn:
            conn.connect()
            calls = count_reads(conn.connection.transport, attribute)
            frames_before = conn.connection.bytes_recv  # py-amqp counts frames here
            assert consume(conn, queue, len(sent)) == sent
            frames[name] = conn.connection.bytes_recv - frames_before
            reads[name] = calls()
    assert frames["buffered"] >= 3 * len(sent)
    assert reads["py-amqp"] >= 3 * frames["py-amqp"]
    assert reads["buffered"] * 20 < frames["buffered"], (reads, frames)


def test_idle_connection_stays_alive_on_heartbeats(broker_url: str, queue: kombu.Queue) -> None:
    with BufferedConnection(broker_url, heartbeat=2) as conn:
        conn.connect()
        assert conn.connection.heartbeat == 2
        conn.connection.sock.settimeout(0.5)  # as tclisten's consumer does, once per change
        frames_before = conn.connection.bytes_recv
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=0.5)
            except socket.timeout:
                pass
            conn.heartbeat_check()
        assert conn.connection.bytes_recv - frames_before >= 3  # the broker's heartbeats
        publish(broker_url, queue, [b"still here"])
        assert consume(conn, queue, 1) == [b"still here"]


def test_lost_connection_is_a_connection_error_and_kombu_reconnects(broker_url: str, queue: kombu.Queue) -> None:
    with BufferedConnection(broker_url) as conn:
        conn.connect()
        conn.connection.sock.shutdown(socket.SHUT_RDWR)
        with pytest.raises(conn.connection_errors):
            conn.drain_events(timeout=2)
        assert not conn.connected
        conn.ensure_connection(max_retries=3)
        assert type(conn.connection.transport) is BufferedTCPTransport
        publish(broker_url, queue, [b"after the reconnect"])
        assert consume(conn, queue, 1) == [b"after the reconnect"]


# -- TLS: a loopback TLS proxy in front of the broker (the broker itself is untouched) ---

@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    cert = tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(cert), "-out", str(cert)], check=True, capture_output=True)
    return cert


def _pump(client: ssl.SSLSocket, broker: socket.socket) -> None:
    """Relay both ways in one thread, so the TLS socket is never used by two at once."""
    with client, broker:
        while True:
            readable = [client] if client.pending() else select.select([client, broker], [], [], 30)[0]
            if not readable:
                return
            for source, target in ((client, broker), (broker, client)):
                if source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    target.sendall(data)


@pytest.fixture
def tls_url(broker_url: str, certificate: Path) -> Iterator[str]:
    """amqps:// on a loopback port, relayed to the broker."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:  # the fixture closed the listener
                return
            client = context.wrap_socket(raw, server_side=True)
            client.settimeout(30)
            broker = socket.create_connection(("127.0.0.1", 5672))
            threading.Thread(target=_pump, args=(client, broker), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"amqps://guest:guest@127.0.0.1:{listener.getsockname()[1]}//"
    listener.close()


def test_tls(broker_url: str, tls_url: str, certificate: Path, queue: kombu.Queue) -> None:
    sent = bodies_for(300)
    publish(broker_url, queue, sent)
    tls_options = {"ca_certs": str(certificate), "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "127.0.0.1"}
    with BufferedConnection(tls_url, ssl=tls_options) as conn:
        conn.connect()
        transport = conn.connection.transport
        assert type(transport) is BufferedSSLTransport and isinstance(transport.sock, ssl.SSLSocket)
        calls = count_reads(transport, "_recv_into")
        frames_before = conn.connection.bytes_recv
        assert consume(conn, queue, len(sent)) == sent
        assert calls() * 3 < conn.connection.bytes_recv - frames_before  # at most 16 KiB a TLS record
    assert messages_left(broker_url, queue) == 0
