"""Closing a connection leaves no cyclic garbage (the premise of chatd.heap).

chatd freezes long-lived objects so that the cycle collector's full walks skip them
(chatd/heap.py); that is only free of leaks if a connection's objects, once closed, are
freed by reference counting. This test serves real clients over real sockets, ends
them cleanly and not (a peer that closes unread gets broken-pipe and reset errors on the
server's side), and then asks the collector what cyclic garbage is left. The server runs
in this process, on the loop chatd would pick, because only here can the collector be
asked; the clients are a separate process, so their garbage is not counted.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import io
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from chatd import service
from chatd.server import Server
from chatd.serverlog import ServerLog
from chatd.settings import ServerConfig

CLIENTS = 40
CLIENT = r'''
import asyncio, ssl, sys
kind, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
scheme = "wss" if kind == "wss" else "ws"
LINES = b'{"type":"message","message":"%s"}\n' % (b"x" * 1000) * 20

async def web(i, context):
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus
    if i % 4 == 3:  # a handshake the server turns down (404)
        try:
            async with connect(f"{scheme}://127.0.0.1:{port}/nowhere", ssl=context):
                raise AssertionError("a WebSocket at /nowhere")
        except InvalidStatus:
            return
    # max_queue=None: it reads everything, as a browser does (unread, the library
    # would stop reading, and wait its close_timeout for the end it did not read).
    async with connect(f"{scheme}://127.0.0.1:{port}/ws", ssl=context,
                       max_queue=None) as ws:
        await ws.send('{"type":"connect","name":"w%d"}' % i)
        await ws.recv()
        for line in LINES.splitlines():
            await ws.send(line.decode())
        if i % 4 == 0:  # leaves, and closes as the server closes too
            await ws.send('{"type":"disconnect"}')
        elif i % 4 == 1:  # TCP ends without a closing frame
            ws.transport.close()
        # else: the client closes the WebSocket as it leaves `async with`

async def tcp(i, context):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    w.write(b'{"type":"connect","name":"t%d"}\n' % i + LINES)
    await r.readline()
    if i % 2:  # a clean leave, read to the end
        w.write(b'{"type":"disconnect"}\n')
        while await r.read(65536):
            pass
    w.transport.abort()  # else: reset, with the others' lines still coming

async def main():
    context = None
    if kind in ("tls", "wss"):
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    web_port = kind in ("websocket", "wss")
    clients = [web(i, context) if web_port else tcp(i, context) for i in range(n)]
    await asyncio.wait_for(asyncio.gather(*clients), 60)

asyncio.run(main())
'''


def _warnings(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if " WARN " in line)


async def _left_behind(kind: str, certificate: tuple[Path, Path]) -> collections.Counter[str]:
    """Serve CLIENTS clients of `kind`; the types of the cyclic garbage they left."""
    options: dict[str, Any] = dict(
        hosts=("127.0.0.1",), port=0, rate=0, max_clients=0, max_per_ip=0,
        connect_throttle=0, greet_after=0, ping_interval=0,
        # Deadlines a loaded machine cannot meet by accident: a handshake or request
        # timed out is another path than the ones this test means (and fails a client).
        tls_handshake_timeout=60.0, web_request_timeout=60.0, registration_timeout=60.0,
        # Room for every line of the test: a client starved of CPU is not cut off as one
        # that does not read (8.2), and sees its connection end without a close frame.
        max_send_queue=64 * 1024 * 1024)
    if kind in ("tls", "wss"):
        options.update(tls_cert=str(certificate[0]), tls_key=str(certificate[1]))
    if kind in ("websocket", "wss"):
        options.update(web_port=0)
    log = io.StringIO()
    server = Server(ServerConfig(**options), ServerLog("info", log))
    bound = await service.start(server)
    port = bound[-1].rstrip("/").rpartition(":")[2]
    gc.collect()
    gc.disable()  # from here, cyclic garbage stays where the collector can count it
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        clients = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, kind, port, str(CLIENTS),
            stderr=subprocess.PIPE)
        _, err = await asyncio.wait_for(clients.communicate(), 90)
        assert clients.returncode == 0, err.decode() + _warnings(log.getvalue())
        await asyncio.wait_for(server.all_closed(), 30)
        served = log.getvalue().count(" joined")
        web = kind in ("websocket", "wss")
        assert served == (CLIENTS * 3 // 4 if web else CLIENTS), served
        await server.shutdown()  # and the web port's handlers have ended
        gc.collect()
        return collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}"
                                   for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        await server.shutdown()


# chatd's loop: uvloop, but asyncio's own with TLS (chatd.cli)
LOOPS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {
    "tcp": uvloop.run, "websocket": uvloop.run, "tls": asyncio.run, "wss": asyncio.run}


# On a loaded machine a write often meets a client's reset mid-flush: the error's
# traceback, kept by asyncio, holds the flush's frames (chatd.tcp.StreamProtocol).
@pytest.mark.parametrize("kind", ["tcp", "tls", "websocket", "wss"])
def test_closed_connections_leave_no_cyclic_garbage(kind: str,
                                                    certificate: tuple[Path, Path]) -> None:
    left = LOOPS[kind](_left_behind(kind, certificate))
    assert not left, f"cyclic garbage after {CLIENTS} {kind} connections ended: {left}"
