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

The database has a total bound in bytes (`max_bytes`, PROTOCOL.txt 8.7): past it the
least recently active rooms give up their oldest lines first, and a room with no new
line for `idle` seconds goes whole. Every row carries its size, and a table of rooms
their bytes and last activity, so the writer keeps the count without reading lines
back. The file gives the space back: it is made with auto_vacuum=INCREMENTAL (a
database made before is converted once, by a VACUUM, when opened) and the writer
returns free pages past a little slack to the file system.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

from chatd import accounts_store
from chatd.accounts import Account
from chatd.accounts.markers import DEFAULT_PER_ACCOUNT
from chatd.accounts.tokens import DEFAULT_PER_ACCOUNT as TOKENS_PER_ACCOUNT
from chatd.accounts_store import (
    AccountItem,
    DropAccount,
    DropToken,
    PendingMarkers,
    RenameAccount,
    SaveAccount,
    SaveToken,
)
from chatd.hub import Entry, entry_cost
from chatd.moderation import BanRecord, TopicRecord
from chatd.protocol import name_key
from chatd.serverlog import ServerLog

ROOM_KEYS = 2  # the version of chatd.protocol.name_key the rows are keyed by
ID_BLOCK = 100_000  # ids reserved ahead; a crash skips at most this many
MAX_BATCH = 1000  # lines a transaction: a commit stays short whatever the backlog
# Bytes of lines a transaction: the WAL file grows to about one transaction past its
# checkpoint, so big lines must not make big transactions.
MAX_BATCH_BYTES = 1024 * 1024
ROW_OVERHEAD = 64  # bytes a stored line costs besides its text: row, index entry, ids
WAL_LIMIT = 4 * 1024 * 1024  # the WAL file is cut back to this after a checkpoint
MAINTAIN_EVERY = 60.0  # seconds between checks for idle rooms when no line comes
BUSY_TIMEOUT = 0.5  # seconds SQLite waits for another process's lock before failing
CLOSE_TIMEOUT = 5.0  # seconds a clean shutdown waits for the backlog to be written

# A line of a room, an id reservation, or a change of the accounts tables (18.10).
Item: TypeAlias = tuple[str, Entry] | int | AccountItem

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



@contextlib.contextmanager
def _write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (the caller retries)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise

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


def line_size(room: str, entry: Entry) -> int:
    """What a line counts against the database's bound: its UTF-8 text and a row's cost."""
    return (ROW_OVERHEAD + len(room.encode()) + len(entry.id) + len(entry.time)
            + len(entry.name.encode("utf-8", "surrogatepass"))
            + len(entry.message.encode("utf-8", "surrogatepass")))


def _text_bytes(item: Item) -> int:
    """About what an item adds to a transaction (characters of its line's text)."""
    return len(item[1].message) if isinstance(item, tuple) else 0


def _batch(pending: deque[Item]) -> list[Item]:
    """The items of the next transaction (at least one), taken from `pending`."""
    batch: list[Item] = []
    total = 0
    while pending and len(batch) < MAX_BATCH and total < MAX_BATCH_BYTES:
        item = pending.popleft()
        batch.append(item)
        if isinstance(item, tuple):
            total += _text_bytes(item)
    return batch


