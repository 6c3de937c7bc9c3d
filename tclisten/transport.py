"""Buffered frame reads for py-amqp: one ``recv_into`` per 64 KiB instead of three ``recv`` per frame.

Why: py-amqp reads every AMQP frame with three ``recv`` calls (the 7-byte header, the payload,
the frame-end byte), and a delivered message is three frames (method, content header, body).
Measured on this machine, a raw py-amqp consumer made 180,153 ``recvfrom`` calls for 20,000
messages; reading up to 64 KiB whenever the buffer runs dry made 239, throughput rose 15-30 %
and the client's CPU fell from 84-94 to 65-74 µs per message. Through kombu (20,000 persistent
messages, prefetch 1000, loopback broker): 180,013 reads for 60,001 frames became 220, client CPU
went from 20.4-21.6 to 12.1-12.9 µs per message. Pulse only speaks TLS; there OpenSSL reads
whole records itself, so py-amqp's three reads per frame are calls into ``SSLSocket`` rather
than syscalls, and the gain is smaller: 16.8-17.5 to 13.0-13.9 µs per message through a
loopback TLS proxy.

Each layer is a subclass at one of py-amqp's or kombu's own extension points::

    FrameBuffer              no I/O: received bytes in, complete frames out
    BufferedTCPTransport     amqp.transport.TCPTransport, reading through a FrameBuffer
    BufferedSSLTransport     amqp.transport.SSLTransport, reading through a FrameBuffer
    BufferedAMQPConnection   kombu.transport.pyamqp.Connection whose Transport() picks one of those
    KombuTransport           kombu.transport.pyamqp.Transport with that Connection
    KombuSSLTransport        kombu.transport.pyamqp.SSLTransport with that Connection (amqps://)
    BufferedConnection       kombu.Connection that swaps kombu's two py-amqp transports for ours

Use :class:`BufferedConnection` where you would build a :class:`kombu.Connection`; to opt out,
build a plain :class:`kombu.Connection`. It is a subclass rather than
``kombu.Connection(url, transport=KombuTransport)`` because kombu ignores the URL's scheme once a
transport class is given (``amqps://`` would silently connect without TLS unless ``ssl=`` is
passed as well), and a failover list (``url1;url2``) switches back to kombu's own transport on
the first failover. Swapping the class kombu resolves keeps both working, leaves ``memory://``
and other transports alone, and ``connection.transport.driver_type`` stays ``"amqp"``.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from ssl import SSLError
from typing import Any, Callable, ClassVar

import amqp.transport
import kombu
from amqp.exceptions import UnexpectedFrame
from kombu.transport import pyamqp

__all__ = [
    "BufferedAMQPConnection",
    "BufferedConnection",
    "BufferedSSLTransport",
    "BufferedTCPTransport",
    "FrameBuffer",
    "KombuSSLTransport",
    "KombuTransport",
]

#: ``(frame_type, channel, payload)``, what py-amqp's ``read_frame`` returns.
Frame = tuple[int, int, bytes]

READ_SIZE = 64 * 1024
HEADER = struct.Struct(">BHI")  # frame type, channel, payload size
FRAME_END = 0xCE
#: The smallest frame: a header, no payload, the frame-end octet.
MIN_FRAME = HEADER.size + 1

#: py-amqp's ``_UNAVAIL``: errors after which the connection is still usable.
UNAVAILABLE = frozenset({errno.EAGAIN, errno.EINTR, errno.ENOENT, errno.EWOULDBLOCK})


class FrameBuffer:
    """Bytes received from the broker and not yet parsed, and the parser that takes whole
    frames out of them.

    No socket here, so every chunking of the stream can be tested: the transport asks for
    :meth:`writable` space, ``recv_into``'s it and reports :meth:`received`; :meth:`pop_frame`
    hands out a frame only once all of it has arrived, so a read that times out or fails in
    the middle of a frame loses nothing, and the next read carries on from the same bytes.

    >>> frames = FrameBuffer()
    >>> heartbeat = b"\\x08\\x00\\x00\\x00\\x00\\x00\\x00\\xce"
    >>> space = frames.writable()
    >>> space[:5] = heartbeat[:5]; frames.received(5)
    >>> frames.pop_frame() is None
    True
    >>> space = frames.writable()
    >>> space[:3] = heartbeat[5:]; frames.received(3)
    >>> frames.pop_frame()
    (8, 0, b'')
    """

    __slots__ = ("_buf", "_view", "_start", "_end")

    def __init__(self, size: int = READ_SIZE) -> None:
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = 0  # the first byte not parsed yet
        self._end = 0  # one past the last byte received

    def __len__(self) -> int:
        """How many bytes are received and not yet parsed."""
        return self._end - self._start

    @property
    def capacity(self) -> int:
        """The buffer's size: 64 KiB, more once a frame needed more."""
        return len(self._buf)

    def pop_frame(self) -> Frame | None:
        """The next complete frame, or None until all of it has been received.

        Raises UnexpectedFrame, as py-amqp does, when the frame-end octet is not 0xCE (the
        frame is consumed: the connection is beyond repair anyway).
        """
        start = self._start
        if self._end - start < MIN_FRAME:
            return None
        frame_type, channel, size = HEADER.unpack_from(self._buf, start)
        payload_end = start + HEADER.size + size
        if payload_end >= self._end:
            return None
        payload = self._view[start + HEADER.size:payload_end].tobytes()  # py-amqp hands out bytes
        frame_end = self._buf[payload_end]
        self._start = payload_end + 1
        if frame_end != FRAME_END:
            raise UnexpectedFrame(f"Received frame_end {frame_end:#04x} while expecting 0xce")
        return frame_type, channel, payload

    def frame_size(self) -> int:
        """Size of the frame being received, header and frame end included (the smallest
        possible frame while its header is incomplete)."""
        if self._end - self._start < HEADER.size:
            return MIN_FRAME
        size: int = HEADER.unpack_from(self._buf, self._start)[2]
        return MIN_FRAME + size

    def writable(self) -> memoryview:
        """Free space after the received bytes, to ``recv_into``: never empty."""
        self._make_room()
        return self._view[self._end:]

    def received(self, n: int) -> None:
        """Count ``n`` bytes written into the space :meth:`writable` gave."""
        self._end += n

    def _make_room(self) -> None:
        """Rewind when everything is parsed; move a partial frame to the front when the rest
        of it would not fit after it; grow when the frame is larger than the buffer.

        Growth at most doubles the buffer per call, so a garbled size field costs memory only
        as fast as bytes arrive (py-amqp's reads behave the same), not 4 GiB up front.
        """
        start, end, capacity = self._start, self._end, len(self._buf)
        if start == end:
            self._start = self._end = 0
            return
        wanted = self.frame_size()
        if start + wanted <= capacity:
            return
        if wanted > capacity and (start or end == capacity):
            self._move_to(bytearray(min(wanted, 2 * capacity)))
        elif start:
            self._move_to(self._buf)

    def _move_to(self, buf: bytearray) -> None:
        """Copy the unparsed bytes to the front of ``buf`` (which may be the buffer itself:
        memoryview assignment copies overlapping ranges correctly)."""
        pending = self._end - self._start
        view = self._view if buf is self._buf else memoryview(buf)
        view[:pending] = self._view[self._start:self._end]
        self._buf, self._view = buf, view
        self._start, self._end = 0, pending


