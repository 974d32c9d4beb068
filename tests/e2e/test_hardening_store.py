"""Stores that outlive connections stay bounded in bytes (issue 22 items 4-6): the
history database (PROTOCOL.txt 8.7) and Redis in a cluster (14.6), against a real chatd,
a real SQLite file read from this process and a real redis-server.

Every wait is for a server line, or polls the database or Redis, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from chatd.protocol import name_key
from tests.conftest import StartChatd
from tests.harness import TIMEOUT, Client

T = TypeVar("T")
LINE = 64_000  # bytes of a line, as in the runs


async def _poll(probe: Callable[[], T | Awaitable[T]], done: Callable[[T], bool], what: str,
                timeout: float = TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if isinstance(value, Awaitable):
            value = await value
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {value!r:.300})")
        await asyncio.sleep(0.05)


def _rooms(db: Path) -> dict[str, list[str]]:
    """room -> the first words of its stored lines, oldest first."""
    with contextlib.closing(sqlite3.connect(db, timeout=TIMEOUT)) as conn:
        rooms: dict[str, list[str]] = {}
        for room, head in conn.execute(
                "SELECT room, substr(message, 1, 12) FROM lines ORDER BY k1, k2"):
            rooms.setdefault(room, []).append(head.rstrip("x").strip())
    return rooms


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _text_bytes(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=TIMEOUT)) as conn:
        total: int = conn.execute(
            "SELECT COALESCE(SUM(length(CAST(message AS BLOB))), 0) FROM lines").fetchone()[0]
    return total


async def _send(client: Client, words: str, count: int) -> None:
    """`count` lines of LINE bytes, "<words> <i> xxx...", each acknowledged."""
    for i in range(count):
        await client.say(f"{words} {i} ".ljust(LINE, "x"), ref=str(i))
    await client.recv_until(lambda m: m.get("ref") == str(count - 1), timeout=TIMEOUT * 3)


async def test_the_history_database_keeps_its_byte_bound_and_gives_the_space_back(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """Issue 22.4: rooms of their own fed 64,000-byte lines, 4 MB in all, into a database
    bounded at 1 MiB: the lines in it stay within the bound, the least recently active
    room goes first, every room keeps its newest lines, and the file stays small (before
    the fix it held every line: 4 MB and growing)."""
    db = tmp_path / "history.sqlite"
    server = await start_chatd("--rate", "0", "--max-per-ip", "0", "--history-db", str(db),
                               "--history-db-max-bytes", "1M")
    quiet = await Client.joined(server.port, "quiet", room="quiet")
    await _send(quiet, "q", 3)
    await _poll(lambda: _rooms(db), lambda r: len(r.get(name_key("quiet"), ())) == 3,
                "quiet's lines")
    busy = [await Client.joined(server.port, f"busy{i}", room=f"busy{i}") for i in range(3)]
    await asyncio.gather(*(_send(c, c.name, 20) for c in busy))
    await _send(busy[0], "last", 1)  # written after every line before it
    rooms = await _poll(lambda: _rooms(db), lambda r: "last 0" in r.get(name_key("busy0"), ()),
                        "the last line")
    assert name_key("quiet") not in rooms  # the least recently active room went first
    assert _text_bytes(db) <= 1024 * 1024
    assert sum(map(len, rooms.values())) >= 12  # the bound is used, not emptied
    limit = 1024 * 1024 + 1024 * 1024  # the bound, and slack for free pages and b-trees
    size = await _poll(lambda: db.stat().st_size, lambda s: s < limit, "the file shrinking")
    assert size < limit
    assert _size(Path(f"{db}-wal")) < 6 * 1024 * 1024  # 8.7: at most about 5 MiB


async def test_a_room_idle_past_the_retention_leaves_the_database(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """PROTOCOL.txt 8.7 (--history-idle): a room nobody writes to goes whole, even while
    no line comes; one written to since keeps its lines."""
    db = tmp_path / "history.sqlite"
    server = await start_chatd("--rate", "0", "--history-db", str(db), "--history-idle", "1")
    alice = await Client.joined(server.port, "alice", room="forgotten")
    await alice.say("from long ago", ref="a")
    await alice.recv_until(lambda m: m.get("ref") == "a")
    room = name_key("forgotten")
    await _poll(lambda: _rooms(db), lambda r: room in r, "the line stored")
    await _poll(lambda: _rooms(db), lambda r: room not in r, "the idle room dropped")
    await alice.close()
    server.signal()
    assert await server.wait() == 0