class SqliteHistory:
    durable = True  # every line is written: a room nobody is in is loaded again

    def __init__(self, path: str | Path, keep: int, *, interval: float = 0.1,
                 backlog: int = 10_000, backlog_bytes: int = 16 * 1024 * 1024,
                 max_bytes: int = 48 * 1024 * 1024, idle: float = 30 * 86400.0,
                 log: ServerLog | None = None, close_timeout: float = CLOSE_TIMEOUT,
                 markers_per_account: int = DEFAULT_PER_ACCOUNT,
                 max_markers: int = 100_000, tokens_per_account: int = TOKENS_PER_ACCOUNT,
                 max_tokens: int = 100_000) -> None:
        self.path = str(path)
        self.keep = keep  # lines kept per room
        self.interval = interval  # the longest a line waits in the writer before a commit
        self.backlog = max(1, backlog)  # lines not yet written, past which lines are refused
        self.backlog_bytes = max(1, backlog_bytes)  # the same in bytes (entry_cost)
        self.max_bytes = max(1, max_bytes)  # lines kept in all (line_size)
        self.idle = idle  # seconds without a new line after which a room goes (0: never)
        # Free pages kept for the next lines rather than given back and asked for again.
        self.slack = max(256 * 1024, self.max_bytes // 16)
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
        self._migrate_layout()
        self._migrate_room_keys()
        accounts_store.migrate(self._db)
        self.markers_per_account = markers_per_account  # the bounds of chatd.accounts.markers
        self.max_markers = max_markers
        self.tokens_per_account = tokens_per_account  # the bounds of chatd.accounts.tokens
        self.max_tokens = max_tokens
        self.stored = int(self._db.execute(  # bytes of lines in the database (writer's)
            "SELECT COALESCE(SUM(bytes), 0) FROM rooms").fetchone()[0])
        self._maintained = 0.0  # when idle rooms were last looked for
        row = self._db.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()
        self.first_id = int(row[0]) if row else 0
        self.reserved = 0
        # Each count has one writer (loop thread, writer thread): no lock is needed.
        self._appended = 0
        self._written = 0
        self._appended_bytes = 0
        self._written_bytes = 0
        self._refusing = False
        self._outage = Outage()
        self._notes: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._abandon = threading.Event()
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._markers = PendingMarkers(self._queue.put)
        self._flusher = threading.Thread(target=self._write_loop, name="history-writer",
                                        daemon=True)
        self.reserve(self.first_id)
        self._flusher.start()

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
                if key != room:  # a row's size counts its room's key (line_size)
                    self._db.execute("UPDATE lines SET room = ?, size = size + ? "
                                     "WHERE room = ?",
                                     (key, len(key.encode()) - len(room.encode()), room))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('room_keys', ?)",
                             (ROOM_KEYS,))
            if any(name_key(room) != room for room in rooms):
                self._count_rooms()

    def _has_sizes(self) -> bool:
        return any(col[1] == "size" for col in self._db.execute("PRAGMA table_info(lines)"))

    def _count_rooms(self) -> None:
        """The rooms table from the lines (inside a transaction). Their activity is
        counted from now: an upgrade does not drop rooms idle since before it."""
        self._db.execute("DELETE FROM rooms")
        self._db.execute("INSERT INTO rooms SELECT room, SUM(size), ? FROM lines "
                         "GROUP BY room", (time.time(),))

    def _migrate_layout(self) -> None:
        """A database from before the byte bound: its lines get their sizes (and a rowid
        table, see _LINES), once; one made without auto_vacuum is converted by a VACUUM,
        once, so that deleted lines give their space back to the file system."""
        started = time.monotonic()
        old = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'lines'"
                               ).fetchone() is not None and not self._has_sizes()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if old:
                self._db.execute("ALTER TABLE lines RENAME TO lines_before_sizes")
            for statement in _LINES:
                self._db.execute(statement)
            if old:
                self._db.execute(
                    "INSERT OR REPLACE INTO lines SELECT room, k1, k2, "
                    f"{_SIZE_SQL}, id, time, name, message FROM lines_before_sizes")
                self._db.execute("DROP TABLE lines_before_sizes")
                self._count_rooms()
        if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("VACUUM")
            self._log.warning(f"history database: converted to auto_vacuum=incremental"
                              f"{' with line sizes' if old else ''}, once "
                              f"({time.monotonic() - started:.1f}s), so that it can shrink")

    def _connect(self, timeout: float = 5.0) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False,
                             isolation_level=None)
        # Before WAL: only a new file takes it this way (an old one needs a VACUUM).
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
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
        self._appended_bytes += entry_cost(entry)
        self._queue.put((room, entry))

    @property
    def unwritten_bytes(self) -> int:
        """What the lines not in the database yet hold in memory (about: entry_cost)."""
        return self._appended_bytes - self._written_bytes

    def accepting(self) -> bool:
        """Whether a new chat line can be kept; False refuses it (called once a line)."""
        if self.unwritten < self.backlog and self.unwritten_bytes < self.backlog_bytes:
            if self._refusing:
                self._refusing = False
                self._log.warning("history database: accepting chat lines again")
            return True
        self.refused += 1
        if not self._refusing:
            self._refusing = True
            self._log.warning(
                f"history database: {self.unwritten} line(s), {self.unwritten_bytes} "
                f"bytes, not written yet (--history-db-backlog {self.backlog}, "
                f"--history-db-backlog-bytes {self.backlog_bytes}); refusing chat lines "
                "with 'unavailable' until they are")
        return False

    def reserve(self, seq: int) -> None:
        """Make sure ids up to `seq` will never be handed out again after a restart."""
        if seq >= self.reserved - ID_BLOCK // 2:
            self.reserved = seq + ID_BLOCK
            if self._flusher.is_alive():
                self._queue.put(self.reserved)
            else:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('next_id', ?)",
                                 (self.reserved,))

    def close(self) -> None:
        """Write everything queued, waiting at most `close_timeout`, then stop the writer."""
        self._queue.put(None)
        self._flusher.join(self.close_timeout)
        if self._flusher.is_alive():
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

    # ------------------------------------------------------------------ accounts (18.10)

    # Read on the loop thread at start, like bans; written by the writer thread, in
    # order with the chat lines (chatd.accounts_store).

    def load_accounts(self) -> list[Account]:
        """Every account, least recently used first (Accounts.load)."""
        return accounts_store.load_accounts(self._db)

    def load_markers(self) -> list[tuple[str, str, str]]:
        """Every read marker (account key, room key, id), least recently moved first."""
        return accounts_store.load_markers(self._db)

    def load_tokens(self) -> list[tuple[str, str, float]]:
        """Every login token's (digest, account key, last use), least recently used first."""
        return accounts_store.load_tokens(self._db)

    def save_token(self, digest: str, account: str, used: float) -> None:
        """A login token issued or used (its digest only)."""
        self._queue.put(SaveToken(digest, account, used))

    def drop_token(self, digest: str) -> None:
        """A login token revoked."""
        self._queue.put(DropToken(digest))

    def save_account(self, account: Account) -> None:
        """A new account or a change of one (password, operator flag, last use)."""
        self._queue.put(SaveAccount.of(account))

    def drop_account(self, key: str) -> None:
        """An account dropped or expired, with its markers and login tokens."""
        self._markers.forget(key)
        self._queue.put(DropAccount(key))

    def rename_account(self, old: str, account: Account) -> None:
        """An operator renamed the account `old`: its markers and tokens follow."""
        self._markers.rename(old, account.key)
        self._queue.put(RenameAccount(old, SaveAccount.of(account)))

    def save_marker(self, account: str, room: str, id_: str) -> None:
        """A marker moved; written at the next commit (the newest id only)."""
        self._markers.set(account, room, id_)

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
                try:
                    item = self._queue.get(timeout=self._maintain_in())
                except queue.Empty:  # nothing to write: time to look for idle rooms
                    self._maintained = time.monotonic()
                    with contextlib.suppress(sqlite3.Error):  # tried again later
                        db = db or self._connect(BUSY_TIMEOUT)
                        self._maintain_alone(db)
                    continue
                if item is None:
                    stopping = True
                    continue
                pending.append(item)
                due = max(due, time.monotonic() + self.interval)
            stopping = self._gather(pending, due, stopping)
            if stopping and self._outage.failing and (wait := due - time.monotonic()) > 0:
                self._abandon.wait(wait)  # a retry's backoff, cut short by giving up
                continue
            batch = _batch(pending)
            lines = [item for item in batch if isinstance(item, tuple)]
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
            self._written += len(lines)
            self._written_bytes += sum(entry_cost(entry) for _, entry in lines)
            self._note(self._outage.succeeded(time.monotonic(), self.unwritten, self.refused))
            with contextlib.suppress(sqlite3.Error):  # the lines are in; space comes later
                self._reclaim(db)
        if db is not None:
            db.close()

    def _gather(self, pending: deque[Item], due: float, stopping: bool) -> bool:
        """Add queued items to `pending` until `due` (or a full batch while writes
        work); returns whether the stop mark came."""
        size = sum(map(_text_bytes, pending))
        while not stopping:
            wait = due - time.monotonic()
            full = len(pending) >= MAX_BATCH or size >= MAX_BATCH_BYTES
            if wait <= 0 or (full and not self._outage.failing):
                break
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                break
            if item is None:
                stopping = True
            else:
                pending.append(item)
                size += _text_bytes(item)
        if stopping:  # nothing comes after the stop mark but what was already queued
            with contextlib.suppress(queue.Empty):
                while (item := self._queue.get_nowait()) is not None:
                    pending.append(item)
        return stopping

    def _commit(self, db: sqlite3.Connection, batch: list[Item]) -> None:
        lines = [b for b in batch if isinstance(b, tuple)]
        marks = [b for b in batch if isinstance(b, int)]
        changes = [b for b in batch if not isinstance(b, tuple | int)]
        markers = self._markers.take() if changes else {}
        now = time.time()
        with _write_transaction(db):  # the write lock before doing any work
            accounts_store.write(db, changes, markers, per_account=self.markers_per_account,
                                 max_markers=self.max_markers,
                                 tokens_per_account=self.tokens_per_account,
                                 max_tokens=self.max_tokens)
            rows = [(room, e.key[0], e.key[1], line_size(room, e), e.id, e.time, e.name,
                     e.message) for room, e in lines]
            db.executemany("INSERT OR REPLACE INTO lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           rows)
            if marks:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('next_id', ?)", (max(marks),))
            added: dict[str, int] = {}  # room -> bytes it grows by
            for row in rows:
                added[row[0]] = added.get(row[0], 0) + row[3]
            stored = self.stored
            for room, grown in added.items():
                size = grown - sum(row[0] for row in db.execute(  # past --history lines
                    "DELETE FROM lines WHERE room = ?1 AND k1 < (SELECT k1 FROM lines "
                    "WHERE room = ?1 ORDER BY k1 DESC, k2 DESC LIMIT 1 OFFSET ?2) "
                    "RETURNING size", (room, self.keep - 1)).fetchall())
                db.execute("INSERT INTO rooms VALUES (?1, ?2, ?3) ON CONFLICT (room) DO "
                           "UPDATE SET bytes = bytes + ?2, active = ?3", (room, size, now))
                stored += size
            stored = self._enforce(db, stored, now)
        self.stored = stored
        self._markers.written(markers)

    # ------------------------------------------------------------------ the bound

    def _enforce(self, db: sqlite3.Connection, stored: int, now: float) -> int:
        """Within a transaction: rooms idle past `idle` go whole; then, while the lines
        are over `max_bytes`, the least recently active room gives up its oldest lines
        (PROTOCOL.txt 8.7). Returns the bytes left."""
        if self.idle > 0:
            for room, size in db.execute("SELECT room, bytes FROM rooms WHERE active < ?",
                                         (now - self.idle,)).fetchall():
                db.execute("DELETE FROM lines WHERE room = ?", (room,))
                db.execute("DELETE FROM rooms WHERE room = ?", (room,))
                stored -= size
        while stored > self.max_bytes:
            row = db.execute("SELECT room, bytes FROM rooms ORDER BY active LIMIT 1").fetchone()
            if row is None:
                return 0
            room, size = row
            excess, freed, last = stored - self.max_bytes, 0, None
            for k1, k2, line in db.execute(
                    "SELECT k1, k2, size FROM lines WHERE room = ? ORDER BY k1, k2", (room,)):
                freed, last = freed + line, (k1, k2)
                if freed >= excess:
                    break
            if last is None or freed >= size:
                db.execute("DELETE FROM lines WHERE room = ?", (room,))
                db.execute("DELETE FROM rooms WHERE room = ?", (room,))
                stored -= size
            else:
                db.execute("DELETE FROM lines WHERE room = ? AND (k1, k2) <= (?, ?)",
                           (room, *last))
                db.execute("UPDATE rooms SET bytes = bytes - ? WHERE room = ?", (freed, room))
                stored -= freed
        return stored

    def _maintain_in(self) -> float:
        """Seconds until idle rooms are looked for again, when no line comes."""
        every = min(MAINTAIN_EVERY, max(0.05, self.idle / 4)) if self.idle > 0 \
            else MAINTAIN_EVERY
        return max(0.0, self._maintained + every - time.monotonic())

    def _maintain_alone(self, db: sqlite3.Connection) -> None:
        """The bound and the idle rooms, when no line comes to do it with."""
        with _write_transaction(db):
            stored = self._enforce(db, self.stored, time.time())
        self.stored = stored
        self._reclaim(db)

    def _reclaim(self, db: sqlite3.Connection) -> None:
        """Free pages past the slack go back to the file system (PROTOCOL.txt 8.7)."""
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        if free * page > self.slack:
            # Each step of the statement frees one page, and sqlite3's execute() steps a
            # statement without result columns once: executescript runs it to its end.
            db.executescript(f"PRAGMA incremental_vacuum({free - self.slack // (2 * page)});")
            # In WAL mode the file is cut at a checkpoint: now, not after 1,000 more pages.
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")

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