def _is_read_timeout(exc: OSError) -> bool:
    """Errors py-amqp's ``read_frame`` turns into ``socket.timeout`` (it keeps the connection)."""
    if os.name == "nt" and exc.errno == errno.EWOULDBLOCK:  # py-amqp #320: winsock's timeout
        return True
    return isinstance(exc, SSLError) and "timed out" in str(exc)  # bpo-10272


class _BufferedReads:
    """``read_frame`` for py-amqp transports, parsing frames out of a per-connection buffer
    that one ``recv_into`` of up to 64 KiB refills whenever it runs dry.

    Everything the caller relies on stays as in py-amqp: the ``(frame_type, channel, payload)``
    result, heartbeats being frames like any other, large bodies arriving as several frames,
    ``having_timeout`` and a ``sock.settimeout()`` made directly by the caller (both act on the
    same socket ``recv_into`` waits on), and the exceptions, so kombu's ``connection_errors``
    and reconnect logic recognise a lost connection.
    """

    #: ``recv`` errors py-amqp retries (or reports as a timeout before a frame has started).
    _retry_errnos: ClassVar[frozenset[int]] = frozenset({errno.EAGAIN, errno.EINTR})

    sock: Any
    connected: bool
    raise_on_initial_eintr: bool
    _frames: FrameBuffer
    _recv_into: Callable[[memoryview], int]

    def _setup_transport(self) -> None:
        super()._setup_transport()  # type: ignore[misc]  # SSL: wraps the socket first
        self._frames = FrameBuffer()
        self._recv_into = self.sock.recv_into

    def read_frame(self, unpack: Any = None) -> Frame:
        """The next frame, read from the buffer and refilling it as needed (``unpack`` is
        accepted for py-amqp's signature and unused)."""
        frames = self._frames
        frame = frames.pop_frame()
        while frame is None:
            self._receive(frames)
            frame = frames.pop_frame()
        return frame

    def _read(self, n: int, initial: bool = False) -> bytes:
        """Not supported: bytes taken past the frame buffer would desynchronise it."""
        raise NotImplementedError("buffered transports read whole frames: use read_frame()")

    def _receive(self, frames: FrameBuffer) -> None:
        """One ``recv_into``, failing the way py-amqp's ``_read`` and ``read_frame`` do.

        Nothing is taken out of the buffer here, so whatever is raised, the bytes of a partial
        frame stay for the next call.
        """
        try:
            n = self._recv_into(frames.writable())
        except socket.timeout:
            raise
        except OSError as exc:
            if exc.errno in self._retry_errnos:
                # py-amqp: a timeout while waiting for a frame's header, else keep reading
                if len(frames) < HEADER.size and self.raise_on_initial_eintr:
                    raise socket.timeout() from exc
                return
            if _is_read_timeout(exc):
                raise socket.timeout() from exc
            if exc.errno not in UNAVAILABLE:
                self.connected = False
            raise
        if not n:
            self.connected = False
            raise OSError("Server unexpectedly closed connection")
        frames.received(n)


