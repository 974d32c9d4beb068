"""chatd.store with accounts (PROTOCOL.txt 18.10): the accounts and read_markers tables
in a real SQLite file, written by the store's writer thread, read back after a restart,
added to a database made by an earlier chatd, and kept within their bounds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chatd.accounts import Account, Accounts, ReadMarkers
from chatd.accounts_store import ACCOUNT_KEYS
from chatd.hub import Entry, id_key
from chatd.protocol import name_key
from chatd.store import SqliteHistory

HASH = "$scrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "B" * 43


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_accounts_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteHistory(path, keep=100)
    accounts = Accounts()
    alice = accounts.add("Alice", HASH, 100.0)
    store.save_account(alice)
    bob = accounts.add("bob", HASH, 101.0, operator=True)
    store.save_account(bob)
    accounts.set_password(alice.key, HASH.replace("B", "C"))
    accounts.touch(alice.key, 200.0)
    store.save_account(alice)
    carol = accounts.add("carol", HASH, 102.0)
    store.save_account(carol)
    accounts.remove(carol.key)
    store.drop_account(carol.key)
    store.close()

    again = SqliteHistory(path, keep=100)
    loaded = Accounts()
    loaded.load(again.load_accounts())
    again.close()
    assert [(a.name, a.key, a.password, a.used, a.operator) for a in loaded] == [
        ("bob", "bob", HASH, 101.0, True),
        ("Alice", "alice", HASH.replace("B", "C"), 200.0, False)]
    assert loaded.bytes == accounts.bytes


def test_read_markers_survive_a_restart_written_once_each(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteHistory(path, keep=100)
    markers = ReadMarkers(id_key)
    for i in range(1, 200):  # a marker moved 199 times is written with its newest id
        if markers.advance("alice", "dev", str(i)):
            store.save_marker("alice", "dev", str(i))
    markers.advance("alice", "lobby", "50")
    store.save_marker("alice", "lobby", "50")
    markers.advance("bob", "dev", "7")
    store.save_marker("bob", "dev", "7")
    store.close()

    again = SqliteHistory(path, keep=100)
    loaded = ReadMarkers(id_key)
    loaded.load(again.load_markers())
    again.close()
    assert sorted(loaded.rows()) == sorted(markers.rows())


def test_dropping_an_account_drops_its_markers_even_unwritten_ones(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteHistory(path, keep=100)
    store.save_account(Account("alice", "alice", HASH, 1.0, 1.0))
    store.save_marker("alice", "dev", "5")
    store.save_marker("bob", "dev", "6")
    store.drop_account("alice")
    store.save_marker("bob", "lobby", "8")
    store.close()
    assert _rows(path, "SELECT * FROM accounts") == []
    assert sorted(_rows(path, "SELECT account, room, id FROM read_markers")) == [
        ("bob", "dev", "6"), ("bob", "lobby", "8")]


def test_the_markers_table_keeps_its_bounds(tmp_path: Path) -> None:
    """Per account and in all, the least recently moved rows going first (18.8)."""
    path = tmp_path / "chat.db"
    store = SqliteHistory(path, keep=100, markers_per_account=3, max_markers=5)
    for room in "abcde":  # one commit each: later rows are moved later
        store.save_marker("alice", room, "1")
        store.close()
        store = SqliteHistory(path, keep=100, markers_per_account=3, max_markers=5)
    for room in "xyz":
        store.save_marker("bob", room, "2")
        store.close()
        store = SqliteHistory(path, keep=100, markers_per_account=3, max_markers=5)
    store.close()
    rows = _rows(path, "SELECT account, room FROM read_markers ORDER BY moved")
    assert rows == [("alice", "d"), ("alice", "e"), ("bob", "x"), ("bob", "y"), ("bob", "z")]


def test_a_database_of_an_earlier_chatd_gets_the_tables_and_keeps_its_history(
        tmp_path: Path) -> None:
    """The schema before accounts: lines, rooms, meta, bans, topics (no accounts, no
    read_markers). Opening it adds the tables; its lines and ids are kept."""
    path = tmp_path / "old.db"
    old = SqliteHistory(path, keep=100)
    old.append("lobby", Entry((7, 0, 0), "7", "2026-01-01T00:00:00.000Z", "bob", "hi"))
    old.close()
    with sqlite3.connect(path) as conn:  # back to the layout of an earlier chatd
        conn.execute("DROP TABLE accounts")
        conn.execute("DROP TABLE read_markers")
        conn.execute("DELETE FROM meta WHERE key = 'account_keys'")
    store = SqliteHistory(path, keep=100)
    assert [e.message for e in store.load("lobby", 10)] == ["hi"]
    assert store.load_accounts() == [] and store.load_markers() == []
    store.save_account(Account("dave", "dave", HASH, 1.0, 1.0))
    store.close()
    assert _rows(path, "SELECT name FROM accounts") == [("dave",)]
    assert _rows(path, "SELECT value FROM meta WHERE key = 'account_keys'") == [
        (ACCOUNT_KEYS,)]


def test_accounts_written_under_an_older_key_are_keyed_again(tmp_path: Path) -> None:
    """The name is kept as registered, so a change of name_key re-keys the rows."""
    path = tmp_path / "chat.db"
    SqliteHistory(path, keep=100).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO accounts VALUES ('Room1', 'Room1', ?, 1, 1, 0)", (HASH,))
        conn.execute("INSERT INTO read_markers VALUES ('Room1', 'dev', '5', 1)")
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'account_keys'")
    store = SqliteHistory(path, keep=100)
    [account] = store.load_accounts()
    assert account.key == name_key("Room1") == "roornl"
    assert store.load_markers() == [("roornl", "dev", "5")]
    store.close()
