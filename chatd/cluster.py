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
  chat:room:<room>    the room's chat lines up to the last snapshot (chatd.roomstreams)
  chat:snapshot       where the last snapshot is, and the snapshots' parts
                      (chatd.snapshotstore)

`RedisBus` owns the log: publishing this node's commands (held, in bytes, while Redis
is away), applying every node's, and deciding when this node writes the snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Generic

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
from chatd.hub import Effects, Hub, P, Stamp
from chatd.roomstreams import RedisHistory, RoomStreams
from chatd.serverlog import ServerLog
from chatd.snapshotstore import SnapshotStore, capture
from chatd.streambudget import LOG_ENTRY_OVERHEAD, HeldBudget, LogBudget, RoomBudget
from chatd.streamreply import Fields, as_str, entries, split_id

BATCH = 500  # commands a node puts in one log entry
# ... and about this many bytes of chat text: the log's budget is counted in entries, so
# one entry must stay small next to it, whatever the lines hold.
BATCH_BYTES = 256 * 1024
READ_BLOCK_MS = 1000
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
STARTUP_WAIT = 15.0


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


class RedisBus(Generic[P]):
    """The command log of one node of a cluster, in the place of chatd.bus's local one."""

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
        self.on_effects = on_effects
        self.url = url
        self.log = log
        self.key = f"{prefix}:log"
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
        # idle: seconds a room stream lives without a new line (0: for ever)
        self.rooms = RoomStreams(self.redis, f"{prefix}:room:", self.history, idle)
        self.snapshots = SnapshotStore(self.redis, f"{prefix}:snapshot")
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

    async def _bootstrap(self) -> None:
        snap = await self.snapshots.restore(self.hub)
        if snap is not None:
            self.seen = snap["seen"]
            self.last_id = snap["log_id"]
        first = entries(await self.redis.xrange(self.key, "-", "+", count=1))
        if first and snap and split_id(first[0][0]) > split_id(self.last_id):
            self.log.warning("the log was trimmed past the last snapshot: "
                             "some state may be missing")
        # Room lines of entries up to where the replay starts come from the room streams;
        # the replay of the log adds the later ones.
        if snap:
            upto, inclusive = split_id(self.last_id), True
        else:
            upto, inclusive = (split_id(first[0][0]) if first else (2**63, 0)), False
        self.hub.use_sink(self.history, takes_all=True)
        await self.rooms.load({room.key for room in self.hub.rooms.values()}, upto, inclusive)
        while True:  # replay without blocking until caught up
            applied = entries(await self.redis.xread({self.key: self.last_id}, count=1000))
            if not applied:
                break
            for entry_id, fields in applied:
                self._apply(entry_id, fields)

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

    def publish(self, cmd: Command) -> None:
        budget = self.held_budget
        size = budget.cost(cmd.message if isinstance(cmd, SayCmd) else None)
        # Leaves always go in (a session's end must reach every node); they are small
        # and come at most once per session.
        if not budget.fits(size) and not isinstance(cmd, (LeaveCmd, DetachCmd, BeatCmd)):
            self.on_effects(self.hub.refuse(cmd, "the cluster is unavailable; try again"))
            return
        if isinstance(cmd, BeatCmd) and self._down_since is not None:
            return  # heartbeats are about now; don't pile them up during an outage
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
                read = entries(await self.reader.xread(
                    {self.key: self.last_id}, count=1000, block=READ_BLOCK_MS))
            except (RedisError, OSError) as exc:
                self._outage(exc)
                await asyncio.sleep(backoff.failed())
                continue
            backoff.reset()
            self._recovered()
            async with self._applying:
                for entry_id, fields in read:
                    self._apply(entry_id, fields)

    def _apply(self, entry_id: str, fields: Fields) -> None:
        self.last_id = entry_id
        budget = self.log_budget
        budget.add(entry_id, LOG_ENTRY_OVERHEAD + sum(map(len, fields.values())))
        if budget.since_snapshot > budget.limit // 2:
            self._snapshot_due.set()  # so that the log still reaches back to it
        node, seq = as_str(fields[b"n"]), int(fields[b"s"])
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
        ms, n = split_id(entry_id)
        self.lag = max(0.0, time.time() - ms / 1000)
        stamp = Stamp(entry_id, (ms, n), ms / 1000)  # one id sequence for the whole entry
        for cmd in commands:
            self.on_effects(self.hub.apply(cmd, stamp))

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
                horizon = split_id(self.last_id)[0] - int(keep * 1000)
                self.history.forget_before(horizon)
                self.history.budget.forget_touched_before(horizon)
                continue
            if written == self.last_id:
                continue
            # Taken together, with no command applied between: the state at log_id, and
            # every room line up to it that the room streams may lack.
            async with self._applying:
                log_id = self.last_id
                captured = await capture(self.hub, log_id, dict(self.seen))
                lines = self.history.take()
                touched = self.history.budget.take_touched()
            started = time.monotonic()
            try:
                await self.rooms.write(lines, touched)
                size = await self.snapshots.write(log_id, captured)
            except (RedisError, OSError):
                self.history.put_back(lines)
                self.history.budget.touched.update(touched)
                continue
            gap = 8 * (time.monotonic() - started)
            written = log_id
            self.log.debug(f"snapshot written at {written} ({size} bytes, "
                           f"{sum(map(len, lines.values()))} room line(s))")
