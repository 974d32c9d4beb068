"""History that outlives the process: room lines in SQLite (stdlib sqlite3).

Writes stay off the broadcast path: `append` only queues the line. A writer thread
commits queued lines in batches, each at most `interval` seconds after its first line
reached the writer, whatever the load (a steady stream never postpones a commit), and
at most MAX_BATCH lines a transaction (PROTOCOL.txt 9.4).

A failed write loses nothing: the lines stay queued and the writer tries again with a
growing backoff, saying so in the log (`Outage`). The lines not yet in the database are
bounded by `backlog`: past it `accepting()` is False and the hub refuses new chat lines
with `unavailable` rather than acknowledge lines that could not be kept (PROTOCOL.txt
8.7). `close` writes what is queued, waiting at most `close_timeout` seconds, and logs
how many lines it could not write.

The id sequence is reserved in blocks, so ids keep increasing across restarts even
though notices (which are not stored) use ids too.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, TypeAlias

from chatd.hub import Entry
from chatd.moderation import BanRecord, TopicRecord
from chatd.protocol import name_key
from chatd.serverlog import ServerLog

ROOM_KEYS = 2  # the version of chatd.protocol.name_key the rows are keyed by
ID_BLOCK = 100_000  # ids reserved ahead; a crash skips at most this many
MAX_BATCH = 1000  # lines a transaction: a commit stays short whatever the backlog
BUSY_TIMEOUT = 0.5  # seconds SQLite waits for another process's lock before failing
CLOSE_TIMEOUT = 5.0  # seconds a clean shutdown waits for the backlog to be written

Item: TypeAlias = tuple[str, Entry] | int  # a line of a room, or an id reservation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    room TEXT NOT NULL, k1 INTEGER NOT NULL, k2 INTEGER NOT NULL,
    id TEXT NOT NULL, time TEXT NOT NULL, name TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (room, k1, k2)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bans (
    kind TEXT NOT NULL, key TEXT NOT NULL, label TEXT NOT NULL, until REAL NOT NULL,
    by TEXT NOT NULL, reason TEXT NOT NULL, since REAL NOT NULL, PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS topics (
    room TEXT PRIMARY KEY, topic TEXT NOT NULL, by TEXT NOT NULL, since REAL NOT NULL
);
"""


class Outage:
    """How the writer paces retries and reports failing writes; pure (time is passed in).

    The log gets one warning when writes start failing, a summary every `summary_every`
    seconds while they go on, and one line when a write succeeds again.
    """

    def __init__(self, first_delay: float = 0.1, max_delay: float = 1.0,
                 summary_every: float = 10.0) -> None:
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.summary_every = summary_every
        self.since: float | None = None  # when the current outage began
        self.delay = 0.0
        self.failures = 0
        self.error = ""
        self._summary_at = 0.0
        self._refused_before = 0  # refusals counted at the last good write

    @property
    def failing(self) -> bool:
        return self.since is not None

    def failed(self, now: float, error: str, waiting: int, refused: int) -> tuple[float, str]:
        """A write failed: the seconds to wait before the next try, and a log line ("" for
        none). `waiting` lines are not written yet; `refused` counts refusals ever made."""
        self.failures += 1
        self.error = error
        if self.since is None:
            self.since, self.delay = now, self.first_delay
            self._summary_at = now + self.summary_every
            return self.delay, (f"history database: cannot write ({error}); keeping "
                                f"{waiting} line(s) in memory and retrying")
        self.delay = min(self.delay * 2, self.max_delay)
        if now < self._summary_at:
            return self.delay, ""
        self._summary_at = now + self.summary_every
        return self.delay, (
            f"history database: still cannot write after {now - self.since:.1f}s "
            f"({self.failures} tries, last: {error}); {waiting} line(s) waiting, "
            f"{refused - self._refused_before} refused since the last write")

    def succeeded(self, now: float, waiting: int, refused: int) -> str:
        """A write went through: the log line ending an outage ("" when there was none)."""
        refused_before, self._refused_before = self._refused_before, refused
        if self.since is None:
            return ""
        note = (f"history database: writing again after {now - self.since:.1f}s "
                f"({self.failures} failed tries); {waiting} line(s) still to write, "
                f"{refused - refused_before} refused since the last write")
        self.since, self.failures, self.error = None, 0, ""
        return note


