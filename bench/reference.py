"""The yardstick: a bare broadcaster written for the benchmark, not a chat server.

It speaks just enough of PROTOCOL.txt for the load generator, and does per line the
work any real JSON chat server must do, so that "chatd / reference" measures chatd's
overhead and not the cost of JSON or of the kernel:

does, like chatd
  - splits the byte stream into lines, with the line limit (64 KiB); a longer line
    aborts the connection (chatd answers line_too_long and skips it instead)
  - parses every client line as JSON and checks "type" and "message" are strings
  - uses the fastest JSON available, as a bare server written today would: orjson
    (loads and dumps) when it is installed, as it is with chatd (which parses with
    orjson), else the standard library; `--json stdlib` forces the latter
  - answers connect with a welcome carrying the room's user list (joiner included),
    then announces the join to everyone in the room, the joiner included (the O(N^2)
    of seating); a connect may name a room (default "lobby"), as in chatd, since a
    server with many rooms sends each line to its room only and the city scenario
    measures that
  - several rooms per client, as chatd since version 2 (PROTOCOL 17): join adds a
    room (answered with the room's who, joiner included, then the connect notice to
    the room, joiner included) and makes it current; part leaves one (the current
    room without "room"); a message goes to its "room" if the sender is in it, else
    (no "room") to the current room, the one joined last
  - encodes each relayed line ONCE (compact, non-ASCII as UTF-8) with name,
    message, room, a decimal id and an RFC 3339 millisecond time, as chatd does
  - coalesced mode (default): appends the line to each recipient's outbox; one
    `transport.write` per recipient per loop turn (`call_soon` flush)
  - checks each recipient's write buffer against the send-queue bound (256 KiB) after
    its write, and aborts a client over it
  - TCP_NODELAY on every connection; answers ping with pong
does not
  - log anything, keep history, check names (unique, NFC, control characters) or clean
    message text, rate-limit, limit connections, ping idle clients, resume sessions,
    check room names, forget empty rooms, text mode, private lines, acks, switch,
    or answer errors (a line it cannot use, such as a message to a room the sender is
    not in or a second join of a room, is dropped)
  - announce leaves (a leaving client is just forgotten) or shut down politely: SIGTERM
    ends the process at once

`--naive` relays the way the issue's "naive broadcaster" rows do: one
`transport.write` per recipient per line, no outbox. `--drop N` loses the N-th chat line
for one receiver, on purpose: the benchmark's own test uses it to prove the load
generator notices loss.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.procinfo import raise_fd_limit

MAX_LINE = 64 * 1024
MAX_SEND_QUEUE = 256 * 1024
_stdlib_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_codec(which: str) -> tuple[str, Callable[[bytes], Any], Callable[[Any], bytes]]:
    """(description, loads, dumps-to-one-line) for "auto", "orjson" or "stdlib"."""
    if which != "stdlib":
        try:
            import orjson
        except ImportError:
            if which == "orjson":
                raise
        else:
            return (f"orjson {orjson.__version__}", orjson.loads,
                    lambda obj: orjson.dumps(obj) + b"\n")
    return "stdlib json", json.loads, lambda obj: (_stdlib_dumps(obj) + "\n").encode()


class Clock:
    """RFC 3339 UTC with milliseconds; the date part is formatted once a second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"


class Conn(asyncio.Protocol):
    __slots__ = ("buf", "hub", "name", "out", "queued", "room", "rooms", "transport")

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.room: Room | None = None  # the current room: where a line without "room" goes
        self.rooms: dict[str, Room] = {}  # every room it is in, in joining order
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.name = ""
        self.out: list[bytes] = []
        self.queued = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        lines = (self.buf + data if self.buf else data).split(b"\n")
        self.buf = lines.pop()
        if len(self.buf) > MAX_LINE:
            self.abort()
            return
        hub = self.hub
        for line in lines:
            if len(line) > MAX_LINE:
                self.abort()
                return
            if line:
                hub.line(self, line)

    def eof_received(self) -> bool:
        self.hub.leave(self)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub.leave(self)
        self.out.clear()

    def abort(self) -> None:
        self.hub.leave(self)
        if self.transport is not None:
            self.transport.abort()


