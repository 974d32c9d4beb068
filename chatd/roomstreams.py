"""Room history in a cluster: per-room Redis streams, for the nodes that start later.

  chat:room:<room>    stream of the room's chat lines {i: id, t, n, m}, written, up to
                      the snapshot's log id, just before the snapshot; all of them
                      within --redis-history-bytes, least recently active rooms cut
                      first, idle ones deleted (streambudget.RoomBudget) and expiring

The room streams are only read by a node that starts later, for the lines older than
the snapshot (the log holds the rest), so they are written with the snapshot rather
than line by line: one node writes at most the history size of each room's lines
per snapshot, whatever the rate, and the hot path of a line is one log entry.
`RedisHistory` is the hub's history sink on a cluster node (pure: what is to be
written, and the budget every node counts alike); `RoomStreams` reads and writes the
streams for chatd.cluster's start and snapshot loop (PROTOCOL.txt 14.2, 14.6).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import redis.asyncio as aioredis

from chatd.hub import Entry, id_key
from chatd.streambudget import ROOM_LINE_OVERHEAD, RoomBudget
from chatd.streamreply import Fields, as_str, entries

HISTORY_CHUNK = 50  # room lines per pipeline while writing them (the loop stays free)


def line_bytes(entry: Entry) -> int:
    """What a line takes in a room stream (RoomBudget's count)."""
    return (ROOM_LINE_OVERHEAD + len(entry.id) + len(entry.time)
            + len(entry.name.encode("utf-8", "surrogatepass"))
            + len(entry.message.encode("utf-8", "surrogatepass")))


def _entry(stream_entry: tuple[str, Fields]) -> Entry:
    fields = stream_entry[1]
    line_id = as_str(fields[b"i"])
    return Entry(id_key(line_id), line_id, as_str(fields[b"t"]), as_str(fields[b"n"]),
                 as_str(fields[b"m"]))


class RedisHistory:
    """Room history in per-room streams: preloaded at start; every node keeps each
    room's lines since the last snapshot (at most the history size), and the node that
    writes the snapshot writes them to the room streams first."""

    durable = False  # not read back after the start: the hub keeps empty rooms' lines

    def __init__(self, size: int, budget: RoomBudget | None = None) -> None:
        self.size = size
        self.budget = budget or RoomBudget(2**62, size)  # what the streams hold
        self.loaded: dict[str, list[Entry]] = {}
        self.pending: dict[str, deque[Entry]] = {}  # room -> lines not yet written

    def load(self, room: str, limit: int) -> list[Entry]:
        return self.loaded.pop(room, [])[-limit:]

    def append(self, room: str, entry: Entry) -> None:
        lines = self.pending.get(room)
        if lines is None:
            lines = self.pending[room] = deque(maxlen=self.size)
        lines.append(entry)
        self.budget.add(room, entry.key[:2], line_bytes(entry))

    def accepting(self) -> bool:
        return True  # the bus itself refuses what it cannot hold (PROTOCOL.txt 14.4)

    def take(self) -> dict[str, deque[Entry]]:
        taken, self.pending = self.pending, {}
        return taken

    def kept(self, room: str, lines: Iterable[Entry]) -> list[Entry]:
        """Those of a room's `lines` its stream keeps (the budget may have let go of
        the older ones, or of the whole room, since they came)."""
        kept = self.budget.rooms.get(room)
        if not kept:
            return []
        first = kept[0][0]
        return [e for e in lines if e.key[:2] >= first]

    def put_back(self, taken: dict[str, deque[Entry]]) -> None:
        """Lines that could not be written go before the ones that came meanwhile."""
        for room, lines in taken.items():
            lines.extend(self.pending.get(room, ()))
            self.pending[room] = lines

    def forget_before(self, ms: int) -> None:
        """A node that does not write keeps only recent lines, for when it takes over."""
        for room in list(self.pending):
            lines = self.pending[room]
            while lines and lines[0].key[0] < ms:
                lines.popleft()
            if not lines:
                del self.pending[room]


class RoomStreams:
    """The room streams of one cluster (their keys start with `prefix`): read into
    `history` once at start, written from it by the node that writes the snapshot."""

    def __init__(self, redis: aioredis.Redis, prefix: str, history: RedisHistory,
                 idle: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.history = history
        self.idle = idle  # seconds a room stream lives without a new line (0: for ever)

    async def load(self, rooms: set[str], upto: tuple[int, int], inclusive: bool) -> None:
        """Every room's lines up to the log id `upto` (the lines the replay of the log
        does not bring), into `history.loaded`, and counted in its budget."""
        sink = self.history
        async for raw_key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            rooms.add(as_str(raw_key)[len(self.prefix):])
        size = sink.size
        for room in rooms:
            stored = entries(await self.redis.xrevrange(self.prefix + room, count=2 * size))
            lines = {e.id: e for e in map(_entry, stored)
                     if e.key[:2] < upto or (inclusive and e.key[:2] == upto)}
            sink.loaded[room] = sorted(lines.values(), key=lambda e: e.key)[-size:]
        # What the streams hold, counted as every node counts it: rooms in the order of
        # their newest line, so the least recently active come first.
        for room, kept in sorted(sink.loaded.items(), key=lambda kv: (
                kv[1][-1].key if kv[1] else (0, 0, 0))):
            for line in kept:
                sink.budget.add(room, line.key[:2], line_bytes(line))

    async def write(self, lines: dict[str, deque[Entry]], touched: dict[str, int]) -> None:
        """The room lines, in chunks so that the loop serves clients in between; then
        every stream written to or cut is trimmed to what the budget keeps of it, or
        deleted (PROTOCOL.txt 14.6). A line written twice (by a node that took over)
        is read back once (`load`)."""
        history = self.history
        todo = [(room, e) for room, entries in lines.items()
                for e in history.kept(room, entries)]
        for at in range(0, len(todo), HISTORY_CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for room, e in todo[at:at + HISTORY_CHUNK]:
                pipe.xadd(self.prefix + room,
                          {"i": e.id, "t": e.time, "n": e.name, "m": e.message})
            await pipe.execute()
        rooms = list({*lines, *touched})
        for at in range(0, len(rooms), HISTORY_CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for room in rooms[at:at + HISTORY_CHUNK]:
                key = self.prefix + room
                kept = history.budget.rooms.get(room)
                if not kept:
                    pipe.unlink(key)
                    continue
                pipe.xtrim(key, maxlen=len(kept), approximate=False)
                if self.idle > 0:  # gone even if no node is left to delete it
                    pipe.pexpire(key, int(self.idle * 1000))
            await pipe.execute()
