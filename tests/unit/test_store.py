"""chatd.store and its writer (chatd.store_writer): the retry pacing and reporting (pure,
with the time passed in), and the SqliteHistory writer against a real SQLite file, locked
by a second connection; the migrations of chatd.store_schema."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatd import protocol as p
from chatd.hub import Entry
from chatd.serverlog import ServerLog
from chatd.store import SqliteHistory
from chatd.store_schema import line_size
from chatd.store_writer import MAX_BATCH, Outage

DEADLINE = 10.0


def test_outage_reports_once_then_in_summary_then_on_recovery() -> None:
    outage = Outage(first_delay=0.1, max_delay=1.0, summary_every=10.0)
    assert outage.succeeded(0.0, 0, 0) == ""  # no outage, nothing to say
    delay, note = outage.failed(100.0, "database is locked", waiting=3, refused=7)
    assert delay == 0.1 and outage.failing
    assert "cannot write (database is locked)" in note and "3 line(s)" in note
    delays, notes = [], []
    for now in (101.0, 102.0, 103.0, 104.0, 105.0, 109.9):
        delay, note = outage.failed(now, "database is locked", waiting=50, refused=7)
        delays.append(delay)
        notes.append(note)
    assert delays == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]  # doubling, capped
    assert notes == [""] * 6  # quiet between summaries
    delay, note = outage.failed(110.0, "disk I/O error", waiting=60, refused=9)
    assert "still cannot write after 10.0s" in note
    assert "8 tries, last: disk I/O error" in note
    assert "60 line(s) waiting, 9 refused since the last write" in note
    assert outage.failed(115.0, "x", 60, 9)[1] == ""
    note = outage.succeeded(116.5, waiting=0, refused=12)
    assert "writing again after 16.5s (9 failed tries)" in note and "12 refused" in note
    assert not outage.failing
    assert outage.succeeded(117.0, 0, 12) == ""  # said once
    delay, note = outage.failed(200.0, "database is locked", 1, 12)
    assert delay == 0.1 and "cannot write" in note  # a new outage is reported anew


def _entry(i: int) -> Entry:
    return Entry((i + 1, 0, 0), str(i + 1), "2026-01-01T00:00:00.000Z", "alice", f"line {i}")


def _count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT count(*) FROM lines").fetchone()[0]
    return count


def _until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE}s"
        time.sleep(0.01)


@pytest.fixture
def log() -> tuple[ServerLog, io.StringIO]:
    stream = io.StringIO()
    return ServerLog("info", stream), stream


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Callable[[], sqlite3.Connection]]:
    """Takes the database's write lock from a second connection, as another process would."""
    conns: list[sqlite3.Connection] = []

    def lock() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "h.db", isolation_level=None, timeout=DEADLINE)
        conn.execute("BEGIN IMMEDIATE")
        conns.append(conn)
        return conn

    yield lock
    for conn in conns:
        conn.close()


def test_a_steady_stream_is_committed_without_waiting_for_a_pause(tmp_path: Path) -> None:
    """Issue 12.1: appends that never pause still reach the database."""
    path = tmp_path / "h.db"
    store = SqliteHistory(path, keep=100_000)
    deadline = time.monotonic() + DEADLINE
    i = 0
    while _count(path) == 0:
        assert time.monotonic() < deadline, f"{i} lines appended, none committed"
        for _ in range(20):
            store.append("lobby", _entry(i))
            i += 1
    store.close()
    assert _count(path) == i


def test_close_writes_every_queued_line_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = SqliteHistory(path, keep=100_000)
    for i in range(2 * MAX_BATCH + 7):
        store.append("lobby", _entry(i))
    store.close()
    assert _count(path) == 2 * MAX_BATCH + 7


