"""The name palette (issue 13 item 14, issue 23 item 16): colours clearly apart (CIEDE2000,
checked first against the published test pairs), readable on dark and light backgrounds,
and never shared by two names present together while there are enough."""

from __future__ import annotations

import itertools
import random
import re
from math import atan2, degrees, hypot
from pathlib import Path

import pytest

from chatd.palette import PALETTE, NameColours, name_colour, nearest_free, own_index
from tests.support.colour_science import ciede2000, contrast, lab
from tests.support.name_colours import STEPS, assignments

STYLE = Path(__file__).parents[2] / "chatd" / "static" / "style.css"

# Sharma, Wu and Dalal (2005), Table 1: L1 a1 b1, L2 a2 b2, ΔE00.
SHARMA = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


@pytest.mark.parametrize("pair", SHARMA)
def test_ciede2000_matches_the_published_test_data(
        pair: tuple[float, float, float, float, float, float, float]) -> None:
    l1, a1, b1, l2, a2, b2, expected = pair
    assert round(ciede2000((l1, a1, b1), (l2, a2, b2)), 4) == expected
    assert round(ciede2000((l2, a2, b2), (l1, a1, b1)), 4) == expected  # symmetric


def test_srgb_to_lab_of_known_colours() -> None:
    assert lab("#ffffff") == pytest.approx((100.0, 0.0, 0.0), abs=0.01)
    assert lab("#000000") == pytest.approx((0.0, 0.0, 0.0), abs=0.01)
    assert lab("#ff0000") == pytest.approx((53.24, 80.09, 67.20), abs=0.02)


def test_twelve_colours_the_closest_two_clearly_apart() -> None:
    assert len(PALETTE) >= 12  # a room of 12 shows 12 colours (issue 23 item 16)
    closest = min(ciede2000(lab(a), lab(b)) for a, b in itertools.combinations(PALETTE, 2))
    assert closest >= 16.5  # 16.7; about 17 is the most 12 colours of one lightness reach


def test_no_colour_is_a_grey_and_they_go_round_the_hue_circle() -> None:
    hues = []
    for colour in PALETTE:
        _, a, b = lab(colour)
        assert hypot(a, b) >= 30, colour
        hues.append(degrees(atan2(b, a)) % 360)
    assert hues == sorted(hues)  # neighbours in the palette are neighbours in hue


def test_error_red_is_not_a_name_colour() -> None:
    for red in ("#ff0000", "#c62828", "#cd0000", "#ff6b6b"):  # pure, the page's, xterm's
        assert min(ciede2000(lab(red), lab(c)) for c in PALETTE) > 10


@pytest.mark.parametrize("colour", PALETTE)
def test_each_colour_reads_on_black_and_on_white(colour: str) -> None:
    assert contrast(colour, "#000000") >= 4.5
    assert contrast(colour, "#ffffff") >= 4.5


def page_backgrounds() -> list[str]:
    """The page's backgrounds under names, both themes, as style.css has them now."""
    css = STYLE.read_text()
    found = re.findall(r"--(?:bg|panel|private|history):\s*(#[0-9a-fA-F]{6})", css)
    assert len(found) == 8, found  # light and dark
    return found


def test_on_the_pages_own_backgrounds_each_colour_keeps_3_to_1() -> None:
    # 4.5:1 against both themes is out of reach for one colour (see chatd/palette.py).
    # The worst measured is 3.26, on the dark theme's private-line background; WCAG's
    # 3:1 is for large text, which the page's bold 15 px names are not quite.
    worst = min(contrast(c, bg) for c in PALETTE for bg in page_backgrounds())
    assert worst >= 3.2


# ------------------------------------------------------------------ names present


def test_nearest_free_looks_both_ways_the_next_one_first() -> None:
    assert nearest_free(3, set(), 12) == 3
    assert nearest_free(3, {3}, 12) == 4
    assert nearest_free(3, {3, 4}, 12) == 2
    assert nearest_free(0, {0, 1}, 12) == 11  # round the circle
    assert nearest_free(5, set(range(12)), 12) == 5  # all taken: its own


def named(index: int, count: int = 1, start: int = 0) -> list[str]:
    """`count` names whose own colour is PALETTE[index]."""
    found: list[str] = []
    n = start
    while len(found) < count:
        if own_index(f"user{n}") == index:
            found.append(f"user{n}")
        n += 1
    return found


def test_a_name_keeps_its_own_colour_unless_a_name_present_holds_it() -> None:
    colours = NameColours()
    first, second, third = named(4, 3)
    colours.present([first])
    assert colours.colour(first) == PALETTE[4] == name_colour(first)
    colours.present([first, second])
    assert colours.colour(first) == PALETTE[4]  # it was here first: it keeps it
    assert colours.colour(second) == PALETTE[5]  # the nearest free one
    colours.present([first, second, third])
    assert colours.colour(third) == PALETTE[3]
    colours.present([second, third])  # first leaves: the others keep theirs
    assert (colours.colour(second), colours.colour(third)) == (PALETTE[5], PALETTE[3])
    assert colours.colour(first) == PALETTE[4]  # not present: its own colour
    colours.present([second, third, first])  # back: its own colour is free again
    assert colours.colour(first) == PALETTE[4]


def test_a_room_of_twelve_shows_twelve_colours() -> None:
    rng = random.Random(16)
    for _ in range(50):
        names = [f"{rng.choice(['ann', 'bob', 'cy', 'dee'])}{rng.randrange(10**6)}"
                 for _ in range(len(PALETTE))]
        colours = NameColours()
        for n in range(1, len(names) + 1):  # joining one by one
            colours.present(names[:n])
        assert len({colours.colour(name) for name in names}) == len(PALETTE)
    # More names than colours: the rest share, each its nearest (here: its own).
    crowd = [f"guest{n}" for n in range(40)]
    colours = NameColours()
    colours.present(crowd)
    assert len({colours.colour(name) for name in crowd}) == len(PALETTE)


def test_the_steps_the_page_is_checked_against_give_distinct_colours() -> None:
    for names, colours in zip(STEPS, assignments(STEPS), strict=True):
        assert len(set(colours)) == min(len(names), len(PALETTE))