class BufferedTCPTransport(_BufferedReads, amqp.transport.TCPTransport):
    """py-amqp's TCP transport with buffered frame reads.

    >>> BufferedTCPTransport("127.0.0.1:5672").port
    5672
    """


class BufferedSSLTransport(_BufferedReads, amqp.transport.SSLTransport):
    """py-amqp's TLS transport with buffered frame reads.

    ``SSLSocket.recv_into`` returns the plaintext of at most one TLS record (16 KiB) per call,
    taking what OpenSSL already decrypted (``pending()``) before touching the socket; since
    frames are only read when the buffer holds no complete one, data pending inside OpenSSL is
    always picked up by the next read and never waits for the socket to become readable.

    ``SSLWantReadError`` carries errno ``SSL_ERROR_WANT_READ`` (2, the value of ENOENT): like
    py-amqp (celery#1414), it is a timeout while waiting for a frame and retried inside one.

    >>> BufferedSSLTransport("pulse.mozilla.org:5671", ssl=True).port
    5671
    """

    _retry_errnos = frozenset({errno.ENOENT, errno.EAGAIN, errno.EINTR})


class BufferedAMQPConnection(pyamqp.Connection):
    """kombu's py-amqp connection (kombu's channels and messages) over a buffered transport.

    >>> conn = BufferedAMQPConnection(host="127.0.0.1:5672", userid="guest", password="guest")
    >>> type(conn.Transport("127.0.0.1:5672", connect_timeout=5)).__name__
    'BufferedTCPTransport'
    """

    def Transport(self, host: str, connect_timeout: float | None, ssl: Any = False,  # noqa: N802 (py-amqp's name)
                  read_timeout: float | None = None, write_timeout: float | None = None,
                  socket_settings: dict[int, int] | None = None,
                  **kwargs: Any) -> amqp.transport._AbstractTransport:
        """The transport ``amqp.transport.Transport`` would pick for ``ssl``, buffered."""
        transport_cls = BufferedSSLTransport if ssl else BufferedTCPTransport
        return transport_cls(host, connect_timeout=connect_timeout, ssl=ssl, read_timeout=read_timeout,
                             write_timeout=write_timeout, socket_settings=socket_settings, **kwargs)


class _DrainBuffered:
    """kombu's ``drain_events`` (what ``kombu.Connection.drain_events`` calls: the consumer
    loop, never py-amqp's own synchronous waits) dispatches, after the frame set it waited
    for, every complete frame already in the buffer, without touching the socket again.

    The loop's work per iteration (settling, timeout, heartbeat and backlog checks) and
    py-amqp's timeout context per read are then paid per buffer (up to 64 KiB, ~90
    deliveries) instead of per message: -18 % of the instructions per message
    (bench/RESULTS.md, P1).  py-amqp's synchronous waits (consume-ok, declares) still read
    one frame set at a time: draining there would dispatch deliveries before their consumer's
    callback exists (py-amqp rejects those).  An exception from a handler leaves the frames
    after it in the buffer, for the next read."""

    def drain_events(self, connection: Any, **kwargs: Any) -> Any:
        result = super().drain_events(connection, **kwargs)  # type: ignore[misc]
        frames = getattr(connection.transport, "_frames", None)
        if frames is not None:
            on_frame = connection.on_inbound_frame
            frame = frames.pop_frame()
            while frame is not None:
                on_frame(frame)
                frame = frames.pop_frame()
        return result


class KombuTransport(_DrainBuffered, pyamqp.Transport):
    """kombu's ``amqp://`` transport over :class:`BufferedAMQPConnection`.

    >>> KombuTransport.driver_type
    'amqp'
    """

    Connection = BufferedAMQPConnection


class KombuSSLTransport(_DrainBuffered, pyamqp.SSLTransport):
    """kombu's ``amqps://`` transport (TLS even without ``ssl=``) over
    :class:`BufferedAMQPConnection`.

    >>> KombuSSLTransport.default_ssl_port
    5671
    """

    Connection = BufferedAMQPConnection


_BUFFERED: dict[type, type] = {pyamqp.Transport: KombuTransport, pyamqp.SSLTransport: KombuSSLTransport}


class BufferedConnection(kombu.Connection):
    """A :class:`kombu.Connection` whose ``amqp://`` and ``amqps://`` connections read frames
    through a buffer; any other transport (``memory://``, ...) is kombu's, unchanged.

    Failover lists, ``clone()`` and pickling keep the class, hence the buffered reads.

    >>> conn = BufferedConnection("amqps://user:secret@pulse.example.com//")
    >>> type(conn.transport).__name__, conn.transport.driver_type
    ('KombuSSLTransport', 'amqp')
    >>> type(BufferedConnection("memory://").transport).__module__
    'kombu.transport.memory'
    """

    def get_transport_cls(self) -> type:
        """kombu's transport class for the current URL, with py-amqp's swapped for ours."""
        transport_cls = super().get_transport_cls()
        return _BUFFERED.get(transport_cls, transport_cls)
