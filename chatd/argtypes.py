"""Command-line value types shared by chatd's and chatc's argparse (chatd.cli, chatc.cli).

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
