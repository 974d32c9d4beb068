"""The process heap: keeping the cycle collector's pauses short with many connections,
and handing freed memory back.

CPython's cycle collector now and then walks *every* container object it tracks (a
"full collection"); a chat connection is about 40 of them (its streams, task, link,
session...), so with 10,000 connections one walk stops the event loop for ~100 ms.
Connections are freed by reference counting alone (tests/e2e/test_heap.py checks that
closing them, cleanly or not, leaves no cycle), so such a walk finds nothing. So, once a
beat, `Collector.tick` collects the young generations and freezes every survivor
(`gc.freeze`, O(1)): frozen objects are left out of every later walk, and a full walk
sees only what lived through the last beat.

Cyclic garbage among frozen objects (asyncio's own loop, which chatd uses with TLS,
leaves a small cycle per closed transport) would stay; a *sweep* unfreezes everything
and collects it: when the frozen objects have doubled since the last sweep, and at least
once an hour. It is one long pause, but a rare one: a crowd growing to 10,000 makes a
handful, then none while it stays.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from typing import Final

FREEZE_EVERY: Final = 1.0  # seconds between freezes: what a full walk still sees
SWEEP_EVERY: Final = 3600.0  # seconds between sweeps at most
SWEEP_GROWTH: Final = 2.0  # a sweep when the frozen objects grew this much since the last
SWEEP_FLOOR: Final = 100_000  # ... and are more than this many


class Collector:
    def __init__(self, now: float, floor: int = SWEEP_FLOOR) -> None:
        self.floor = floor
        self._next_freeze = now + FREEZE_EVERY
        self._next_sweep = now + SWEEP_EVERY
        self._swept = 0  # objects frozen right after the last sweep
        self._frozen = 0  # objects frozen since, and before: an upper bound
        self.sweeps = 0

    def tick(self, now: float) -> None:
        if now < self._next_freeze:
            return
        self._next_freeze = now + FREEZE_EVERY
        gc.collect(1)  # young garbage goes now: what is frozen is what lives on
        # What is about to be frozen: the unfrozen objects, few after the first beat.
        # (gc.get_freeze_count() walks every frozen object: 15 ms at 10,000 clients.)
        self._frozen += sum(len(gc.get_objects(g)) for g in range(3))
        gc.freeze()
        if now >= self._next_sweep or self._doubled():
            self._next_sweep = now + SWEEP_EVERY
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._swept = self._frozen = gc.get_freeze_count()
            self.sweeps += 1

    def _doubled(self) -> bool:
        limit = max(self.floor, SWEEP_GROWTH * self._swept)
        if self._frozen <= limit:
            return False
        # The running count never shrinks (frozen objects freed later stay in it): now
        # that it says "doubled", count for real, once.
        self._frozen = gc.get_freeze_count()
        return self._frozen > limit


def _malloc_trim() -> Callable[[], object]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return lambda: None
    return lambda: trim(0)


# A burst (10,000 joins announced to everyone) frees hundreds of MB the C allocator
# keeps; giving it back keeps the resident size of an idle server near its live data.
trim_heap = _malloc_trim()
