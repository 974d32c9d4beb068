"""A WebSocket as the writer sees it: lines queued at once, sent as the browser reads.

The writer (chatd.outbox) writes each connection's lines once a loop turn and must
never wait for a socket; a WebSocket's `send` is a coroutine that waits for the
browser. `WebOutlet` sits between: `write` only queues, a task per connection (`pump`)
sends, and what waits counts in `buffered()` so the send-queue bound (PROTOCOL.txt 8.2)
cuts off a browser that does not read, as it does a TCP client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from chatd.channels import Direct


class OutletSocket(Protocol):
    """What an outlet uses of its WebSocket (chatd.web.WebConnection)."""

    @property
    def transport(self) -> asyncio.Transport: ...

    @property
    def state(self) -> State: ...

    async def send(self, message: bytes, *, text: bool | None = None) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    def unsent(self) -> int:
        """Bytes written to the socket and not yet taken by the kernel."""
        ...


class WebOutlet:
    """The writer's view of a WebSocket (chatd.channels.Outlet): lines in, messages out.

    `write` splits the server's batch into lines and queues them; `pump` (one task per
    connection) sends each line as one text message. Closing waits for the queue to
    drain, aborting does not, as with a TCP connection.
    """

    __slots__ = ("ws", "lines", "queued", "closing", "wake", "close_code", "close_reason")
    direct: Direct | None = None  # a line becomes a message: always through `send`

    def __init__(self, ws: OutletSocket) -> None:
        self.ws = ws
        self.lines: deque[bytes] = deque()
        self.queued = 0  # bytes written by the server and not yet handed to the socket
        self.closing = False
        self.wake = asyncio.Event()
        self.close_code = 1000
        self.close_reason = ""

    def write(self, data: bytes) -> None:
        if self.closing:
            return
        self.lines.extend(line for line in data.split(b"\n") if line)
        self.queued += len(data)
        self.wake.set()

    def send(self, data: bytes) -> int:
        if self.is_closing():
            return -1
        self.write(data)
        return self.buffered()

    def buffered(self) -> int:
        return self.queued + self.ws.unsent()

    def is_closing(self) -> bool:
        return self.closing or self.ws.state is not State.OPEN

    def close(self) -> None:
        self.closing = True
        self.wake.set()

    def abort(self) -> None:
        self.closing = True
        self.lines.clear()
        self.queued = 0
        self.wake.set()
        self.ws.transport.abort()

    async def pump(self) -> None:
        """Sends queued lines until closed; then closes the WebSocket."""
        ws = self.ws
        try:
            while True:
                while self.lines:
                    line = self.lines.popleft()
                    await ws.send(line, text=True)
                    self.queued -= len(line) + 1
                if self.closing:
                    break
                self.wake.clear()
                await self.wake.wait()
            await ws.close(self.close_code, self.close_reason)
        except ConnectionClosed:
            pass
        finally:
            self.closing = True
            self.lines.clear()
            self.queued = 0
