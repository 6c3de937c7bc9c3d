"""Buffered frame reads against scripted sockets, compared with py-amqp's own reader fed the
same bytes: every split point, timeouts and EOF mid-frame, bodies over frame_max, TLS errors."""

from __future__ import annotations

import doctest
import errno
import socket
import ssl
from types import SimpleNamespace
from typing import Any, Iterable, Union

import amqp.transport
import kombu
import pytest
from amqp import spec
from amqp.exceptions import UnexpectedFrame
from amqp.method_framing import frame_handler, frame_writer
from amqp.serialization import dumps
from hypothesis import given, settings
from hypothesis import strategies as st

import tclisten.transport
from tclisten.transport import (
    BufferedConnection,
    BufferedSSLTransport,
    BufferedTCPTransport,
    FrameBuffer,
    KombuSSLTransport,
    KombuTransport,
)

Step = Union[bytes, BaseException]
HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"


# -- the bytes a broker sends ------------------------------------------------------------

def deliveries(*bodies: bytes, frame_max: int = 131072, channel: int = 1) -> bytes:
    """basic.deliver frames (method, content header, body frames) written by py-amqp's own
    frame writer, which splits bodies over frame_max exactly as a broker does."""
    written: list[bytes] = []
    conn = SimpleNamespace(frame_max=frame_max, bytes_sent=0)
    write = frame_writer(conn, SimpleNamespace(write=lambda data: written.append(bytes(data))))
    for tag, body in enumerate(bodies, 1):
        args = dumps("sLbss", ("ctag", tag, False, "exchange/tc", "route.key"))
        write(1, channel, spec.Basic.Deliver, args, amqp.Message(body, content_type="application/json"))
    return b"".join(written)


def split_frames(stream: bytes) -> list[tuple[int, int, bytes]]:
    """The frames in a stream, parsed the obvious way (the expected answer)."""
    frames, at = [], 0
    while at < len(stream):
        size = int.from_bytes(stream[at + 3:at + 7], "big")
        frames.append((stream[at], int.from_bytes(stream[at + 1:at + 3], "big"), stream[at + 7:at + 7 + size]))
        at += size + 8
    return frames


def frames_before(stream: bytes, cut: int) -> list[tuple[int, int, bytes]]:
    """The frames that arrived whole when the stream stops after ``cut`` bytes."""
    frames, at = [], 0
    for frame in split_frames(stream):
        at += len(frame[2]) + 8
        if at > cut:
            break
        frames.append(frame)
    return frames


SEQUENCE = deliveries(b'{"status": "completed"}', b"") + HEARTBEAT + deliveries(b"x" * 300, channel=2)


# -- scripted sockets --------------------------------------------------------------------

class ScriptedSocket:
    """Returns scripted chunks like a kernel receive buffer (a chunk larger than the caller's
    buffer is handed out over several calls), raises scripted exceptions, then EOF."""

    max_chunk: int | None = None  # TLS: at most one record per call

    def __init__(self, script: Iterable[Step]) -> None:
        self.script = list(script)
        self.reads = 0
        self.timeouts: list[float | None] = []

    def _next(self, limit: int) -> bytes:
        self.reads += 1
        if not self.script:
            return b""
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        limit = min(limit, self.max_chunk or limit)
        if len(step) > limit:
            self.script.insert(0, step[limit:])
        return step[:limit]

    def recv_into(self, buf: memoryview, nbytes: int = 0) -> int:
        data = self._next(nbytes or len(buf))
        buf[:len(data)] = data
        return len(data)

    def recv(self, n: int) -> bytes:
        return self._next(n)

    read = recv  # SSLSocket.read, what py-amqp's SSL transport uses

    def sendall(self, data: bytes) -> None:
        pass

    def settimeout(self, timeout: float | None) -> None:
        self.timeouts.append(timeout)

    def gettimeout(self) -> float | None:
        return self.timeouts[-1] if self.timeouts else None

    def do_handshake(self) -> None:
        pass

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 40000)

    getpeername = getsockname


