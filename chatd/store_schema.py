"""The history database's file: its tables, what a row costs, how a connection is set up,
and the migrations that bring a database made by an older chatd to today's layout.

chatd.store reads and writes through these tables; this module is the one place that
knows their shape. Every line row carries its size (`line_size`), and a table of rooms
their bytes and last activity, so the writer keeps the byte bound (PROTOCOL.txt 8.7)
without reading lines back. The file gives the space back: it is made with
auto_vacuum=INCREMENTAL (a database made before is converted once, by a VACUUM, when
opened). The accounts tables are chatd.accounts_store's.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from chatd import accounts_store
from chatd.hub import Entry
from chatd.protocol import name_key
from chatd.serverlog import ServerLog

ROOM_KEYS = 2  # the version of chatd.protocol.name_key the rows are keyed by
ROW_OVERHEAD = 64  # bytes a stored line costs besides its text: row, index entry, ids
WAL_LIMIT = 4 * 1024 * 1024  # the WAL file is cut back to this after a checkpoint

# Lines are a rowid table with an index rather than WITHOUT ROWID: rows of up to 64 KiB
# belong in a table b-tree (an index b-tree copies whole rows into its interior pages).
# `size` comes before the text, so summing sizes never reads a line's overflow pages.
_LINES = (
    "CREATE TABLE IF NOT EXISTS lines (room TEXT NOT NULL, k1 INTEGER NOT NULL, "
    "k2 INTEGER NOT NULL, size INTEGER NOT NULL, id TEXT NOT NULL, time TEXT NOT NULL, "
    "name TEXT NOT NULL, message TEXT NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS lines_by_room ON lines (room, k1, k2)",
    "CREATE TABLE IF NOT EXISTS rooms (room TEXT PRIMARY KEY, bytes INTEGER NOT NULL, "
    "active REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rooms_by_activity ON rooms (active)",
)

# The size of a row as `line_size` counts it, in SQL (for rows written before sizes were).
_SIZE_SQL = (f"{ROW_OVERHEAD} + length(CAST(room AS BLOB)) + length(CAST(id AS BLOB)) "
             "+ length(CAST(time AS BLOB)) + length(CAST(name AS BLOB)) "
             "+ length(CAST(message AS BLOB))")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bans (
    kind TEXT NOT NULL, key TEXT NOT NULL, label TEXT NOT NULL, until REAL NOT NULL,
    by TEXT NOT NULL, reason TEXT NOT NULL, since REAL NOT NULL, PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS topics (
    room TEXT PRIMARY KEY, topic TEXT NOT NULL, by TEXT NOT NULL, since REAL NOT NULL
);
"""


def line_size(room: str, entry: Entry) -> int:
    """What a line counts against the database's bound: its UTF-8 text and a row's cost."""
    return (ROW_OVERHEAD + len(room.encode()) + len(entry.id) + len(entry.time)
            + len(entry.name.encode("utf-8", "surrogatepass"))
            + len(entry.message.encode("utf-8", "surrogatepass")))


def connect(path: str | Path, timeout: float = 5.0) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=timeout, check_same_thread=False,
                         isolation_level=None)
    # Before WAL: only a new file takes it this way (an old one needs a VACUUM).
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
    return db


def open_database(path: str | Path, log: ServerLog) -> sqlite3.Connection:
    """A connection to the database at `path`, made or migrated to today's layout."""
    db = connect(path)
    db.executescript(_SCHEMA)
    _migrate_layout(db, log)
    _migrate_room_keys(db)
    accounts_store.migrate(db)
    return db


def _migrate_room_keys(db: sqlite3.Connection) -> None:
    """Rooms are keyed by their look-alike skeleton since key version 2 (PROTOCOL.txt
    5.2); rows written under the older case-folded key move to the new one, once.
    The new key is a function of the old one, and ids are unique across rooms."""
    row = db.execute("SELECT value FROM meta WHERE key = 'room_keys'").fetchone()
    if row is not None and int(row[0]) >= ROOM_KEYS:
        return
    rooms = [r for (r,) in db.execute("SELECT DISTINCT room FROM lines")]
    with db:  # one transaction
        db.execute("BEGIN IMMEDIATE")
        for room in rooms:
            key = name_key(room)
            if key != room:  # a row's size counts its room's key (line_size)
                db.execute("UPDATE lines SET room = ?, size = size + ? WHERE room = ?",
                           (key, len(key.encode()) - len(room.encode()), room))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('room_keys', ?)", (ROOM_KEYS,))
        if any(name_key(room) != room for room in rooms):
            _count_rooms(db)


def _has_sizes(db: sqlite3.Connection) -> bool:
    return any(col[1] == "size" for col in db.execute("PRAGMA table_info(lines)"))


def _count_rooms(db: sqlite3.Connection) -> None:
    """The rooms table from the lines (inside a transaction). Their activity is
    counted from now: an upgrade does not drop rooms idle since before it."""
    db.execute("DELETE FROM rooms")
    db.execute("INSERT INTO rooms SELECT room, SUM(size), ? FROM lines GROUP BY room",
               (time.time(),))


def _migrate_layout(db: sqlite3.Connection, log: ServerLog) -> None:
    """A database from before the byte bound: its lines get their sizes (and a rowid
    table, see _LINES), once; one made without auto_vacuum is converted by a VACUUM,
    once, so that deleted lines give their space back to the file system."""
    started = time.monotonic()
    old = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'lines'"
                     ).fetchone() is not None and not _has_sizes(db)
    with db:
        db.execute("BEGIN IMMEDIATE")
        if old:
            db.execute("ALTER TABLE lines RENAME TO lines_before_sizes")
        for statement in _LINES:
            db.execute(statement)
        if old:
            db.execute("INSERT OR REPLACE INTO lines SELECT room, k1, k2, "
                       f"{_SIZE_SQL}, id, time, name, message FROM lines_before_sizes")
            db.execute("DROP TABLE lines_before_sizes")
            _count_rooms(db)
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("VACUUM")
        log.warning(f"history database: converted to auto_vacuum=incremental"
                    f"{' with line sizes' if old else ''}, once "
                    f"({time.monotonic() - started:.1f}s), so that it can shrink")
