"""The history database's writer thread: it takes what chatd.store queues (room lines,
id reservations, accounts changes) and commits it in batches, retries what fails, and
keeps the database within its byte bound.

Writes stay off the broadcast path: the loop thread only queues. The writer commits
queued items in batches, each at most `interval` seconds after its first item reached
the writer, whatever the load (a steady stream never postpones a commit), and at most
MAX_BATCH lines a transaction (PROTOCOL.txt 9.4).

A failed write loses nothing: the items stay queued and the writer tries again with a
growing backoff, saying so in the log (`Outage`).

The bound (`max_bytes`, PROTOCOL.txt 8.7): past it the least recently active rooms give
up their oldest lines first, and a room with no new line for `idle` seconds goes whole;
the writer keeps the count of bytes from the rows' sizes (chatd.store_schema) and
returns free pages past a little slack to the file system.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TypeAlias

from chatd import accounts_store
from chatd.accounts_store import AccountItem, PendingMarkers
from chatd.hub import Entry, entry_cost
from chatd.serverlog import ServerLog
from chatd.store_schema import connect, line_size

MAX_BATCH = 1000  # lines a transaction: a commit stays short whatever the backlog
# Bytes of lines a transaction: the WAL file grows to about one transaction past its
# checkpoint, so big lines must not make big transactions.
MAX_BATCH_BYTES = 1024 * 1024
MAINTAIN_EVERY = 60.0  # seconds between checks for idle rooms when no line comes
BUSY_TIMEOUT = 0.5  # seconds SQLite waits for another process's lock before failing

# A line of a room, an id reservation, or a change of the accounts tables (18.10).
Item: TypeAlias = tuple[str, Entry] | int | AccountItem


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


class HistoryWriter:
    """The thread that writes the history database, and what it counts. The loop thread
    only queues (`put`, `put_line`, `markers`), reads the counts and `stop`s it."""

    def __init__(self, path: str, keep: int, *, stored: int, interval: float,
                 max_bytes: int, idle: float, refused: Callable[[], int], log: ServerLog,
                 markers_per_account: int, max_markers: int, tokens_per_account: int,
                 max_tokens: int) -> None:
        self.path = path
        self.keep = keep  # lines kept per room
        self.interval = interval  # the longest a line waits in the writer before a commit
        self.max_bytes = max(1, max_bytes)  # lines kept in all (line_size)
        self.idle = idle  # seconds without a new line after which a room goes (0: never)
        # Free pages kept for the next lines rather than given back and asked for again.
        self.slack = max(256 * 1024, self.max_bytes // 16)
        self.markers_per_account = markers_per_account  # the bounds of chatd.accounts.markers
        self.max_markers = max_markers
        self.tokens_per_account = tokens_per_account  # the bounds of chatd.accounts.tokens
        self.max_tokens = max_tokens
        self.stored = stored  # bytes of lines in the database
        self.write_failures = 0  # transactions that failed (and were tried again)
        self.outage = Outage()
        self._refused = refused  # chat lines refused so far (the loop thread counts them)
        self._log = log
        try:  # the writer thread reports through the event loop, when there is one
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._maintained = 0.0  # when idle rooms were last looked for
        # Each count has one writer (loop thread, writer thread): no lock is needed.
        self._appended = 0
        self._written = 0
        self._appended_bytes = 0
        self._written_bytes = 0
        self._notes: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._abandon = threading.Event()
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self.markers = PendingMarkers(self._queue.put)
        self._thread = threading.Thread(target=self._write_loop, name="history-writer",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def put(self, item: Item) -> None:
        """An id reservation or an accounts change, written in order with the lines."""
        self._queue.put(item)

    def put_line(self, room: str, entry: Entry) -> None:
        self._appended += 1
        self._appended_bytes += entry_cost(entry)
        self._queue.put((room, entry))

    @property
    def unwritten(self) -> int:
        """Lines acknowledged (or about to be) that are not in the database yet."""
        return self._appended - self._written

    @property
    def unwritten_bytes(self) -> int:
        """What the lines not in the database yet hold in memory (about: entry_cost)."""
        return self._appended_bytes - self._written_bytes

    def stop(self, timeout: float) -> None:
        """Write everything queued, waiting at most `timeout` seconds, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()  # a daemon thread: it ends with the process
        self.flush_notes()

    # ------------------------------------------------------------------ on the thread

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
                        db = db or connect(self.path, BUSY_TIMEOUT)
                        self._maintain_alone(db)
                    continue
                if item is None:
                    stopping = True
                    continue
                pending.append(item)
                due = max(due, time.monotonic() + self.interval)
            stopping = self._gather(pending, due, stopping)
            if stopping and self.outage.failing and (wait := due - time.monotonic()) > 0:
                self._abandon.wait(wait)  # a retry's backoff, cut short by giving up
                continue
            batch = _batch(pending)
            lines = [item for item in batch if isinstance(item, tuple)]
            try:
                db = db or connect(self.path, BUSY_TIMEOUT)
                self._commit(db, batch)
            except Exception as exc:  # any failure, even a bug, must keep the lines
                pending.extendleft(reversed(batch))
                self.write_failures += 1
                now = time.monotonic()
                delay, note = self.outage.failed(
                    now, str(exc) or type(exc).__name__, self.unwritten, self._refused())
                due = now + delay
                self._note(note)
                continue
            self._written += len(lines)
            self._written_bytes += sum(entry_cost(entry) for _, entry in lines)
            self._note(self.outage.succeeded(time.monotonic(), self.unwritten, self._refused()))
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
            if wait <= 0 or (full and not self.outage.failing):
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
        markers = self.markers.take() if changes else {}
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
        self.markers.written(markers)

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
            self.flush_notes()
            return
        with contextlib.suppress(RuntimeError):  # the loop is gone: close() writes them
            self._loop.call_soon_threadsafe(self.flush_notes)

    def flush_notes(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._log.warning(self._notes.get_nowait())
