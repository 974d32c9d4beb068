"""What every handler is given: the parts of the hub (state, history, moderation, the
heartbeats of the nodes) and the helpers that turn updates into effects for local peers.
`chatd.hub.facade.Hub` adds the entry points."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Generic

from chatd import protocol as p
from chatd.commands import (
    Origin,
)
from chatd.effects import Charge, Effects, Enter, Exit, SendPaced
from chatd.hub.base import Entry, HubConfig, P
from chatd.hub.history import Archive, History, HistorySink, Inboxes
from chatd.hub.state import Move, Room, Session, State
from chatd.moderation import Credentials, Moderation, ModerationSink
from chatd.protocol import ErrorCode, ProtocolError


class Core(Generic[P]):
    def __init__(
        self, config: HubConfig | None = None, node: str = "", sink: HistorySink | None = None,
        moderation: ModerationSink | None = None,
    ) -> None:
        self._config = config or HubConfig()
        self.node = node or secrets.token_hex(4)
        self.state: State[P] = State()
        self.history: History[P] = History(self._config, sink)
        self.beats: dict[str, float] = {}  # node -> log time of its last heartbeat
        self.now = 0.0  # log time of the command being applied
        self.tokens: dict[str, str] = {}  # sid -> resume token, until its welcome is sent
        self.serial = 0  # sessions made on this node
        self.resumes = 0  # sessions resumed through this node (chatd.metrics)
        self.mod = Moderation()
        self.credentials = Credentials(self._config.opers)
        self.mod_sink = moderation
        if moderation is not None:
            self.mod.restore(moderation.load_moderation())

    @property
    def config(self) -> HubConfig:
        return self._config

    @config.setter
    def config(self, config: HubConfig) -> None:  # a reload (chatd.server)
        self._config = self.history.config = config

    def use_sink(self, sink: HistorySink, takes_all: bool) -> None:
        """Room lines go to `sink` from now on: every one (`takes_all`), or only those
        said through this node."""
        self.history.use_sink(sink, takes_all)

    # ------------------------------------------------------------------ views (metrics)

    @property
    def sessions(self) -> dict[str, Session[P]]:
        return self.state.sessions

    @property
    def names(self) -> dict[str, Session[P]]:
        return self.state.names

    @property
    def rooms(self) -> dict[str, Room[P]]:
        return self.state.rooms

    @property
    def detached(self) -> dict[str, Session[P]]:
        return self.state.held

    @property
    def history_bytes(self) -> int:
        return self.history.bytes

    @property
    def archive(self) -> Archive:
        return self.history.archive

    @property
    def inboxes(self) -> Inboxes[P]:
        return self.history.inboxes

    # ------------------------------------------------------------------ for the handlers

    def keep_private(self, holder: Session[P], entry: Entry) -> None:
        """A private line kept in the holder's inbox, for its resume (10.2), within the
        bounds of `Inboxes`."""
        self.history.keep_private(holder, entry)

    def tag(self, origin: Origin) -> str:
        """A connection as the log names it: "#12" here, "node#12" on another node."""
        return f"#{origin.cid}" if origin.node == self.node else f"{origin.node}#{origin.cid}"

    def origin_of(self, session: Session[P], peer: P) -> Origin:
        # An attached session's origin is its connection here: reuse it, don't build one.
        return session.origin or Origin(self.node, peer.cid)

    def topic_of(self, room: Room[P]) -> str:
        topic = self.mod.topics.get(room.key)
        return topic.text if topic is not None else ""

    def unbind(self, fx: Effects[P], session: Session[P]) -> P | None:
        """Stop delivering to the session's local peer (its connection is going away)."""
        peer, exited = self.state.unbind(session)
        if peer is not None:
            for channel in exited:
                fx.ops.append(Exit(channel, peer))
        return peer

    def exit_room(self, fx: Effects[P], session: Session[P], room: Room[P]) -> None:
        """End a membership; a room nobody is in is forgotten, its history kept aside."""
        moves, gone = self.state.exit(session, room)
        self.move(fx, session, moves)
        if gone:
            self.history.forget(room.key)

    @staticmethod
    def move(fx: Effects[P], session: Session[P], moves: list[Move]) -> None:
        """The writer follows the channels the session's connection reads."""
        peer = session.peer
        if peer is not None:
            for channel, entered in moves:
                fx.ops.append(Enter(channel, peer) if entered else Exit(channel, peer))

    def room_of(self, session: Session[P], name: str | None) -> Room[P]:
        """One of the session's rooms: `name`, or its current room (PROTOCOL.txt 17)."""
        key = p.name_key(p.normalize_room(name)) if name is not None else session.room
        if key not in session.rooms:
            where = f"in {p.normalize_room(name)}" if name is not None else "in any room"
            raise ProtocolError(ErrorCode.NOT_IN_ROOM, f"you are not {where}"
                                + (" (/join it first)" if name is not None else ""))
        return self.state.rooms[key]

    def room_names(self, session: Session[P]) -> tuple[str, ...]:
        """Its rooms, in joining order."""
        rooms = self.state.rooms
        return tuple(rooms[key].name for key in session.rooms)

    # ------------------------------------------------------------------ delivery

    def broadcast(self, fx: Effects[P], room: Room[P], update: p.Update, skip: P | None = None
                  ) -> None:
        if room.json_peers:
            fx.broadcast(room.json_channel, p.encode_json(update), skip)
        if room.text_peers:
            fx.broadcast(room.text_channel, p.encode_text(update), skip)
        if room.prefixed_peers:
            fx.broadcast(room.prefixed_channel,
                         p.encode_text(update, p.room_prefix(room.name)), skip)

    def to_company(self, fx: Effects[P], session: Session[P], update_in: Callable[[Room[P]],
                   p.Update]) -> None:
        """An update about the session for everyone sharing a room with it, once each
        (PROTOCOL.txt 17.7), in the room of theirs that comes first in its joining
        order: the members of its first room by that room's channels, then those of
        each further room not told yet, each part encoded once per mode."""
        rooms = [self.state.rooms[key] for key in session.rooms]
        if not rooms:
            if session.peer is not None:
                self.reply(fx, session.peer, update_in(Room("", "")))
            return
        told: set[str] = set(rooms[0].members)
        self.broadcast(fx, rooms[0], update_in(rooms[0]))
        for room in rooms[1:]:
            update, data = update_in(room), {}
            for sid, member in room.members.items():
                if sid in told:
                    continue
                told.add(sid)
                peer = member.peer
                if peer is None:
                    continue
                mode = 0 if not peer.text else 1 if member.room == room.key else 2
                if mode not in data:
                    data[mode] = (p.encode_json(update) if not peer.text
                                  else p.encode_text(update, "" if member.room == room.key
                                                     else p.room_prefix(room.name)))
                fx.send(peer, data[mode])

    @staticmethod
    def encode_for(peer: P, update: p.Update) -> bytes:
        return p.encode_text(update) if peer.text else p.encode_json(update)

    def reply(self, fx: Effects[P], peer: P, update: p.Update) -> None:
        data = self.encode_for(peer, update)
        if data:
            fx.send(peer, data)

    def costly_reply(self, fx: Effects[P], peer: P, update: p.Update) -> None:
        """A reply whose size grows with the server: flood control charges it (8.3)."""
        data = self.encode_for(peer, update)
        fx.send(peer, data)
        fx.ops.append(Charge(peer, len(data)))

    def answer(self, fx: Effects[P], origin: Origin, update: p.Update) -> None:
        """Reply to the connection a command came from, if it is still here."""
        if origin.node != self.node:
            return
        session = self.state.local.get(origin.cid)
        if session is not None and session.peer is not None:
            self.reply(fx, session.peer, update)

    def page(self, peer: P, room: Room[P], entries: list[Entry], newest: bool = False
             ) -> list[bytes]:
        """The lines of `entries` that fit one page as `peer` reads them (PROTOCOL.txt
        3.8), at least one: the oldest, or the `newest`. Counted encoded, in the
        reader's mode: a line's size differs by mode (a "\\n" is two bytes of JSON, a
        line of text), and what is sent must fit the send queue (8.2)."""
        parts: list[bytes] = []
        total = 0
        for entry in reversed(entries) if newest else entries:
            data = self.encode_for(peer, p.Chat(entry.name, entry.message, entry.id,
                                                entry.time, room=room.name, history=True))
            total += len(data)
            if parts and total > self.config.page_bytes:
                break
            parts.append(data)
        if newest:
            parts.reverse()
        return parts

    def send_history(
        self, fx: Effects[P], peer: P, room: Room[P], parts: list[bytes], more: bool
    ) -> None:
        """A page, in one reply, charged to flood control by its size as sent (8.3)."""
        fx.send(peer, b"".join([*parts, self.encode_for(
            peer, p.HistoryEnd(room.name, len(parts), more))]))
        if parts:  # its lines, as sent: an empty page costs nothing
            fx.ops.append(Charge(peer, sum(map(len, parts))))

    def send_recent(self, fx: Effects[P], peer: P, room: Room[P]) -> None:
        """A joiner's last lines of the room, one page (3.8)."""
        lines = self.history.retained(room.key)
        n = self.config.history_on_join
        if n > 0:
            parts = self.page(peer, room, lines[-n:], newest=True)
            self.send_history(fx, peer, room, parts, len(lines) > len(parts))

    def send_paced(self, fx: Effects[P], peer: P, session: Session[P],
                   entries: list[tuple[Entry, str | None]]) -> None:
        """A resume's missed lines (10.2), each with its room (None: a private line),
        encoded one at a time as they are written: up to 1,000 lines of 64 KiB in each
        room would be far more than the send queue holds (8.2)."""
        fx.ops.append(SendPaced(peer, self._replay(peer, session.sid, entries)))
        # a replay costs (PROTOCOL.txt 8.3): by the size of its lines' text
        fx.ops.append(Charge(peer, sum(len(e.message) + len(e.name) for e, _ in entries)))

    def _replay(self, peer: P, sid: str, entries: list[tuple[Entry, str | None]]
                ) -> Iterator[bytes]:
        for entry, room in entries:
            if entry.sid == sid:
                if entry.ref is not None:  # the ack it may have missed
                    yield self.encode_for(peer, p.Ack(entry.ref, entry.id, entry.time))
                continue
            yield self.encode_for(peer, p.Chat(entry.name, entry.message, entry.id, entry.time,
                                               room=None if entry.to else room, to=entry.to))
