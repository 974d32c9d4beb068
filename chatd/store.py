"""History that outlives the process: room lines in SQLite (stdlib sqlite3), with the
bans, topics and accounts that must outlive it too.

`SqliteHistory` is what the hub sees (its HistorySink, ModerationSink and accounts
sink). Writes stay off the broadcast path: `append` only queues the line, and the writer
thread (chatd.store_writer) commits queued lines in batches (PROTOCOL.txt 9.4), retries
failed writes and keeps the database within its total bound in bytes (`max_bytes`,
PROTOCOL.txt 8.7). The file's tables and their migrations are chatd.store_schema's.

A failed write loses nothing, but the lines not yet in the database are bounded by
`backlog`: past it `accepting()` is False and the hub refuses new chat lines with
`unavailable` rather than acknowledge lines that could not be kept (PROTOCOL.txt 8.7).
`close` writes what is queued, waiting at most `close_timeout` seconds, and logs how
many lines it could not write.

The id sequence is reserved in blocks, so ids keep increasing across restarts even
though notices (which are not stored) use ids too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chatd import accounts_store
from chatd.accounts import Account
from chatd.accounts.markers import DEFAULT_PER_ACCOUNT
from chatd.accounts.tokens import DEFAULT_PER_ACCOUNT as TOKENS_PER_ACCOUNT
from chatd.accounts_store import (
    DropAccount,
    DropToken,
    RenameAccount,
    SaveAccount,
    SaveToken,
)
from chatd.hub import Entry
from chatd.moderation import BanRecord, TopicRecord
from chatd.serverlog import ServerLog
from chatd.store_schema import open_database
from chatd.store_writer import HistoryWriter

ID_BLOCK = 100_000  # ids reserved ahead; a crash skips at most this many
CLOSE_TIMEOUT = 5.0  # seconds a clean shutdown waits for the backlog to be written


class SqliteHistory:
    """The history database as the hub sees it: lines loaded and appended, bans, topics
    and accounts, the backlog's bound and the id reservations. It reads on the loop
    thread; every write but bans' and topics' goes through its HistoryWriter."""

    durable = True  # every line is written: a room nobody is in is loaded again

    def __init__(self, path: str | Path, keep: int, *, interval: float = 0.1,
                 backlog: int = 10_000, backlog_bytes: int = 16 * 1024 * 1024,
                 max_bytes: int = 48 * 1024 * 1024, idle: float = 30 * 86400.0,
                 log: ServerLog | None = None, close_timeout: float = CLOSE_TIMEOUT,
                 markers_per_account: int = DEFAULT_PER_ACCOUNT,
                 max_markers: int = 100_000, tokens_per_account: int = TOKENS_PER_ACCOUNT,
                 max_tokens: int = 100_000) -> None:
        self.path = str(path)
        self.backlog = max(1, backlog)  # lines not yet written, past which lines are refused
        self.backlog_bytes = max(1, backlog_bytes)  # the same in bytes (entry_cost)
        self.close_timeout = close_timeout
        self.refused = 0  # chat lines refused because the backlog was full
        self._refusing = False
        self._log = log or ServerLog("warning")
        self._db = open_database(self.path, self._log)  # the loop thread's connection
        row = self._db.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()
        self.first_id = int(row[0]) if row else 0
        self.reserved = 0
        self._writer = HistoryWriter(
            self.path, keep, interval=interval, max_bytes=max_bytes, idle=idle,
            stored=int(self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM rooms"
                                        ).fetchone()[0]),
            refused=lambda: self.refused, log=self._log,
            markers_per_account=markers_per_account, max_markers=max_markers,
            tokens_per_account=tokens_per_account, max_tokens=max_tokens)
        self.reserve(self.first_id)
        self._writer.start()

    @property
    def stored(self) -> int:
        """Bytes of lines in the database (line_size), as the writer counts them."""
        return self._writer.stored

    @property
    def write_failures(self) -> int:
        """Transactions that failed (and were tried again)."""
        return self._writer.write_failures

    @property
    def failing(self) -> bool:
        """Whether the last write failed (until one succeeds): /readyz says not ready."""
        return self._writer.outage.failing

    @property
    def unwritten(self) -> int:
        """Lines acknowledged (or about to be) that are not in the database yet."""
        return self._writer.unwritten

    @property
    def unwritten_bytes(self) -> int:
        """What the lines not in the database yet hold in memory (about: entry_cost)."""
        return self._writer.unwritten_bytes

    # ------------------------------------------------------------------ HistorySink

    def load(self, room: str, limit: int) -> list[Entry]:
        rows = self._db.execute(
            "SELECT k1, k2, id, time, name, message FROM lines WHERE room = ? "
            "ORDER BY k1 DESC, k2 DESC LIMIT ?", (room, limit)).fetchall()
        return [Entry((k1, k2, 0), id_, when, name, message)
                for k1, k2, id_, when, name, message in reversed(rows)]

    def append(self, room: str, entry: Entry) -> None:
        self._writer.put_line(room, entry)

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
            if self._writer.alive:
                self._writer.put(self.reserved)
            else:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('next_id', ?)",
                                 (self.reserved,))

    def close(self) -> None:
        """Write everything queued, waiting at most `close_timeout`, then stop the writer."""
        self._writer.stop(self.close_timeout)
        if self.unwritten:
            self._log.error(
                f"history database: {self.unwritten} acknowledged line(s) could not be "
                f"written within {self.close_timeout:g}s and are lost "
                f"({self._writer.outage.error or 'still writing'})")
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
        self._writer.put(SaveToken(digest, account, used))

    def drop_token(self, digest: str) -> None:
        """A login token revoked."""
        self._writer.put(DropToken(digest))

    def save_account(self, account: Account) -> None:
        """A new account or a change of one (password, operator flag, last use)."""
        self._writer.put(SaveAccount.of(account))

    def drop_account(self, key: str) -> None:
        """An account dropped or expired, with its markers and login tokens."""
        self._writer.markers.forget(key)
        self._writer.put(DropAccount(key))

    def rename_account(self, old: str, account: Account) -> None:
        """An operator renamed the account `old`: its markers and tokens follow."""
        self._writer.markers.rename(old, account.key)
        self._writer.put(RenameAccount(old, SaveAccount.of(account)))

    def save_marker(self, account: str, room: str, id_: str) -> None:
        """A marker moved; written at the next commit (the newest id only)."""
        self._writer.markers.set(account, room, id_)
