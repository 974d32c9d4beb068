"""The writer's view of a WebSocket (chatd.weboutlet), against a stand-in socket; the
same outlet on a real socket is in tests/e2e/test_web_in_process.py.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from chatd.web import WebConnection
from chatd.weboutlet import WebOutlet

TIMEOUT = 5.0


class _FakeTransport:
    def __init__(self) -> None:
        self.buffered = 0
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def abort(self) -> None:
        self.aborted = True


class _FakeSocket:
    """Just what WebOutlet uses of a WebConnection (a websockets ServerConnection)."""

    def __init__(self) -> None:
        self.transport = _FakeTransport()
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.remote_address = ("127.0.0.1", 40000)
        self.gate = asyncio.Event()
        self.gate.set()

    @property
    def state(self) -> Any:
        from websockets.protocol import State
        return State.CLOSED if self.closed else State.OPEN

    async def send(self, message: bytes, text: bool = False) -> None:
        assert text is True
        await self.gate.wait()
        self.sent.append(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    def unsent(self) -> int:
        return self.transport.buffered


def _outlet() -> tuple[WebOutlet, _FakeSocket]:
    ws = _FakeSocket()
    return WebOutlet(cast(WebConnection, ws)), ws


async def test_outlet_sends_each_line_as_one_message_and_counts_what_waits() -> None:
    link, ws = _outlet()
    ws.gate.clear()  # the browser does not read
    pump = asyncio.create_task(link.pump())
    link.write(b'{"type":"a"}\n{"type":"b"}\n')
    link.write(b'{"type":"c"}\n')
    ws.transport.buffered = 100
    assert link.buffered() == 39 + 100  # queued lines plus the socket's buffer
    ws.gate.set()
    link.close()
    assert link.is_closing()
    await asyncio.wait_for(pump, TIMEOUT)
    assert ws.sent == [b'{"type":"a"}', b'{"type":"b"}', b'{"type":"c"}']
    assert ws.closed == (1000, "")
    link.write(b'{"type":"late"}\n')  # after close: dropped, like a closed transport
    assert ws.sent[-1] == b'{"type":"c"}'


async def test_outlet_abort_drops_what_is_queued() -> None:
    link, ws = _outlet()
    ws.gate.clear()
    pump = asyncio.create_task(link.pump())
    link.write(b"1\n2\n")
    link.abort()
    assert ws.transport.aborted and link.buffered() == 0
    ws.gate.set()
    await asyncio.wait_for(pump, TIMEOUT)
    assert len(ws.sent) <= 1  # at most the line already being sent
