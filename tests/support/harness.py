"""Test harness: real chatd processes on real sockets, and a small JSON client.

Every wait is bounded (`TIMEOUT`), so a broken server fails a test instead of hanging
the suite; nothing sleeps to synchronise: waits are for a log line, a server line or
a closed socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

TIMEOUT = 10.0
BIN = Path(sys.executable).parent
CHATD = str(BIN / "chatd")
CHATC = str(BIN / "chatc")
LISTENING = "chatd listening on "
TCP_ADDRESS = re.compile(r"(\S+):(\d+)")
WEB_ADDRESS = re.compile(r"web https?://(\S+):(\d+)/")
# What a healthy chatd never logs: a handler that raised (chatd.server answers the line
# with internal_error and logs this), or an exception that reached the event loop.
FAULT = re.compile(r"internal error|Traceback \(most recent call last\)|\[harness\]")


class Chatd:
    """A `chatd` subprocess on a free loopback port; its log is collected line by line.

    Every chatd that comes up is recorded in `Chatd.started`; after each test, the
    `chatd_health` fixture (tests/conftest.py) fails the test if one of them logged
    an internal error or a traceback, or exited with another status than `expected_exit`
    (0 after SIGTERM or SIGINT; a SIGKILL sent with `signal` expects -9). `faults_expected`
    or the test's `allow_chatd_faults` marker turns that check off for a chatd provoked on
    purpose. `program` replaces the chatd command (tests of the harness plant faults).
    """

    started: ClassVar[list[Chatd]] = []

    def __init__(self, *args: str, host: str = "127.0.0.1", env: dict[str, str] | None = None,
                 faults_expected: bool = False, program: Sequence[str] = (CHATD,)) -> None:
        # Tests open many connections from one address; the throttle of new connections
        # (PROTOCOL.txt 8.4) is off unless a test sets it. So is the greeting for people
        # at nc (6.1): JSON test clients may sit silent on purpose before their connect.
        defaults = [(option, "0") for option in ("--connect-throttle", "--greet-after")
                    if option not in args]
        self.args = ["--host", host, "--port", "0", *(x for d in defaults for x in d), *args]
        self.host = host
        self.port = 0
        self.web_port = 0  # with --web
        self.env = env
        self.program = tuple(program)
        self.faults_expected = faults_expected
        self.expected_exit = 0
        self.log: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._log_changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> Chatd:
        """Start and wait until it listens. On a port a test names (a restart on the
        port of the chatd before), a clash is retried: under pytest-xdist a client of
        another test may hold that port as its own end for a moment."""
        named = {arg: value for arg, value in zip(self.args, self.args[1:], strict=False)
                 if arg in ("--port", "--web")}  # the last of each counts, as for chatd
        fixed_port = any(value != "0" for value in named.values())
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                line = await self._spawn()
                break
            except AssertionError:
                clash = any("address already in use" in entry for entry in self.log)
                if not (fixed_port and clash and time.monotonic() < deadline):
                    raise
                await asyncio.sleep(0.2)  # a pause between tries, not a synchronisation
        Chatd.started.append(self)
        listing = line.partition(LISTENING)[2].removesuffix(" (TLS)")
        for address in listing.split(", "):
            if web := WEB_ADDRESS.fullmatch(address):
                self.web_port = int(web.group(2))
            elif tcp := TCP_ADDRESS.fullmatch(address):
                self.port = self.port or int(tcp.group(2))
        assert self.port, line
        return self

    async def _spawn(self) -> str:
        """A chatd process, and its "listening on" line."""
        env = {**os.environ, **(self.env or {})}
        self.log.clear()
        self.proc = await asyncio.create_subprocess_exec(
            *self.program, *self.args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env)
        self._reader = asyncio.create_task(self._read_log())
        try:
            return await self.wait_log(LISTENING)
        except BaseException:
            # It never came up (a port clash, a bad option): nothing of it to check later.
            await self.stop()
            raise

    async def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self._log_changed.set()
        self._log_changed.set()

    async def wait_log(self, pattern: str, timeout: float = TIMEOUT, start: int = 0) -> str:
        """The first log line (from index `start`) matching `pattern`, waiting for it."""
        regex = re.compile(pattern)
        seen = start

        async def scan() -> str:
            nonlocal seen
            while True:
                for line in self.log[seen:]:
                    seen += 1
                    if regex.search(line):
                        return line
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"chatd exited before logging {pattern!r}:\n"
                                         + "\n".join(self.log[-20:]))
                self._log_changed.clear()
                await self._log_changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout}s; "
                                 "last lines:\n" + "\n".join(self.log[-20:])) from None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        if sig == signal.SIGKILL:
            self.expected_exit = -signal.SIGKILL
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    async def wait(self, timeout: float = TIMEOUT) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        return code

    async def stop(self) -> None:
        """SIGTERM, and SIGKILL if it is still there after TIMEOUT (a fault `faults` names)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await self.wait(TIMEOUT)
        except TimeoutError:
            self.log.append(f"[harness] still running {TIMEOUT}s after SIGTERM: killed")
            self.proc.kill()
            await self.proc.wait()

    def faults(self) -> list[str]:
        """What says this chatd was unwell: log lines of faults, an unexpected exit status."""
        found = [line for line in self.log if FAULT.search(line)]
        if self.proc is None:
            return found
        if self.proc.returncode is None:
            found.append("still running after the test (start it with the start_chatd fixture)")
        elif self.proc.returncode != self.expected_exit:
            found.append(f"exit status {self.proc.returncode}, expected {self.expected_exit}")
        return found

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


