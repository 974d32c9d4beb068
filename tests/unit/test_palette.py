"""The name palette (issue 13 item 14): colours clearly apart (CIEDE2000, checked first
against the published test pairs) and readable on dark and light backgrounds."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from chatd.palette import PALETTE
from tests.support.colour_science import ciede2000, contrast, lab

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


def test_the_closest_two_colours_are_far_apart() -> None:
    closest = min(ciede2000(lab(a), lab(b)) for a, b in itertools.combinations(PALETTE, 2))
    assert closest >= 27.5  # 27.6 (issue 13 asked for well above 20)


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
