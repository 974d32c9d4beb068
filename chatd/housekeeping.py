"""The server's periodic work, a turn at a time: each connection's deadlines
(registration, keepalive: `Link.tick`), this node's heartbeat on the log, the garbage
collector's pace (chatd.heap) and the heap's trim. Nothing here may hold the loop long:
every delivery of that moment waits for it."""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from chatd.bus import Bus
from chatd.commands import BEAT_EVERY, BeatCmd
from chatd.heap import Collector, trim_heap
from chatd.outbox import Outbox

TRIM_AFTER = 64 * 1024 * 1024  # bytes written between heap trims
# The housekeeper's turn: at most every TURN seconds it asks the links whose deadline
# has come (Schedule), and at most TICK_ACTIONS of them act in one turn (a ping and its pong
# cost ~30 us together), so that a crowd that joined at once is pinged over several
# seconds instead of in one turn: small turns often, not big ones seldom (64 pings a
# turn held the loop ~2 ms every 100 ms, which every delivery of that moment waited
# for: issue 29, the city's worst seconds were its keepalive wave).
TURN = BEAT_EVERY / 50
TICK_ACTIONS = 13
# A link not joined yet is asked this often: its deadlines (registration, the greeting:
# PROTOCOL.txt 8.4, 6.1) move with what it sends, so `Link.due` cannot say them.
UNJOINED_EVERY = 1.0
SHRINK_SLACK = 1024  # entries of gone connections the schedule keeps before shrinking
INFINITY = math.inf


class Deadlines(Protocol):
    """A connection's link, as far as its deadlines go (chatd.link.Link)."""

    due: float  # `tick` has nothing to do before this time

    @property
    def joined(self) -> bool: ...

    def tick(self, now: float) -> Sequence[Any]: ...


class Ticked(Protocol):
    """A connection, as the housekeeper sees it (chatd.connection.Connection)."""

    cid: int
    closing: bool

    @property
    def link(self) -> Deadlines: ...


class Schedule:
    """When to ask each connection's link for its deadlines (`Link.tick`): a heap of
    (time, connection id), one entry a connection, so that a turn touches only the links
    whose time has come. Scanning all of them once a second touched 10,000 objects a
    second in a city, each a cache miss (5% of the server's Python samples under
    py-spy), to find the few hundred due."""

    def __init__(self) -> None:
        self.conns: dict[int, Ticked] = {}
        self._heap: list[tuple[float, int]] = []

    def watch(self, conn: Ticked) -> None:
        """A new connection: asked at the next turn, then from its `Link.due` on."""
        if conn.cid not in self.conns:
            self.conns[conn.cid] = conn
            heapq.heappush(self._heap, (0.0, conn.cid))

    def forget(self, conn: Ticked) -> None:
        """A connection gone: its entry is dropped when its time comes, or when those of
        gone connections outnumber the others (the heap kept in place: `ask` may be
        running, a connection being closed by an action it performs)."""
        if self.conns.pop(conn.cid, None) is not None and (
                len(self._heap) > 2 * len(self.conns) + SHRINK_SLACK):
            self._heap[:] = [entry for entry in self._heap if entry[1] in self.conns]
            heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def next_time(self) -> float:
        """When the earliest entry falls due (INFINITY: none)."""
        return self._heap[0][0] if self._heap else INFINITY

    def ask(self, now: float, perform: Callable[[Sequence[Any]], None],
            most: int = TICK_ACTIONS) -> int:
        """Ask the links whose time has come, in the order of their times, until `most`
        of them have acted (the others wait for the next turn); returns how many did."""
        heap, conns, acted = self._heap, self.conns, 0
        while heap and heap[0][0] <= now and acted < most:
            cid = heapq.heappop(heap)[1]
            conn = conns.get(cid)
            if conn is None or conn.closing:  # gone, or going: no deadline matters
                continue
            link = conn.link
            if link.due <= now:
                actions = link.tick(now)
                if actions:
                    perform(actions)
                    acted += 1
            due = link.due
            if due <= now:  # not joined yet (see UNJOINED_EVERY), or a timeout now due:
                # asked at the next turn (this turn asked at most its limit)
                due = math.nextafter(now, INFINITY) if link.joined else now + UNJOINED_EVERY
            if due != INFINITY:  # no deadline left (text mode, pings off): not asked again
                heapq.heappush(heap, (due, cid))
        return acted


class Housekeeper:
    """Runs the periodic work (`run`, a task of the server) over the server's parts."""

    def __init__(self, bus: Bus, node: str, writer: Outbox,
                 perform: Callable[[Sequence[Any]], None]) -> None:
        self.bus = bus
        self.node = node
        self.writer = writer
        self.schedule = Schedule()
        self.perform = perform  # what the server does with a link's actions
        self.collector = Collector(time.monotonic())  # chatd.heap: short GC pauses
        self._trimmed_at = 0  # self.writer.written at the last heap trim

    def watch(self, conn: Ticked) -> None:
        """A new connection: its deadlines are checked from now on."""
        self.schedule.watch(conn)

    def forget(self, conn: Ticked) -> None:
        self.schedule.forget(conn)

    async def run(self) -> None:
        # It sleeps until the next deadline or beat, but never less than a TURN: an idle
        # server wakes about once a second, not fifty times (10,000 joined idle clients
        # cost it 12-16 ms of CPU a second with a turn every 20 ms and a scan, 0.3 now:
        # `python -m bench.idlecpu`), and a crowd falling due is still asked at most
        # TICK_ACTIONS a TURN.
        next_beat = time.monotonic() + BEAT_EVERY
        while True:
            wake = min(next_beat, self.schedule.next_time())
            await asyncio.sleep(max(TURN, wake - time.monotonic()))
            now = time.monotonic()
            if now >= next_beat:
                next_beat += BEAT_EVERY  # one beat a second, in step...
                if next_beat <= now:  # ...unless the loop was held past a whole beat
                    next_beat = now + BEAT_EVERY
                self.bus.publish(BeatCmd(self.node))
                self.collector.tick(now)
                if self.writer.written - self._trimmed_at > TRIM_AFTER:
                    self._trimmed_at = self.writer.written
                    trim_heap()
            self.schedule.ask(now, self.perform)
