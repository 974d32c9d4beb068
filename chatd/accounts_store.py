"""Accounts and read markers in the history database (PROTOCOL.txt 18.10): the tables,
their migration, and the writes the history writer thread (chatd.store_writer) makes
for them.

chatd.store owns the database file, chatd.store_writer the writer thread; this module
owns three tables:

    accounts      (key, name, password, created, used, operator): one row an account,
                  keyed by name_key (5.1); `password` is the stored hash, never a
                  password
    read_markers  (account, room, id, moved): one row a marker, account and room by key
    login_tokens  (digest, account, used): one row a device's login token, its SHA-256
                  digest only (chatd.accounts.tokens)

Writes ride the writer's queue, in order with the chat lines, and commit in its
transactions (within about 0.1 s, 9.4). Read markers move often (a client moves one
each time its user has seen new lines), so they are coalesced: `PendingMarkers` keeps
the newest id of each marker not yet written and puts one token on the queue; the
writer writes them all at its next commit, and a marker moved ten times a second is
written once. The markers and tokens tables keep the bounds of chatd.accounts (per
account, in all), the least recently moved or used rows going first; the accounts
table is bounded by the registry (--max-accounts), which refuses registrations past
it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from chatd.accounts import Account
from chatd.protocol import name_key

ACCOUNT_KEYS: Final = 2  # the version of name_key the accounts table is keyed by

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS accounts (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, password TEXT NOT NULL,
    created REAL NOT NULL, used REAL NOT NULL, operator INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS read_markers (
    account TEXT NOT NULL, room TEXT NOT NULL, id TEXT NOT NULL, moved REAL NOT NULL,
    PRIMARY KEY (account, room)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS read_markers_by_moved ON read_markers (moved);
CREATE TABLE IF NOT EXISTS login_tokens (
    digest TEXT PRIMARY KEY, account TEXT NOT NULL, used REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS login_tokens_by_account ON login_tokens (account, used);
CREATE INDEX IF NOT EXISTS login_tokens_by_use ON login_tokens (used);
"""


@dataclass(frozen=True, slots=True)
class SaveAccount:
    """A writer item: the account's row as it was when the change was made."""

    key: str
    name: str
    password: str
    created: float
    used: float
    operator: bool

    @classmethod
    def of(cls, account: Account) -> SaveAccount:
        return cls(account.key, account.name, account.password, account.created,
                   account.used, account.operator)


@dataclass(frozen=True, slots=True)
class DropAccount:
    """A writer item: the account goes, with its markers (a rename drops the old key)."""

    key: str


@dataclass(frozen=True, slots=True)
class RenameAccount:
    """A writer item: an operator renamed an account; its markers and tokens follow."""

    old: str
    account: SaveAccount


@dataclass(frozen=True, slots=True)
class SaveToken:
    """A writer item: a login token issued or used (its digest, never the token)."""

    digest: str
    account: str
    used: float


@dataclass(frozen=True, slots=True)
class DropToken:
    """A writer item: a login token revoked."""

    digest: str


@dataclass(frozen=True, slots=True)
class MarkersDue:
    """A writer item: markers are waiting in PendingMarkers."""


AccountItem = SaveAccount | DropAccount | RenameAccount | SaveToken | DropToken | MarkersDue


def migrate(db: sqlite3.Connection) -> None:
    """The tables, in a database of any earlier chatd (CREATE ... IF NOT EXISTS), and
    the accounts keyed again when name_key has changed since they were written (the
    name is kept as registered, so the key can always be made again)."""
    db.executescript(SCHEMA)
    row = db.execute("SELECT value FROM meta WHERE key = 'account_keys'").fetchone()
    if row is not None and int(row[0]) >= ACCOUNT_KEYS:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for key, name in db.execute("SELECT key, name FROM accounts").fetchall():
            new = name_key(name)
            if new != key:
                db.execute("UPDATE OR IGNORE accounts SET key = ? WHERE key = ?", (new, key))
                db.execute("UPDATE OR IGNORE read_markers SET account = ? WHERE account = ?",
                           (new, key))
                db.execute("UPDATE login_tokens SET account = ? WHERE account = ?", (new, key))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('account_keys', ?)", (ACCOUNT_KEYS,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def load_accounts(db: sqlite3.Connection) -> list[Account]:
    return [Account(name, key, password, created, used, bool(operator))
            for key, name, password, created, used, operator in db.execute(
                "SELECT key, name, password, created, used, operator FROM accounts "
                "ORDER BY used")]


def load_tokens(db: sqlite3.Connection) -> list[tuple[str, str, float]]:
    """(digest, account, used), least recently used first (LoginTokens.load's order)."""
    return [(digest, account, used) for digest, account, used in db.execute(
        "SELECT digest, account, used FROM login_tokens ORDER BY used")]


