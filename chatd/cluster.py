"""Several chatd processes, one chat: the command log shared through a Redis stream.

Every node appends the commands of its own clients to one stream (`chat:log`) and
applies every command of the stream, its own included, in stream order. The hub is
deterministic, so every node holds the same sessions, names, rooms and history, and
delivers to its own connections only: each line reaches each reader once, in the same
order everywhere. The design and its failure modes are in PROTOCOL.txt section 14.

Keys (prefix configurable):
  chat:log            stream of entries {c: commands (JSON), n: node, s: seq}, each
                      entry the commands a node had queued (up to 500); cut to its
                      newest --redis-log-bytes (streambudget.LogBudget)
  chat:room:<room>    stream of the room's chat lines {i: id, t, n, m}, written, up to
                      the snapshot's log id, just before the snapshot; all of them
                      within --redis-history-bytes, least recently active rooms cut
                      first, idle ones deleted (streambudget.RoomBudget) and expiring
  chat:snapshot       where the last snapshot is: {key, parts, log_id, bytes}
  chat:snapshot:<id>  the replicated state at log id <id>, for nodes that start later:
                      a list of parts of about 1 MiB (chatd.hub.replication)

The room streams are only read by a node that starts later, for the lines older than
the snapshot (the log holds the rest), so they are written with the snapshot rather
than line by line: one node writes at most the history size of each room's lines
per snapshot, whatever the rate, and the hot path of a line is one log entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatd.commands import (
    BeatCmd,
    Command,
    DetachCmd,
    LeaveCmd,
    SayCmd,
    from_records,
    to_records,
)
from chatd.hub import Effects, Entry, Hub, P, Stamp, id_key, replication
from chatd.serverlog import ServerLog
from chatd.streambudget import (
    LOG_ENTRY_OVERHEAD,
    ROOM_LINE_OVERHEAD,
    HeldBudget,
    LogBudget,
    RoomBudget,
)

BATCH = 500  # commands a node puts in one log entry
# ... and about this many bytes of chat text: the log's budget is counted in entries, so
# one entry must stay small next to it, whatever the lines hold.
BATCH_BYTES = 256 * 1024
READ_BLOCK_MS = 1000
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
STARTUP_WAIT = 15.0
HISTORY_CHUNK = 50  # room lines per pipeline while writing them (the loop stays free)
SNAPSHOT_READS = 5  # tries to read a snapshot that another node keeps replacing


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


Fields = dict[bytes, bytes]


def _entries(response: Any) -> list[tuple[str, Fields]]:
    """Stream entries out of an XRANGE reply, or out of an XREAD reply for one stream."""
    if not response:
        return []
    if isinstance(response[0], list) and len(response[0]) == 2 and isinstance(
            response[0][1], list):  # XREAD: [[stream, entries]]
        response = response[0][1]
    return [(_str(entry_id), fields) for entry_id, fields in response]


def _split(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


def _line_bytes(entry: Entry) -> int:
    """What a line takes in a room stream (RoomBudget's count)."""
    return (ROOM_LINE_OVERHEAD + len(entry.id) + len(entry.time)
            + len(entry.name.encode("utf-8", "surrogatepass"))
            + len(entry.message.encode("utf-8", "surrogatepass")))


def _batch_size(queue: list[Command]) -> int:
    """How many queued commands go in the next log entry: at least one, at most BATCH,
    and no more than about BATCH_BYTES of chat text."""
    total = 0
    for n, cmd in enumerate(queue[:BATCH]):
        total += len(cmd.message) if isinstance(cmd, SayCmd) else 0
        if total > BATCH_BYTES and n:
            return n
    return min(len(queue), BATCH)



class Backoff:
    """How long to wait before the next try at Redis: doubling from BACKOFF_FIRST up to
    BACKOFF_MAX while it fails, from the start again once a try succeeds."""

    __slots__ = ("delay",)

    def __init__(self) -> None:
        self.delay = BACKOFF_FIRST

    def failed(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, BACKOFF_MAX)
        return delay

    def reset(self) -> None:
        self.delay = BACKOFF_FIRST

class SnapshotMoved(RedisError):
    """The snapshot was replaced while it was being read: read the new one."""


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
        self.budget.add(room, entry.key[:2], _line_bytes(entry))

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


class RedisBus(Generic[P]):
    shared = True  # sessions outlive this process: on shutdown they are detached, not ended

    def __init__(self, hub: Hub[P], on_effects: Callable[[Effects[P]], None], url: str,
                 log: ServerLog, *, snapshot_every: float = 5.0, prefix: str = "chat",
                 log_bytes: int = 16 * 1024 * 1024, history_bytes: int = 32 * 1024 * 1024,
                 hold_bytes: int = 16 * 1024 * 1024, idle: float = 30 * 86400.0) -> None:
        self.hub = hub
        # Commands not yet in the log, in bytes: past it, chat lines are refused (14.4).
        self.held_budget = HeldBudget(hold_bytes)
        self.snapshot_every = snapshot_every
        self.log_budget = LogBudget(log_bytes)
        self.idle = idle  # seconds a room stream lives without a new line (0: for ever)
        self.on_effects = on_effects
        self.url = url
        self.log = log
        self.key = f"{prefix}:log"
        self.room_prefix = f"{prefix}:room:"
        self.snapshot_key = f"{prefix}:snapshot"
        self.redis: aioredis.Redis = aioredis.from_url(url, socket_connect_timeout=2,
                                                       socket_keepalive=True)
        self.reader: aioredis.Redis = aioredis.from_url(
            url, socket_connect_timeout=2, socket_timeout=READ_BLOCK_MS / 1000 + 5)
        self.last_id = "0-0"
        self.seen: dict[str, int] = {}  # node -> last record seq applied (drops retried dups)
        self._seq = 0
        self._queue: list[Command] = []
        self._sizes: list[int] = []  # the held budget's cost of each command of _queue
        # formed, not sent: (commands, their cost, the entry's fields)
        self._batch: tuple[int, int, dict[str, str | bytes]] | None = None
        # This node's entries by sequence number until they come back from the log: the
        # commands are applied as they are rather than decoded from the entry again.
        self._sent: dict[int, list[Command]] = {}
        self.history = RedisHistory(hub.config.history_size, RoomBudget(
            history_bytes, hub.config.history_size, int(idle * 1000)))
        self._wake = asyncio.Event()
        self._snapshot_due = asyncio.Event()  # the log grew by half its budget
        # Held while the log is applied, and while a snapshot copies the state over
        # several loop turns: so the copy is of one moment of the log.
        self._applying = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._down_since: float | None = None
        self._drained = asyncio.Event()  # nothing left to publish
        self._closing = False
        self.lag = 0.0  # seconds: how old the last entry applied was (chatd.metrics)

    @property
    def held(self) -> int:
        """Commands not yet in the log."""
        return len(self._queue)

    @property
    def down(self) -> bool:
        return self._down_since is not None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Catch up with the cluster: snapshot, room history, then the log since it."""
        deadline = time.monotonic() + STARTUP_WAIT
        while True:
            try:
                await self._bootstrap()
                break
            except (RedisError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise OSError(f"cannot reach Redis at {self._safe_url()}: {exc}") from exc
                self.log.warning(f"waiting for Redis at {self._safe_url()}: {exc}")
                await asyncio.sleep(1.0)
        self._tasks = [asyncio.create_task(self._read_loop()),
                       asyncio.create_task(self._publish_loop()),
                       asyncio.create_task(self._snapshot_loop())]
        self.log.info(f"cluster node {self.hub.node} joined through {self._safe_url()}, "
                      f"{len(self.hub.sessions)} session(s) in the cluster")

    def _safe_url(self) -> str:
        """The URL without its password, for the log."""
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"

    async def _read_snapshot(self) -> dict[str, Any] | None:
        """Restore the last snapshot into the hub; returns its header (None: none)."""
        for _ in range(SNAPSHOT_READS):
            raw = await self.redis.get(self.snapshot_key)
            if not raw:
                return None
            where = json.loads(raw)
            if "hub" in where:  # one piece, as chatd wrote it before the parts
                replication.restore_dict(self.hub, where["hub"])
                return {"log_id": where["log_id"], "seen": where["seen"]}
            parts = await self.redis.lrange(where["key"], 0, -1)
            if len(parts) != where["parts"]:
                continue  # replaced (and deleted) between the two reads
            header: dict[str, Any] = json.loads(parts[0])
            replication.restore(self.hub, header, (json.loads(part) for part in parts[1:]))
            return header
        raise SnapshotMoved("the snapshot kept changing while it was read")

    async def _bootstrap(self) -> None:
        snap = await self._read_snapshot()
        if snap is not None:
            self.seen = snap["seen"]
            self.last_id = snap["log_id"]
        first = _entries(await self.redis.xrange(self.key, "-", "+", count=1))
        if first and snap and _split(first[0][0]) > _split(self.last_id):
            self.log.warning("the log was trimmed past the last snapshot: "
                             "some state may be missing")
        # Room lines of entries up to where the replay starts come from the room streams;
        # the replay of the log adds the later ones.
        if snap:
            upto, inclusive = _split(self.last_id), True
        else:
            upto, inclusive = (_split(first[0][0]) if first else (2**63, 0)), False
        sink = self.history
        self.hub.use_sink(sink, takes_all=True)
        rooms = {room.key for room in self.hub.rooms.values()}
        async for raw_key in self.redis.scan_iter(match=f"{self.room_prefix}*", count=1000):
            rooms.add(_str(raw_key)[len(self.room_prefix):])
        size = self.hub.config.history_size
        for room in rooms:
            entries = _entries(await self.redis.xrevrange(self.room_prefix + room,
                                                          count=2 * size))
            lines = {e.id: e for e in map(self._entry, entries)
                     if e.key[:2] < upto or (inclusive and e.key[:2] == upto)}
            sink.loaded[room] = sorted(lines.values(), key=lambda e: e.key)[-size:]
        # What the streams hold, counted as every node counts it: rooms in the order of
        # their newest line, so the least recently active come first.
        for room, stored in sorted(sink.loaded.items(), key=lambda kv: (
                kv[1][-1].key if kv[1] else (0, 0, 0))):
            for line in stored:
                sink.budget.add(room, line.key[:2], _line_bytes(line))
        while True:  # replay without blocking until caught up
            entries = _entries(await self.redis.xread({self.key: self.last_id}, count=1000))
            if not entries:
                break
            for entry_id, fields in entries:
                self._apply(entry_id, fields)

    @staticmethod
    def _entry(stream_entry: tuple[str, Fields]) -> Entry:
        fields = stream_entry[1]
        line_id = _str(fields[b"i"])
        return Entry(id_key(line_id), line_id, _str(fields[b"t"]), _str(fields[b"n"]),
                     _str(fields[b"m"]))

    async def close(self) -> None:
        """Publish what is queued (briefly), then stop."""
        self._wake.set()
        if self._down_since is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), 3)
        # redis-py may turn a cancellation into a ConnectionError, which the loops would
        # retry: they also stop on this flag, and the wait is bounded.
        self._closing = True
        if self._queue:
            self.log.warning(f"{len(self._queue)} held command(s) not published: "
                             "Redis is unreachable")
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=3)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(2):
                await self.redis.aclose()
                await self.reader.aclose()

    # ------------------------------------------------------------------ publishing

    def publish(self, commands: Iterable[Command]) -> None:
        budget = self.held_budget
        for cmd in commands:
            size = budget.cost(cmd.message if isinstance(cmd, SayCmd) else None)
            # Leaves always go in (a session's end must reach every node); they are small
            # and come at most once per session.
            if not budget.fits(size) and not isinstance(cmd, (LeaveCmd, DetachCmd, BeatCmd)):
                self.on_effects(self.hub.refuse(cmd, "the cluster is unavailable; try again"))
                continue
            if isinstance(cmd, BeatCmd) and self._down_since is not None:
                continue  # heartbeats are about now; don't pile them up during an outage
            self._queue.append(cmd)
            self._sizes.append(size)
            budget.add(size)
        self._drained.clear()
        self._wake.set()

    async def _publish_loop(self) -> None:
        backoff = Backoff()
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while (self._queue or self._batch) and not self._closing:
                if self._batch is None and self._queue:
                    # Formed once: a retry sends the same entry with the same sequence
                    # number, so the nodes can drop a copy that got in twice.
                    self._seq += 1
                    batch = self._queue[:_batch_size(self._queue)]
                    self._batch = (len(batch), sum(self._sizes[:len(batch)]),
                                   {"c": to_records(batch), "n": self.hub.node,
                                    "s": str(self._seq)})
                    self._sent[self._seq] = batch
                assert self._batch is not None
                try:
                    # Cut to the budget as every node counts it (PROTOCOL.txt 14.6).
                    await self.redis.xadd(self.key, self._batch[2],  # type: ignore[arg-type]
                                          minid=self.log_budget.cut, approximate=True)
                except (RedisError, OSError) as exc:
                    self._outage(exc)
                    await asyncio.sleep(backoff.failed())
                    continue
                backoff.reset()
                del self._queue[:self._batch[0]]
                del self._sizes[:self._batch[0]]
                self.held_budget.remove(self._batch[1])
                self._batch = None
            self._drained.set()

    def _outage(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.log.warning(f"Redis unavailable ({exc}); serving local clients, holding "
                             f"their lines (up to {self.held_budget.limit:,} bytes), retrying")

    def _recovered(self) -> None:
        if self._down_since is not None:
            self.log.warning(f"Redis is back after {time.monotonic() - self._down_since:.1f}s; "
                             f"publishing {len(self._queue)} held command(s)")
            self._down_since = None
            self._wake.set()

    # ------------------------------------------------------------------ applying

    async def _read_loop(self) -> None:
        backoff = Backoff()
        while not self._closing:
            try:
                entries = _entries(await self.reader.xread(
                    {self.key: self.last_id}, count=1000, block=READ_BLOCK_MS))
            except (RedisError, OSError) as exc:
                self._outage(exc)
                await asyncio.sleep(backoff.failed())
                continue
            backoff.reset()
            self._recovered()
            async with self._applying:
                for entry_id, fields in entries:
                    self._apply(entry_id, fields)

    def _apply(self, entry_id: str, fields: Fields) -> None:
        self.last_id = entry_id
        budget = self.log_budget
        budget.add(entry_id, LOG_ENTRY_OVERHEAD + sum(map(len, fields.values())))
        if budget.since_snapshot > budget.limit // 2:
            self._snapshot_due.set()  # so that the log still reaches back to it
        node, seq = _str(fields[b"n"]), int(fields[b"s"])
        if seq <= self.seen.get(node, 0):
            return  # a record published twice (a retry after a lost reply)
        self.seen[node] = seq
        commands = None
        if node == self.hub.node and self._sent:
            commands = self._sent.pop(seq, None)
            for older in [s for s in self._sent if s < seq]:  # never came back (data lost)
                del self._sent[older]
        if commands is None:
            commands = from_records(fields[b"c"])
        ms, n = _split(entry_id)
        self.lag = max(0.0, time.time() - ms / 1000)
        stamp = Stamp(entry_id, (ms, n), ms / 1000)  # one id sequence for the whole entry
        for cmd in commands:
            self.on_effects(self.hub.apply(cmd, entry_id, (ms, n), ms / 1000, stamp))

    async def _snapshot_loop(self) -> None:
        written = ""
        gap = 0.0  # the least time between two snapshots: 8 times what the last took
        while True:
            # Every --snapshot-every, or sooner when the log grew by half its budget: a
            # node that starts later needs the log from the snapshot on. Paced, so that
            # a big state makes snapshots rarer rather than the node busy with them.
            since = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._snapshot_due.wait(), self.snapshot_every)
            if (rest := since + gap - time.monotonic()) > 0:
                await asyncio.sleep(rest)
            self._snapshot_due.clear()
            self.log_budget.since_snapshot = 0
            # One node writes the snapshot: the first in order among the living ones.
            if self.hub.beats and min(self.hub.beats) != self.hub.node:
                # Another node writes; keep what this one would need to write, should
                # it take over from a node that died: the lines since its last snapshot.
                keep = 2 * self.snapshot_every + self.hub.config.node_timeout + 5
                horizon = _split(self.last_id)[0] - int(keep * 1000)
                self.history.forget_before(horizon)
                self.history.budget.forget_touched_before(horizon)
                continue
            if written == self.last_id:
                continue
            # Taken together, with no command applied between: the state at log_id, and
            # every room line up to it that the room streams may lack.
            async with self._applying:
                log_id = self.last_id
                steps = replication.capturing(self.hub, log_id=log_id, seen=dict(self.seen))
                while True:
                    try:
                        next(steps)
                    except StopIteration as done:
                        captured: replication.Captured = done.value
                        break
                    await asyncio.sleep(0)  # the loop serves clients in between
                lines = self.history.take()
                touched = self.history.budget.take_touched()
            started = time.monotonic()
            try:
                await self._write_history(lines, touched)
                size = await self._write_snapshot(log_id, captured)
            except (RedisError, OSError):
                self.history.put_back(lines)
                self.history.budget.touched.update(touched)
                continue
            gap = 8 * (time.monotonic() - started)
            written = log_id
            self.log.debug(f"snapshot written at {written} ({size} bytes, "
                           f"{sum(map(len, lines.values()))} room line(s))")

    async def _write_snapshot(self, log_id: str, captured: replication.Captured) -> int:
        """The snapshot in parts, made one at a time with the loop free in between;
        then the pointer to it, and the one before goes. Returns its size."""
        key = f"{self.snapshot_key}:{log_id}"
        await self.redis.delete(key)  # what a failed try may have left
        parts = size = 0
        try:
            for part in replication.encode(captured):
                await self.redis.rpush(key, part)
                parts, size = parts + 1, size + len(part)
            where = json.dumps({"key": key, "parts": parts, "log_id": log_id, "bytes": size})
            old = await self.redis.set(self.snapshot_key, where, get=True)
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.unlink(key)
            raise
        if isinstance(old, (str, bytes)):
            before = json.loads(old)
            if before.get("key") not in (None, key):
                await self.redis.unlink(before["key"])
        return size

    async def _write_history(self, lines: dict[str, deque[Entry]],
                             touched: dict[str, int]) -> None:
        """The room lines, in chunks so that the loop serves clients in between; then
        every stream written to or cut is trimmed to what the budget keeps of it, or
        deleted (PROTOCOL.txt 14.6). A line written twice (by a node that took over)
        is read back once (`_bootstrap`)."""
        history = self.history
        todo = [(room, e) for room, entries in lines.items()
                for e in history.kept(room, entries)]
        for at in range(0, len(todo), HISTORY_CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for room, e in todo[at:at + HISTORY_CHUNK]:
                pipe.xadd(self.room_prefix + room,
                          {"i": e.id, "t": e.time, "n": e.name, "m": e.message})
            await pipe.execute()
        rooms = list({*lines, *touched})
        for at in range(0, len(rooms), HISTORY_CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for room in rooms[at:at + HISTORY_CHUNK]:
                key = self.room_prefix + room
                kept = history.budget.rooms.get(room)
                if not kept:
                    pipe.unlink(key)
                    continue
                pipe.xtrim(key, maxlen=len(kept), approximate=False)
                if self.idle > 0:  # gone even if no node is left to delete it
                    pipe.pexpire(key, int(self.idle * 1000))
            await pipe.execute()
