"""--db, the new name of --history-db (PROTOCOL.txt 18.11), with a real chatd: it keeps
history across a restart, and a database of an earlier chatd opened by it gets the
accounts tables and keeps its lines."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.harness import Client, StartChatd

TABLES = {"accounts", "read_markers", "login_tokens"}


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_db_keeps_history_across_a_restart_and_holds_the_accounts_tables(
        start_chatd: StartChatd, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    first = await start_chatd("--rate", "0", "--db", str(db))
    alice = await Client.joined(first.port, "alice")
    await alice.say("before the restart", ref="r1")
    await alice.recv_until(lambda m: m.get("ref") == "r1")
    await first.stop()
    assert _tables(db) >= TABLES

    second = await start_chatd("--rate", "0", "--history-db", str(db))  # the old name
    bob = await Client.open(second.port)
    await bob.send({"type": "connect", "name": "bob"})
    got = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert [m["message"] for m in got if m["type"] == "message"] == ["before the restart"]


async def test_a_database_of_an_earlier_chatd_gets_the_tables(
        start_chatd: StartChatd, tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    first = await start_chatd("--rate", "0", "--db", str(db))
    alice = await Client.joined(first.port, "alice")
    await alice.say("kept", ref="r1")
    await alice.recv_until(lambda m: m.get("ref") == "r1")
    await first.stop()
    with sqlite3.connect(db) as conn:  # as an earlier chatd left it
        for table in TABLES:
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM meta WHERE key = 'account_keys'")
    assert not TABLES & _tables(db)

    second = await start_chatd("--rate", "0", "--db", str(db))
    bob = await Client.open(second.port)
    await bob.send({"type": "connect", "name": "bob"})
    got = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert [m["message"] for m in got if m["type"] == "message"] == ["kept"]
    await second.stop()
    assert _tables(db) >= TABLES
