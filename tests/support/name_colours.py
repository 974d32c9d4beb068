"""Steps of people coming and going, and the colours chatd.palette gives their names:
the unit test of the palette checks them, and tests/e2e/test_chatc_colours.py runs the
same steps through the page's colour.js in Chromium (the page and chatc must agree)."""

from __future__ import annotations

from chatd.palette import NameColours


def assignments(steps: list[list[str]]) -> list[list[str]]:
    colours = NameColours()
    out = []
    for names in steps:
        colours.present(names)
        out.append([colours.colour(name) for name in names])
    return out


STEPS = [
    ["carol", "dave", "hana", "bot"],
    ["carol", "dave", "hana", "bot", "alice", "bob", "eve", "frank", "gus", "ivy", "jo", "kim"],
    ["carol", "hana", "bot", "alice", "bob", "eve", "frank", "gus", "ivy", "jo", "kim"],
    ["carol", "hana", "bot", "alice", "bob", "eve", "frank", "gus", "ivy", "jo", "kim", "민수"],
    ["carol", "hana", "bot", "alice", "bob", "eve", "frank", "gus", "ivy", "jo", "kim", "민수",
     "Zoë", "🦀crab"],
    ["bot", "Zoë"],
]
