"""Read markers (PROTOCOL.txt 18.4): how far each account has read each room.

A marker is the id of the last line the account has read in a room; it only moves
forward, in the order chatd gives ids (9.1). That order is the hub's (`id_key`), passed
in, so this module stays below the hub. Rooms and accounts are named by their keys (5.1).

Bounds (18.8): an account keeps at most `per_account` markers (more than the rooms one
can be in: rooms left keep theirs for a while), and all markers together at most
`max_bytes` (counted by MARKER_BYTES and their strings). Past either, the marker moved
least recently goes (the account's own, then the server's): a room without a marker
counts no unread lines until the account reads it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

# One marker in memory besides its strings: its slot in the server's table and in its
# account's, the key tuple (measured with tracemalloc in tests/unit/test_accounts.py).
MARKER_BYTES: Final = 260
DEFAULT_PER_ACCOUNT: Final = 100


class ReadMarkers:
    __slots__ = ("_all", "_by_account", "bytes", "max_bytes", "order", "per_account")

    def __init__(self, order: Callable[[str], Any], *, per_account: int = DEFAULT_PER_ACCOUNT,
                 max_bytes: int = 16 * 1024 * 1024) -> None:
        self.order = order  # id -> a value ordered as ids are (raises on a bad id)
        self.per_account = max(1, per_account)
        self.max_bytes = max_bytes
        self._all: dict[tuple[str, str], None] = {}  # (account, room), least recent first
        self._by_account: dict[str, dict[str, str]] = {}  # account -> room -> id
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._all)

    def get(self, account: str, room: str) -> str | None:
        rooms = self._by_account.get(account)
        return rooms.get(room) if rooms else None

    def of(self, account: str) -> dict[str, str]:
        """The account's markers, room -> id (a copy)."""
        return dict(self._by_account.get(account, {}))

    def advance(self, account: str, room: str, id_: str) -> bool:
        """Move the marker to `id_` if that is further; whether it moved. A bad id raises
        the order function's error (bad_id). The caller keeps `id_` within the room's
        ids (an id past the room's newest line is its newest line)."""
        new = self.order(id_)
        old = self.get(account, room)
        if old is not None and self.order(old) >= new:
            return False
        self._set(account, room, id_)
        return True

    def drop(self, account: str) -> int:
        """Forget every marker of an account (dropped, expired); how many went."""
        rooms = self._by_account.pop(account, {})
        for room, id_ in rooms.items():
            del self._all[(account, room)]
            self.bytes -= _cost(account, room, id_)
        return len(rooms)

    def rename(self, old: str, new: str) -> None:
        """An account's key changed (an operator renamed it): its markers follow."""
        if old == new:
            return
        for room, id_ in list(self._by_account.get(old, {}).items()):
            self.drop_one(old, room)
            self._set(new, room, id_)

    def drop_one(self, account: str, room: str) -> None:
        rooms = self._by_account.get(account)
        if rooms is None or room not in rooms:
            return
        id_ = rooms.pop(room)
        if not rooms:
            del self._by_account[account]
        del self._all[(account, room)]
        self.bytes -= _cost(account, room, id_)

    def load(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """Markers from the database, least recently moved first (account, room, id)."""
        for account, room, id_ in rows:
            self._set(account, room, id_)

    def rows(self) -> list[tuple[str, str, str]]:
        """Every marker, least recently moved first (a snapshot, the tests)."""
        return [(account, room, self._by_account[account][room])
                for account, room in self._all]

    def _set(self, account: str, room: str, id_: str) -> None:
        rooms = self._by_account.setdefault(account, {})
        old = rooms.pop(room, None)
        if old is not None:
            del self._all[(account, room)]
            self.bytes -= _cost(account, room, old)
        rooms[room] = id_
        self._all[(account, room)] = None
        self.bytes += _cost(account, room, id_)
        while len(rooms) > self.per_account:
            self.drop_one(account, next(iter(rooms)))
        while self.bytes > self.max_bytes and len(self._all) > 1:
            self.drop_one(*next(iter(self._all)))


def _cost(account: str, room: str, id_: str) -> int:
    return MARKER_BYTES + len(account.encode()) + len(room.encode()) + len(id_)
