"""The command log of one process: commands are applied the moment they are published.

A cluster swaps this for a log shared through Redis (chatd.cluster), which applies the
same commands in the same order on every node; the hub and the server do not change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, Protocol

from chatd.hub import Command, Effects, Hub, P, Stamp


class Bus(Protocol):
    shared: bool  # True when sessions outlive this process (a cluster)

    async def start(self) -> None: ...

    def publish(self, command: Command) -> None: ...

    async def close(self) -> None: ...


class LocalBus(Generic[P]):
    shared = False

    def __init__(
        self,
        hub: Hub[P],
        on_effects: Callable[[Effects[P]], None],
        first_seq: int = 0,
        reserve: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.on_effects = on_effects
        self.seq = first_seq  # ids go on after a restart (chatd.store reserves them)
        self.reserve = reserve
        self.clock = clock

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def publish(self, command: Command) -> None:
        self.seq = seq = self.seq + 1
        if self.reserve is not None:
            self.reserve(seq)
        self.on_effects(self.hub.apply(command, Stamp(str(seq), (seq, 0), self.clock())))