class ScriptedSSLSocket(ScriptedSocket):
    max_chunk = 16384


def tcp(transport_cls: type, script: Iterable[Step]) -> Any:
    transport = transport_cls("127.0.0.1:5672")
    transport.sock = ScriptedSocket(script)
    transport._setup_transport()
    transport.connected = True
    return transport


def tls(transport_cls: type, script: Iterable[Step]) -> Any:
    transport = transport_cls("127.0.0.1:5671", ssl=True)
    transport.sock = ScriptedSSLSocket(script)
    transport._wrap_socket = lambda sock, **opts: sock  # the handshake is not what is tested
    transport._setup_transport()
    transport.connected = True
    return transport


def read_all(transport: Any) -> tuple[list[tuple[int, int, bytes]], int]:
    """Every frame until EOF, riding out timeouts the way a consumer loop does."""
    frames, timeouts = [], 0
    while True:
        try:
            frames.append(transport.read_frame())
        except socket.timeout:
            timeouts += 1
        except OSError as exc:
            assert str(exc) == "Server unexpectedly closed connection"
            return frames, timeouts


def both(script: list[Step], make: Any = tcp) -> list[tuple[int, int, bytes]]:
    """Read a script with the buffered transport and with py-amqp's; they must agree."""
    buffered_cls, reference_cls = ((BufferedTCPTransport, amqp.transport.TCPTransport) if make is tcp
                                   else (BufferedSSLTransport, amqp.transport.SSLTransport))
    frames, timeouts = read_all(make(buffered_cls, list(script)))
    assert (frames, timeouts) == read_all(make(reference_cls, list(script)))
    return frames


def chunks(data: bytes, *cuts: int) -> list[bytes]:
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


# -- splits, timeouts, EOF ---------------------------------------------------------------

def test_sequence_split_at_every_byte_boundary() -> None:
    expected = split_frames(SEQUENCE)
    assert [f[0] for f in expected] == [1, 2, 3, 1, 2, 8, 1, 2, 3]  # the empty body has no body frame
    for cut in range(1, len(SEQUENCE)):
        assert both(chunks(SEQUENCE, cut)) == expected


def test_one_byte_at_a_time() -> None:
    assert both([SEQUENCE[i:i + 1] for i in range(len(SEQUENCE))]) == split_frames(SEQUENCE)


def test_timeout_mid_frame_loses_and_repeats_nothing() -> None:
    expected = split_frames(SEQUENCE)
    for cut in range(1, len(SEQUENCE)):
        transport = tcp(BufferedTCPTransport, [SEQUENCE[:cut], socket.timeout(), SEQUENCE[cut:]])
        frames = []
        with pytest.raises(socket.timeout):
            while True:
                frames.append(transport.read_frame())
        assert transport.connected
        frames += [transport.read_frame() for _ in range(len(expected) - len(frames))]
        assert frames == expected


def test_frames_already_buffered_are_read_without_touching_the_socket() -> None:
    transport = tcp(BufferedTCPTransport, [SEQUENCE, socket.timeout()])
    frames = [transport.read_frame() for _ in split_frames(SEQUENCE)]
    assert frames == split_frames(SEQUENCE) and transport.sock.reads == 1
    with pytest.raises(socket.timeout):
        transport.read_frame()


def test_many_frames_in_one_chunk_take_one_read() -> None:
    stream = deliveries(*[b"m%d" % i for i in range(500)]) + HEARTBEAT * 100
    assert len(stream) < 64 * 1024
    transport = tcp(BufferedTCPTransport, [stream])
    assert read_all(transport) == (split_frames(stream), 0)
    assert transport.sock.reads == 2  # the data, then EOF


def test_bad_frame_end_raises_unexpected_frame_like_py_amqp() -> None:
    broken = HEARTBEAT[:-1] + b"\x00"
    errors = []
    for cls in (BufferedTCPTransport, amqp.transport.TCPTransport):
        with pytest.raises(UnexpectedFrame) as caught:
            tcp(cls, [broken]).read_frame()
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "0x00" in errors[0]


