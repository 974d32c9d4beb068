"""chatd.heap.Collector: survivors frozen once a beat; a sweep once an hour, never sooner."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from chatd.heap import SWEEP_EVERY, Collector


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector can free it


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_survivors_are_frozen_once_a_beat_young_garbage_is_collected_first() -> None:
    collector = Collector(now=0.0)
    collector.tick(0.5)
    assert gc.get_freeze_count() == 0  # not a beat yet
    young = Node()
    gone = weakref.ref(young)
    del young
    kept = [[i] for i in range(5000)]
    collector.tick(1.0)
    assert gone() is None  # collected, not frozen
    assert gc.get_freeze_count() >= len(kept) and collector.sweeps == 0


def test_growth_makes_no_sweep_an_hour_does_and_frees_frozen_cycles() -> None:
    # Growth is not garbage: a crowd arriving must not be stopped by full walks (issue 29).
    collector = Collector(now=0.0)
    collector.tick(1.0)
    old = Node()
    gone = weakref.ref(old)
    gc.freeze()  # as a beat would freeze it, had it lived through one
    del old
    grown = [[i] for i in range(4 * gc.get_freeze_count())]
    collector.tick(2.0)
    assert collector.sweeps == 0 and gone() is not None
    collector.tick(SWEEP_EVERY)
    assert collector.sweeps == 1 and gone() is None
    assert gc.get_freeze_count() >= len(grown)


def test_a_sweep_comes_once_an_hour() -> None:
    collector = Collector(now=0.0)
    collector.tick(1.0)
    collector.tick(SWEEP_EVERY - 1)
    assert collector.sweeps == 0
    collector.tick(SWEEP_EVERY)
    assert collector.sweeps == 1
