"""History that outlives the process: room lines in SQLite (stdlib sqlite3).

Writes stay off the broadcast path: `append` only queues the line, and a writer
thread commits queued lines in batches every `interval` seconds. `close` commits
everything still queued, so a clean shutdown loses no acknowledged line. The id
sequence is reserved in blocks, so ids keep increasing across restarts even though
notices (which are not stored) use ids too.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from pathlib import Path

from chatd.hub import Entry

ID_BLOCK = 100_000  # ids reserved ahead; a crash skips at most this many

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    room TEXT NOT NULL, k1 INTEGER NOT NULL, k2 INTEGER NOT NULL,
    id TEXT NOT NULL, time TEXT NOT NULL, name TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (room, k1, k2)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SqliteHistory:
    def __init__(self, path: str | Path, keep: int, interval: float = 0.1) -> None:
        self.path = str(path)
        self.keep = keep  # lines kept per room
        self.interval = interval
        self._db = self._connect()
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()
        self.first_id = int(row[0]) if row else 0
        self.reserved = 0
        self._queue: queue.SimpleQueue[tuple[str, Entry] | int | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="history-writer",
                                        daemon=True)
        self.reserve(self.first_id)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    # ------------------------------------------------------------------ HistorySink

    def load(self, room: str, limit: int) -> list[Entry]:
        rows = self._db.execute(
            "SELECT k1, k2, id, time, name, message FROM lines WHERE room = ? "
            "ORDER BY k1 DESC, k2 DESC LIMIT ?", (room, limit)).fetchall()
        return [Entry((k1, k2, 0), id_, time, name, message)
                for k1, k2, id_, time, name, message in reversed(rows)]

    def append(self, room: str, entry: Entry) -> None:
        self._queue.put((room, entry))

    def reserve(self, seq: int) -> None:
        """Make sure ids up to `seq` will never be handed out again after a restart."""
        if seq >= self.reserved - ID_BLOCK // 2:
            self.reserved = seq + ID_BLOCK
            if self._writer.is_alive():
                self._queue.put(self.reserved)
            else:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('next_id', ?)",
                                 (self.reserved,))

    def close(self) -> None:
        """Commit everything queued, then stop the writer."""
        self._queue.put(None)
        self._writer.join()
        self._db.close()

    # ------------------------------------------------------------------ writer thread

    def _write_loop(self) -> None:
        db = self._connect()
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[tuple[str, Entry] | int | None] = [item]
            try:
                while True:
                    batch.append(self._queue.get(timeout=self.interval))
            except queue.Empty:
                pass
            stop = None in batch
            self._commit(db, [b for b in batch if b is not None])
        db.close()

    def _commit(self, db: sqlite3.Connection, batch: list[tuple[str, Entry] | int]) -> None:
        lines = [b for b in batch if isinstance(b, tuple)]
        marks = [b for b in batch if isinstance(b, int)]
        with db:
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO lines VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(room, e.key[0], e.key[1], e.id, e.time, e.name, e.message)
                 for room, e in lines])
            if marks:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('next_id', ?)", (max(marks),))
            for room in {room for room, _ in lines}:
                db.execute(
                    "DELETE FROM lines WHERE room = ?1 AND k1 < (SELECT k1 FROM lines "
                    "WHERE room = ?1 ORDER BY k1 DESC, k2 DESC LIMIT 1 OFFSET ?2)",
                    (room, self.keep - 1))
