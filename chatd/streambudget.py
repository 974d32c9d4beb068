"""Byte budgets of what a cluster keeps in Redis (PROTOCOL.txt 14.6); pure.

Every node applies every entry of the command log and every room line, in the same
order, so every node can count what the streams hold without asking Redis, and any
node can say where they may be cut: the command log by `LogBudget.cut` (XADD ...
MINID), the room streams by `RoomBudget` (XTRIM ... MAXLEN to the lines it keeps, or
DEL for a room it let go).
"""

from __future__ import annotations

from collections import deque

LOG_ENTRY_OVERHEAD = 64  # what a log entry costs Redis besides its fields' bytes, about
ROOM_LINE_OVERHEAD = 48  # the same for a line of a room stream


class LogBudget:
    """The newest entries of the command log within `limit` bytes. Counted in buckets
    of about limit/64 bytes, so the count is a few dozen values whatever the rate."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.bucket = max(1, self.limit // 64)
        self._buckets: deque[tuple[str, int]] = deque()  # (first entry id, bytes)
        self._open = 0  # bytes of the newest bucket (not yet in _buckets)
        self._open_id = ""
        self.total = 0
        self.cut: str | None = None  # entries older than this id may go
        self.since_snapshot = 0  # bytes since the last snapshot (its writer resets it)

    def add(self, entry_id: str, size: int) -> None:
        if not self._open_id:
            self._open_id = entry_id
        self._open += size
        self.total += size
        self.since_snapshot += size
        if self._open >= self.bucket:
            self._buckets.append((self._open_id, self._open))
            self._open, self._open_id = 0, ""
        # The newest entries stay, even when they alone are past the limit.
        while self.total > self.limit and (len(self._buckets) > 1 or (
                self._buckets and self._open)):
            self.total -= self._buckets.popleft()[1]
            self.cut = self._buckets[0][0] if self._buckets else self._open_id


class RoomBudget:
    """The lines the room streams hold, as (key, bytes): at most `per_room` a room and
    `limit` bytes in all. Past `limit` the least recently active room gives up its
    oldest lines first (the room being added to keeps at least its newest line); a
    room with no line for `idle_ms` goes whole. `touched` names the rooms whose
    stream must be cut (XTRIM to what `rooms` keeps, or DEL), with when it was noted."""

    def __init__(self, limit: int, per_room: int, idle_ms: int = 0) -> None:
        self.limit = max(1, limit)
        self.per_room = max(1, per_room)
        self.idle_ms = idle_ms
        # room -> its lines, oldest first; the least recently active room first
        self.rooms: dict[str, deque[tuple[tuple[int, int], int]]] = {}
        self.total = 0
        self.touched: dict[str, int] = {}  # room -> log time (ms) it was cut

    def add(self, room: str, key: tuple[int, int], size: int) -> None:
        lines = self.rooms.pop(room, None)
        if lines is None:
            lines = deque()
        self.rooms[room] = lines  # now the most recently active
        lines.append((key, size))
        self.total += size
        if len(lines) > self.per_room:
            self._drop(room, key[0])
        while self.total > self.limit:
            victim = next(iter(self.rooms))
            if victim == room and len(lines) == 1:
                break
            self._drop(victim, key[0])
        if self.idle_ms:
            self.expire(key[0])

    def _drop(self, room: str, now_ms: int) -> None:
        lines = self.rooms[room]
        self.total -= lines.popleft()[1]
        if not lines:
            del self.rooms[room]
        self.touched[room] = now_ms

    def expire(self, now_ms: int) -> None:
        """Rooms whose newest line is older than `idle_ms` go whole."""
        while self.rooms:
            room, lines = next(iter(self.rooms.items()))
            if not self.idle_ms or lines[-1][0][0] > now_ms - self.idle_ms:
                return
            self.total -= sum(size for _, size in lines)
            del self.rooms[room]
            self.touched[room] = now_ms

    def take_touched(self) -> dict[str, int]:
        taken, self.touched = self.touched, {}
        return taken

    def forget_touched_before(self, ms: int) -> None:
        """A node that does not write the streams keeps only recent cuts, for when it
        takes over from a writer that did the older ones."""
        for room in [r for r, at in self.touched.items() if at < ms]:
            del self.touched[room]


HELD_OVERHEAD = 256  # what a held command costs besides its text: its object and record


class HeldBudget:
    """The commands a node holds until they are in the log (PROTOCOL.txt 14.4): at most
    `limit` bytes (a chat line's UTF-8 text plus HELD_OVERHEAD, other commands
    HELD_OVERHEAD), so a Redis outage costs the node a known amount of memory however
    big the lines are."""

    __slots__ = ("limit", "total")

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.total = 0

    @staticmethod
    def cost(text: str | None) -> int:
        return HELD_OVERHEAD + (len(text.encode()) if text else 0)

    def fits(self, size: int) -> bool:
        return self.total + size <= self.limit

    def add(self, size: int) -> None:
        self.total += size

    def remove(self, size: int) -> None:
        self.total = max(0, self.total - size)

