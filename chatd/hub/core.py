"""What every handler is given: the parts of the hub (state, history, moderation, the
heartbeats of the nodes) and the helpers that turn updates into effects for local peers.
`chatd.hub.facade.Hub` adds the entry points."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Generic

from chatd import protocol as p
from chatd.accounts import mentions
from chatd.commands import (
    Origin,
)
from chatd.effects import (
    Broadcast,
    Charge,
    Effects,
    Enter,
    Exit,
    Multicast,
    Page,
    Reply,
    SendPaced,
)
from chatd.hub.account_state import AccountsPart
from chatd.hub.base import Entry, HubConfig, Key, P
from chatd.hub.history import Archive, History, HistorySink, Inboxes
from chatd.hub.mentions import MentionIndex
from chatd.hub.state import Room, Session, State
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
        self.acc = AccountsPart(self._config)  # PROTOCOL.txt 18 (chatd.hub.accounts)
        self.mentions = MentionIndex()  # local readers by name, for 18.6

    @property
    def config(self) -> HubConfig:
        return self._config

    @config.setter
    def config(self, config: HubConfig) -> None:  # a reload (chatd.server)
        self._config = self.history.config = config
        self.acc.reload(config)  # --oper's accounts (18.8)

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

    def who_of(self, room: Room[P]) -> p.WhoList:
        """The room's people as a who answer lists them (PROTOCOL.txt 4.7)."""
        users, opers, more = room.listed(self.config.names_bytes)
        return p.WhoList(room.name, users, more=more, opers=opers)

    def topic_of(self, room: Room[P]) -> str:
        topic = self.mod.topics.get(room.key)
        return topic.text if topic is not None else ""

    def bind(self, fx: Effects[P], session: Session[P], peer: P) -> None:
        """Attach the session to its local peer, which reads the session's rooms."""
        self.state.bind(session, peer)
        for room in session.rooms:
            fx.ops.append(Enter(room, peer, peer.text and room != session.room))
        if not peer.text and self._config.mentions:
            self.mentions.add(session)

    def unbind(self, fx: Effects[P], session: Session[P]) -> P | None:
        """Stop delivering to the session's local peer (its connection is going away)."""
        peer = self.state.unbind(session)
        if peer is not None:
            for room in session.rooms:
                fx.ops.append(Exit(room, peer))
            if not peer.text:
                self.mentions.remove(session)
        return peer

    def _refocus(self, fx: Effects[P], session: Session[P], old: str) -> None:
        """A text-mode peer reads its current room plain, the others prefixed (17.10):
        after the current room changed from `old`, the two swap channels."""
        peer = session.peer
        if peer is None or not peer.text or old == session.room:
            return
        if old in session.rooms:
            fx.ops.append(Exit(old, peer))
            fx.ops.append(Enter(old, peer, True))
        if session.room:
            fx.ops.append(Exit(session.room, peer))
            fx.ops.append(Enter(session.room, peer))

    def enter_room(self, fx: Effects[P], session: Session[P], room: Room[P], since: Key,
                   current: bool = True) -> None:
        """Begin a membership, which becomes the current room (unless not `current`: see
        State.enter): the session's local peer, if any, reads the room."""
        old = session.room
        self.state.enter(session, room, since, current)
        if session.peer is not None:
            fx.ops.append(Enter(room.key, session.peer,
                                session.peer.text and session.room != room.key))
            if (session.peer.text and old in session.rooms and old != room.key
                    and session.room == room.key):
                fx.ops.append(Exit(old, session.peer))
                fx.ops.append(Enter(old, session.peer, True))

    def switch_room(self, fx: Effects[P], session: Session[P], key: str) -> None:
        """One of its rooms becomes the session's current room (17.4)."""
        old = session.room
        self.state.switch(session, key)
        self._refocus(fx, session, old)

    def exit_room(self, fx: Effects[P], session: Session[P], room: Room[P]) -> None:
        """End a membership; a room nobody is in is forgotten, its history kept aside."""
        if session.peer is not None:
            fx.ops.append(Exit(room.key, session.peer))
        old = session.room
        if self.state.exit(session, room):
            self.history.forget(room.key)
        if old == room.key:
            self._refocus(fx, session, old)

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

    # ------------------------------------------------------------------ delivery (updates)

    def broadcast(self, fx: Effects[P], room: Room[P], update: p.Update, skip: P | None = None
                  ) -> None:
        fx.ops.append(Broadcast(room.key, update, skip))

    def to_company(self, fx: Effects[P], session: Session[P],
                   update_in: Callable[[Room[P]], p.Update]) -> None:
        """An update about the session for everyone sharing a room with it, once each
        (PROTOCOL.txt 17.7), in the room of theirs that comes first in its joining
        order: the members of its first room by a broadcast there, then those of each
        further room not told yet, each part encoded once per mode (a Multicast)."""
        rooms = [self.state.rooms[key] for key in session.rooms]
        if not rooms:
            if session.peer is not None:
                self.reply(fx, session.peer, update_in(Room("", "")))
            return
        told: set[str] = set(rooms[0].members)
        self.broadcast(fx, rooms[0], update_in(rooms[0]))
        for room in rooms[1:]:
            peers = []
            for sid, member in room.members.items():
                if sid not in told:
                    told.add(sid)
                    if member.peer is not None:
                        peers.append(member.peer)
            if peers:
                fx.ops.append(Multicast(room.key, update_in(room), peers))

    def reply(self, fx: Effects[P], peer: P, update: p.Update) -> None:
        fx.ops.append(Reply(peer, update))

    def costly_reply(self, fx: Effects[P], peer: P, update: p.Update) -> None:
        """A reply whose size grows with the server: flood control charges it (8.3)."""
        fx.ops.append(Reply(peer, update, charge=True))

    def answer(self, fx: Effects[P], origin: Origin, update: p.Update) -> None:
        """Reply to the connection a command came from, if it is still here."""
        if origin.node != self.node:
            return
        session = self.state.local.get(origin.cid)
        if session is not None and session.peer is not None:
            self.reply(fx, session.peer, update)

    def send_page(self, fx: Effects[P], peer: P, room: Room[P], entries: list[Entry], *,
                  newest: bool, more: bool) -> None:
        """History lines as a page (PROTOCOL.txt 3.8): the writer sends as many as fit
        `page_bytes` in the reader's mode, and charges them (8.3)."""
        reader = self.reader_named(peer)
        lines = [p.Chat(e.name, e.message, e.id, e.time, room=room.name, history=True,
                        mention=bool(reader) and e.name != reader
                        and mentions(e.message, reader))
                 for e in entries]
        fx.ops.append(Page(peer, room.name, lines, newest, more, self.config.page_bytes))

    def reader_named(self, peer: P) -> str:
        """The name history lines are marked for, when they name it (18.6): a JSON
        reader's, unless chatd runs with --mentions off; "" otherwise."""
        if not self._config.mentions or peer.text:
            return ""
        session = self.state.local.get(peer.cid)
        return session.name if session is not None else ""

    def send_recent(self, fx: Effects[P], peer: P, room: Room[P]) -> None:
        """A joiner's last lines of the room, one page (3.8)."""
        n = self.config.history_on_join
        if n > 0:
            lines = self.history.retained(room.key)
            self.send_page(fx, peer, room, lines[-n:], newest=True, more=len(lines) > n)

    def send_paced(self, fx: Effects[P], peer: P, session: Session[P],
                   entries: list[tuple[Entry, str | None]]) -> None:
        """A resume's missed lines (10.2), each with its room (None: a private line),
        encoded one at a time as they are written: up to 1,000 lines of 64 KiB in each
        room would be far more than the send queue holds (8.2)."""
        me = session.name if session.account else ""  # its other devices' lines (18.4)
        fx.ops.append(SendPaced(peer, _replay(session.sid, entries,
                                              self.reader_named(peer), me)))
        # a replay costs (PROTOCOL.txt 8.3): by the size of its lines' text
        fx.ops.append(Charge(peer, sum(len(e.message) + len(e.name) for e, _ in entries)))


def _replay(sid: str, entries: list[tuple[Entry, str | None]], reader: str, me: str = ""
            ) -> Iterator[p.Update]:
    for entry, room in entries:
        if entry.sid == sid:
            if entry.ref is not None:  # the ack it may have missed
                yield p.Ack(entry.ref, entry.id, entry.time)
            continue
        own = bool(me) and entry.name == me
        yield p.Chat(entry.name, entry.message, entry.id, entry.time,
                     room=None if entry.to else room, to=entry.to,
                     mention=bool(reader) and not own and not entry.to
                     and mentions(entry.message, reader), own=own)
