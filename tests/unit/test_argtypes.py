"""chatd.argtypes: the command-line value types chatd and chatc share."""

from __future__ import annotations

import argparse
import re

import pytest

from chatd.argtypes import port, seconds


def test_port_ranges_differ_by_program_and_share_the_words() -> None:
    assert port()("0") == 0 and port(lowest=1)("65535") == 65535  # chatd may pick a free one
    for checker, text, words in ((port(), "x", "'x' is not a port number (0-65535)"),
                                 (port(lowest=1), "0", "'0' is not a port number (1-65535)"),
                                 (port(), "65536", "'65536' is not a port number (0-65535)")):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(words)):
            checker(text)


def test_seconds_open_or_bounded() -> None:
    assert seconds()("0") == 0.0 and seconds()("2.5") == 2.5
    assert seconds(most=3600)("3600") == 3600.0
    cases = ((seconds(), "soon", "'soon' is not a number of seconds"),
             (seconds(), "nan", "'nan' is not a number of seconds"),
             (seconds(), "-1", "seconds cannot be negative"),
             (seconds(most=3600), "0", r"'0' is not a number of seconds \(0-3600\)"),
             (seconds(most=3600), "x", r"'x' is not a number of seconds \(0-3600\)"))
    for checker, text, words in cases:
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            checker(text)