def load_markers(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(account, room, id), least recently moved first (ReadMarkers.load's order)."""
    return [(account, room, id_) for account, room, id_ in db.execute(
        "SELECT account, room, id FROM read_markers ORDER BY moved")]


class PendingMarkers:
    """Markers moved and not yet written, newest id each; shared by the loop thread (which
    sets them) and the writer thread (which writes them), under a lock."""

    def __init__(self, put: Callable[[MarkersDue], None]) -> None:
        self._put = put  # onto the writer's queue
        self._lock = threading.Lock()
        self._due: dict[tuple[str, str], tuple[str, float]] = {}
        self._queued = False

    def __len__(self) -> int:
        return len(self._due)

    def set(self, account: str, room: str, id_: str) -> None:
        with self._lock:
            self._due[(account, room)] = (id_, time.time())
            if self._queued:
                return
            self._queued = True
        self._put(MarkersDue())

    def forget(self, account: str) -> None:
        """The account went: its markers not yet written are not written."""
        with self._lock:
            for mark in [mark for mark in self._due if mark[0] == account]:
                del self._due[mark]

    def rename(self, old: str, new: str) -> None:
        """An account's key changed: its markers not yet written follow it."""
        with self._lock:
            for mark in [mark for mark in self._due if mark[0] == old]:
                self._due[(new, mark[1])] = self._due.pop(mark)

    def take(self) -> dict[tuple[str, str], tuple[str, float]]:
        """What to write now (the writer, before its transaction); kept until `written`,
        so a failed transaction loses none."""
        with self._lock:
            self._queued = False
            return dict(self._due)

    def written(self, taken: dict[tuple[str, str], tuple[str, float]]) -> None:
        """The transaction holding `taken` committed: forget those not moved since."""
        with self._lock:
            for mark, value in taken.items():
                if self._due.get(mark) == value:
                    del self._due[mark]


def write(db: sqlite3.Connection, items: list[AccountItem],
          markers: dict[tuple[str, str], tuple[str, float]], *, per_account: int,
          max_markers: int, tokens_per_account: int, max_tokens: int) -> None:
    """Within the writer's transaction: the account and token changes in order, then
    the markers, then the bounds (the least recently moved or used rows go first)."""
    _write_tokens(db, items, per_account=tokens_per_account, max_tokens=max_tokens)
    for item in items:
        if isinstance(item, RenameAccount):
            new = item.account
            db.execute("DELETE FROM accounts WHERE key = ?", (item.old,))
            db.execute("UPDATE read_markers SET account = ? WHERE account = ?",
                       (new.key, item.old))
            db.execute("UPDATE login_tokens SET account = ? WHERE account = ?",
                       (new.key, item.old))
            item = new  # noqa: PLW2901 (then saved as any account)
        if isinstance(item, SaveAccount):
            db.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?)",
                       (item.key, item.name, item.password, item.created, item.used,
                        int(item.operator)))
        elif isinstance(item, DropAccount):
            db.execute("DELETE FROM accounts WHERE key = ?", (item.key,))
            db.execute("DELETE FROM read_markers WHERE account = ?", (item.key,))
            db.execute("DELETE FROM login_tokens WHERE account = ?", (item.key,))
    if not markers:
        return
    db.executemany("INSERT OR REPLACE INTO read_markers VALUES (?, ?, ?, ?)",
                   [(account, room, id_, moved)
                    for (account, room), (id_, moved) in markers.items()])
    for account in {account for account, _ in markers}:
        db.execute("DELETE FROM read_markers WHERE account = ?1 AND room NOT IN (SELECT room "
                   "FROM read_markers WHERE account = ?1 ORDER BY moved DESC LIMIT ?2)",
                   (account, per_account))
    excess = int(db.execute("SELECT count(*) FROM read_markers").fetchone()[0]) - max_markers
    if excess > 0:
        db.execute("DELETE FROM read_markers WHERE (account, room) IN (SELECT account, room "
                   "FROM read_markers ORDER BY moved LIMIT ?)", (excess,))


def _write_tokens(db: sqlite3.Connection, items: list[AccountItem], *, per_account: int,
                  max_tokens: int) -> None:
    saved: set[str] = set()
    for item in items:
        if isinstance(item, SaveToken):
            db.execute("INSERT OR REPLACE INTO login_tokens VALUES (?, ?, ?)",
                       (item.digest, item.account, item.used))
            saved.add(item.account)
        elif isinstance(item, DropToken):
            db.execute("DELETE FROM login_tokens WHERE digest = ?", (item.digest,))
    if not saved:
        return
    for account in saved:
        db.execute("DELETE FROM login_tokens WHERE account = ?1 AND digest NOT IN (SELECT "
                   "digest FROM login_tokens WHERE account = ?1 ORDER BY used DESC LIMIT ?2)",
                   (account, per_account))
    excess = int(db.execute("SELECT count(*) FROM login_tokens").fetchone()[0]) - max_tokens
    if excess > 0:
        db.execute("DELETE FROM login_tokens WHERE digest IN (SELECT digest FROM "
                   "login_tokens ORDER BY used LIMIT ?)", (excess,))