def test_a_locked_database_keeps_lines_up_to_the_backlog(
    tmp_path: Path, log: tuple[ServerLog, io.StringIO],
    locked: Callable[[], sqlite3.Connection],
) -> None:
    """Issue 12.2: lines wait while the database is locked, `accepting` turns False at the
    bound, and everything is written once the lock goes."""
    path = tmp_path / "h.db"
    store = SqliteHistory(path, keep=1000, backlog=4, log=log[0])
    locker = locked()
    for i in range(4):
        assert store.accepting()
        store.append("lobby", _entry(i))
    assert not store.accepting() and not store.accepting()
    assert store.refused == 2
    _until(lambda: "cannot write (database is locked)" in log[1].getvalue(), "a warning")
    assert _count(path) == 0
    locker.execute("ROLLBACK")
    _until(lambda: store.unwritten == 0, "the backlog written")
    assert store.accepting()
    store.close()
    assert _count(path) == 4
    text = log[1].getvalue()
    assert text.count("cannot write") == 1
    assert "refusing chat lines" in text and "accepting chat lines again" in text
    assert "writing again after" in text and "2 refused since the last write" in text
    assert "could not be written" not in text


def test_close_gives_up_after_its_timeout_and_says_how_many_lines_are_lost(
    tmp_path: Path, log: tuple[ServerLog, io.StringIO],
    locked: Callable[[], sqlite3.Connection],
) -> None:
    path = tmp_path / "h.db"
    store = SqliteHistory(path, keep=1000, log=log[0], close_timeout=0.5)
    locked()
    for i in range(3):
        store.append("lobby", _entry(i))
    closing = threading.Thread(target=store.close)
    closing.start()
    closing.join(DEADLINE)  # a failure deadline: close must give up, not hang
    assert not closing.is_alive(), "close kept waiting for a locked database"
    assert "3 acknowledged line(s) could not be written" in log[1].getvalue()


_OLD_SCHEMA = """
CREATE TABLE lines (
    room TEXT NOT NULL, k1 INTEGER NOT NULL, k2 INTEGER NOT NULL,
    id TEXT NOT NULL, time TEXT NOT NULL, name TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (room, k1, k2)
) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def _old_database(path: Path, rows: list[tuple[str, int, str]]) -> None:
    """A database as chatd wrote it before the byte bound: no sizes, no auto_vacuum, in
    WAL mode; rows are (room, id, message)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(_OLD_SCHEMA)
    db.executemany("INSERT INTO lines VALUES (?, ?, 0, ?, '2026-01-01T00:00:00.000Z', "
                   "'bob', ?)", [(room, i, str(i), text) for room, i, text in rows])
    db.close()


def test_rows_under_old_room_keys_move_to_the_look_alike_keys(tmp_path: Path) -> None:
    """PROTOCOL.txt 5.2: a database written before rooms were keyed by their skeleton
    ("room1" was its own key; now it is "roornl") keeps its history."""
    path = tmp_path / "old.sqlite"
    _old_database(path, [("room1", 5, "from before")])
    again = SqliteHistory(path, 100)
    try:
        assert [e.message for e in again.load(p.name_key("room1"), 10)] == ["from before"]
        assert again.stored == line_size(p.name_key("room1"), again.load(
            p.name_key("room1"), 1)[0])
    finally:
        again.close()


