"""Who gets what: sessions, names, rooms, history and resume, as a pure state machine.

The hub never touches a socket. It works in two steps, so that one process and a
cluster run the same code:

* `handle(peer, event)` answers what the local state can answer at once (errors, who,
  rooms, history) and turns every state change into a command.
* `apply(command, log_id, key, now)` carries out one command, in log order, and returns
  what this node's peers must get. One process applies its commands at once
  (`chatd.bus.LocalBus`); a cluster applies the same commands, in the same order, on
  every node, so every node holds the same sessions, names and rooms.

Both return `Effects` (chatd.effects): an ordered list of operations (send to one,
broadcast to a room's channel, a peer enters or exits a channel, close, publish) that
the shell replays in order. Broadcast lines are encoded once per mode (JSON, text), not
once per reader.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import hmac
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from chatd import protocol as p
from chatd.commands import (
    BEAT_EVERY,
    BanCmd,
    BeatCmd,
    Command,
    DetachCmd,
    JoinCmd,
    KickCmd,
    LeaveCmd,
    ModCommand,
    MoveCmd,
    MuteCmd,
    OperCmd,
    Origin,
    RenameCmd,
    ResumeCmd,
    SayCmd,
    TopicCmd,
    UnbanCmd,
)
from chatd.effects import (
    Channel,
    Charge,
    Close,
    Effects,
    Enter,
    Exit,
    Released,
    SendPaced,
    Settled,
    WrongPassword,
)
from chatd.moderation import BanRecord, Credentials, Moderation, TopicRecord, ban_network
from chatd.protocol import ErrorCode, ProtocolError

__all__ = [
    "BeatCmd", "Command", "DetachCmd", "Effects", "Entry", "Hub", "HubConfig",
    "JoinCmd", "LeaveCmd", "MoveCmd", "Origin", "Peer", "RenameCmd", "ResumeCmd", "SayCmd",
    "Stamp", "id_key",
]


class Peer(Protocol):
    """What the hub needs of a connection: an id unique on this node, and its mode."""

    @property
    def cid(self) -> int: ...

    @property
    def text(self) -> bool: ...


P = TypeVar("P", bound=Peer)
Key: TypeAlias = tuple[int, int, int]


_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?(?:\.(\d{1,6}))?", re.ASCII)


def id_key(value: str) -> Key:
    """The order of an id: "42" (one process), "1700000000000-3" (a Redis stream id);
    ".N" marks the N-th further update made by the same command ("42.1")."""
    match = _ID.fullmatch(value)
    if match is None:
        raise ProtocolError(ErrorCode.BAD_ID, f"{value[:40]!r} is not a message id")
    return int(match[1]), int(match[2] or 0), int(match[3] or 0)


class Stamp:
    """The id and time of the log entry being applied. An entry making several updates
    (a room move, a node's users leaving, a cluster entry holding several commands)
    gives them ids "42", "42.1", "42.2", ..."""

    __slots__ = ("base", "key", "now", "time", "_used")

    def __init__(self, log_id: str, key: tuple[int, int], now: float) -> None:
        self.base = log_id
        self.key: Key = (key[0], key[1], 0)
        self.now = now
        self.time = p.format_time(now)
        self._used = 0

    def next_id(self) -> tuple[str, Key]:
        n, self._used = self._used, self._used + 1
        if n == 0:
            return self.base, self.key
        return f"{self.base}.{n}", (self.key[0], self.key[1], n)


@dataclass(frozen=True, slots=True)
class HubConfig:
    history_size: int = 1000  # chat lines kept per room
    history_on_join: int = 50  # lines a joiner receives after its welcome
    resume_grace: float = 120.0  # seconds a broken session waits for its client
    inbox_size: int = 100  # private lines kept per session for resume
    inbox_bytes: int = 256 * 1024  # ... and bytes of them (entry_cost), PROTOCOL.txt 8.6
    private_memory: int = 16 * 1024 * 1024  # bytes of private lines kept, in all sessions
    node_timeout: float = 5.0  # a node silent this long (log time) is declared gone
    server_name: str = "chatd"
    # Bytes (about) of history kept in memory for rooms with people in them; as much
    # again, a quarter of it, for rooms nobody is in when history has no database.
    history_memory: int = 64 * 1024 * 1024
    max_line_bytes: int = 0  # the server's line limit, announced in the welcome (4.1)
    # Bytes of a history page (and a joiner's recent lines) as sent in the reader's mode
    # (3.8): half the send queue, so no page can cut its reader off (8.2).
    page_bytes: int = 128 * 1024
    # Operator names and passwords (PROTOCOL.txt 15.1); never in a repr or a log line.
    opers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


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
    inbox: deque[Entry] | None = None  # made on the first private line: most have none
    inbox_bytes: int = 0  # entry_cost of the lines in `inbox` (chatd.hub.Inboxes)
    peer: P | None = None  # the local connection, when attached on this node
    oper: bool = False  # an operator (PROTOCOL.txt 15.1)
    address: str = ""  # the IP address it joined from, for address bans (15.3)
    grace: float = 0.0  # while detached: seconds it is held for resume from detached_at


@dataclass(eq=False, slots=True)
class Room(Generic[P]):
    key: str
    name: str
    members: dict[str, Session[P]] = field(default_factory=dict)  # sid -> session, join order
    json_peers: set[P] = field(default_factory=set)  # attached local peers by mode
    text_peers: set[P] = field(default_factory=set)
    json_channel: Channel = ("", False)  # the writer's names for those audiences
    text_channel: Channel = ("", True)
    history: list[Entry] = field(default_factory=list)  # sorted by key, trimmed lazily


class HistorySink(Protocol):
    """Where chat lines go to outlive the process (chatd.store); loaded per room on demand."""

    durable: bool  # keeps every line, so a room nobody is in needs no copy in memory

    def load(self, room: str, limit: int) -> list[Entry]: ...

    def append(self, room: str, entry: Entry) -> None: ...

    def accepting(self) -> bool:
        """False while the sink cannot keep more lines: new room lines are refused."""
        ...


class ModerationSink(Protocol):
    """Where bans and topics go to outlive the process (chatd.store, PROTOCOL.txt 15.6)."""

    def load_moderation(self) -> dict[str, Any]: ...

    def save_ban(self, ban: BanRecord) -> None: ...

    def drop_ban(self, kind: str, key: str) -> None: ...

    def save_topic(self, room: str, topic: TopicRecord | None) -> None: ...


class NoSink:
    durable = False

    def load(self, room: str, limit: int) -> list[Entry]:
        return []

    def append(self, room: str, entry: Entry) -> None:
        pass

    def accepting(self) -> bool:
        return True


ENTRY_OVERHEAD = 320  # bytes a history line costs besides its text (ids, time, objects)


def entry_cost(entry: Entry) -> int:
    """About what a line of history holds in memory (text at two bytes a character)."""
    return ENTRY_OVERHEAD + 2 * (len(entry.message) + len(entry.name))


class Archive:
    """The history of rooms nobody is in, while it fits in `budget` (oldest room goes
    first), for a hub whose history has no database: a room that fills again gets its
    lines back. With a database, a room's history is simply loaded again."""

    __slots__ = ("budget", "bytes", "rooms")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.bytes = 0
        self.rooms: dict[str, tuple[list[Entry], int]] = {}  # oldest first

    def put(self, room: str, lines: list[Entry], cost: int) -> None:
        self.take(room)
        self.rooms[room] = (lines, cost)
        self.bytes += cost
        while self.bytes > self.budget and self.rooms:
            self.take(next(iter(self.rooms)))

    def take(self, room: str) -> list[Entry]:
        lines, cost = self.rooms.pop(room, ([], 0))
        self.bytes -= cost
        return lines


class Inboxes(Generic[P]):
    """The private lines sessions keep for resume (PROTOCOL.txt 8.6), bounded in bytes:
    per session by `per_session` (and `count` lines), in all by `budget`, past which the
    oldest private line on the server goes first. A line is a few bytes or 64 KiB, so
    a count alone let 50 sessions hold 150 MB (issue 22)."""

    __slots__ = ("budget", "bytes", "count", "order", "per_session")

    def __init__(self, budget: int, per_session: int, count: int) -> None:
        self.budget, self.per_session, self.count = budget, per_session, max(1, count)
        self.bytes = 0
        # Every kept line, oldest first; log order is key order, so the oldest here is
        # the oldest of its session's inbox too.
        self.order: OrderedDict[tuple[Key, str], Session[P]] = OrderedDict()

    def keep(self, session: Session[P], entry: Entry) -> None:
        """Add the newest line; the session's (then the server's) oldest go past a bound.
        The newest line always stays."""
        inbox = session.inbox
        if inbox is None:
            inbox = session.inbox = deque()
        cost = entry_cost(entry)
        inbox.append(entry)
        session.inbox_bytes += cost
        self.bytes += cost
        self.order[(entry.key, session.sid)] = session
        while len(inbox) > 1 and (len(inbox) > self.count
                                  or session.inbox_bytes > self.per_session):
            self._drop_oldest(session)
        while self.bytes > self.budget and len(self.order) > 1:
            self._drop_oldest(next(iter(self.order.values())))

    def _drop_oldest(self, session: Session[P]) -> None:
        assert session.inbox
        entry = session.inbox.popleft()
        cost = entry_cost(entry)
        session.inbox_bytes -= cost
        self.bytes -= cost
        del self.order[(entry.key, session.sid)]
        if not session.inbox:
            session.inbox = None

    def drop(self, session: Session[P]) -> None:
        """The session ended: its lines go with it."""
        for entry in session.inbox or ():
            del self.order[(entry.key, session.sid)]
        self.bytes -= session.inbox_bytes
        session.inbox, session.inbox_bytes = None, 0

    def reindex(self, sessions: Iterable[Session[P]]) -> None:
        """Count what restored sessions hold (a snapshot carries their inboxes)."""
        held = [s for s in sessions if s.inbox]
        self.bytes, self.order = 0, OrderedDict()
        for session in held:
            assert session.inbox is not None
            session.inbox = deque(session.inbox)  # bounded here, not by maxlen
            session.inbox_bytes = sum(entry_cost(e) for e in session.inbox)
            self.bytes += session.inbox_bytes
        pairs = sorted((((e.key, s.sid), s) for s in held for e in s.inbox or ()),
                       key=lambda pair: pair[0])
        self.order.update(pairs)
        for session in held:  # within bounds again, were they changed since the snapshot
            inbox = session.inbox
            assert inbox is not None
            while len(inbox) > 1 and (len(inbox) > self.count
                                      or session.inbox_bytes > self.per_session):
                self._drop_oldest(session)
        while self.bytes > self.budget and len(self.order) > 1:
            self._drop_oldest(next(iter(self.order.values())))


SINK_FULL = ("the history database is not accepting lines; your line was not sent, "
             "try again shortly")


ROOMS_LISTED = 200  # rooms in an answer to rooms or who all (4.7, 4.8)
WHO_ALL_NAMES = 1000  # names in an answer to who all (4.7)


def _by_name(room: Room[Any]) -> tuple[str, str]:
    # Keys are look-alike skeletons ("room1" -> "roornl"): order by what people read.
    return (room.name.casefold(), room.key)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Hub(Generic[P]):
    def __init__(
        self, config: HubConfig | None = None, node: str = "", sink: HistorySink | None = None,
        moderation: ModerationSink | None = None,
    ) -> None:
        self.config = config or HubConfig()
        self.node = node or secrets.token_hex(4)
        self.sink: HistorySink = sink or NoSink()
        # Whether the sink takes every room line or only this node's own (chatd.cluster:
        # the node that writes the snapshot writes the room streams, from any node).
        self.sink_takes_all = False
        self.sessions: dict[str, Session[P]] = {}
        self.names: dict[str, Session[P]] = {}  # name_key -> session
        self.rooms: dict[str, Room[P]] = {}
        self.detached: dict[str, Session[P]] = {}
        self._by_cid: dict[int, Session[P]] = {}  # attached local sessions
        self._pending: dict[int, P] = {}  # local peers whose join is not applied yet
        self.beats: dict[str, float] = {}  # node -> log time of its last heartbeat
        self._now = 0.0  # log time of the command being applied
        self._secrets: dict[str, str] = {}  # sid -> resume token, until its welcome is sent
        self._loaded: set[str] = set()  # rooms whose history was read from the sink
        self.history_bytes = 0  # entry_cost of every line in the rooms' histories
        self.resumes = 0  # sessions resumed through this node (chatd.metrics)
        self.archive = Archive(self.config.history_memory // 4)
        self.inboxes: Inboxes[P] = Inboxes(self.config.private_memory, self.config.inbox_bytes,
                                           self.config.inbox_size)
        self._serial = 0
        self.mod = Moderation()
        self.credentials = Credentials(self.config.opers)
        self.mod_sink = moderation
        if moderation is not None:
            self.mod.restore(moderation.load_moderation())

    # ------------------------------------------------------------------ queries

    def session_of(self, peer: P) -> Session[P] | None:
        return self._by_cid.get(peer.cid)

    def is_joined(self, peer: P) -> bool:
        return peer.cid in self._by_cid

    def joining(self, peer: P) -> bool:
        """The peer's connect is on its way through the log (a cluster takes a moment)."""
        return peer.cid in self._pending

    def room_users(self, room: Room[P]) -> tuple[str, ...]:
        return tuple(s.name for s in room.members.values())

    # ------------------------------------------------------------------ local input

    def handle(self, peer: P, event: p.Event, address: str = "") -> Effects[P]:
        """A parsed line from a local peer; `address`, its IP, matters for a connect."""
        fx: Effects[P] = Effects()
        session = self._by_cid.get(peer.cid)
        if type(event) is p.Message and session is not None:  # most lines: straight on
            if event.to is None and self.mod.mutes and (
                    mute := self.mod.muted(session.room, session.sid)) is not None:
                room = self.rooms[session.room].name  # PROTOCOL.txt 15.4: others see nothing
                self._reply(fx, peer, p.Error(
                    ErrorCode.MUTED, f"you are muted in {room} by {mute.by}"
                    + (f" ({mute.reason})" if mute.reason else "") + "; your line was not sent",
                    event.ref))
                return fx
            if event.to is None and not self.sink.accepting():  # PROTOCOL.txt 8.7
                self._reply(fx, peer, p.Error(ErrorCode.UNAVAILABLE, SINK_FULL, event.ref))
                return fx
            fx.publish(SayCmd(self._origin(session, peer), session.sid,
                              event.message, event.to, event.ref))
            return fx
        try:
            if isinstance(event, p.Connect):
                self._connect(fx, peer, session, event, address)
            elif isinstance(event, (p.Ping, p.Pong)):
                if isinstance(event, p.Ping):
                    self._reply(fx, peer, p.ServerPong())
            elif isinstance(event, p.Help):
                listed = dict(p.TEXT_COMMANDS)
                if session is not None and session.oper:  # PROTOCOL.txt 15: for operators
                    listed.update(p.OPER_COMMANDS)
                width = max(len(usage) for usage in listed) + 1  # one column of what
                self._reply(fx, peer, p.Info(tuple(
                    f"{usage:<{width}} {what}" for usage, what in listed.items())))
            elif session is None:
                if isinstance(event, p.Disconnect):
                    fx.ops.append(Close(peer))
                else:
                    raise ProtocolError(ErrorCode.NOT_JOINED, 'send {"type":"connect"} first')
            else:
                self._joined_event(fx, peer, session, event)
        except ProtocolError as exc:
            self._reply(fx, peer, p.error_of(exc))
            if isinstance(event, p.Connect) and session is None \
                    and peer.cid not in self._pending:
                fx.ops.append(Settled(peer, False))  # it may send another connect
        return fx

    def _connect(self, fx: Effects[P], peer: P, session: Session[P] | None,
                 event: p.Connect, address: str) -> None:
        if session is not None or peer.cid in self._pending:
            raise ProtocolError(ErrorCode.ALREADY_JOINED, "this connection has joined already")
        name = p.normalize_name(event.name)
        room = p.normalize_room(event.room) if event.room is not None else p.DEFAULT_ROOM
        if event.last_id is not None:
            id_key(event.last_id)
        ban = self.mod.name_ban(name, self._now) or (
            self.mod.address_ban(address, self._now) if address else None)
        if ban is not None:  # PROTOCOL.txt 15.3: told until when, then closed
            self._reply(fx, peer, self._ban_error(ban, name))
            fx.ops.append(Close(peer))
            return
        self._serial += 1
        sid = f"{self.node}-{self._serial}"
        secret = secrets.token_urlsafe(18)
        origin = Origin(self.node, peer.cid)
        join = JoinCmd(origin, sid, name, room, peer.text, hash_token(secret), address=address)
        self._pending[peer.cid] = peer
        self._secrets[sid] = f"{sid}.{secret}"
        if event.resume:
            old = self._check_token(event.resume)
            if old is None:
                join = replace(
                    join, notice="could not resume: the session is unknown or has expired")
            else:
                fx.publish(ResumeCmd(origin, old.sid, event.last_id, join))
                return
        fx.publish(join)

    def _check_token(self, token: str) -> Session[P] | None:
        sid, _, secret = token.rpartition(".")
        session = self.sessions.get(sid)
        if session is None or not hmac.compare_digest(session.token_hash, hash_token(secret)):
            return None
        return session

    def _origin(self, session: Session[P], peer: P) -> Origin:
        # An attached session's origin is its connection here: reuse it, don't build one.
        return session.origin or Origin(self.node, peer.cid)

    def _joined_event(
        self, fx: Effects[P], peer: P, session: Session[P], event: p.Event
    ) -> None:
        origin = self._origin(session, peer)
        if isinstance(event, p.Disconnect):
            self._forget_peer(fx, session)
            fx.publish(LeaveCmd(session.sid))
            if peer.text:  # a person at nc: a last word, for nc waits for their input
                self._reply(fx, peer, p.Info((f"bye, {session.name}: you left the chat "
                                              "(Ctrl-C closes nc)",)))
            fx.ops.append(Close(peer))
        elif isinstance(event, p.Join):
            room = p.normalize_room(event.room)
            if p.name_key(room) == session.room:
                raise ProtocolError(ErrorCode.ALREADY_IN_ROOM, f"you are in {room} already")
            fx.publish(MoveCmd(origin, session.sid, room))
        elif isinstance(event, p.Nick):
            if not event.name.strip():
                raise ProtocolError(ErrorCode.BAD_NAME, "name is blank")
            name = p.normalize_name(event.name)
            if name == session.name:
                raise ProtocolError(ErrorCode.SAME_NAME, f"you are {name} already")
            self._check_free(name, session)
            self._check_unbanned(name, self._now)
            fx.publish(RenameCmd(origin, session.sid, name))
        elif isinstance(event, p.Who):
            self._costly_reply(fx, peer, self._who(session, event.all))
        elif isinstance(event, p.Rooms):
            self._costly_reply(fx, peer, self._room_list())
        elif isinstance(event, p.Whois):
            user = self._user(event.name)
            self._reply(fx, peer, p.WhoisReply(user.name, self.rooms[user.room].name, user.oper))
        elif isinstance(event, p.History):
            self._history_page(fx, peer, self.rooms[session.room], event)
        elif isinstance(event, p.MODERATION_EVENTS):
            self._moderate(fx, peer, session, event)
        else:  # pragma: no cover - every client event is handled above
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{type(event).__name__} not handled")

    def _room_list(self) -> p.RoomList:
        """The biggest rooms, by name; the rest counted (PROTOCOL.txt 4.8). Choosing them
        is linear in the rooms, so a server with very many costs no sort per request."""
        rooms = self.rooms.values()
        shown = heapq.nlargest(ROOMS_LISTED, rooms, key=lambda r: len(r.members))
        return p.RoomList(tuple((room.name, len(room.members))
                                for room in sorted(shown, key=_by_name)),
                          more=len(rooms) - len(shown))

    def _who(self, session: Session[P], everywhere: bool) -> p.WhoList:
        if everywhere:  # every room by name, up to a bound of names (PROTOCOL.txt 4.7)
            listed: list[tuple[str, tuple[str, ...]]] = []
            names = 0
            for room in heapq.nsmallest(ROOMS_LISTED, self.rooms.values(), key=_by_name):
                users = self.room_users(room)[: WHO_ALL_NAMES - names]
                if not users:
                    break
                listed.append((room.name, users))
                names += len(users)
            total = len(self.sessions)  # every session is a member of one room
            opers = tuple(s.name for s in self.sessions.values() if s.oper)
            return p.WhoList(None, rooms=tuple(listed), more=total - names, opers=opers)
        room = self.rooms[session.room]
        return p.WhoList(room.name, self.room_users(room),
                         opers=self._opers(room.members.values()))

    def _check_free(self, name: str, session: Session[P] | None) -> None:
        holder = self.names.get(p.name_key(name))
        if holder is not None and holder is not session:
            raise ProtocolError(ErrorCode.NAME_TAKEN, f"{holder.name} is taken")

    def _check_unbanned(self, name: str, now: float) -> None:
        if (ban := self.mod.name_ban(name, now)) is not None:
            raise ProtocolError(ErrorCode.NAME_BANNED, f"the name {name} is banned "
                                f"{ban.describe()}", until=ban.until_stamp())

    def _history_page(self, fx: Effects[P], peer: P, room: Room[P], ask: p.History) -> None:
        lines = self._retained(room)
        if ask.after is not None:
            start = bisect.bisect_right(lines, id_key(ask.after), key=lambda e: e.key)
            page = lines[start : start + ask.limit]
            more = start + ask.limit < len(lines)
            parts = self._page(peer, room, page)
        else:
            end = (bisect.bisect_left(lines, id_key(ask.before), key=lambda e: e.key)
                   if ask.before is not None else len(lines))
            page = lines[max(0, end - ask.limit) : end]
            more = end - ask.limit > 0
            parts = self._page(peer, room, page, newest=True)
        self._send_history(fx, peer, room, parts, more or len(parts) < len(page))

    def _page(self, peer: P, room: Room[P], entries: list[Entry], newest: bool = False
              ) -> list[bytes]:
        """The lines of `entries` that fit one page as `peer` reads them (PROTOCOL.txt
        3.8), at least one: the oldest, or the `newest`. Counted encoded, in the
        reader's mode: a line's size differs by mode (a "\n" is two bytes of JSON, a
        line of text), and what is sent must fit the send queue (8.2)."""
        parts: list[bytes] = []
        total = 0
        for entry in reversed(entries) if newest else entries:
            data = self._encode_for(peer, p.Chat(entry.name, entry.message, entry.id,
                                                 entry.time, room=room.name, history=True))
            total += len(data)
            if parts and total > self.config.page_bytes:
                break
            parts.append(data)
        if newest:
            parts.reverse()
        return parts

    def _send_history(
        self, fx: Effects[P], peer: P, room: Room[P], parts: list[bytes], more: bool
    ) -> None:
        """A page, in one reply, charged to flood control by its size as sent (8.3)."""
        fx.send(peer, b"".join([*parts, self._encode_for(
            peer, p.HistoryEnd(room.name, len(parts), more))]))
        if parts:  # its lines, as sent: an empty page costs nothing
            fx.ops.append(Charge(peer, sum(map(len, parts))))

    def disconnected(self, peer: P, reason: str | None, resumable: bool = True,
                     grace: float | None = None) -> Effects[P]:
        """The peer's connection ended; `reason` None means it closed cleanly (EOF).

        A JSON session whose connection broke (`resumable`) is held for the resume grace
        period (or `grace`, if shorter), unannounced; everyone else leaves at once
        (PROTOCOL.txt 2.4).
        """
        fx: Effects[P] = Effects()
        self._pending.pop(peer.cid, None)
        session = self._by_cid.get(peer.cid)
        if session is None:
            return fx
        self._forget_peer(fx, session)
        if reason is None or not resumable or session.text or self.config.resume_grace <= 0:
            fx.publish(LeaveCmd(session.sid, reason))
        else:
            fx.publish(DetachCmd(session.sid, reason, grace))
        return fx

    def refuse(self, cmd: Command, message: str) -> Effects[P]:
        """A command that cannot reach the log: tell the connection it came from."""
        fx: Effects[P] = Effects()
        if isinstance(cmd, (JoinCmd, ResumeCmd)):
            self._secrets.pop(cmd.sid if isinstance(cmd, JoinCmd) else cmd.fallback.sid, None)
            peer = self._pending.pop(cmd.origin.cid, None)  # it may try to connect again
            if peer is not None:
                self._reply(fx, peer, p.Error(ErrorCode.UNAVAILABLE, message))
                fx.ops.append(Settled(peer, False))
        elif isinstance(cmd, SayCmd):
            self._answer(fx, cmd.origin, p.Error(ErrorCode.UNAVAILABLE, message, cmd.ref))
        elif isinstance(cmd, (MoveCmd, RenameCmd, OperCmd, KickCmd, BanCmd, UnbanCmd, MuteCmd,
                              TopicCmd)):
            self._answer(fx, cmd.origin, p.Error(ErrorCode.UNAVAILABLE, message))
        return fx

    def _forget_peer(self, fx: Effects[P], session: Session[P]) -> None:
        """Stop delivering to the session's local peer (its connection is going away)."""
        peer = session.peer
        if peer is None:
            return
        room = self.rooms[session.room]
        peers = room.text_peers if peer.text else room.json_peers
        if peer in peers:
            peers.discard(peer)
            fx.ops.append(Exit(room.text_channel if peer.text else room.json_channel, peer))
        self._by_cid.pop(peer.cid, None)
        session.peer = None

    # ------------------------------------------------------------------ log application

    def apply(self, cmd: Command, log_id: str, key: tuple[int, int], now: float,
              stamp: Stamp | None = None) -> Effects[P]:
        """Carry out one command from the log; `now` is the log's clock for it. The
        commands of one log entry share its `stamp`, so their updates' ids differ."""
        fx: Effects[P] = Effects()
        st = stamp or Stamp(log_id, key, now)
        self._now = now
        if isinstance(cmd, SayCmd):
            self._apply_say(fx, cmd, st)
        elif isinstance(cmd, JoinCmd):
            self._apply_join(fx, cmd, st)
        elif isinstance(cmd, ResumeCmd):
            self._apply_resume(fx, cmd, st)
        elif isinstance(cmd, BeatCmd):
            self._apply_beat(fx, cmd, st)
        elif isinstance(cmd, (OperCmd, KickCmd, BanCmd, UnbanCmd, MuteCmd, TopicCmd)):
            self._apply_moderation(fx, cmd, st)
        else:
            session = self.sessions.get(cmd.sid)
            if session is None:
                return fx
            if isinstance(cmd, LeaveCmd):
                self._remove(fx, session, st, cmd.reason)
            elif isinstance(cmd, DetachCmd):
                self._lose(fx, session, st, cmd.reason, cmd.grace)
            elif isinstance(cmd, MoveCmd):
                self._apply_move(fx, session, cmd, st)
            else:
                self._apply_rename(fx, session, cmd, st)
        return fx

    def _apply_say(self, fx: Effects[P], cmd: SayCmd, st: Stamp) -> None:
        sender = self.sessions.get(cmd.sid)
        if sender is None:
            return
        line_id, key = st.next_id()
        if cmd.to is not None:
            target = self.names.get(p.name_key(cmd.to))
            if target is None:
                self._answer(fx, cmd.origin, p.Error(
                    ErrorCode.NO_SUCH_USER, f"no user named {cmd.to[:40]}", cmd.ref))
                return
            entry = Entry(key, line_id, st.time, sender.name, cmd.message, sender.sid, cmd.ref,
                          to=target.name)
            # In this order on every node: which line goes first past a bound must agree.
            for holder in (sender, target) if target is not sender else (sender,):
                self.keep_private(holder, entry)
            if target.peer is not None:
                line = p.Chat(sender.name, cmd.message, line_id, st.time, to=target.name)
                fx.send(target.peer, self._encode_for(target.peer, line))
            fx.note = f"{sender.name} -> {target.name}: private line ({len(cmd.message)} chars)"
            fx.about = ("private", cmd.origin, sender.name, None)
        else:
            room = self.rooms[sender.room]
            if room.json_peers:  # the hot path: one encoding, no update object
                fx.broadcast(room.json_channel, p.chat_json(
                    sender.name, cmd.message, room.name, line_id, st.time), sender.peer)
            if room.text_peers:
                fx.broadcast(room.text_channel, p.encode_text(p.Chat(
                    sender.name, cmd.message, line_id, st.time, room=room.name)), sender.peer)
            entry = Entry(key, line_id, st.time, sender.name, cmd.message, sender.sid, cmd.ref)
            self._remember(room, entry, cmd.origin.node == self.node or self.sink_takes_all)
            fx.note = f"<{sender.name}@{room.name}> {cmd.message}"
            fx.about = ("message", cmd.origin, sender.name, room.name)
        if cmd.ref is not None:
            self._answer(fx, cmd.origin, p.Ack(cmd.ref, line_id, st.time))

    def _remember(self, room: Room[P], entry: Entry, persist: bool) -> None:
        if not room.history:
            self._retained(room)  # loads what the sink kept, before adding to it
        history = room.history
        history.append(entry)
        self.history_bytes += entry_cost(entry)
        if len(history) >= 2 * self.config.history_size:
            self._trim(room, len(history) - self.config.history_size)
        if self.history_bytes > self.config.history_memory:
            self._shrink(room)
        if persist:  # in a cluster, the node the line came from writes it, once
            self.sink.append(room.key, entry)

    def _trim(self, room: Room[P], count: int) -> None:
        """Forget a room's oldest `count` lines (the database, if any, keeps them)."""
        self.history_bytes -= sum(entry_cost(e) for e in room.history[:count])
        del room.history[:count]

    def _shrink(self, room: Room[P]) -> None:
        """Over the memory budget (PROTOCOL.txt 8.6): the room that grew gives up its
        oldest lines first, keeping its newest; then, if that is not enough, the others."""
        for victim in (room, *(r for r in self.rooms.values() if r is not room)):
            excess = self.history_bytes - self.config.history_memory
            if excess <= 0:
                return
            count = 0
            for entry in victim.history[:-1] if victim is room else victim.history:
                if excess <= 0:
                    break
                excess -= entry_cost(entry)
                count += 1
            self._trim(victim, count)

    def _retained(self, room: Room[P]) -> list[Entry]:
        """The room's last `history_size` lines (loaded from the sink on first use)."""
        if not room.history and room.key not in self._loaded:
            self._loaded.add(room.key)
            lines = self.archive.take(room.key) or self.sink.load(
                room.key, self.config.history_size)
            room.history = lines
            self.history_bytes += sum(entry_cost(e) for e in lines)
        size = self.config.history_size
        return room.history if len(room.history) <= size else room.history[-size:]

    def _forget_if_empty(self, room: Room[P]) -> None:
        """A room nobody is in (held sessions are members) is forgotten: its state and
        its turn buffers go; its history stays in the database, or in the archive."""
        if room.members or self.rooms.get(room.key) is not room:
            return
        del self.rooms[room.key]
        self._loaded.discard(room.key)
        cost = sum(entry_cost(e) for e in room.history)
        self.history_bytes -= cost
        if room.history and not self.sink.durable:
            self.archive.put(room.key, room.history, cost)

    def _room(self, name: str) -> Room[P]:
        k = p.name_key(name)
        room = self.rooms.get(k)
        if room is None:
            room = self.rooms[k] = Room(k, name, json_channel=(k, False), text_channel=(k, True))
        return room

    def _free_name(self, wanted: str) -> str:
        name, n = wanted, 1
        while p.name_key(name) in self.names:
            n += 1
            name = p.name_variant(wanted, n)
        return name

    def _apply_join(self, fx: Effects[P], cmd: JoinCmd, st: Stamp) -> None:
        ban = self.mod.name_ban(cmd.name, st.now) or (
            self.mod.address_ban(cmd.address, st.now) if cmd.address and self.mod.networks
            else None)
        if ban is not None:  # banned meanwhile: the log decides (PROTOCOL.txt 15.6)
            self._secrets.pop(cmd.sid, None)
            peer = self._pending.pop(cmd.origin.cid, None) if cmd.origin.node == self.node \
                else None
            if peer is not None:
                self._reply(fx, peer, self._ban_error(ban, cmd.name))
                fx.ops.append(Close(peer))
            return
        name = self._free_name(cmd.name)
        room = self._room(cmd.room)
        notice_id, key = st.next_id()
        session: Session[P] = Session(cmd.sid, name, room.key, cmd.text, cmd.token_hash,
                                      cmd.origin, key, address=cmd.address)
        self.sessions[session.sid] = session
        self.names[p.name_key(name)] = session
        room.members[session.sid] = session
        self.mod.joined(session.sid, (cmd.name, name), cmd.address)
        token = self._secrets.pop(session.sid, "")  # only the joining node holds it
        peer = self._attach(fx, session, cmd.origin)
        if peer is not None:
            notice = cmd.notice
            if name != cmd.name:
                taken = f"{cmd.name} is taken, so you are {name}"
                notice = f"{notice}; {taken}" if notice else taken
            self._reply(fx, peer, p.Welcome(
                name, room.name, self.room_users(room), token,
                notice=notice, server=self.config.server_name,
                max_line_bytes=self.config.max_line_bytes, topic=self._topic_of(room),
                opers=self._opers(room.members.values())))
            self._send_recent(fx, peer, room)
        self._broadcast(fx, room, p.Joined(name, room.name, f"{name} joined", notice_id, st.time))
        fx.note = f"{self._tag(cmd.origin)} {name} joined {room.name}"
        fx.about = ("join", cmd.origin, name, room.name)

    def _send_recent(self, fx: Effects[P], peer: P, room: Room[P]) -> None:
        lines = self._retained(room)
        n = self.config.history_on_join
        if n > 0:
            parts = self._page(peer, room, lines[-n:], newest=True)  # one page (3.8)
            self._send_history(fx, peer, room, parts, len(lines) > len(parts))

    def _attach(self, fx: Effects[P], session: Session[P], origin: Origin) -> P | None:
        """Bind the session to its local peer, if the origin is a connection of this node."""
        self.beats.setdefault(origin.node, self._now)  # a join is a sign of life too
        if origin.node != self.node:
            return None
        peer = self._pending.pop(origin.cid, None)
        if peer is None:  # the connection closed before its join was applied
            fx.publish(DetachCmd(session.sid, "connection lost while joining"))
            return None
        self._bind(fx, session, peer)
        fx.ops.append(Settled(peer, True))
        return peer

    def _bind(self, fx: Effects[P], session: Session[P], peer: P) -> None:
        session.peer = peer
        self._by_cid[peer.cid] = session
        room = self.rooms[session.room]
        peers = room.text_peers if peer.text else room.json_peers
        peers.add(peer)
        fx.ops.append(Enter(room.text_channel if peer.text else room.json_channel, peer))

    def _apply_resume(self, fx: Effects[P], cmd: ResumeCmd, st: Stamp) -> None:
        session = self.sessions.get(cmd.sid)
        if session is None:
            # replace, not a rebuild: every field of the join (its address: 15.3) holds
            return self._apply_join(fx, replace(
                cmd.fallback, notice="could not resume: the session has expired"), st)
        if session.peer is not None:  # the old connection is still open here: replace it
            old_peer = session.peer
            self._forget_peer(fx, session)
            fx.ops.append(Close(old_peer))
        self._secrets.pop(cmd.fallback.sid, None)
        if self.detached.pop(session.sid, None) is not None:
            fx.ops.append(Released(session.sid))
        session.origin = cmd.origin
        # The resumed session keeps its old token: a client may resume any number of times.
        peer = self._attach(fx, session, cmd.origin)
        room = self.rooms[session.room]
        fx.note = f"{self._tag(cmd.origin)} {session.name} resumed in {room.name}"
        fx.about = ("resume", cmd.origin, session.name, room.name)
        if cmd.origin.node == self.node:
            self.resumes += 1
        if peer is None:
            return
        self._reply(fx, peer, p.Welcome(
            session.name, room.name, self.room_users(room), "", resumed=True,
            server=self.config.server_name, max_line_bytes=self.config.max_line_bytes,
            topic=self._topic_of(room), opers=self._opers(room.members.values())))
        seen = id_key(cmd.last_id) if cmd.last_id is not None else (0, 0, 0)
        start = max(seen, session.since)
        lines = self._retained(room)
        missed = lines[bisect.bisect_right(lines, start, key=lambda e: e.key):]
        private = [e for e in session.inbox or () if e.key > seen]
        entries = sorted([*missed, *private], key=lambda e: e.key)
        if entries:
            # Encoded as the writer takes them, as the send queue drains (8.2): up to
            # 1,000 lines of 64 KiB would be far more than the queue holds at once.
            fx.ops.append(SendPaced(peer, self._replay(peer, session.sid, room.name, entries)))
            # a replay costs (PROTOCOL.txt 8.3): by the size of its lines' text
            fx.ops.append(Charge(peer, sum(len(e.message) + len(e.name) for e in entries)))

    def _replay(self, peer: P, sid: str, room: str, entries: list[Entry]) -> Iterator[bytes]:
        """A resume's missed lines (10.2), encoded one at a time as they are written."""
        for entry in entries:
            if entry.sid == sid:
                if entry.ref is not None:  # the ack it may have missed
                    yield self._encode_for(peer, p.Ack(entry.ref, entry.id, entry.time))
                continue
            yield self._encode_for(peer, p.Chat(entry.name, entry.message, entry.id, entry.time,
                                                room=None if entry.to else room, to=entry.to))

    def _apply_beat(self, fx: Effects[P], cmd: BeatCmd, st: Stamp) -> None:
        """Expire sessions past their grace; declare silent nodes gone (PROTOCOL.txt 14)."""
        now = st.now
        previous = self.beats.get(cmd.node)
        self.beats[cmd.node] = now
        for session in [s for s in self.detached.values()
                        if s.detached_at + s.grace <= now]:
            self._remove(fx, session, st, session.lost)
        # Judge others only while this node beats steadily: right after the log itself
        # was unreachable, every node looks silent and none should be declared gone.
        if previous is None or now - previous > 3 * BEAT_EVERY:
            return
        for node, last in list(self.beats.items()):
            if node != cmd.node and now - last > self.config.node_timeout:
                del self.beats[node]
                gone = [s for s in self.sessions.values()
                        if s.origin is not None and s.origin.node == node]
                for session in gone:
                    self._lose(fx, session, st, "server went away")
                fx.note = (f"node {node} is gone (no heartbeat for {now - last:.1f}s); "
                           f"{len(gone)} session(s) lost")

    def _lose(self, fx: Effects[P], session: Session[P], st: Stamp, reason: str,
              grace: float | None = None) -> None:
        """The session's connection is gone: hold it for resume (the resume grace, or
        `grace` if shorter), or end it without grace."""
        if session.peer is not None:  # this node was declared gone, yet lives: let go
            peer = session.peer
            self._forget_peer(fx, session)
            fx.ops.append(Close(peer))
        if self.config.resume_grace <= 0:
            self._remove(fx, session, st, reason)
            return
        session.origin, session.detached_at, session.lost = None, st.now, reason
        session.grace = self.config.resume_grace if grace is None else min(
            grace, self.config.resume_grace)
        self.detached[session.sid] = session
        fx.note = (f"{session.name} lost the connection ({reason}); held "
                   f"{session.grace:g}s for resume")
        fx.about = ("detach", None, session.name, None)

    def _remove(self, fx: Effects[P], session: Session[P], st: Stamp, reason: str | None,
                said: str | None = None) -> None:
        self._forget_peer(fx, session)
        del self.sessions[session.sid]
        self.inboxes.drop(session)
        self.mod.ended(session.sid)  # its mutes wait for the person's return (15.4)
        if self.detached.pop(session.sid, None) is not None:
            fx.ops.append(Released(session.sid))
        if self.names.get(p.name_key(session.name)) is session:
            del self.names[p.name_key(session.name)]
        room = self.rooms[session.room]
        del room.members[session.sid]
        notice_id, _ = st.next_id()
        self._broadcast(fx, room, p.Left(session.name, room.name,
                                         said or f"{session.name} left", notice_id, st.time,
                                         reason))
        self._forget_if_empty(room)
        fx.note = f"{session.name} left {room.name}" + (f" ({reason})" if reason else "")
        fx.about = ("leave", None, session.name, room.name)

    def _apply_move(self, fx: Effects[P], session: Session[P], cmd: MoveCmd, st: Stamp,
                    said: str | None = None) -> None:
        old, new = self.rooms[session.room], self._room(cmd.room)
        if old is new:
            return
        peer = session.peer
        self._forget_peer(fx, session)
        del old.members[session.sid]
        left_id, _ = st.next_id()
        self._broadcast(fx, old, p.Left(session.name, old.name,
                                        said or f"{session.name} left for {new.name}", left_id,
                                        st.time))
        self._forget_if_empty(old)
        joined_id, key = st.next_id()
        session.room, session.since = new.key, key
        new.members[session.sid] = session
        if peer is not None:
            self._bind(fx, session, peer)
            self._reply(fx, peer, p.WhoList(new.name, self.room_users(new),
                                            opers=self._opers(new.members.values())))
            if topic := self._topic_of(new):
                self._reply(fx, peer, p.Topic(new.name, topic))
            self._send_recent(fx, peer, new)
        self._broadcast(fx, new, p.Joined(session.name, new.name,
                                          f"{session.name} joined", joined_id, st.time))
        fx.note = f"{session.name} moved from {old.name} to {new.name}"
        fx.about = ("move", None, session.name, new.name)

    def _apply_rename(
        self, fx: Effects[P], session: Session[P], cmd: RenameCmd, st: Stamp
    ) -> None:
        try:
            self._check_free(cmd.name, session)
            self._check_unbanned(cmd.name, st.now)  # banned meanwhile: the log decides
        except ProtocolError as exc:
            self._answer(fx, cmd.origin, p.error_of(exc))
            return
        old = session.name
        del self.names[p.name_key(old)]
        session.name = cmd.name
        self.names[p.name_key(cmd.name)] = session
        self.mod.renamed(session.sid, cmd.name)  # a mute follows the person (15.4)
        room = self.rooms[session.room]
        notice_id, _ = st.next_id()
        self._broadcast(fx, room, p.Renamed(cmd.name, old, room.name,
                                            f"{old} is now known as {cmd.name}", notice_id,
                                            st.time))
        fx.note = f"{old} is now known as {cmd.name}"
        fx.about = ("rename", None, cmd.name, None)

    # ------------------------------------------------------------------ moderation (15)

    def _ban_error(self, ban: BanRecord, name: str) -> p.Error:
        what = f"the name {name} is" if ban.kind == "name" else f"your address ({ban.label}) is"
        return p.Error(ErrorCode.BANNED,
                       f"{what} banned from this server by {ban.by} {ban.describe()}",
                       until=ban.until_stamp())

    def _user(self, name: str) -> Session[P]:
        target = self.names.get(p.name_key(name))
        if target is None:
            raise ProtocolError(ErrorCode.NO_SUCH_USER, f"no user named {name[:40]}")
        return target

    def _opers(self, users: Iterable[Session[P]]) -> tuple[str, ...]:
        return tuple(s.name for s in users if s.oper)

    def _topic_of(self, room: Room[P]) -> str:
        topic = self.mod.topics.get(room.key)
        return topic.text if topic is not None else ""

    def _moderate(self, fx: Effects[P], peer: P, session: Session[P], event: p.Event) -> None:
        """An operator's line (or /oper, or a topic question): checked here, carried out
        in log order by `_apply_moderation`."""
        origin = self._origin(session, peer)
        if isinstance(event, p.Oper):
            if not self.credentials.check(event.name, event.password):
                fx.ops.append(WrongPassword(peer, oper=True))  # the shell makes the address wait
                raise ProtocolError(ErrorCode.OPER_FAILED, "wrong operator name or password")
            if session.oper:
                self._reply(fx, peer, p.Notice("you are an operator already"))
                return
            fx.publish(OperCmd(origin, session.sid, p.normalize_name(event.name)))
            return
        if isinstance(event, p.SetTopic) and event.topic is None:
            room = self.rooms[session.room]
            self._reply(fx, peer, p.Topic(room.name, self._topic_of(room)))
            return
        if not session.oper:
            raise ProtocolError(ErrorCode.NOT_OPERATOR,
                                "only operators may do that (/oper NAME PASSWORD)")
        if isinstance(event, p.Kick):
            target = self._user(event.name)
            if event.room and target.room == p.name_key(p.DEFAULT_ROOM):
                raise ProtocolError(ErrorCode.ALREADY_IN_ROOM, f"{target.name} is in "
                                    f"{p.DEFAULT_ROOM} already: kick them from the server "
                                    "instead")
            fx.publish(KickCmd(origin, target.sid, session.name, event.reason, event.room))
        elif isinstance(event, (p.Ban, p.Unban)):
            if event.name is not None:
                label = p.normalize_name(event.name)
                kind, key = "name", p.name_key(label)
            else:
                kind, key = "address", ban_network(event.address or "")
                label = key
            if isinstance(event, p.Ban):
                fx.publish(BanCmd(origin, kind, key, label, event.seconds or 0, session.name,
                                  event.reason))
            elif (kind, key) not in self.mod.bans:
                raise ProtocolError(ErrorCode.NO_SUCH_BAN, f"{label} is not banned")
            else:
                fx.publish(UnbanCmd(origin, kind, key, session.name))
        elif isinstance(event, p.Bans):
            self._costly_reply(fx, peer, p.BanList(self.mod.listed(self._now)))
        elif isinstance(event, p.Mute):
            target = self._user(event.name)  # a person, never a name nobody has (15.4)
            room_key = (p.name_key(p.normalize_room(event.room)) if event.room is not None
                        else target.room)
            fx.publish(MuteCmd(origin, room_key, target.name, session.name, event.reason, True,
                               target.sid))
        elif isinstance(event, p.Unmute):
            in_room = p.name_key(p.normalize_room(event.room)) if event.room else None
            if not self.mod.is_muted(event.name, in_room):
                raise ProtocolError(ErrorCode.NOT_MUTED, f"{event.name[:40]} is not muted")
            fx.publish(MuteCmd(origin, in_room, p.normalize_name(event.name), session.name,
                               "", False))
        elif isinstance(event, p.SetTopic):
            fx.publish(TopicCmd(origin, session.sid, event.topic or ""))

    def _apply_moderation(self, fx: Effects[P], cmd: ModCommand, st: Stamp) -> None:
        """Every node applies these at the same point of the log (PROTOCOL.txt 15.6);
        each makes an audit line (`Effects.audit`): who, what, whom, why (never a
        password)."""
        if isinstance(cmd, OperCmd):
            session = self.sessions.get(cmd.sid)
            if session is None:
                return
            session.oper = True
            room = self.rooms[session.room]
            notice_id, _ = st.next_id()
            self._broadcast(fx, room, p.Opered(session.name, room.name,
                                               f"{session.name} is now an operator",
                                               notice_id, st.time))
            fx.audit = (f"{session.name} ({self._tag(cmd.origin)}) became an operator "
                       f"(as {cmd.as_name})")
        elif isinstance(cmd, KickCmd):
            self._apply_kick(fx, cmd, st)
        elif isinstance(cmd, BanCmd):
            self._apply_ban(fx, cmd, st)
        elif isinstance(cmd, UnbanCmd):
            ban = self.mod.unban(cmd.kind, cmd.key)
            if self.mod_sink is not None:
                self.mod_sink.drop_ban(cmd.kind, cmd.key)
            label = ban.label if ban is not None else cmd.key
            self._answer(fx, cmd.origin, p.Notice(f"the ban of {label} is lifted"))
            fx.audit = f"{cmd.by} lifted the ban of {cmd.kind} {label}"
        elif isinstance(cmd, MuteCmd):
            self._apply_mute(fx, cmd)
        elif isinstance(cmd, TopicCmd):
            session = self.sessions.get(cmd.sid)
            if session is None:
                return
            room = self.rooms[session.room]
            record = TopicRecord(cmd.topic, session.name, st.now) if cmd.topic else None
            if record is not None:
                self.mod.topics[room.key] = record
            else:
                self.mod.topics.pop(room.key, None)
            if self.mod_sink is not None:
                self.mod_sink.save_topic(room.key, record)
            notice_id, _ = st.next_id()
            said = (f"{session.name} set the topic: {cmd.topic}" if cmd.topic
                    else f"{session.name} cleared the topic")
            self._broadcast(fx, room, p.Topic(room.name, cmd.topic, session.name, said,
                                              notice_id, st.time))
            fx.audit = f"{session.name} set the topic of {room.name} to {cmd.topic!r}"
        else:  # pragma: no cover - every moderation command is handled above
            raise AssertionError(cmd)

    def _apply_kick(self, fx: Effects[P], cmd: KickCmd, st: Stamp) -> None:
        target = self.sessions.get(cmd.sid)
        if target is None:
            self._answer(fx, cmd.origin, p.Error(ErrorCode.NO_SUCH_USER, "that user has left"))
            return
        why = f" ({cmd.reason})" if cmd.reason else ""
        name, old = target.name, self.rooms[target.room]
        if cmd.room:
            if old.key == p.name_key(p.DEFAULT_ROOM):
                return
            if target.peer is not None:  # a notice: the code kicked always closes
                self._reply(fx, target.peer, p.Notice(
                    f"you were removed from {old.name} by {cmd.by}{why}; "
                    f"you are in {p.DEFAULT_ROOM} now"))
            self._apply_move(fx, target, MoveCmd(cmd.origin, target.sid, p.DEFAULT_ROOM), st,
                             f"{name} was removed from {old.name} by {cmd.by}{why}")
            where = f"from {old.name}"
        else:
            self._end_session(fx, target, st, told=p.Error(
                ErrorCode.KICKED, f"you were removed from the server by {cmd.by}{why}"),
                              said=f"{name} was removed by {cmd.by}{why}")
            where = "from the server"
        self._answer(fx, cmd.origin, p.Notice(f"{name} was removed {where}"))
        fx.audit = f"{cmd.by} kicked {name} {where} (reason: {cmd.reason or 'none'})"

    def _end_session(self, fx: Effects[P], target: Session[P], st: Stamp, *,
                     told: p.Error, said: str) -> None:
        """An operator ends a session: it is told why, the room sees why, and it cannot
        be resumed (it is gone)."""
        peer = target.peer
        if peer is not None:
            self._reply(fx, peer, told)
        self._remove(fx, target, st, None, said)
        if peer is not None:
            fx.ops.append(Close(peer))

    def _apply_ban(self, fx: Effects[P], cmd: BanCmd, st: Stamp) -> None:
        ban = BanRecord(cmd.kind, cmd.key, cmd.label, st.now + cmd.seconds if cmd.seconds else 0,
                        cmd.by, cmd.reason, st.now)
        self.mod.ban(ban)
        for ended in self.mod.expire(st.now):  # bans past their end go from the tables
            if self.mod_sink is not None:
                self.mod_sink.drop_ban(ended.kind, ended.key)
        if self.mod_sink is not None:
            self.mod_sink.save_ban(ban)
        if cmd.kind == "name":
            hit = [s for s in self.sessions.values() if p.name_key(s.name) == cmd.key]
        else:
            hit = [s for s in self.sessions.values()
                   if s.address and self.mod.address_ban(s.address, st.now) is ban]
        for target in hit:
            self._end_session(fx, target, st, told=self._ban_error(ban, target.name),
                              said=f"{target.name} was banned by {cmd.by}"
                              + (f" ({cmd.reason})" if cmd.reason else ""))
        gone = ", ".join(s.name for s in hit) or "nobody"
        self._answer(fx, cmd.origin, p.Notice(
            f"{cmd.label} is banned {ban.describe()}; removed: {gone}"))
        fx.audit = (f"{cmd.by} banned {cmd.kind} {cmd.label} {ban.describe()}; "
                   f"removed: {gone}")

    def _apply_mute(self, fx: Effects[P], cmd: MuteCmd) -> None:
        target = (self.sessions.get(cmd.sid) if cmd.sid
                  else self.names.get(p.name_key(cmd.name)))
        room = self.rooms.get(cmd.room) if cmd.room is not None else None
        where = room.name if room is not None else (cmd.room or "every room")
        why = f" ({cmd.reason})" if cmd.reason else ""
        if cmd.on:
            assert cmd.room is not None
            if target is None:  # gone meanwhile: nobody else is muted in their place
                self._answer(fx, cmd.origin, p.Error(ErrorCode.NO_SUCH_USER,
                                                     f"{cmd.name} has left"))
                return
            self.mod.mute(cmd.room, target.sid, name=target.name, address=target.address,
                          by=cmd.by, reason=cmd.reason)
            told, said = f"you were muted in {where} by {cmd.by}{why}", f"{cmd.name} is muted"
            fx.audit = (f"{cmd.by} muted {cmd.name} in {where} "
                       f"(reason: {cmd.reason or 'none'})")
        else:
            self.mod.unmute(cmd.room, cmd.name)
            told, said = f"{cmd.by} lifted your mute in {where}", f"{cmd.name} is not muted"
            fx.audit = f"{cmd.by} unmuted {cmd.name} in {where}"
        if target is not None and target.peer is not None:
            self._reply(fx, target.peer, p.Notice(told))
        self._answer(fx, cmd.origin, p.Notice(f"{said} in {where}"))

    # ------------------------------------------------------------------ replication

    def keep_private(self, holder: Session[P], entry: Entry) -> None:
        """A private line kept in the holder's inbox, for its resume (10.2), within the
        bounds of `Inboxes`."""
        self.inboxes.keep(holder, entry)

    def _tag(self, origin: Origin) -> str:
        """A connection as the log names it: "#12" here, "node#12" on another node."""
        return f"#{origin.cid}" if origin.node == self.node else f"{origin.node}#{origin.cid}"

    # ------------------------------------------------------------------ delivery

    def _broadcast(self, fx: Effects[P], room: Room[P], update: p.Update, skip: P | None = None
                   ) -> None:
        if room.json_peers:
            fx.broadcast(room.json_channel, p.encode_json(update), skip)
        if room.text_peers:
            fx.broadcast(room.text_channel, p.encode_text(update), skip)

    @staticmethod
    def _encode_for(peer: P, update: p.Update) -> bytes:
        return p.encode_text(update) if peer.text else p.encode_json(update)

    def _reply(self, fx: Effects[P], peer: P, update: p.Update) -> None:
        data = self._encode_for(peer, update)
        if data:
            fx.send(peer, data)

    def _costly_reply(self, fx: Effects[P], peer: P, update: p.Update) -> None:
        """A reply whose size grows with the server: flood control charges it (8.3)."""
        data = self._encode_for(peer, update)
        fx.send(peer, data)
        fx.ops.append(Charge(peer, len(data)))

    def _answer(self, fx: Effects[P], origin: Origin, update: p.Update) -> None:
        """Reply to the connection a command came from, if it is still here."""
        if origin.node != self.node:
            return
        session = self._by_cid.get(origin.cid)
        if session is not None and session.peer is not None:
            self._reply(fx, session.peer, update)