@pytest.mark.parametrize("cut", [0, 3, 7, 20, 70, len(SEQUENCE) - 1])
def test_eof_mid_frame_is_a_connection_error(cut: int) -> None:
    transport = tcp(BufferedTCPTransport, [SEQUENCE[:cut]] if cut else [])
    assert read_all(transport) == (frames_before(SEQUENCE, cut), 0)
    assert not transport.connected
    with pytest.raises(kombu.Connection("amqp://").connection_errors):
        transport.read_frame()


def test_connection_reset_mid_frame_marks_the_transport_disconnected() -> None:
    reset = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    transport = tcp(BufferedTCPTransport, [SEQUENCE[:20], reset])
    with pytest.raises(ConnectionResetError):
        while True:
            transport.read_frame()
    assert not transport.connected


@pytest.mark.parametrize("cut, initial", [(0, True), (3, True), (7, False), (12, False)])
@pytest.mark.parametrize("raise_on_initial_eintr", [True, False])
def test_eagain_is_a_timeout_before_a_frame_and_retried_inside_one(
        cut: int, initial: bool, raise_on_initial_eintr: bool) -> None:
    script = [*chunks(SEQUENCE, cut)[:1 if cut else 0], BlockingIOError(errno.EAGAIN, "again"), SEQUENCE[cut:]]
    outcomes = []
    for cls in (BufferedTCPTransport, amqp.transport.TCPTransport):
        transport = tcp(cls, script)
        transport.raise_on_initial_eintr = raise_on_initial_eintr
        outcomes.append(read_all(transport))
    assert outcomes[0] == outcomes[1] == (split_frames(SEQUENCE), int(initial and raise_on_initial_eintr))


# -- bodies over frame_max, buffer growth ------------------------------------------------

def received_bodies(frames: list[tuple[int, int, bytes]]) -> list[bytes]:
    """Frames assembled into messages by py-amqp's own frame handler."""
    bodies: list[bytes] = []
    on_frame = frame_handler(SimpleNamespace(bytes_recv=0), lambda ch, sig, args, msg: bodies.append(msg.body))
    for frame in frames:
        on_frame(frame)
    return bodies


