"""Colours for user names, shared by chatc and the web page so a name looks the same in both.

Twelve colours, chosen (tests/unit/test_palette.py checks each claim) to be:
- readable on a dark and on a light terminal: contrast 4.5:1 or more against both pure
  black and pure white. That fixes the luminance to 0.175-0.183 (a mid grey's), so
  hue and chroma alone keep them apart. One colour cannot reach 4.5:1 against both
  the page's light (#ffffff) and dark (#15171b) backgrounds (4.24 at best); on the
  page's own backgrounds they keep 3.2 or more, and the page shades each per theme
  to 4.5 (chatd/static/colour.js);
- told apart: the closest two are 16.7 apart in CIEDE2000, none is a grey (chroma 30
  or more), and none is near the red of errors. At this one lightness 7 colours can
  be 27 apart, but 12 no more than about 17 (a farthest-point search with local
  improvement over sRGB in steps of 5 found 16.8; 18.7 with greys allowed): more
  colours, a little closer, and names present together never share one while there
  are enough (`NameColours`);
- in hue order, so that "the nearest free colour" is the next one round the circle.
A name's own colour is its CRC-32 (of the UTF-8 bytes) modulo the palette size: stable
across runs, machines and languages (the page computes the same CRC-32).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Final

PALETTE: Final = (
    "#eb0050",  # raspberry
    "#aa6455",  # terracotta
    "#b45f00",  # orange
    "#8c7314",  # ochre
    "#5a8200",  # olive green
    "#008755",  # green
    "#008282",  # teal
    "#007daf",  # blue
    "#4b64ff",  # ultramarine
    "#7d6ea5",  # lavender
    "#d200c3",  # magenta
    "#a55f7d",  # rose
)


def own_index(name: str) -> int:
    """The palette index a name hashes to."""
    return zlib.crc32(name.encode("utf-8")) % len(PALETTE)


def name_colour(name: str) -> str:
    """A colour for a name, the same in every run, on every machine and in the browser."""
    return PALETTE[own_index(name)]


def nearest_free(wanted: int, taken: set[int], size: int) -> int:
    """`wanted` if free, else the free index nearest to it round the circle (the one
    after it first on a tie); `wanted` itself when all are taken."""
    for step in range(size // 2 + 1):
        for index in ((wanted + step) % size, (wanted - step) % size):
            if index not in taken:
                return index
    return wanted


class NameColours:
    """Colours of the names present (a room's members): each keeps its own colour
    unless a name present before it holds that one, then takes the nearest free one,
    and keeps it while it stays. Names not present get their own colour. The page
    does the same (chatd/static/colour.js: present, nameColour)."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}  # name -> palette index, in arrival order

    def present(self, names: Iterable[str]) -> None:
        """The names present now, in the order they came (a room's user list)."""
        now = list(dict.fromkeys(names))
        wanted = set(now)
        for name in [n for n in self._held if n not in wanted]:
            del self._held[name]
        for name in now:
            if name not in self._held:
                taken = set(self._held.values())
                self._held[name] = nearest_free(own_index(name), taken, len(PALETTE))

    def colour(self, name: str) -> str:
        held = self._held.get(name)
        return PALETTE[held] if held is not None else name_colour(name)
