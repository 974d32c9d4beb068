"""Colours for user names, shared by chatc and the web page so a name looks the same in both.

Seven colours, chosen (tests/unit/test_palette.py checks each claim) to be:
- clearly told apart: the closest two are 27.6 apart in CIEDE2000 (20 is about where
  two small coloured words stop looking like shades of one colour; the earlier
  palette of 12 had pairs 7 apart). More colours at mid lightness cannot all be that
  far apart: 8 reach 24 at best, 10 only 20;
- readable on a dark and on a light terminal: contrast 4.5:1 or more against both pure
  black and pure white. That fixes the luminance to 0.175-0.183 (a mid grey's), which
  is why hue and chroma alone keep them apart. One colour cannot reach 4.5:1 against
  both the page's light (#ffffff) and dark (#15171b) backgrounds (4.24 at best); on the
  page's own backgrounds they reach 3.2-4.5 (per theme, lighter shades for the dark
  theme would be the page's change to make).
Pure red is left out (it means "error"). A name's colour is its CRC-32 (of the UTF-8
bytes) modulo the palette size: stable across runs, machines and languages (the page
computes the same CRC-32).
"""

from __future__ import annotations

import zlib
from typing import Final

PALETTE: Final = (
    "#008a0f",  # green
    "#008484",  # teal
    "#0375d5",  # blue
    "#a536ff",  # violet
    "#e70c69",  # raspberry
    "#cf4800",  # orange
    "#8d7200",  # ochre
)


def name_colour(name: str) -> str:
    """A colour for a name, the same in every run, on every machine and in the browser."""
    return PALETTE[zlib.crc32(name.encode("utf-8")) % len(PALETTE)]
