"""chatd.connection: what the writer reads of a connection as it ends (its `direct`
transport, chatd.channels.Receiver), without a socket."""

from __future__ import annotations

import asyncio
import io

from chatd.connection import Connection
from chatd.link import LinkConfig, Mode
from chatd.outbox import Outbox
from chatd.serverlog import ServerLog


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


class Outlet:
    """A TCP connection's outlet (chatd.tcp.StreamOutlet) or, with no transport, a
    WebSocket's."""

    def __init__(self, transport: Transport | None) -> None:
        self.direct = transport
        self.closed = self.aborted = False

    def send(self, data: bytes) -> int:
        return -1 if self.closed else 0

    def close(self) -> None:
        self.closed = True
        self.direct = None

    def abort(self) -> None:
        self.aborted = True


class Owner:
    """What a connection needs of its server (chatd.connection.Owner)."""

    def __init__(self) -> None:
        self.link_config = LinkConfig()
        self.writer = Outbox(1 << 20, ServerLog("warning", io.StringIO()))
        self.uncounted: list[Connection] = []

    def uncount(self, conn: Connection) -> None:
        self.uncounted.append(conn)

    def linger(self, conn: Connection) -> asyncio.TimerHandle | None:
        return None


def connection(transport: Transport | None) -> tuple[Connection, Outlet]:
    outlet = Outlet(transport)
    conn = Connection(Owner(), 1, outlet, ip="127.0.0.1", address="127.0.0.1:4000",
                      mode=Mode.UNKNOWN, detect_tls=False)
    return conn, outlet


def test_an_open_connection_is_written_through_its_outlets_transport() -> None:
    transport = Transport()
    conn, _ = connection(transport)
    assert conn.direct is transport and not conn.closing


def test_a_connection_without_a_transport_of_its_own_has_none() -> None:
    conn, _ = connection(None)  # a WebSocket: every line goes through the outlet's send
    assert conn.direct is None


def test_a_closing_connection_is_not_written_directly_any_more() -> None:
    """Closed with nothing owed, the outlet closes at once; the writer's loops must take
    the slow way (which knows a closing connection) from then on."""
    conn, outlet = connection(Transport())
    conn.close()
    assert conn.closing and conn.direct is None and outlet.closed


def test_a_dropped_connection_is_not_written_directly_any_more() -> None:
    conn, outlet = connection(Transport())
    conn.drop("send queue full")
    assert conn.closing and conn.direct is None and outlet.aborted
    assert conn.drop_reason == "send queue full"
