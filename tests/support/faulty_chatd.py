"""chatd with a planted fault: its hub raises on every `rooms` line. Tests of the test
harness run it (`Chatd(program=FAULTY_CHATD)`) to show that a bug in a handler, which
chatd survives by design, still turns the test that met it red. chatd itself has no such
hook: the fault is patched in here, before chatd's own entry point runs."""

from __future__ import annotations

import sys
from typing import Any

from chatd import protocol as p
from chatd.cli import main
from chatd.hub import Hub

FAULTY_CHATD = (sys.executable, "-m", "tests.support.faulty_chatd")

_handle = Hub.handle


def _faulty_handle(self: Any, peer: Any, event: p.Event, *args: Any) -> Any:
    if isinstance(event, p.Rooms):
        raise RuntimeError("planted fault")
    return _handle(self, peer, event, *args)


if __name__ == "__main__":
    Hub.handle = _faulty_handle  # type: ignore[method-assign,assignment]
    sys.exit(main())
