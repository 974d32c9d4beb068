"""The real `nc` (netcat-openbsd) as a text-mode client, on pipes; the `open_nc` fixture
(registered by tests/e2e/conftest.py) kills every nc still running after the test."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support.harness import TIMEOUT

NC = shutil.which("nc") or "/usr/bin/nc"


class Nc:
    """`nc -N 127.0.0.1 PORT` with pipes: write lines to its stdin, read its stdout lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[str] = []

    @classmethod
    async def open(cls, port: int) -> Nc:
        proc = await asyncio.create_subprocess_exec(
            NC, "-N", "127.0.0.1", str(port),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        return cls(proc)

    async def send(self, line: str | bytes) -> None:
        assert self.proc.stdin is not None
        data = line.encode() if isinstance(line, str) else line
        self.proc.stdin.write(data + b"\n")
        await asyncio.wait_for(self.proc.stdin.drain(), TIMEOUT)

    async def raw_line(self, timeout: float = TIMEOUT) -> bytes:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise EOFError(f"nc's output ended; seen: {self.seen}")
        return line

    async def line(self, timeout: float = TIMEOUT) -> str:
        text = (await self.raw_line(timeout)).decode("utf-8")
        assert text.endswith("\n")
        self.seen.append(text[:-1])
        return text[:-1]

    async def until(self, match: Callable[[str], bool] | str,
                    timeout: float = TIMEOUT) -> list[str]:
        """Lines up to and including the first that matches (a string matches exactly)."""
        test = (lambda s: s == match) if isinstance(match, str) else match
        got: list[str] = []

        async def scan() -> list[str]:
            while True:
                got.append(await self.line())
                if test(got[-1]):
                    return got

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(f"nc: no matching line within {timeout}s; got {got}") from None

    async def eof(self, timeout: float = TIMEOUT) -> bytes:
        """Close nc's stdin (nc -N then shuts its socket's write side); the rest of its output."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        return await asyncio.wait_for(self.proc.stdout.read(), timeout)

    async def exit_code(self, timeout: float = TIMEOUT) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


OpenNc = Callable[[int], Awaitable[Nc]]


@pytest.fixture
async def open_nc() -> AsyncIterator[OpenNc]:
    """Start nc processes; every one still running is killed after the test."""
    procs: list[Nc] = []

    async def opener(port: int) -> Nc:
        nc = await Nc.open(port)
        procs.append(nc)
        return nc

    yield opener
    for nc in procs:
        nc.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(nc.proc.wait(), TIMEOUT)
