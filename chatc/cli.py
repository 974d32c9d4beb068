"""Placeholder until the client issue: chatc is not built yet."""

import sys


def main() -> int:
    print("chatc: not built yet", file=sys.stderr)
    return 1
