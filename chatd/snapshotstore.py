"""The cluster's snapshot in Redis: the replicated state at a log id, for later nodes.

  chat:snapshot       where the last snapshot is: {key, parts, log_id, bytes}
  chat:snapshot:<id>  the replicated state at log id <id>, for nodes that start later:
                      a list of parts of about 1 MiB (chatd.hub.replication)

A node that starts restores the last snapshot, then replays the log from its id on;
so the log must reach back to it (chatd.cluster writes one every --snapshot-every, or
sooner as the log grows). A snapshot is written in parts with the event loop free in
between, and only then pointed to, so a reader never sees half of one; a reader that
finds its parts replaced meanwhile reads the new one (PROTOCOL.txt 14.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatd.hub import Hub, P, replication

SNAPSHOT_READS = 5  # tries to read a snapshot that another node keeps replacing


class SnapshotMoved(RedisError):
    """The snapshot was replaced while it was being read: read the new one."""


async def capture(hub: Hub[P], log_id: str, seen: dict[str, int]) -> replication.Captured:
    """The hub's state at `log_id`, copied over several loop turns (clients are served
    in between); the caller keeps commands from being applied meanwhile."""
    steps = replication.capturing(hub, log_id=log_id, seen=seen)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            captured: replication.Captured = done.value
            return captured
        await asyncio.sleep(0)


class SnapshotStore:
    """The snapshot under `key` (and its parts under `key:<log id>`)."""

    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self.redis = redis
        self.key = key

    async def restore(self, hub: Hub[P]) -> dict[str, Any] | None:
        """Restore the last snapshot into the hub; returns its header (None: none)."""
        for _ in range(SNAPSHOT_READS):
            raw = await self.redis.get(self.key)
            if not raw:
                return None
            where = json.loads(raw)
            if "hub" in where:  # one piece, as chatd wrote it before the parts
                replication.restore_dict(hub, where["hub"])
                return {"log_id": where["log_id"], "seen": where["seen"]}
            parts = await self.redis.lrange(where["key"], 0, -1)
            if len(parts) != where["parts"]:
                continue  # replaced (and deleted) between the two reads
            header: dict[str, Any] = json.loads(parts[0])
            replication.restore(hub, header, (json.loads(part) for part in parts[1:]))
            return header
        raise SnapshotMoved("the snapshot kept changing while it was read")

    async def write(self, log_id: str, captured: replication.Captured) -> int:
        """The snapshot in parts, made one at a time with the loop free in between;
        then the pointer to it, and the one before goes. Returns its size."""
        key = f"{self.key}:{log_id}"
        await self.redis.delete(key)  # what a failed try may have left
        parts = size = 0
        try:
            for part in replication.encode(captured):
                await self.redis.rpush(key, part)
                parts, size = parts + 1, size + len(part)
            where = json.dumps({"key": key, "parts": parts, "log_id": log_id, "bytes": size})
            old = await self.redis.set(self.key, where, get=True)
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.unlink(key)
            raise
        if isinstance(old, (str, bytes)):
            before = json.loads(old)
            if before.get("key") not in (None, key):
                await self.redis.unlink(before["key"])
        return size

