"""--history-db durability (PROTOCOL.txt 9.4, 8.7; issue 12 items 1 and 2), against a real
chatd and a real SQLite file read and locked from this process (another process than chatd).

Every wait polls the database or waits for a log line, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.support.harness import TIMEOUT, Client, StartChatd, is_join

RATE = 20  # lines a second, the steady traffic of the measurement


@contextlib.contextmanager
def _open(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db, timeout=TIMEOUT, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _stored(db: Path) -> set[str]:
    """The messages in the database, as another process sees them now."""
    with _open(db) as conn:
        return {row[0] for row in conn.execute("SELECT message FROM lines")}


async def _poll(db: Path, done: Callable[[set[str]], bool], what: str) -> set[str]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        stored = _stored(db)
        if done(stored):
            return stored
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in the database within {TIMEOUT}s; "
                                 f"{len(stored)} line(s) there")
        await asyncio.sleep(0.02)


async def _acked(client: Client, text: str) -> dict[str, Any]:
    await client.say(text, ref=text)
    reply = await client.recv("ack", "error")
    assert reply.get("ref") == text, reply
    return reply


async def test_steady_traffic_is_committed_as_it_flows_and_survives_kill_9(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """Issue 12.1, PROTOCOL.txt 9.4: at a steady pace, lines show up in the database while
    the traffic goes on (the writer never waits for a pause), every acknowledged line is
    committed without a shutdown, and what was committed survives kill -9. (How soon a
    line is committed is a figure for benchmarks: here the waits are failure deadlines.)"""
    db = tmp_path / "history.sqlite"
    server = await start_chatd("--rate", "0", "--history-db", str(db))
    alice = await Client.joined(server.port, "alice")
    acked: list[str] = []

    # The sender goes on until another process sees RATE of its lines in the database:
    # a writer that waited for the traffic to pause would keep them out until the deadline.
    deadline = time.monotonic() + 6 * TIMEOUT
    while len(_stored(db)) < RATE:
        assert time.monotonic() < deadline, f"{len(acked)} lines acknowledged, none committed"
        text = f"steady {len(acked)}"
        await alice.say(text, ref=text)
        acked.append((await alice.recv("ack"))["ref"])
        await asyncio.sleep(1 / RATE)  # the shape of the traffic, not a wait for anything

    await _poll(db, lambda s: set(acked) <= s, "every acknowledged line")
    server.signal(signal.SIGKILL)
    assert await server.wait() == -signal.SIGKILL
    assert set(acked) <= _stored(db)


async def test_a_locked_database_loses_no_acknowledged_line(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """Issue 12.2: another process holds the write lock while lines come in: the writer
    keeps them, says so in the log, and writes all of them once the lock is gone; a clean
    shutdown keeps them too."""
    db = tmp_path / "history.sqlite"
    server = await start_chatd("--rate", "0", "--history-db", str(db))
    alice = await Client.joined(server.port, "alice")
    await _acked(alice, "before")
    await _poll(db, lambda s: "before" in s, "the first line")

    texts = [f"while locked {i}" for i in range(40)]
    with _open(db) as locker:
        locker.execute("BEGIN IMMEDIATE")
        for text in texts[:20]:
            assert (await _acked(alice, text))["type"] == "ack"
        await server.wait_log("history database: cannot write .*locked")
        for text in texts[20:]:  # lines go on being acknowledged while it fails
            assert (await _acked(alice, text))["type"] == "ack"
        assert not set(texts) & _stored(db)
        locker.execute("ROLLBACK")

    await _poll(db, lambda s: set(texts) <= s, "every line acknowledged while locked")
    await server.wait_log("history database: writing again")
    await _acked(alice, "after")
    server.signal(signal.SIGTERM)
    assert await server.wait() == 0
    assert {"before", "after", *texts} <= _stored(db)
    assert not [line for line in server.log if "could not be written" in line]


async def test_past_the_backlog_lines_are_refused_then_accepted_again(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """PROTOCOL.txt 8.7: with --history-db-backlog 5 and the database locked, five lines
    are acknowledged and kept, the rest are refused with unavailable (not acknowledged,
    not delivered); once the lock is gone lines are accepted again."""
    db = tmp_path / "history.sqlite"
    server = await start_chatd("--rate", "0", "--history-db", str(db),
                               "--history-db-backlog", "5")
    alice = await Client.joined(server.port, "alice")
    bob = await Client.joined(server.port, "bob")
    await alice.recv_until(is_join("bob"))
    await _acked(alice, "before")
    await _poll(db, lambda s: "before" in s, "the first line")

    with _open(db) as locker:
        locker.execute("BEGIN IMMEDIATE")
        replies = [await _acked(alice, f"locked {i}") for i in range(8)]
        assert [r["type"] for r in replies] == ["ack"] * 5 + ["error"] * 3
        for error in replies[5:]:
            assert error["code"] == "unavailable"
            assert "history database" in str(error["message"])
        await server.wait_log("refusing chat lines")
        await server.wait_log("history database: cannot write .*locked")
        locker.execute("ROLLBACK")

    kept = {f"locked {i}" for i in range(5)}
    await _poll(db, lambda s: kept <= s, "the lines acknowledged while locked")
    await server.wait_log("history database: writing again")
    assert (await _acked(alice, "after"))["type"] == "ack"
    got = await bob.recv_until(lambda m: m.get("message") == "after")
    assert [m["message"] for m in got if m["type"] == "message"] == [
        "before", *[f"locked {i}" for i in range(5)], "after"]
    server.signal(signal.SIGTERM)
    assert await server.wait() == 0
    assert _stored(db) == {"before", *kept, "after"}