class SqliteHistory:
    durable = True  # every line is written: a room nobody is in is loaded again

    def __init__(self, path: str | Path, keep: int, *, interval: float = 0.1,
                 backlog: int = 10_000, log: ServerLog | None = None,
                 close_timeout: float = CLOSE_TIMEOUT) -> None:
        self.path = str(path)
        self.keep = keep  # lines kept per room
        self.interval = interval  # the longest a line waits in the writer before a commit
        self.backlog = max(1, backlog)  # lines not yet written, past which lines are refused
        self.close_timeout = close_timeout
        self.refused = 0  # chat lines refused because the backlog was full
        self.write_failures = 0  # transactions that failed (and were tried again)
        self._log = log or ServerLog("warning")
        try:  # the writer thread reports through the event loop, when there is one
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._db = self._connect()
        self._db.executescript(_SCHEMA)
        self._migrate_room_keys()
        row = self._db.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()
        self.first_id = int(row[0]) if row else 0
        self.reserved = 0
        # Each count has one writer (loop thread, writer thread): no lock is needed.
        self._appended = 0
        self._written = 0
        self._refusing = False
        self._outage = Outage()
        self._notes: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._abandon = threading.Event()
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="history-writer",
                                        daemon=True)
        self.reserve(self.first_id)
        self._writer.start()

    def _migrate_room_keys(self) -> None:
        """Rooms are keyed by their look-alike skeleton since key version 2 (PROTOCOL.txt
        5.2); rows written under the older case-folded key move to the new one, once.
        The new key is a function of the old one, and ids are unique across rooms."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'room_keys'").fetchone()
        if row is not None and int(row[0]) >= ROOM_KEYS:
            return
        rooms = [r for (r,) in self._db.execute("SELECT DISTINCT room FROM lines")]
        with self._db:  # one transaction
            self._db.execute("BEGIN IMMEDIATE")
            for room in rooms:
                key = name_key(room)
                if key != room:
                    self._db.execute("UPDATE lines SET room = ? WHERE room = ?", (key, room))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('room_keys', ?)",
                             (ROOM_KEYS,))

    def _connect(self, timeout: float = 5.0) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False,
                             isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @property
    def failing(self) -> bool:
        """Whether the last write failed (until one succeeds): /readyz says not ready."""
        return self._outage.failing

    @property
    def unwritten(self) -> int:
        """Lines acknowledged (or about to be) that are not in the database yet."""
        return self._appended - self._written

    # ------------------------------------------------------------------ HistorySink

    def load(self, room: str, limit: int) -> list[Entry]:
        rows = self._db.execute(
            "SELECT k1, k2, id, time, name, message FROM lines WHERE room = ? "
            "ORDER BY k1 DESC, k2 DESC LIMIT ?", (room, limit)).fetchall()
        return [Entry((k1, k2, 0), id_, when, name, message)
                for k1, k2, id_, when, name, message in reversed(rows)]

    def append(self, room: str, entry: Entry) -> None:
        self._appended += 1
        self._queue.put((room, entry))

    def accepting(self) -> bool:
        """Whether a new chat line can be kept; False refuses it (called once a line)."""
        if self._appended - self._written < self.backlog:
            if self._refusing:
                self._refusing = False
                self._log.warning("history database: accepting chat lines again")
            return True
        self.refused += 1
        if not self._refusing:
            self._refusing = True
            self._log.warning(
                f"history database: {self.unwritten} line(s) not written yet "
                f"(--history-db-backlog {self.backlog}); refusing chat lines with "
                "'unavailable' until they are")
        return False

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
        """Write everything queued, waiting at most `close_timeout`, then stop the writer."""
        self._queue.put(None)
        self._writer.join(self.close_timeout)
        if self._writer.is_alive():
            self._abandon.set()  # a daemon thread: it ends with the process
        self._flush_notes()
        if self.unwritten:
            self._log.error(
                f"history database: {self.unwritten} acknowledged line(s) could not be "
                f"written within {self.close_timeout:g}s and are lost "
                f"({self._outage.error or 'still writing'})")
        self._db.close()

    # ------------------------------------------------------------------ ModerationSink

    # Bans and topics change rarely (an operator's action): written at once, on the
    # loop thread, so a ban is on disk before the operator is told it holds (15.6).

    def load_moderation(self) -> dict[str, Any]:
        now = time.time()
        self._db.execute("DELETE FROM bans WHERE until > 0 AND until <= ?", (now,))
        bans = [dict(zip(("kind", "key", "label", "until", "by", "reason", "since"), row,
                         strict=True))
                for row in self._db.execute(
                    "SELECT kind, key, label, until, by, reason, since FROM bans")]
        topics = {room: {"text": topic, "by": by, "since": since}
                  for room, topic, by, since in self._db.execute(
                      "SELECT room, topic, by, since FROM topics")}
        return {"bans": bans, "topics": topics}

    def save_ban(self, ban: BanRecord) -> None:
        self._db.execute("INSERT OR REPLACE INTO bans VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (ban.kind, ban.key, ban.label, ban.until, ban.by, ban.reason,
                          ban.since))

    def drop_ban(self, kind: str, key: str) -> None:
        self._db.execute("DELETE FROM bans WHERE kind = ? AND key = ?", (kind, key))

    def save_topic(self, room: str, topic: TopicRecord | None) -> None:
        if topic is None:
            self._db.execute("DELETE FROM topics WHERE room = ?", (room,))
        else:
            self._db.execute("INSERT OR REPLACE INTO topics VALUES (?, ?, ?, ?)",
                             (room, topic.text, topic.by, topic.since))

    # ------------------------------------------------------------------ writer thread

    def _write_loop(self) -> None:
        db: sqlite3.Connection | None = None  # opened on the first write, and retried
        pending: deque[Item] = deque()
        due = 0.0  # when the next commit is made (or tried again)
        stopping = False
        while not self._abandon.is_set():
            if not pending:
                if stopping:
                    break
                item = self._queue.get()
                if item is None:
                    stopping = True
                    continue
                pending.append(item)
                due = max(due, time.monotonic() + self.interval)
            stopping = self._gather(pending, due, stopping)
            if stopping and self._outage.failing and (wait := due - time.monotonic()) > 0:
                self._abandon.wait(wait)  # a retry's backoff, cut short by giving up
                continue
            batch = [pending.popleft() for _ in range(min(MAX_BATCH, len(pending)))]
            lines = sum(isinstance(item, tuple) for item in batch)
            try:
                db = db or self._connect(BUSY_TIMEOUT)
                self._commit(db, batch)
            except Exception as exc:  # any failure, even a bug, must keep the lines
                pending.extendleft(reversed(batch))
                self.write_failures += 1
                now = time.monotonic()
                delay, note = self._outage.failed(
                    now, str(exc) or type(exc).__name__, self.unwritten, self.refused)
                due = now + delay
                self._note(note)
                continue
            self._written += lines
            self._note(self._outage.succeeded(time.monotonic(), self.unwritten, self.refused))
        if db is not None:
            db.close()

    def _gather(self, pending: deque[Item], due: float, stopping: bool) -> bool:
        """Add queued items to `pending` until `due` (or a full batch while writes
        work); returns whether the stop mark came."""
        while not stopping:
            wait = due - time.monotonic()
            if wait <= 0 or (len(pending) >= MAX_BATCH and not self._outage.failing):
                break
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                break
            if item is None:
                stopping = True
            else:
                pending.append(item)
        if stopping:  # nothing comes after the stop mark but what was already queued
            with contextlib.suppress(queue.Empty):
                while (item := self._queue.get_nowait()) is not None:
                    pending.append(item)
        return stopping

    def _commit(self, db: sqlite3.Connection, batch: list[Item]) -> None:
        lines = [b for b in batch if isinstance(b, tuple)]
        marks = [b for b in batch if isinstance(b, int)]
        db.execute("BEGIN IMMEDIATE")  # take the write lock before doing any work
        try:
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
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ reporting

    def _note(self, text: str) -> None:
        """A log line from the writer thread: the server log belongs to the loop thread."""
        if not text:
            return
        self._notes.put(text)
        if self._loop is None:
            self._flush_notes()
            return
        with contextlib.suppress(RuntimeError):  # the loop is gone: close() writes them
            self._loop.call_soon_threadsafe(self._flush_notes)

    def _flush_notes(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._log.warning(self._notes.get_nowait())