def _pragma(path: Path, name: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        value: int = conn.execute(f"PRAGMA {name}").fetchone()[0]
    return value


def _stored(path: Path) -> dict[str, list[str]]:
    """room -> messages, oldest first, as another connection sees them."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rooms: dict[str, list[str]] = {}
        for room, message in conn.execute("SELECT room, message FROM lines ORDER BY k1, k2"):
            rooms.setdefault(room, []).append(message)
    return rooms


def test_a_database_from_before_the_bound_is_converted_once(
    tmp_path: Path, log: tuple[ServerLog, io.StringIO],
) -> None:
    """PROTOCOL.txt 8.7: an old database keeps its lines, gets their sizes, and is made
    able to shrink (auto_vacuum=INCREMENTAL) by one VACUUM, said in the log once."""
    path = tmp_path / "old.sqlite"
    _old_database(path, [("lobby", i, f"old {i}") for i in range(50)]
                  + [("dev", 100 + i, "d" * 1000) for i in range(5)])
    assert _pragma(path, "auto_vacuum") == 0
    store = SqliteHistory(path, 100, log=log[0])
    assert [e.message for e in store.load("lobby", 3)] == ["old 47", "old 48", "old 49"]
    expected = sum(line_size(room, entry) for room in ("lobby", "dev")
                   for entry in store.load(room, 100))
    assert store.stored == expected
    store.close()
    assert _pragma(path, "auto_vacuum") == 2
    assert log[1].getvalue().count("converted to auto_vacuum=incremental") == 1
    SqliteHistory(path, 100, log=log[0]).close()
    assert log[1].getvalue().count("converted") == 1


def _line(room: str, i: int, size: int) -> tuple[str, Entry]:
    return room, Entry((i + 1, 0, 0), str(i + 1), "2026-01-01T00:00:00.000Z", "alice",
                       f"{room} {i} ".ljust(size, "x"))


def _write(store: SqliteHistory, path: Path, lines: list[tuple[str, Entry]]) -> None:
    """Append and wait until the last one is in the database (one or more commits)."""
    for room, entry in lines:
        store.append(room, entry)
    last = lines[-1][1].message
    _until(lambda: last in _stored(path).get(lines[-1][0], []), "the lines written")


def test_past_the_bound_the_least_recently_active_room_loses_its_oldest_lines_first(
    tmp_path: Path,
) -> None:
    """PROTOCOL.txt 8.7: the lines in the database stay within max_bytes; the room least
    recently written to gives up its oldest lines first, then the next; the file gives
    the space back."""
    path = tmp_path / "h.db"
    store = SqliteHistory(path, keep=1000, max_bytes=400_000)
    _write(store, path, [_line("quiet", i, 50_000) for i in range(3)])
    _write(store, path, [_line("older", 10 + i, 50_000) for i in range(4)])
    _write(store, path, [_line("busy", 100 + i, 50_000) for i in range(4)])
    _until(lambda: "quiet" not in _stored(path), "the least recently active room gone")
    kept = _stored(path)
    # 7 lines of 50 KB and their overhead fit in 400,000 bytes: 3 + 1 went
    assert [m[:9] for m in kept["older"]] == ["older 11 ", "older 12 ", "older 13 "]
    assert [m.split()[1] for m in kept["busy"]] == ["100", "101", "102", "103"]
    assert store.stored <= 400_000
    for i in range(12):  # 600 KB more through the same room: the file stays small
        _write(store, path, [_line("busy", 200 + i, 50_000)])
    assert store.stored <= 400_000 and len(_stored(path)["busy"]) == 7
    store.close()
    assert path.stat().st_size < 2 * 400_000 + 512 * 1024


def test_a_room_idle_past_the_retention_goes_whole(tmp_path: Path) -> None:
    """PROTOCOL.txt 8.7: a room with no new line for `idle` seconds leaves the database,
    checked even when no line comes."""
    path = tmp_path / "h.db"
    store = SqliteHistory(path, keep=1000, idle=0.5)
    _write(store, path, [_line("gone", i, 100) for i in range(3)])
    _until(lambda: "gone" not in _stored(path), "the idle room dropped")
    assert store.stored == 0
    store.close()


def test_the_backlog_is_bounded_in_bytes_too(
    tmp_path: Path, locked: Callable[[], sqlite3.Connection],
) -> None:
    """PROTOCOL.txt 8.7: a few big lines fill the backlog long before its line count."""
    path = tmp_path / "h.db"
    store = SqliteHistory(path, keep=1000, backlog=10_000, backlog_bytes=500_000)
    locked()
    accepted = 0
    while store.accepting():
        store.append(*_line("lobby", accepted, 64_000))
        accepted += 1
    assert accepted == 4  # 128 KB a line in memory (two bytes a character and more)
    assert store.unwritten_bytes >= 500_000
    store.close_timeout = 0.1
    store.close()
