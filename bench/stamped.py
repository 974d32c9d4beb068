"""A client socket whose every read carries the time its bytes reached the socket.

The load generator times deliveries. Read through an asyncio transport, a delivery's
time is when the load generator got round to it: one process reads thousands of
clients, so a line to a room of 200 waits behind the 199 reads before it (about 12 us
each, 2.4 ms for the last), and a busy second of the load generator's shows as a slow
second of the server's (issue 29: the bare reference broadcaster missed the city's
p99 of 5 ms for that alone). The kernel stamps each packet as it arrives
(SO_TIMESTAMPNS, CLOCK_REALTIME); `recvmsg` hands the stamp of the newest packet of
the read over with its bytes, so a line's delivery time is when its last byte reached
the client's socket, as it would on a machine of its own, never earlier.

`StampedTransport` is the part of an asyncio transport the load generator uses (write,
close, abort, is_closing), on a bare non-blocking socket read with `loop.add_reader`;
the protocol's `data_received(data, arrived_ns)` takes the stamp as a second argument.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import struct
import time
from typing import Any, Protocol

# <asm-generic/socket.h>: SO_TIMESTAMPNS (SO_TIMESTAMPNS_OLD, a struct timespec of two
# longs on 64-bit Linux), the same number as its control message, SCM_TIMESTAMPNS.
SO_TIMESTAMPNS = 35
_STAMP_SPACE = socket.CMSG_SPACE(16)
_timespec = struct.Struct("qq").unpack_from
# One buffer for every read, as uvloop keeps: recvmsg(n) would allocate n bytes a read
# (past 128 KiB that is an mmap and a munmap each time).
_BUFFER = bytearray(256 * 1024)
_VIEW = memoryview(_BUFFER)
_BUFFERS = [_VIEW]


class Stamping:
    """The kernel stamps packets only once some socket asked for stamps, and turns that
    on a moment later, from a work queue (a deferred static key): `keep` asks and waits
    until it is on, so that no read of a run is unstamped. A read without a stamp would
    get the time it was read, and is counted in `unstamped` (a report shows it)."""

    def __init__(self) -> None:
        self.unstamped = 0
        self._keeper: socket.socket | None = None

    def keep(self) -> None:
        """Have the kernel stamp every packet from now on, for this process's life."""
        if self._keeper is not None:
            return
        with socket.create_server(("127.0.0.1", 0)) as listener:
            keeper = socket.create_connection(listener.getsockname())
            keeper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            peer, _ = listener.accept()
        with peer:
            for _ in range(2000):  # TCP (unlike UDP) gives no stamp for an unstamped packet
                peer.send(b"?")
                _data, ancillary, _flags, _address = keeper.recvmsg(1, _STAMP_SPACE)
                if ancillary:
                    break
                time.sleep(0.001)
        self._keeper = keeper


stamping = Stamping()


class StampedProtocol(Protocol):
    def connection_made(self, transport: StampedTransport) -> None: ...

    def data_received(self, data: bytes, arrived_ns: int) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class StampedTransport:
    __slots__ = ("_closing", "_fd", "_loop", "_out", "_protocol", "_sock")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol: StampedProtocol) -> None:
        self._loop, self._sock, self._protocol = loop, sock, protocol
        self._fd = sock.fileno()
        self._out = bytearray()  # what the socket did not take yet
        self._closing = False
        loop.add_reader(self._fd, self._readable)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._sock if name == "socket" else default

    def is_closing(self) -> bool:
        return self._closing

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if not self._out:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._lost(exc)
                return
            if sent == len(data):
                return
            data = data[sent:]
            self._loop.add_writer(self._fd, self._writable)
        self._out += data

    def close(self) -> None:
        """Like abort: the load generator closes only at the end of a run."""
        self.abort()

    def abort(self) -> None:
        if self._fd < 0:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if self._out:
            self._loop.remove_writer(self._fd)
        self._sock.close()
        self._fd = -1

    def _writable(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del self._out[:sent]
        if not self._out:
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        try:
            size, ancillary, _flags, _address = self._sock.recvmsg_into(_BUFFERS,
                                                                        _STAMP_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not size:
            self._lost(None)
            return
        data = bytes(_VIEW[:size])
        stamp = ancillary[0][2] if ancillary else b""
        if len(stamp) < 16:  # see Stamping
            stamping.unstamped += 1
            self._protocol.data_received(data, time.time_ns())
            return
        seconds, nanoseconds = _timespec(stamp)
        self._protocol.data_received(data, seconds * 1_000_000_000 + nanoseconds)

    def _lost(self, exc: Exception | None) -> None:
        if self._fd < 0:
            return
        self.abort()
        self._protocol.connection_lost(exc)


@functools.cache
def _address(host: str, port: int) -> tuple[Any, ...]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]


async def _connected(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                     address: tuple[Any, ...]) -> None:
    """A non-blocking connect, awaited by hand: uvloop's sock_connect resolves the
    address again on its thread pool, which never ran while this process was SCHED_FIFO
    (the reference's seating hung in the latency scenario)."""
    error = sock.connect_ex(address)
    if error == 0:
        return
    if error not in (errno.EINPROGRESS, errno.EAGAIN):
        raise OSError(error, os.strerror(error))
    done: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    def writable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_writer(fd, writable)
    try:
        await done
    finally:
        loop.remove_writer(fd)
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, os.strerror(error))


async def connect(loop: asyncio.AbstractEventLoop, protocol: StampedProtocol, host: str,
                  port: int) -> StampedTransport:
    """A TCP connection (no delay, stamped reads) to host:port, handed to `protocol`."""
    family, kind, proto, _, address = _address(host, port)
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        await _connected(loop, sock, address)
    except BaseException:
        sock.close()
        raise
    transport = StampedTransport(loop, sock, protocol)
    protocol.connection_made(transport)
    return transport