@pytest.mark.parametrize("frame_max", [4096, 131072])
@pytest.mark.parametrize("chunk", [1400, 16384, 1 << 22])
def test_bodies_larger_than_frame_max(frame_max: int, chunk: int) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    stream = deliveries(b"small", big, b"after", frame_max=frame_max)
    frames = both([stream[i:i + chunk] for i in range(0, len(stream), chunk)])
    assert sum(f[0] == 3 for f in frames) == 2 + -(-len(big) // (frame_max - 8))
    assert received_bodies(frames) == [b"small", big, b"after"]


def test_buffer_grows_to_the_largest_frame_and_no_further() -> None:
    transport = tcp(BufferedTCPTransport, [deliveries(b"b" * 300_000)])
    read_all(transport)
    assert transport._frames.capacity == 131072  # frame_max: the largest frame the broker may send


def test_a_garbled_size_costs_memory_only_as_bytes_arrive() -> None:
    frames = FrameBuffer()
    for _ in range(3):
        space = frames.writable()
        space[:] = b"\x03\x00\x01\xff\xff\xff\xf0".ljust(len(space), b"\x00")[:len(space)]
        frames.received(len(space))
        assert frames.pop_frame() is None
    assert frames.capacity == 4 * 64 * 1024


# -- TLS ---------------------------------------------------------------------------------

def test_tls_records_of_16_kib() -> None:
    stream = deliveries(b"t" * 50_000, b"u") + HEARTBEAT
    transport = tls(BufferedSSLTransport, [stream])
    assert read_all(transport) == (split_frames(stream), 0)
    assert transport.sock.reads == -(-len(stream) // 16384) + 1  # one per record, then EOF


@pytest.mark.parametrize("cut", [0, 5, 30])
def test_tls_want_read_like_py_amqp(cut: int) -> None:
    want_read = ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)")
    script = [*([SEQUENCE[:cut]] if cut else []), want_read, SEQUENCE[cut:]]
    assert both(script, make=tls) == split_frames(SEQUENCE)


def test_tls_read_timeout_keeps_the_connection() -> None:
    timed_out = ssl.SSLError("The read operation timed out")
    transport = tls(BufferedSSLTransport, [SEQUENCE[:30], timed_out, SEQUENCE[30:]])
    assert read_all(transport) == (split_frames(SEQUENCE), 1)
    assert both([SEQUENCE[:30], timed_out, SEQUENCE[30:]], make=tls) == split_frames(SEQUENCE)


@pytest.mark.parametrize("cut", [0, 40, 70])
def test_tls_eof_mid_frame(cut: int) -> None:
    transport = tls(BufferedSSLTransport, [SEQUENCE[:cut]] if cut else [])
    assert read_all(transport) == (frames_before(SEQUENCE, cut), 0)
    assert not transport.connected


# -- random chunkings --------------------------------------------------------------------

@st.composite
def scripts(draw: st.DrawFn) -> tuple[bytes, list[Step]]:
    bodies = draw(st.lists(st.binary(max_size=3000), min_size=1, max_size=6))
    stream = deliveries(*bodies, frame_max=draw(st.sampled_from([1024, 4096, 131072])))
    stream += HEARTBEAT * draw(st.integers(0, 2))
    cuts = sorted(draw(st.sets(st.integers(1, len(stream) - 1), max_size=40)))
    script: list[Step] = []
    for piece in chunks(stream, *cuts):
        script.append(piece)
        if draw(st.booleans()):
            script.append(socket.timeout())
    return stream, script


@settings(max_examples=300, deadline=None)
@given(scripts())
def test_random_chunkings_and_timeouts(case: tuple[bytes, list[Step]]) -> None:
    stream, script = case
    assert both(script) == split_frames(stream)


# -- the kombu side ----------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("amqp://guest:guest@127.0.0.1:5672//", KombuTransport),
    ("amqps://guest:guest@pulse.example.com//", KombuSSLTransport),
    ("pyamqp://guest:guest@127.0.0.1//", KombuTransport),
])
def test_buffered_connection_picks_buffered_transports(url: str, expected: type) -> None:
    conn = BufferedConnection(url)
    assert type(conn.transport) is expected
    assert conn.transport.driver_type == "amqp"
    assert conn.connection_errors == kombu.Connection(url).connection_errors
    assert type(conn.clone().transport) is expected


def test_amqps_means_tls_and_port_5671() -> None:
    conn = BufferedConnection("amqps://guest:guest@pulse.example.com//")
    conn.transport  # noqa: B018 (kombu's SSL transport turns TLS on when it is created)
    assert conn.ssl and conn.transport.default_connection_params["port"] == 5671


def test_failover_keeps_buffered_reads() -> None:
    conn = BufferedConnection("amqp://guest:guest@127.0.0.1:5672//;amqps://guest:guest@127.0.0.1:5671//")
    assert type(conn.transport) is KombuTransport
    conn.maybe_switch_next()
    assert type(conn.transport) is KombuSSLTransport


def test_other_transports_are_kombu_s() -> None:
    assert type(BufferedConnection("memory://").transport).__module__ == "kombu.transport.memory"


def test_connection_builds_buffered_transports() -> None:
    amqp_conn = KombuTransport.Connection(host="127.0.0.1:5672", userid="guest", password="guest")
    assert type(amqp_conn.Transport("127.0.0.1:5672", 5)) is BufferedTCPTransport
    assert type(amqp_conn.Transport("127.0.0.1:5671", 5, ssl={"server_hostname": "x"})) is BufferedSSLTransport


def test_same_recoverable_errors_as_py_amqp() -> None:
    assert tclisten.transport.UNAVAILABLE == amqp.transport._UNAVAIL


def test_docstring_examples() -> None:
    assert doctest.testmod(tclisten.transport).failed == 0
