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

Cyclic garbage among frozen objects would stay. chatd makes none: the TCP shell keeps
the error that ends a connection without its traceback (chatd.tcp.StreamProtocol),
and a closed asyncio transport's cycle with itself is broken (chatd.net.release_transport),
so tests/e2e/test_heap.py finds none after real connections, TLS and WebSocket included,
ended cleanly or not. A *sweep* (unfreeze everything, collect it all, freeze again) is the
insurance against a cycle nobody found yet: once an hour, one long pause (~0.2 s at
10,000 connections). Sweeping whenever the frozen objects had doubled put such pauses
into the growth of a crowd and its first seconds seated: 44 and 159 ms while 10,000
clients were seated, which found nothing (issue 29).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Final

FREEZE_EVERY: Final = 1.0  # seconds between freezes: what a full walk still sees
SWEEP_EVERY: Final = 3600.0  # seconds between sweeps


class Collector:
    def __init__(self, now: float) -> None:
        self._next_freeze = now + FREEZE_EVERY
        self._next_sweep = now + SWEEP_EVERY
        self.sweeps = 0

    def tick(self, now: float) -> None:
        if now < self._next_freeze:
            return
        self._next_freeze = now + FREEZE_EVERY
        gc.collect(1)  # young garbage goes now: what is frozen is what lives on
        gc.freeze()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.sweeps += 1


@functools.cache
def _malloc_trim() -> Callable[[], object]:
    import ctypes  # at the first trim, not at every start of chatd
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return lambda: None
    return lambda: trim(0)


# A burst (10,000 joins announced to everyone) frees hundreds of MB the C allocator
# keeps; giving it back keeps the resident size of an idle server near its live data.
def trim_heap() -> None:
    _malloc_trim()()
