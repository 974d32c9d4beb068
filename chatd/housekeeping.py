"""The server's periodic work, a slice at a time: each connection's deadlines
(registration, keepalive: `Link.tick`), this node's heartbeat on the log, the garbage
collector's pace (chatd.heap) and the heap's trim. Nothing here may hold the loop long:
every delivery of that moment waits for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from chatd.bus import Bus
from chatd.commands import BEAT_EVERY, BeatCmd
from chatd.heap import Collector, trim_heap
from chatd.outbox import Outbox

TRIM_AFTER = 64 * 1024 * 1024  # bytes written between heap trims
# Deadlines are checked a fiftieth of the connections at a time, fifty times a beat, so
# that 10,000 connections never stall the loop for a whole scan (~5 ms); and at most
# TICK_ACTIONS connections act per slice (a ping and its pong cost ~30 us together), so
# a crowd that joined at once is pinged over several seconds instead of in one turn.
# Small slices often, not big ones seldom: 64 pings a slice held the loop ~2 ms every
# 100 ms, which every delivery of that moment waited for (issue 29, the city's worst
# seconds were its keepalive wave); 13 a slice every 20 ms keep the same rate.
SLICES = 50
TICK_ACTIONS = 13


class Deadlines(Protocol):
    """A connection's link, as far as its deadlines go (chatd.link.Link)."""

    due: float  # `tick` has nothing to do before this time

    def tick(self, now: float) -> Sequence[Any]: ...


class Ticked(Protocol):
    """A connection, as the housekeeper sees it (chatd.connection.Connection)."""

    cid: int
    closing: bool

    @property
    def link(self) -> Deadlines: ...


class Housekeeper:
    """Runs the periodic work (`run`, a task of the server) over the server's parts."""

    def __init__(self, bus: Bus, node: str, writer: Outbox,
                 perform: Callable[[Sequence[Any]], None]) -> None:
        self.bus = bus
        self.node = node
        self.writer = writer
        # The connections by slice (cid % SLICES), each slice's checked in its turn: a
        # slice picked out of the whole table (islice) touched every connection's object
        # fifty times a second (2% of the city's server CPU under perf).
        self.slices: list[dict[int, Ticked]] = [{} for _ in range(SLICES)]
        self.perform = perform  # what the server does with a link's actions
        self.collector = Collector(time.monotonic())  # chatd.heap: short GC pauses
        self._trimmed_at = 0  # self.writer.written at the last heap trim

    def watch(self, conn: Ticked) -> None:
        """A new connection: its deadlines are checked from now on."""
        self.slices[conn.cid % SLICES][conn.cid] = conn

    def forget(self, conn: Ticked) -> None:
        self.slices[conn.cid % SLICES].pop(conn.cid, None)

    async def run(self) -> None:
        part = 0
        while True:
            await asyncio.sleep(BEAT_EVERY / SLICES)
            part = (part + 1) % SLICES
            if not part:
                self.bus.publish(BeatCmd(self.node))
                self.collector.tick(time.monotonic())
                if self.writer.written - self._trimmed_at > TRIM_AFTER:
                    self._trimmed_at = self.writer.written
                    trim_heap()
            now = time.monotonic()
            acted = 0
            for conn in list(self.slices[part].values()):
                # A link with no deadline due is not asked (10,000 calls a second that
                # nearly all return nothing were 2% of the city's server CPU).
                if not conn.closing and conn.link.due <= now:
                    actions = conn.link.tick(now)
                    if actions:
                        self.perform(actions)
                        acted += 1
                        if acted >= TICK_ACTIONS:
                            break  # the rest of this slice waits for its next turn
