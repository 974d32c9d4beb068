"""Who gets what: sessions, names, rooms, history and resume, as a pure state machine.

The hub never touches a socket. It works in two steps, so that one process and a
cluster run the same code:

* `handle(peer, event)` answers what the local state can answer at once (errors, who,
  rooms, history) and turns every state change into a command.
* `apply(command, log_id, key, now)` carries out one command, in log order, and returns
  the deliveries for this node's peers. One process applies its commands at once
  (`chatd.log.LocalLog`); a cluster applies the same commands, in the same order, on
  every node, so every node holds the same sessions, names and rooms.

A delivery is `(targets, data, skip)`: send `data` to every peer in `targets` except
`skip`. Broadcast lines are encoded once per mode (JSON, text), not once per reader.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import secrets
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeAlias, TypeVar

from chatd import protocol as p
from chatd.protocol import ErrorCode, ProtocolError


class Peer(Protocol):
    """What the hub needs of a connection: an id unique on this node, and its mode."""

    @property
    def cid(self) -> int: ...

    @property
    def text(self) -> bool: ...


P = TypeVar("P", bound=Peer)
Key: TypeAlias = tuple[int, int]
Delivery: TypeAlias = tuple[Collection[P], bytes, "P | None"]


def id_key(value: str) -> Key:
    """The order of an id: "42" (one process) or "1700000000000-3" (a Redis stream id)."""
    head, _, tail = value.partition("-")
    if head.isdigit() and (not tail or tail.isdigit()) and len(value) <= 40:
        return int(head), int(tail or 0)
    raise ProtocolError(ErrorCode.BAD_ID, f"{value[:40]!r} is not a message id")


@dataclass(frozen=True, slots=True)
class Config:
    history_size: int = 1000  # chat lines kept per room
    history_on_join: int = 50  # lines a joiner receives after its welcome
    resume_grace: float = 120.0  # seconds a broken session waits for its client
    inbox_size: int = 100  # private lines kept per session for resume
    server_name: str = "chatd"


@dataclass(frozen=True, slots=True)
class Origin:
    """The connection a command came from, so that its answer goes back there."""

    node: str
    cid: int


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class JoinCmd:
    origin: Origin
    sid: str
    name: str
    room: str
    text: bool
    token_hash: str
    notice: str | None = None  # why a requested resume did not happen


@dataclass(frozen=True, slots=True)
class ResumeCmd:
    origin: Origin
    sid: str
    last_id: str | None
    fallback: JoinCmd  # applied instead when the session has gone meanwhile


@dataclass(frozen=True, slots=True)
class LeaveCmd:
    sid: str
    reason: str | None = None  # None: a polite or clean leave


@dataclass(frozen=True, slots=True)
class DetachCmd:
    sid: str
    reason: str


@dataclass(frozen=True, slots=True)
class ExpireCmd:
    sid: str


@dataclass(frozen=True, slots=True)
class MoveCmd:
    origin: Origin
    sid: str
    room: str


@dataclass(frozen=True, slots=True)
class RenameCmd:
    origin: Origin
    sid: str
    name: str


@dataclass(frozen=True, slots=True)
class SayCmd:
    origin: Origin
    sid: str
    message: str
    to: str | None = None
    ref: str | None = None


Command: TypeAlias = (
    JoinCmd | ResumeCmd | LeaveCmd | DetachCmd | ExpireCmd | MoveCmd | RenameCmd | SayCmd
)


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class Entry:
    """One chat line as history keeps it."""

    key: Key
    id: str
    time: str
    name: str
    message: str
    sid: str = ""
    ref: str | None = None
    to: str | None = None  # set for private lines (kept in inboxes only)


@dataclass(eq=False, slots=True)
class Session(Generic[P]):
    sid: str
    name: str
    room: str  # key of the room
    text: bool
    token_hash: str
    origin: Origin | None  # None while detached
    since: Key  # lines before this were not meant for this session (joined the room)
    detached_at: float = 0.0
    lost: str = ""  # why the connection went, while detached
    inbox: deque[Entry] = field(default_factory=deque)
    peer: P | None = None  # the local connection, when attached on this node


@dataclass(eq=False, slots=True)
class Room(Generic[P]):
    key: str
    name: str
    members: dict[str, Session[P]] = field(default_factory=dict)  # sid -> session, join order
    json_peers: set[P] = field(default_factory=set)  # attached local peers by mode
    text_peers: set[P] = field(default_factory=set)
    history: list[Entry] = field(default_factory=list)  # sorted by key, trimmed lazily


class HistorySink(Protocol):
    """Where chat lines go to outlive the process (chatd.store); loaded per room on demand."""

    def load(self, room: str, limit: int) -> list[Entry]: ...

    def append(self, room: str, entry: Entry) -> None: ...


class NoSink:
    def load(self, room: str, limit: int) -> list[Entry]:
        return []

    def append(self, room: str, entry: Entry) -> None:
        pass


@dataclass(slots=True)
class Effects(Generic[P]):
    """What the I/O shell must do: deliver, append commands to the log, close peers."""

    deliveries: list[Delivery[P]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    close: list[P] = field(default_factory=list)
    note: str = ""  # what happened, for the server log


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Hub(Generic[P]):
    def __init__(
        self, config: Config | None = None, node: str = "", sink: HistorySink | None = None
    ) -> None:
        self.config = config or Config()
        self.node = node or secrets.token_hex(4)
        self.sink: HistorySink = sink or NoSink()
        self.sessions: dict[str, Session[P]] = {}
        self.names: dict[str, Session[P]] = {}  # name_key -> session
        self.rooms: dict[str, Room[P]] = {}
        self.detached: dict[str, Session[P]] = {}
        self._by_cid: dict[int, Session[P]] = {}  # attached local sessions
        self._pending: dict[int, P] = {}  # local peers whose join is not applied yet
        self._secrets: dict[str, str] = {}  # sid -> resume token, until its welcome is sent
        self._loaded: set[str] = set()  # rooms whose history was read from the sink
        self._serial = 0

    # ------------------------------------------------------------------ queries

    def session_of(self, peer: P) -> Session[P] | None:
        return self._by_cid.get(peer.cid)

    def is_joined(self, peer: P) -> bool:
        return peer.cid in self._by_cid

    def room_users(self, room: Room[P]) -> tuple[str, ...]:
        return tuple(s.name for s in room.members.values())

    # ------------------------------------------------------------------ local input

    def handle(self, peer: P, event: p.Event) -> Effects[P]:
        """A parsed line from a local peer."""
        fx: Effects[P] = Effects()
        session = self._by_cid.get(peer.cid)
        try:
            if isinstance(event, p.Connect):
                self._connect(fx, peer, session, event)
            elif isinstance(event, (p.Ping, p.Pong)):
                if isinstance(event, p.Ping):
                    self._reply(fx, peer, p.ServerPong())
            elif isinstance(event, p.Help):
                self._reply(fx, peer, p.Info(tuple(
                    f"{usage:<16} {what}" for usage, what in p.TEXT_COMMANDS.items())))
            elif session is None:
                if isinstance(event, p.Disconnect):
                    fx.close.append(peer)
                else:
                    raise ProtocolError(ErrorCode.NOT_JOINED, 'send {"type":"connect"} first')
            else:
                self._joined_event(fx, peer, session, event)
        except ProtocolError as exc:
            self._reply(fx, peer, p.Error(exc.code, exc.message, exc.ref))
        return fx

    def error(self, peer: P, exc: ProtocolError) -> bytes:
        """The error line for a peer in its mode (framing faults found by the shell)."""
        return self._encode_for(peer, p.Error(exc.code, exc.message, exc.ref))

    def _connect(
        self, fx: Effects[P], peer: P, session: Session[P] | None, event: p.Connect
    ) -> None:
        if session is not None or peer.cid in self._pending:
            raise ProtocolError(ErrorCode.ALREADY_JOINED, "this connection has joined already")
        name = p.normalize_name(event.name)
        room = p.normalize_room(event.room) if event.room is not None else p.DEFAULT_ROOM
        self._serial += 1
        sid = f"{self.node}-{self._serial}"
        secret = secrets.token_urlsafe(18)
        origin = Origin(self.node, peer.cid)
        join = JoinCmd(origin, sid, name, room, peer.text, hash_token(secret))
        self._pending[peer.cid] = peer
        self._secrets[sid] = f"{sid}.{secret}"
        if event.resume:
            old = self._check_token(event.resume)
            if old is None:
                join = JoinCmd(origin, sid, name, room, peer.text, join.token_hash,
                               "could not resume: the session is unknown or has expired")
            else:
                if event.last_id is not None:
                    id_key(event.last_id)
                fx.commands.append(ResumeCmd(origin, old.sid, event.last_id, join))
                return
        fx.commands.append(join)

    def _check_token(self, token: str) -> Session[P] | None:
        sid, _, secret = token.rpartition(".")
        session = self.sessions.get(sid)
        if session is None or not hmac.compare_digest(session.token_hash, hash_token(secret)):
            return None
        return session

    def _joined_event(
        self, fx: Effects[P], peer: P, session: Session[P], event: p.Event
    ) -> None:
        origin = Origin(self.node, peer.cid)
        if isinstance(event, p.Message):
            fx.commands.append(SayCmd(origin, session.sid, event.message, event.to, event.ref))
        elif isinstance(event, p.Disconnect):
            self._forget_peer(session)
            fx.commands.append(LeaveCmd(session.sid))
            fx.close.append(peer)
        elif isinstance(event, p.Join):
            room = p.normalize_room(event.room)
            if p.name_key(room) == session.room:
                raise ProtocolError(ErrorCode.BAD_ROOM, f"you are in {room} already")
            fx.commands.append(MoveCmd(origin, session.sid, room))
        elif isinstance(event, p.Nick):
            if not event.name.strip():
                raise ProtocolError(ErrorCode.BAD_NAME, "name is blank")
            name = p.normalize_name(event.name)
            if name == session.name:
                raise ProtocolError(ErrorCode.BAD_NAME, f"you are {name} already")
            self._check_free(name, session)
            fx.commands.append(RenameCmd(origin, session.sid, name))
        elif isinstance(event, p.Who):
            self._reply(fx, peer, self._who(session, event.all))
        elif isinstance(event, p.Rooms):
            self._reply(fx, peer, p.RoomList(tuple(
                (room.name, len(room.members))
                for room in sorted(self.rooms.values(), key=lambda r: r.key)
                if room.members)))
        elif isinstance(event, p.History):
            self._history_page(fx, peer, self.rooms[session.room], event)
        else:  # pragma: no cover - every client event is handled above
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{type(event).__name__} not handled")

    def _who(self, session: Session[P], everywhere: bool) -> p.WhoList:
        if everywhere:
            return p.WhoList(None, rooms=tuple(
                (room.name, self.room_users(room))
                for room in sorted(self.rooms.values(), key=lambda r: r.key)
                if room.members))
        room = self.rooms[session.room]
        return p.WhoList(room.name, self.room_users(room))

    def _check_free(self, name: str, session: Session[P] | None) -> None:
        holder = self.names.get(p.name_key(name))
        if holder is not None and holder is not session:
            raise ProtocolError(ErrorCode.NAME_TAKEN, f"{holder.name} is taken")

    def _history_page(self, fx: Effects[P], peer: P, room: Room[P], ask: p.History) -> None:
        lines = self._retained(room)
        if ask.after is not None:
            start = bisect.bisect_right(lines, id_key(ask.after), key=lambda e: e.key)
            page = lines[start : start + ask.limit]
            more = start + ask.limit < len(lines)
        else:
            end = (bisect.bisect_left(lines, id_key(ask.before), key=lambda e: e.key)
                   if ask.before is not None else len(lines))
            page = lines[max(0, end - ask.limit) : end]
            more = end - ask.limit > 0
        self._send_history(fx, peer, room, page, more)

    def _send_history(
        self, fx: Effects[P], peer: P, room: Room[P], page: Iterable[Entry], more: bool
    ) -> None:
        count = 0
        for entry in page:
            count += 1
            self._reply(fx, peer, p.Chat(entry.name, entry.message, entry.id, entry.time,
                                         room=room.name, history=True))
        self._reply(fx, peer, p.HistoryEnd(room.name, count, more))

    def disconnected(self, peer: P, reason: str | None, resumable: bool = True) -> Effects[P]:
        """The peer's connection ended; `reason` None means it closed cleanly (EOF).

        A JSON session whose connection broke (`resumable`) is held for the resume grace
        period, unannounced; everyone else leaves at once (PROTOCOL.txt 2.4).
        """
        fx: Effects[P] = Effects()
        self._pending.pop(peer.cid, None)
        session = self._by_cid.get(peer.cid)
        if session is None:
            return fx
        self._forget_peer(session)
        if reason is None or not resumable or session.text or self.config.resume_grace <= 0:
            fx.commands.append(LeaveCmd(session.sid, reason))
        else:
            fx.commands.append(DetachCmd(session.sid, reason))
        return fx

    def expired(self, now: float) -> list[Command]:
        """Commands ending the sessions of this node that waited past the grace period."""
        cutoff = now - self.config.resume_grace
        return [ExpireCmd(s.sid) for s in self.detached.values()
                if s.detached_at <= cutoff and s.sid.startswith(self.node + "-")]

    def _forget_peer(self, session: Session[P]) -> None:
        """Stop delivering to the session's local peer (its connection is going away)."""
        peer = session.peer
        if peer is None:
            return
        room = self.rooms[session.room]
        room.json_peers.discard(peer)
        room.text_peers.discard(peer)
        self._by_cid.pop(peer.cid, None)
        session.peer = None

    # ------------------------------------------------------------------ log application

    def apply(self, cmd: Command, log_id: str, key: Key, now: float) -> Effects[P]:
        """Carry out one command from the log; `now` is the log's clock for it."""
        fx: Effects[P] = Effects()
        time = p.format_time(now)
        if isinstance(cmd, SayCmd):
            self._apply_say(fx, cmd, log_id, key, time)
        elif isinstance(cmd, JoinCmd):
            self._apply_join(fx, cmd, log_id, key, time)
        elif isinstance(cmd, ResumeCmd):
            self._apply_resume(fx, cmd, log_id, key, time)
        elif isinstance(cmd, (LeaveCmd, ExpireCmd)):
            session = self.sessions.get(cmd.sid)
            if session is None:
                return fx
            if isinstance(cmd, LeaveCmd):
                self._remove(fx, session, log_id, time, cmd.reason)
            elif session.origin is None and session.detached_at + self.config.resume_grace <= now:
                self._remove(fx, session, log_id, time, session.lost)
        elif isinstance(cmd, DetachCmd):
            session = self.sessions.get(cmd.sid)
            if session is not None:
                self._forget_peer(session)
                session.origin, session.detached_at, session.lost = None, now, cmd.reason
                self.detached[session.sid] = session
                fx.note = (f"{session.name} lost the connection ({cmd.reason}); held "
                           f"{self.config.resume_grace:g}s for resume")
        elif isinstance(cmd, MoveCmd):
            self._apply_move(fx, cmd, log_id, key, time)
        elif isinstance(cmd, RenameCmd):
            self._apply_rename(fx, cmd, log_id, time)
        return fx

    def _apply_say(self, fx: Effects[P], cmd: SayCmd, log_id: str, key: Key, time: str) -> None:
        sender = self.sessions.get(cmd.sid)
        if sender is None:
            return
        if cmd.to is not None:
            target = self.names.get(p.name_key(cmd.to))
            if target is None:
                self._answer(fx, cmd.origin, p.Error(
                    ErrorCode.NO_SUCH_USER, f"no user named {cmd.to[:40]}", cmd.ref))
                return
            entry = Entry(key, log_id, time, sender.name, cmd.message, sender.sid, cmd.ref,
                          to=target.name)
            for holder in {sender, target}:
                holder.inbox.append(entry)
                if len(holder.inbox) > self.config.inbox_size:
                    holder.inbox.popleft()
            if target.peer is not None:
                line = p.Chat(sender.name, cmd.message, log_id, time, to=target.name)
                fx.deliveries.append(((target.peer,), self._encode_for(target.peer, line), None))
            fx.note = f"{sender.name} -> {target.name}: private line ({len(cmd.message)} chars)"
        else:
            room = self.rooms[sender.room]
            line = p.Chat(sender.name, cmd.message, log_id, time, room=room.name)
            self._broadcast(fx, room, line, sender.peer)
            entry = Entry(key, log_id, time, sender.name, cmd.message, sender.sid, cmd.ref)
            self._remember(room, entry)
            fx.note = f"<{sender.name}@{room.name}> {cmd.message}"
        if cmd.ref is not None:
            self._answer(fx, cmd.origin, p.Ack(cmd.ref, log_id, time))

    def _remember(self, room: Room[P], entry: Entry) -> None:
        self._retained(room)
        history = room.history
        history.append(entry)
        if len(history) >= 2 * self.config.history_size:
            del history[: len(history) - self.config.history_size]
        self.sink.append(room.key, entry)

    def _retained(self, room: Room[P]) -> list[Entry]:
        """The room's last `history_size` lines (loaded from the sink on first use)."""
        if not room.history and room.key not in self._loaded:
            self._loaded.add(room.key)
            room.history = self.sink.load(room.key, self.config.history_size)
        size = self.config.history_size
        return room.history if len(room.history) <= size else room.history[-size:]

    def _room(self, name: str) -> Room[P]:
        k = p.name_key(name)
        room = self.rooms.get(k)
        if room is None:
            room = self.rooms[k] = Room(k, name)
        return room

    def _free_name(self, wanted: str, session: Session[P] | None = None) -> str:
        name, n = wanted, 1
        while (holder := self.names.get(p.name_key(name))) is not None and holder is not session:
            n += 1
            name = p.name_variant(wanted, n)
        return name

    def _apply_join(self, fx: Effects[P], cmd: JoinCmd, log_id: str, key: Key, time: str) -> None:
        name = self._free_name(cmd.name)
        room = self._room(cmd.room)
        session: Session[P] = Session(cmd.sid, name, room.key, cmd.text, cmd.token_hash,
                                      cmd.origin, key)
        self.sessions[session.sid] = session
        self.names[p.name_key(name)] = session
        room.members[session.sid] = session
        peer = self._attach(session, cmd.origin)
        if peer is not None:
            notice = cmd.notice
            if name != cmd.name:
                taken = f"{cmd.name} is taken, so you are {name}"
                notice = f"{notice}; {taken}" if notice else taken
            self._reply(fx, peer, p.Welcome(
                name, room.name, self.room_users(room), self._secrets.pop(session.sid, ""),
                notice=notice, server=self.config.server_name))
            self._send_recent(fx, peer, room)
        self._broadcast(fx, room, p.Joined(name, room.name, f"{name} joined", log_id, time))
        fx.note = f"{self._tag(cmd.origin)} {name} joined {room.name}"

    def _send_recent(self, fx: Effects[P], peer: P, room: Room[P]) -> None:
        lines = self._retained(room)
        n = self.config.history_on_join
        if n > 0:
            self._send_history(fx, peer, room, lines[-n:], len(lines) > n)

    def _attach(self, session: Session[P], origin: Origin) -> P | None:
        """Bind the session to its local peer, if the origin is a connection of this node."""
        if origin.node != self.node:
            return None
        peer = self._pending.pop(origin.cid, None)
        if peer is None:  # the connection closed before its join was applied
            return None
        self._bind(session, peer)
        return peer

    def _bind(self, session: Session[P], peer: P) -> None:
        session.peer = peer
        self._by_cid[peer.cid] = session
        room = self.rooms[session.room]
        (room.text_peers if peer.text else room.json_peers).add(peer)

    def _apply_resume(
        self, fx: Effects[P], cmd: ResumeCmd, log_id: str, key: Key, time: str
    ) -> None:
        session = self.sessions.get(cmd.sid)
        if session is None:
            return self._apply_join(fx, JoinCmd(
                cmd.fallback.origin, cmd.fallback.sid, cmd.fallback.name, cmd.fallback.room,
                cmd.fallback.text, cmd.fallback.token_hash,
                "could not resume: the session has expired"), log_id, key, time)
        if session.peer is not None:  # the old connection is still open here: replace it
            fx.close.append(session.peer)
            self._forget_peer(session)
        self._secrets.pop(cmd.fallback.sid, None)
        self.detached.pop(session.sid, None)
        session.origin = cmd.origin
        # The resumed session keeps its old token: a client may resume any number of times.
        peer = self._attach(session, cmd.origin)
        room = self.rooms[session.room]
        fx.note = f"{self._tag(cmd.origin)} {session.name} resumed in {room.name}"
        if peer is None:
            return
        self._reply(fx, peer, p.Welcome(
            session.name, room.name, self.room_users(room), "", resumed=True,
            server=self.config.server_name))
        seen = id_key(cmd.last_id) if cmd.last_id is not None else (0, 0)
        start = max(seen, session.since)
        lines = self._retained(room)
        missed = lines[bisect.bisect_right(lines, start, key=lambda e: e.key):]
        private = [e for e in session.inbox if e.key > seen]
        for entry in sorted([*missed, *private], key=lambda e: e.key):
            if entry.sid == session.sid:
                if entry.ref is not None:  # the ack it may have missed
                    self._reply(fx, peer, p.Ack(entry.ref, entry.id, entry.time))
                continue
            self._reply(fx, peer, p.Chat(entry.name, entry.message, entry.id, entry.time,
                                         room=None if entry.to else room.name, to=entry.to))

    def _remove(
        self, fx: Effects[P], session: Session[P], log_id: str, time: str, reason: str | None
    ) -> None:
        self._forget_peer(session)
        del self.sessions[session.sid]
        self.detached.pop(session.sid, None)
        if self.names.get(p.name_key(session.name)) is session:
            del self.names[p.name_key(session.name)]
        room = self.rooms[session.room]
        del room.members[session.sid]
        self._broadcast(fx, room, p.Left(session.name, room.name, f"{session.name} left",
                                         log_id, time, reason))
        fx.note = f"{session.name} left {room.name}" + (f" ({reason})" if reason else "")

    def _apply_move(self, fx: Effects[P], cmd: MoveCmd, log_id: str, key: Key, time: str) -> None:
        session = self.sessions.get(cmd.sid)
        if session is None:
            return
        old, new = self.rooms[session.room], self._room(cmd.room)
        if old is new:
            return
        peer = session.peer
        self._forget_peer(session)
        del old.members[session.sid]
        self._broadcast(fx, old, p.Left(session.name, old.name,
                                        f"{session.name} left for {new.name}", log_id, time))
        session.room, session.since = new.key, key
        new.members[session.sid] = session
        if peer is not None:
            self._bind(session, peer)
            self._reply(fx, peer, p.WhoList(new.name, self.room_users(new)))
            self._send_recent(fx, peer, new)
        self._broadcast(fx, new, p.Joined(session.name, new.name,
                                          f"{session.name} joined", log_id, time))
        fx.note = f"{session.name} moved from {old.name} to {new.name}"

    def _apply_rename(self, fx: Effects[P], cmd: RenameCmd, log_id: str, time: str) -> None:
        session = self.sessions.get(cmd.sid)
        if session is None:
            return
        try:
            self._check_free(cmd.name, session)
        except ProtocolError as exc:
            self._answer(fx, cmd.origin, p.Error(exc.code, exc.message))
            return
        old = session.name
        del self.names[p.name_key(old)]
        session.name = cmd.name
        self.names[p.name_key(cmd.name)] = session
        room = self.rooms[session.room]
        self._broadcast(fx, room, p.Renamed(cmd.name, old, room.name,
                                            f"{old} is now known as {cmd.name}", log_id, time))
        fx.note = f"{old} is now known as {cmd.name}"

    def _tag(self, origin: Origin) -> str:
        """A connection as the log names it: "#12" here, "node#12" on another node."""
        return f"#{origin.cid}" if origin.node == self.node else f"{origin.node}#{origin.cid}"

    # ------------------------------------------------------------------ delivery

    def _broadcast(self, fx: Effects[P], room: Room[P], update: p.Update, skip: P | None = None
                   ) -> None:
        if room.json_peers:
            fx.deliveries.append((room.json_peers, p.encode_json(update), skip))
        if room.text_peers:
            fx.deliveries.append((room.text_peers, p.encode_text(update), skip))

    @staticmethod
    def _encode_for(peer: P, update: p.Update) -> bytes:
        return p.encode_text(update) if peer.text else p.encode_json(update)

    def _reply(self, fx: Effects[P], peer: P, update: p.Update) -> None:
        data = self._encode_for(peer, update)
        if data:
            fx.deliveries.append(((peer,), data, None))

    def _answer(self, fx: Effects[P], origin: Origin, update: p.Update) -> None:
        """Reply to the connection a command came from, if it is still here."""
        if origin.node != self.node:
            return
        session = self._by_cid.get(origin.cid)
        if session is not None and session.peer is not None:
            self._reply(fx, session.peer, update)
