"""The hub's password hashes (its `Hash` effects, PROTOCOL.txt 18.7), run on the
hasher's threads (chatd.passwords.Hasher) so that a slow hash never holds the loop; each
outcome goes back to the hub (`Hub.hashed`), whose effects the server applies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from chatd import effects as ef
from chatd.effects import Effects
from chatd.hub import Hub
from chatd.passwords import Hasher, HasherBusy
from chatd.serverlog import ServerLog


class PasswordJobs:
    """The hashes on their way, and the pool they run on."""

    def __init__(self, hub: Hub[Any], apply_effects: Callable[[Effects[Any]], None],
                 log: ServerLog, stopping: Callable[[], bool]) -> None:
        self.hub = hub
        self.apply_effects = apply_effects
        self.log = log
        self.stopping = stopping  # the server is shutting down: outcomes are dropped
        self.hasher = Hasher()
        self._running: set[asyncio.Future[None]] = set()

    def start(self, op: ef.Hash[Any]) -> None:
        task = asyncio.ensure_future(self._run(op))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, op: ef.Hash[Any]) -> None:
        outcome: object
        try:
            outcome = await (self.hasher.hash(op.password) if op.stored is None
                             else self.hasher.verify(op.password, op.stored))
        except HasherBusy:
            outcome = ef.HASH_BUSY
        if op.peer.gone or self.stopping():
            return
        try:
            self.apply_effects(self.hub.hashed(op.peer, op.then, outcome))
        except Exception as exc:  # a bug must cost one line, never the server
            self.log.error(f"internal error after a password hash: {exc!r}", "bug",
                           cid=op.peer.cid, address=op.peer.address)

    def close(self) -> None:
        self.hasher.close()
