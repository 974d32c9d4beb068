"""Colours for user names, shared by chatc and the web page so a name looks the same in both.

Mid-luminance xterm-256 colours: each has a contrast ratio of at least 3.6 against both
black and white, so names read on dark and light backgrounds. Pure red is left out: it
means "error". A name's colour is its CRC-32 (of the UTF-8 bytes) modulo the palette
size: stable across runs, machines and languages (the page computes the same CRC-32).
"""

from __future__ import annotations

import zlib
from typing import Final

PALETTE: Final = (
    "#af5f00", "#008700", "#5f5fff", "#d70087", "#008787", "#af00ff",
    "#5f8700", "#0087af", "#d7005f", "#878700", "#00875f", "#d700af",
)


def name_colour(name: str) -> str:
    """A colour for a name, the same in every run, on every machine and in the browser."""
    return PALETTE[zlib.crc32(name.encode("utf-8")) % len(PALETTE)]
