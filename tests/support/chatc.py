"""Helpers for chatc's end-to-end tests (this module holds no tests).

`Screen` runs a command in a pseudo-terminal of its own tmux server and reads the
screen as a person sees it (capture-pane); `Proxy` stands between chatc and chatd and
can cut the network. Every wait polls with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.support.harness import CHATC, TIMEOUT

WIDTH, HEIGHT = 100, 30
LINE_LIMIT = 4 * 1024 * 1024  # of a server line read by the proxy
POLL = 0.05
STAMP = r"\d\d:\d\d:\d\d"  # every chat line starts with its time


class Screen:
    """One command in a WIDTHxHEIGHT tmux pane that stays after the command exits."""

    def __init__(self, workdir: Path, label: str, argv: list[str],
                 env: dict[str, str] | None = None) -> None:
        self.socket = str(workdir / f"tmux-{label}")
        self.conf = workdir / f"tmux-{label}.conf"
        self.status = workdir / f"{label}.status"
        self.argv = argv
        self.env = env or {}
        self.label = label
        self.height = HEIGHT

    async def _tmux(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "tmux", "-S", self.socket, "-f", str(self.conf), *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "TMUX": ""})
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        if proc.returncode != 0:
            raise AssertionError(f"tmux {args[0]} failed: {err.decode(errors='replace')}")
        return out.decode("utf-8", "replace")

    async def start(self) -> Screen:
        # remain-on-exit keeps the pane (and its exit status) after the command ends.
        self.conf.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n")
        env = {"LANG": "C.UTF-8", "PYTHONFAULTHANDLER": "1", **self.env}
        env_args = [f"-e{k}={v}" for k, v in env.items()]
        # A shell reaps the command and writes its exit status down: tmux sometimes
        # leaves a quickly exiting pane process unreaped and the pane "alive".
        wrapper = f'"$@"; echo $? > {shlex.quote(str(self.status))}'
        await self._tmux("new-session", "-d", "-s", "main", "-x", str(WIDTH),
                         "-y", str(HEIGHT), *env_args, "--", "sh", "-c", wrapper, "sh",
                         *self.argv)
        return self

    async def text(self, colours: bool = False) -> str:
        """The whole pane, scrollback included, as plain text (or with SGR codes)."""
        return await self._tmux("capture-pane", "-p", "-S", "-", "-t", "main",
                                *(["-e"] if colours else []))

    async def rang(self) -> bool:
        """Whether the command rang the terminal's bell ("\\a") since it started (tmux
        marks the window of a detached session)."""
        flag = await self._tmux("display-message", "-p", "-t", "main", "#{window_bell_flag}")
        return flag.strip() == "1"

    async def screen(self) -> list[str]:
        """Only the visible rows."""
        return (await self._tmux("capture-pane", "-p", "-t", "main")).split("\n")[:self.height]

    async def resize(self, width: int, height: int) -> None:
        """As a person drags the window's corner (tmux re-wraps what is on the screen)."""
        await self._tmux("resize-window", "-t", "main", "-x", str(width), "-y", str(height))
        self.height = height

    async def paste(self, text: str, bracketed: bool = True) -> None:
        """Paste `text` as a terminal does: in a bracketed paste when the program asks for
        one, or (`bracketed` False, as terminals without it do) typed out key by key;
        unlike send-keys, any length."""
        buffer = Path(self.socket).with_name(f"{self.label}.paste")
        buffer.write_text(text)
        await self._tmux("load-buffer", "-b", "paste", str(buffer))
        await self._tmux("paste-buffer", *(["-p"] if bracketed else []), "-d", "-b", "paste",
                         "-t", "main")

    async def pid(self) -> int:
        """The process id of the command (the child of the pane's shell)."""
        shell = int((await self._tmux("display-message", "-p", "-t", "main",
                                      "#{pane_pid}")).strip())
        children = Path(f"/proc/{shell}/task/{shell}/children")
        return int((await asyncio.to_thread(children.read_text)).split()[0])

    async def wait_for(self, pattern: str, timeout: float = TIMEOUT,
                       count: int = 1) -> str:
        """Wait until `pattern` (a regex) matches at least `count` times; returns the text."""
        return await self.wait_until(lambda text: len(re.findall(pattern, text)) >= count,
                                     f"{pattern!r} x{count}", timeout)

    async def wait_until(self, check: Callable[[str], bool], what: str,
                         timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = await self.text()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.label}: no {what} within {timeout}s; "
                                     f"screen:\n{text.rstrip()}")
            await asyncio.sleep(POLL)  # polling the screen, bounded by the deadline

    async def wait_shown(self, check: Callable[[str], bool], what: str,
                         timeout: float = TIMEOUT) -> str:
        """Wait until the visible rows (not the scrollback: what another window left
        there) pass `check`; returns them joined by newlines."""
        deadline = time.monotonic() + timeout
        while True:
            rows = "\n".join(await self.screen())
            if check(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.label}: no {what} within {timeout}s; "
                                     f"screen:\n{rows.rstrip()}")
            await asyncio.sleep(POLL)  # polling the screen, bounded by the deadline

    async def type(self, text: str) -> None:
        await self._tmux("send-keys", "-t", "main", "-l", text)

    async def keys(self, *keys: str) -> None:
        await self._tmux("send-keys", "-t", "main", *keys)

    async def enter(self, text: str) -> None:
        await self.type(text)
        await self.keys("Enter")

    async def exit_status(self, timeout: float = TIMEOUT) -> int:
        """Wait for the command to end; its exit status."""
        deadline = time.monotonic() + timeout
        while not (self.status.exists() and self.status.read_text().endswith("\n")):
            if time.monotonic() > deadline:
                await self._dump_stacks()
                raise AssertionError(f"{self.label} still running after {timeout}s:\n"
                                     + await self.text())
            await asyncio.sleep(POLL)
        return int(self.status.read_text())

    async def _dump_stacks(self) -> None:
        """Make a hung Python show where it hangs (faulthandler prints on SIGABRT)."""
        shell = int((await self._tmux("display-message", "-p", "-t", "main",
                                      "#{pane_pid}")).strip())
        children = Path(f"/proc/{shell}/task/{shell}/children")
        with contextlib.suppress(OSError):
            for child in (await asyncio.to_thread(children.read_text)).split():
                os.kill(int(child), signal.SIGABRT)
        with contextlib.suppress(AssertionError):
            await self.wait_for(r"Fatal Python error", timeout=2)

    async def close(self) -> None:
        with contextlib.suppress(AssertionError, TimeoutError):
            await self._tmux("kill-server")


