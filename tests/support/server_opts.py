"""chatd options shared by the end-to-end tests of tests/e2e/test_server_*.py.

Flood control and connection limits (PROTOCOL.txt 8.3, 8.4) would throttle tests that
send at full speed or open many connections on purpose. `NO_LIMITS` holds the options
turning them off, but only those that this chatd knows (`chatd --help` lists them), so
the tests run the same before and after those options exist.
"""

from __future__ import annotations

import functools
import json
import socket
import subprocess

from tests.support.harness import CHATD, Chatd, StartChatd

_OFF = (("--rate", "0"), ("--max-per-ip", "0"), ("--max-clients", "0"))


@functools.cache
def no_limits() -> tuple[str, ...]:
    """`--rate 0 --max-per-ip 0 --max-clients 0`, each only if chatd has that option."""
    help_text = subprocess.run(
        [CHATD, "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    flags: list[str] = []
    for option, value in _OFF:
        if f"{option} " in help_text or f"{option}\n" in help_text:
            flags += [option, value]
    return tuple(flags)


def json_line(obj: object) -> bytes:
    """A compact JSON line with UTF-8 text, as a client would write it."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def small_rcvbuf_socket(size: int = 4096) -> socket.socket:
    """A non-blocking TCP socket whose receive buffer is made small before it connects."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setblocking(False)
    return sock


async def start(start_chatd: StartChatd, *args: str) -> Chatd:
    """A chatd with `args`, flood control and connection limits off (see `no_limits`)."""
    return await start_chatd(*args, *no_limits())
