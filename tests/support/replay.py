"""Replaying the hub's effects without sockets, as chatd.server and chatd.outbox do.

The hub's `Effects` are ordered operations (chatd.effects); who a `Broadcast` reaches
depends on the `Enter`/`Exit` operations before it. Unit tests of the hub replay them
here to see, per peer, what it would be sent, in order.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from chatd.commands import Command
from chatd.effects import (
    Broadcast,
    Channel,
    Close,
    Effects,
    Enter,
    Exit,
    Publish,
    Send,
    SendPaced,
)

P = TypeVar("P", bound=Hashable)
Delivery = tuple[tuple[P, ...], bytes, "P | None"]  # (targets, data, skip)


class Replay(Generic[P]):
    """Channel membership from Enter/Exit; deliveries from Send/Broadcast, in order."""

    def __init__(self) -> None:
        self.channels: dict[Channel, dict[P, None]] = {}  # members in order of entry
        self.closed: list[P] = []

    def run(self, fx: Effects[P]) -> tuple[list[Delivery[P]], list[Command]]:
        """Membership changes and deliveries of `fx`, and the commands it publishes
        (the caller publishes them: a LocalBus applies them at once)."""
        out: list[Delivery[P]] = []
        commands: list[Command] = []
        for op in fx.ops:
            if isinstance(op, Enter):
                self.channels.setdefault(op.channel, {})[op.peer] = None
            elif isinstance(op, Exit):
                self.channels.get(op.channel, {}).pop(op.peer, None)
            elif isinstance(op, Broadcast):
                out.append((tuple(self.channels.get(op.channel, {})), op.data, op.skip))
            elif isinstance(op, Send):
                out.append(((op.peer,), op.data, None))
            elif isinstance(op, SendPaced):
                out.append(((op.peer,), b"".join(op.lines), None))
            elif isinstance(op, Close):
                self.closed.append(op.peer)
            elif isinstance(op, Publish):
                commands += op.commands
        return out, commands