class Screens:
    """Starts screens and always kills their tmux servers (see the `screens` fixtures)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Screen] = []

    async def chatc(self, label: str, port: int, *args: str,
                    env: dict[str, str] | None = None) -> Screen:
        screen = await Screen(self.workdir, label, chatc(port, *args), env).start()
        self.started.append(screen)
        return screen

    async def close(self) -> None:
        for screen in self.started:
            await screen.close()


def chatc(port: int, *args: str) -> list[str]:
    return [CHATC, "127.0.0.1", str(port), *args]


def resident_mb(pid: int) -> float:
    """The memory a process holds (its resident set), from /proc, in MB."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def status_bar(rows: str) -> str:
    """The status bar of a screen's rows: the row above the input line (with no own
    line waiting above it)."""
    filled = [row for row in rows.rstrip("\n").split("\n") if row.strip()]
    return filled[-2] if len(filled) >= 2 else ""


def input_line(rows: list[str]) -> str:
    """The last non-blank row of the screen: where chatc's input line is."""
    return next(row for row in reversed(rows) if row.strip())


def refused_port() -> tuple[socket.socket, int]:
    """A loopback port that refuses connections: bound, never listening (keep the socket)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a broken network would look to the other end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Proxy:
    """A TCP relay to chatd that can cut every connection and refuse new ones.

    `rewrite`, if given, is applied to each line from the server (a server of another
    version, as the client sees it)."""

    def __init__(self, upstream: int,
                 rewrite: Callable[[bytes], bytes] | None = None) -> None:
        self.upstream = upstream
        self.rewrite = rewrite
        self.port = 0
        self.up = True
        self.accepted = 0
        # Each direction can be held: bytes are read but not passed on until released.
        self.to_server = asyncio.Event()
        self.to_client = asyncio.Event()
        self.to_server.set()
        self.to_client.set()
        self._links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        self.accepted += 1
        if not self.up:
            _reset(writer)
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream,
                                                             limit=LINE_LIMIT)
        self._links.append((writer, up_writer))
        back = (self._pipe(up_reader, writer, self.to_client) if self.rewrite is None
                else self._pipe_lines(up_reader, writer, self.to_client, self.rewrite))
        await asyncio.gather(self._pipe(reader, up_writer, self.to_server), back,
                             return_exceptions=True)

    @staticmethod
    async def _pipe_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          gate: asyncio.Event, rewrite: Callable[[bytes], bytes]) -> None:
        while line := await reader.readline():
            await gate.wait()
            if writer.is_closing():
                return
            writer.write(rewrite(line))
            await writer.drain()
        writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    gate: asyncio.Event) -> None:
        while data := await reader.read(65536):
            await gate.wait()
            if writer.is_closing():
                return
            writer.write(data)
            await writer.drain()
        writer.close()

    def cut(self) -> None:
        """The network goes down: both ends of every connection see a reset."""
        self.up = False
        for client, server in self._links:
            _reset(client)
            _reset(server)
        self._links.clear()

    def restore(self) -> None:
        self.up = True
        self.to_server.set()
        self.to_client.set()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def spawn(*args: str, module: bool = False, env: dict[str, str] | None = None
                ) -> asyncio.subprocess.Process:
    argv = [sys.executable, "-m", "chatc"] if module else [CHATC]
    return await asyncio.create_subprocess_exec(
        *argv, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **env} if env else None)


async def read_until(proc: asyncio.subprocess.Process, pattern: str) -> list[str]:
    """stdout lines up to and including the first matching `pattern`."""
    assert proc.stdout is not None
    stdout = proc.stdout
    got: list[str] = []

    async def scan() -> list[str]:
        while raw := await stdout.readline():
            got.append(raw.decode().rstrip("\n"))
            if re.search(pattern, got[-1]):
                return got
        raise AssertionError(f"chatc ended before {pattern!r}; got {got}")

    try:
        return await asyncio.wait_for(scan(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"no {pattern!r} within {TIMEOUT}s; got {got}") from None


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def screens(tmp_path: Path) -> AsyncIterator[Screens]:
    """tmux panes for chatc, all closed after the test (registered by tests/e2e/conftest.py)."""
    made = Screens(tmp_path)
    yield made
    await made.close()


def line(name: str, text: str) -> str:
    """A chat line as chatc's screen shows it: time, <name>, text."""
    return rf"{STAMP} <{re.escape(name)}> {re.escape(text)}"