class Room:
    __slots__ = ("members", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[Conn, None] = {}  # join order, like chatd's user list


class Hub:
    """Every room, the id sequence and the one coalescing writer of the process."""

    def __init__(self, naive: bool, drop: int = 0, codec: str = "auto") -> None:
        self.json, self.loads, self.dumps = json_codec(codec)
        self.naive = naive
        self.drop = drop
        self.chats = 0
        self.rooms: dict[str, Room] = {}
        self.seq = 0
        self.clock = Clock()
        self.dirty: list[Conn] = []
        self.flush_pending = False
        self.loop = asyncio.get_running_loop()

    def line(self, conn: Conn, line: bytes) -> None:
        try:
            obj = self.loads(line)
        except ValueError:
            return
        if not isinstance(obj, dict):
            return
        kind = obj.get("type")
        if kind == "message":
            text = obj.get("message")
            where = obj.get("room")
            room = conn.room if where is None else conn.rooms.get(where) \
                if isinstance(where, str) else None
            if room is not None and isinstance(text, str):
                self.chats += 1
                # The last member to have joined loses it, unless that is the sender (the
                # join order of one wave is the order its lines happened to be read).
                lose_for = next((c for c in reversed(room.members) if c is not conn), None) \
                    if self.chats == self.drop else None
                self.relay(room, conn, "message", conn.name, text, lose_for=lose_for)
        elif kind == "connect" and not conn.name:
            name, where = obj.get("name"), obj.get("room")
            conn.name = name if isinstance(name, str) and name else "anon"
            where = where if isinstance(where, str) and where else "lobby"
            room = self.enter(conn, where)
            welcome = {"type": "welcome", "version": 2, "server": "reference",
                       "name": conn.name, "room": where, "rooms": [where],
                       "users": [c.name for c in room.members]}
            self.send(conn, self.dumps(welcome))
            self.relay(room, None, "connect", conn.name, f"{conn.name} joined")
        elif kind == "join" and conn.name and conn.transport is not None \
                and not conn.transport.is_closing():
            where = obj.get("room")
            if isinstance(where, str) and where and where not in conn.rooms:
                room = self.enter(conn, where)
                self.send(conn, self.dumps({"type": "who", "room": where,
                                            "users": [c.name for c in room.members]}))
                self.relay(room, None, "connect", conn.name, f"{conn.name} joined")
        elif kind == "part":
            where = obj.get("room")
            room = conn.room if where is None else conn.rooms.get(where) \
                if isinstance(where, str) else None
            if room is not None:
                del conn.rooms[room.name]
                room.members.pop(conn, None)
                conn.room = next(reversed(conn.rooms.values()), None)
        elif kind == "ping":
            self.send(conn, b'{"type":"pong"}\n')
        elif kind == "disconnect":
            self.leave(conn)
            if conn.transport is not None:
                conn.transport.close()

    def relay(self, room: Room, sender: Conn | None, kind: str, name: str, text: str,
              *, lose_for: Conn | None = None) -> None:
        self.seq += 1
        data = self.dumps({"type": kind, "name": name, "message": text, "room": room.name,
                           "id": str(self.seq), "time": self.clock.now()})
        if self.naive:
            for conn in room.members:
                if conn is not sender and conn is not lose_for and conn.transport is not None:
                    conn.transport.write(data)
                    if conn.transport.get_write_buffer_size() > MAX_SEND_QUEUE:
                        conn.abort()
            return
        dirty = self.dirty
        for conn in room.members:
            if conn is not sender and conn is not lose_for:
                conn.out.append(data)
                if not conn.queued:
                    conn.queued = True
                    dirty.append(conn)
        self.schedule()

    def send(self, conn: Conn, data: bytes) -> None:
        if self.naive:
            if conn.transport is not None:
                conn.transport.write(data)
            return
        conn.out.append(data)
        if not conn.queued:
            conn.queued = True
            self.dirty.append(conn)
        self.schedule()

    def schedule(self) -> None:
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_pending = False
        dirty, self.dirty = self.dirty, []
        for conn in dirty:
            conn.queued = False
            out = conn.out
            transport = conn.transport
            if transport is None or transport.is_closing():
                out.clear()
                continue
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            if transport.get_write_buffer_size() > MAX_SEND_QUEUE:
                conn.abort()

    def enter(self, conn: Conn, where: str) -> Room:
        room = self.rooms.get(where)
        if room is None:
            room = self.rooms[where] = Room(where)
        room.members[conn] = None
        conn.rooms[where] = conn.room = room
        return room

    def leave(self, conn: Conn) -> None:
        for room in conn.rooms.values():
            room.members.pop(conn, None)
        conn.rooms.clear()
        conn.room = None


async def serve(host: str, port: int, naive: bool, drop: int, codec: str) -> None:
    loop = asyncio.get_running_loop()
    hub = Hub(naive, drop, codec)
    server = await loop.create_server(lambda: Conn(hub), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()
    kind = "naive" if naive else "reference"
    print(f"{kind} listening on {bound[0]}:{bound[1]} ({hub.json})", file=sys.stderr,
          flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--naive", action="store_true",
                    help="one transport.write per recipient per line (no coalescing)")
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    ap.add_argument("--json", choices=["auto", "orjson", "stdlib"], default="auto",
                    help="JSON library (auto: orjson when installed)")
    ap.add_argument("--drop", type=int, default=0, metavar="N",
                    help="lose the N-th chat line for one receiver (to test the checker)")
    args = ap.parse_args(argv)
    raise_fd_limit()
    coro = serve(args.host, args.port, args.naive, args.drop, args.json)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
