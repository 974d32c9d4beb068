"""A hub on a LocalBus with per-peer inboxes, filled as chatd.server would fill them: the
world the unit tests of the hub and of moderation drive (no sockets, the clock is `now`).
An inbox holds the updates a peer was sent (`updates`); `take` and `take_text` show them
encoded as the writer would, for tests that read the wire form."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from chatd import protocol as p
from chatd.bus import LocalBus
from chatd.commands import BeatCmd
from chatd.hub import Effects, Hub, HubConfig
from chatd.protocol import ProtocolError
from tests.support.replay import Delivery, Replay

T0 = 1_764_100_800.0  # 2025-11-25T20:00:00Z


@dataclass(eq=False)
class FakePeer:
    """What the hub needs of a connection (chatd.hub.Peer)."""

    cid: int
    text: bool = False


class World:
    """A hub on a LocalBus, with per-peer inboxes filled as chatd.server would fill them."""

    def __init__(self, **config: Any) -> None:
        self.now = T0
        self.hub: Hub[FakePeer] = Hub(HubConfig(**config), node="n1")
        self.bus: LocalBus[FakePeer] = LocalBus(self.hub, self._applied, clock=lambda: self.now)
        self.inbox: dict[int, list[p.Update | bytes]] = defaultdict(list)
        self.closed: list[FakePeer] = []
        self.notes: list[str] = []
        self.applied: list[Effects[FakePeer]] = []  # effects of applied commands, in order
        self.delivered: list[list[Delivery[FakePeer]]] = []  # their deliveries, replayed
        self.replay: Replay[FakePeer] = Replay()
        self._cid = 0

    def effects(self, fx: Effects[FakePeer]) -> list[Delivery[FakePeer]]:
        """What chatd.server.Server.apply_effects does, minus the sockets."""
        deliveries, commands = self.replay.run(fx)
        for targets, data, skip in deliveries:
            for peer in targets:
                if peer is not skip:
                    self.inbox[peer.cid].append(data)
        if fx.note:
            self.notes.append(fx.note)
        self.closed = self.replay.closed
        for command in commands:
            self.bus.publish(command)
        return deliveries

    def _applied(self, fx: Effects[FakePeer]) -> None:
        self.applied.append(fx)
        slot: list[Delivery[FakePeer]] = []
        self.delivered.append(slot)  # before the commands this one publishes are applied
        slot.extend(self.effects(fx))

    def peer(self, text: bool = False) -> FakePeer:
        self._cid += 1
        return FakePeer(self._cid, text)

    def send(self, peer: FakePeer, event: p.Event) -> Effects[FakePeer]:
        fx = self.hub.handle(peer, event)
        self.effects(fx)
        return fx

    def line(self, peer: FakePeer, raw: bytes) -> None:
        """A raw client line, parsed as chatd.server does (JSON or text by the peer's mode)."""
        try:
            event = p.parse_text_line(raw) if peer.text else p.parse_json_line(raw)
        except ProtocolError as exc:
            self.inbox[peer.cid].append(p.Error(exc.code, exc.message, exc.ref))  # as the link
            return
        if event is not None:
            self.send(peer, event)

    def join(self, name: str | None, room: str | None = None, text: bool = False,
             **fields: Any) -> FakePeer:
        peer = self.peer(text)
        self.send(peer, p.Connect(name=name, room=room, text=text, **fields))
        return peer

    def say(self, peer: FakePeer, message: str, **fields: Any) -> None:
        self.send(peer, p.Message(message, **fields))

    def lost(self, peer: FakePeer, reason: str | None = "connection reset") -> None:
        self.effects(self.hub.disconnected(peer, reason))

    def expire(self) -> None:
        """A heartbeat at `self.now`: the hub ends the sessions whose grace is over."""
        self.bus.publish(BeatCmd(self.hub.node))

    def updates(self, peer: FakePeer) -> list[p.Update]:
        """The updates sent to `peer` since the last take."""
        got = self.inbox.pop(peer.cid, [])
        assert all(not isinstance(u, bytes) for u in got), got
        return [u for u in got if not isinstance(u, bytes)]

    def take(self, peer: FakePeer) -> list[dict[str, Any]]:
        """JSON lines delivered to `peer` since the last take."""
        data = [u if isinstance(u, bytes) else p.encode_json(u)
                for u in self.inbox.pop(peer.cid, [])]
        return [json.loads(line) for chunk in data for line in chunk.splitlines()]

    def take_text(self, peer: FakePeer) -> list[str]:
        data = b"".join(u if isinstance(u, bytes) else p.encode_text(u)
                        for u in self.inbox.pop(peer.cid, []))
        return data.decode().splitlines()

    def types(self, peer: FakePeer) -> list[str]:
        return [m["type"] for m in self.take(peer)]


def chats(lines: list[dict[str, Any]]) -> list[str]:
    return [m["message"] for m in lines if m["type"] == "message"]


def only(lines: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [m for m in lines if m["type"] == kind]
    assert len(found) == 1, lines
    return found[0]