StartChatd = Callable[..., Awaitable[Chatd]]  # the start_chatd fixture: Chatd's arguments


class Client:
    """A JSON-mode client on asyncio streams; every read is bounded by a timeout."""

    # The clients not yet closed, which hang up when chatd stops (`stop_servers`).
    still_open: ClassVar[weakref.WeakSet[Client]] = weakref.WeakSet()

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.name = ""
        self.resume = ""
        self.loop = asyncio.get_running_loop()
        Client.still_open.add(self)

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> Client:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=16 * 1024 * 1024), TIMEOUT)
        return cls(reader, writer)

    @classmethod
    async def joined(cls, port: int, name: str | None, **fields: Any) -> Client:
        """Connect, join, and read up to and including the own join notice."""
        client = await cls.open(port)
        await client.join(name, **fields)
        return client

    async def join(self, name: str | None, **fields: Any) -> dict[str, Any]:
        line: dict[str, Any] = {"type": "connect", **fields}
        if name is not None:
            line["name"] = name
        await self.send(line)
        welcome = await self.recv("welcome")
        self.name, self.resume = welcome["name"], welcome["resume"]
        if not welcome.get("resumed"):
            await self.recv_until(lambda m: m["type"] == "connect" and m["name"] == self.name)
        return welcome

    async def send(self, line: dict[str, Any] | bytes) -> None:
        if isinstance(line, dict):
            line = (json.dumps(line, ensure_ascii=False) + "\n").encode()
        self.writer.write(line)
        await asyncio.wait_for(self.writer.drain(), TIMEOUT)

    async def say(self, text: str, **fields: Any) -> None:
        await self.send({"type": "message", "message": text, **fields})

    async def read_line(self, timeout: float = TIMEOUT) -> bytes:
        try:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.name or 'client'}: no line within {timeout}s") from None
        if not line:
            raise EOFError("server closed the connection")
        return line

    async def recv(self, *types: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next line; with `types`, it must be of one of them."""
        msg: dict[str, Any] = json.loads(await self.read_line(timeout))
        if types and msg.get("type") not in types:
            raise AssertionError(f"expected {types}, got {msg}")
        return msg

    async def recv_until(self, match: Callable[[dict[str, Any]], bool],
                         timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Lines up to and including the first that matches."""
        got: list[dict[str, Any]] = []

        async def scan() -> list[dict[str, Any]]:
            while True:
                msg = await self.recv(timeout=timeout)
                got.append(msg)
                if match(msg):
                    return got

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(f"no matching line within {timeout}s; got {got}") from None

    async def nothing_more(self, timeout: float = TIMEOUT) -> bool:
        """True if the server has nothing more for this client: a ping's pong is the very
        next line (otherwise AssertionError). The server answers a connection's lines in
        order and queues what a line causes when it handles it, so this proves absence
        for every line handled before the ping: this client's own earlier lines, and
        another client's lines once their answer (an ack, a pong) or their delivery was
        seen. Waiting for silence would prove nothing on a slow machine."""
        await self.send({"type": "ping"})
        line = await self.recv(timeout=timeout)
        if line != {"type": "pong"}:
            raise AssertionError(f"{self.name or 'client'}: expected nothing more, got {line}")
        return True

    async def silent(self, timeout: float = TIMEOUT) -> bool:
        """The old name of `nothing_more` (it used to wait 0.3 s for silence)."""
        return await self.nothing_more(timeout)

    async def closed(self, timeout: float = TIMEOUT) -> list[bytes]:
        """Read until the server closes; returns what came before."""
        lines: list[bytes] = []

        async def drain() -> None:
            while line := await self.reader.readline():
                lines.append(line)

        await asyncio.wait_for(drain(), timeout)
        return lines

    async def hang_up_at_eof(self) -> None:
        """Read (and drop) until the server closes, then close, as chatc and nc do when
        chatd shuts down; a read that fails (a reset, another reader) gives up."""
        try:
            while await self.reader.read(65536):
                pass
        except Exception:
            return
        self.writer.close()

    async def close(self) -> None:
        Client.still_open.discard(self)
        self.writer.close()
        with contextlib.suppress(OSError):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)

    def reset(self) -> None:
        """Close with a TCP reset (RST) instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


async def stop_servers(servers: Sequence[Chatd]) -> None:
    """Stop the servers a test started (SIGTERM: each tells its clients and closes) while
    the test's clients still open hang up on their server's FIN, as real clients do: a
    chatd otherwise waits out its close grace (chatd.tcp.CLOSE_GRACE) for each silent
    one, a quarter of a second of nearly every test."""
    loop = asyncio.get_running_loop()
    clients = [c for c in Client.still_open if c.loop is loop and not c.writer.is_closing()]
    Client.still_open.clear()
    hangups = [asyncio.create_task(client.hang_up_at_eof()) for client in clients]
    try:
        for server in servers:
            await server.stop()
    finally:
        for hangup in hangups:
            hangup.cancel()
        await asyncio.gather(*hangups, return_exceptions=True)


async def register(port: int, name: str, password: str) -> None:
    """An account for a test: join as `name`, register it (PROTOCOL.txt 18.2), leave."""
    client = await Client.joined(port, name)
    await client.send({"type": "register", "password": password})
    note = await client.recv("account")
    assert note["event"] == "registered" and note["account"] == name, note
    await client.send({"type": "disconnect"})
    await client.closed()


def is_join(name: str) -> Callable[[dict[str, Any]], bool]:
    """Matches the join notice of `name`."""
    return lambda m: m["type"] == "connect" and m["name"] == name


async def trio(chatd: Chatd) -> tuple[Client, Client, Client]:
    """A, B and C joined, each having seen every join notice so far."""
    a = await Client.joined(chatd.port, "A")
    b = await Client.joined(chatd.port, "B")
    await a.recv_until(is_join("B"))
    c = await Client.joined(chatd.port, "C")
    await a.recv_until(is_join("C"))
    await b.recv_until(is_join("C"))
    return a, b, c


class RedisServer:
    """A real redis-server on a free loopback port, in its own directory (AOF on)."""

    def __init__(self, directory: Path, *args: str, tls: bool = False) -> None:
        self.directory = directory
        self.args = args
        self.tls = tls  # listen with TLS only (the certificate options go in args)
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, port: int = 0) -> RedisServer:
        """Start on `port` (a restart on the port it had), or on a free one. redis-server
        cannot be asked for port 0, so a free port is picked and may be taken by another
        process before redis binds it: a clash is retried (a new port; the same one,
        while a restart's deadline lasts)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed: run `make test`, which "
                                 "installs Debian's redis-server")
        deadline = time.monotonic() + TIMEOUT
        while True:
            self.port = port or _free_port()
            output = await self._spawn(binary)
            if self.proc is not None and self.proc.returncode is None:
                break
            if "already in use" not in output or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start:\n{output}")
            if port:
                await asyncio.sleep(0.2)  # a pause between tries, not a synchronisation
        self._drain = asyncio.create_task(self._discard_output())
        return self

    async def _spawn(self, binary: str) -> str:
        """Start redis-server on self.port; its output until it is ready (or exited)."""
        ports = ["--tls-port", str(self.port), "--port", "0"] if self.tls else [
            "--port", str(self.port)]
        self.proc = proc = await asyncio.create_subprocess_exec(
            binary, *ports, "--bind", "127.0.0.1", "--dir",
            str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--logfile", "", *self.args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert proc.stdout is not None
        stdout = proc.stdout
        output: list[str] = []

        async def ready() -> None:
            async for line in stdout:
                output.append(line.decode(errors="replace"))
                if b"Ready to accept connections" in line:
                    return
            await proc.wait()  # its output ended: it exited

        await asyncio.wait_for(ready(), TIMEOUT)
        return "".join(output)

    async def _discard_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for _ in self.proc.stdout:
            pass

    async def stop(self) -> None:
        """A clean shutdown (redis writes its data), as an operator's restart would."""
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
