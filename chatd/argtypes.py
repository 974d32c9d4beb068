"""The argparse pieces of chatd's and chatc's command lines (chatd.cli, chatc.cli): the
parser, its help formatter, and the value types of their options.

Each checker raises argparse.ArgumentTypeError with the words the user sees.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


class Parser(argparse.ArgumentParser):
    """Bad usage: one line naming the program and where to read more; exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def port(lowest: int = 0) -> Callable[[str], int]:
    """A TCP port from `lowest` (0 lets a server pick a free one) to 65535."""
    def checked(text: str) -> int:
        if not text.isdigit() or not lowest <= int(text) <= 65535:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a port number ({lowest}-65535)")
        return int(text)
    return checked


def seconds(most: float | None = None) -> Callable[[str], float]:
    """A duration: 0 or more seconds; with `most`, more than 0 and up to `most`."""
    def checked(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if most is not None:
            if not 0 < value <= most:
                raise argparse.ArgumentTypeError(
                    f"{text!r} is not a number of seconds (0-{most:g})")
        elif math.isnan(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
        elif value < 0:
            raise argparse.ArgumentTypeError("seconds cannot be negative")
        return value
    return checked


def size(text: str) -> int:
    """Bytes, with an optional K/M suffix (binary units)."""
    units = {"k": 1024, "m": 1024 * 1024}
    scale = units.get(text[-1:].lower(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 65536, 64K or 1M")
    return int(digits) * scale


def address(text: str) -> str:
    """HOST:PORT (--metrics)."""
    host, sep, number = text.rpartition(":")
    if not sep or not host or not number.isdigit() or int(number) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address like 127.0.0.1:9100")
    return text


def count(text: str) -> int:
    """A whole number, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)
