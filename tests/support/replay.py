"""Replaying the hub's effects without sockets, as chatd.server and chatd.outbox do.

The hub's `Effects` are ordered operations (chatd.effects); who a `Broadcast` reaches
depends on the `Enter`/`Exit` operations before it. Unit tests of the hub replay them
here to see, per peer, which updates it would be sent, in order (a history page as the
writer cuts it for the peer's mode: chatd.channels.page_parts; a room a text-mode peer
reads prefixed, PROTOCOL.txt 17.10, as the bytes it would be sent).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from typing import Generic, TypeVar

from chatd import protocol as p
from chatd.channels import PREFIXED, encode_in, page_parts
from chatd.commands import Command, Logged
from chatd.effects import (
    Broadcast,
    Close,
    Effects,
    Enter,
    Exit,
    Multicast,
    Page,
    Reply,
    Send,
    SendPaced,
)

P = TypeVar("P", bound=Hashable)
Delivery = tuple[tuple[P, ...], "p.Update | bytes", "P | None"]  # (targets, what, skip)


class Replay(Generic[P]):
    """Room membership from Enter/Exit; deliveries from Reply/Broadcast/..., in order."""

    def __init__(self) -> None:
        # members in order of entry, each with whether it reads the room prefixed
        self.rooms: dict[str, dict[P, bool]] = {}
        self.closed: list[P] = []

    def run(self, fx: Effects[P]) -> tuple[list[Delivery[P]], list[Command]]:
        """Membership changes and deliveries of `fx`, and the commands it publishes
        (the caller publishes them: a LocalBus applies them at once)."""
        out: list[Delivery[P]] = []
        commands: list[Command] = []
        for op in fx.ops:
            if isinstance(op, Enter):
                self.rooms.setdefault(op.room, {})[op.peer] = op.prefixed
            elif isinstance(op, Exit):
                self.rooms.get(op.room, {}).pop(op.peer, None)
            elif isinstance(op, Broadcast):
                members = self.rooms.get(op.room, {})
                # the readers with a copy of their own (18.4, 18.6), as chatd.writer
                apart = {*op.mentioned, *op.own}
                out.append((tuple(peer for peer, pre in members.items()
                                  if not pre and peer not in apart), op.update, op.skip))
                if isinstance(op.update, p.Chat):
                    if op.mentioned:
                        out.append((op.mentioned, replace(op.update, mention=True), None))
                    if op.own:
                        out.append((op.own, replace(op.update, own=True), None))
                if prefixed := tuple(peer for peer, pre in members.items() if pre):
                    out.append((prefixed, encode_in(op.update, PREFIXED), op.skip))
            elif isinstance(op, Multicast):
                members = self.rooms.get(op.room, {})
                for peer in op.peers:
                    out.append(((peer,), encode_in(op.update, PREFIXED)
                                if members.get(peer) else op.update, None))
            elif isinstance(op, Reply):
                out.append(((op.peer,), op.update, None))
            elif isinstance(op, Send):
                out.append(((op.peer,), op.data, None))
            elif isinstance(op, SendPaced):
                out += [((op.peer,), update, None) for update in op.lines]
            elif isinstance(op, Page):
                updates, _ = page_parts(op, getattr(op.peer, "text", False))
                out += [((op.peer,), update, None) for update in updates]
            elif isinstance(op, Close):
                self.closed.append(op.peer)
            elif isinstance(op, Logged):
                commands.append(op)
        return out, commands
