"""Who is here: sessions, their names, rooms and memberships, and which local
connections they are attached to. `State` owns these indexes; only its methods change
them, so they stay in step (a session is in `names` under its name, in `held` exactly
while its status is HELD, in each of its rooms' members, ...).

A membership is a (session, room) pair kept on both sides: `Session.rooms` (room key ->
the key of the first line meant for it there, in joining order) and `Room.members`. A
session is in any number of rooms (none too: PROTOCOL.txt 17.1); one of them, its
current room `Session.room`, is where its lines without a room go.

A session is one connection's (a device's). Several sessions logged in to one account
are one user (PROTOCOL.txt 18.4): `State.devices` lists them by account, in arrival
order, `names` holds the first of them, and they share one set of rooms (each its
own membership, so every device reads the room; `Room.extra` counts the members that
are a further device of someone there, so who lists the user once).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic

from chatd import protocol as p
from chatd.commands import Origin
from chatd.hub.base import Entry, Key, P
from chatd.protocol import ErrorCode, ProtocolError


class Status(enum.Enum):
    JOINING = "joining"  # a local connection whose connect is on its way through the log
    ATTACHED = "attached"  # a session with a connection, on this node or another
    HELD = "held"  # a session whose connection went, held for its client's resume


@dataclass(eq=False, slots=True)
class Session(Generic[P]):
    sid: str
    name: str
    text: bool
    token_hash: str
    origin: Origin | None  # the connection it came through; None while held
    status: Status = Status.ATTACHED
    room: str = ""  # the key of its current room, where its lines go; "" in none
    # Its memberships: room key -> the key of the first line meant for it there.
    rooms: dict[str, Key] = field(default_factory=dict)
    detached_at: float = 0.0
    lost: str = ""  # why the connection went, while held
    inbox: deque[Entry] | None = None  # made on the first private line: most have none
    inbox_bytes: int = 0  # entry_cost of the lines in `inbox` (chatd.hub.history.Inboxes)
    peer: P | None = None  # the local connection, when attached on this node
    oper: bool = False  # an operator (PROTOCOL.txt 15.1)
    address: str = ""  # the IP address it joined from, for address bans (15.3)
    grace: float = 0.0  # while held: seconds it is held for resume from detached_at
    account: str = ""  # the key of the account it is logged in to (PROTOCOL.txt 18)
    login_digest: str = ""  # its device's login token's digest (18.3: logout revokes it)

    def since(self, room: str) -> Key:
        """Lines of the room before this were not meant for it (it joined after)."""
        return self.rooms[room]


@dataclass(eq=False, slots=True)
class Room(Generic[P]):
    key: str
    name: str
    members: dict[str, Session[P]] = field(default_factory=dict)  # sid -> session, join order
    extra: int = 0  # members that are a further device of a user in the room (18.4)
    listing: Listing | None = None  # see `listed`

    @property
    def people(self) -> int:
        """Its users, each counted once however many devices it is here with."""
        return len(self.members) - self.extra

    def listed(self, budget: int) -> tuple[tuple[str, ...], tuple[str, ...], int]:
        """Its users' names in joining order, each once (18.4), as many as fit `budget`
        bytes as sent (PROTOCOL.txt 4.1, 4.7, 8.13); the operators among them; how many
        are left out. Kept from one call to the next (`Listing`)."""
        listing = self.listing
        if listing is None or listing.budget != budget:
            listing = self.listing = Listing.of(self.members.values(), budget)
        return listing.users, listing.opers, self.people - len(listing.users)

    def admitted(self, session: Session[P], further: bool) -> None:
        """A member came, last in joining order (`further`: a further device of a user
        here, listed already if anyone after it is)."""
        listing = self.listing
        if listing is not None and not listing.full and not further:
            listing.take(session.name, session.oper)

    def unlist(self, session: Session[P] | None = None) -> None:
        """The session's name, operator status or membership changed (None: anything
        may have): the listing is made anew when next asked, unless it does not list
        the session."""
        listing = self.listing
        if listing is not None and (session is None or not listing.full
                                    or session.name in listing.users):
            self.listing = None


@dataclass(eq=False, slots=True)
class Listing:
    """A room's names as `Room.listed` gives them, kept: listing them anew for every join
    of a crowd cost each join a step per name listed (4,000 names in a room of 10,000:
    0.7 ms a join, most of the CPU of seating 10,000). A newcomer is added at the end
    (`Room.admitted`); anything else that could change the names listed, their order or
    the operators among them drops it (`Room.unlist`: a leave, a rename, an oper). Kept
    as the tuples given out, and nothing more: a room of a city costs a tuple of its
    names."""

    budget: int  # the bound it was made for
    users: tuple[str, ...] = ()
    opers: tuple[str, ...] = ()
    used: int = 0  # bytes of `budget` the names take
    full: bool = False  # a name did not fit: nobody after it is listed

    @classmethod
    def of(cls, members: Iterable[Session[Any]], budget: int) -> Listing:
        names: dict[str, None] = {}
        opers: list[str] = []
        used, full = 0, False
        for s in members:
            if s.name in names:  # a further device of a user listed
                continue
            cost = names_cost(s.name)
            if used + cost > budget:
                full = True
                break
            used += cost
            names[s.name] = None
            if s.oper:
                opers.append(s.name)
        return cls(budget, tuple(names), tuple(opers), used, full)

    def take(self, name: str, oper: bool) -> None:
        """List a name after the others, if it fits."""
        used = self.used + names_cost(name)
        if used > self.budget:
            self.full = True
            return
        self.used = used
        self.users += (name,)
        if oper:
            self.opers += (name,)


def _key_of(name: str) -> str:
    """The name's key, as the name itself when they are equal: one string kept, not two
    (most names are their own key)."""
    key = p.name_key(name)
    return name if key == name else key


def names_cost(name: str) -> int:
    """A listed name's bytes on the wire: UTF-8 and JSON's quotes and comma."""
    return (len(name) if name.isascii() else len(name.encode())) + 3


class State(Generic[P]):
    """Sessions by id (`sessions`), by name key (`names`), held ones (`held`), rooms by
    key (`rooms`: a room exists while it has members), local sessions by connection id
    (`local`), and local connections whose connect is not applied yet (`joining`).
    Read them freely; change them through the methods. Which local connection reads
    which room is the writer's (chatd.outbox), told by the hub's Enter and Exit."""

    __slots__ = ("devices", "held", "joining", "local", "names", "rooms", "sessions")

    def __init__(self) -> None:
        self.sessions: dict[str, Session[P]] = {}
        self.names: dict[str, Session[P]] = {}  # name_key -> session (an account's first)
        self.devices: dict[str, list[Session[P]]] = {}  # account key -> its sessions
        self.rooms: dict[str, Room[P]] = {}
        self.held: dict[str, Session[P]] = {}
        self.local: dict[int, Session[P]] = {}
        self.joining: dict[int, P] = {}

    # ------------------------------------------------------------------ queries

    def status(self, peer: P) -> Status | None:
        """Where a local connection stands: None before its connect and after it left."""
        session = self.local.get(peer.cid)
        if session is not None:
            return session.status
        return Status.JOINING if peer.cid in self.joining else None

    def named(self, name: str) -> Session[P] | None:
        return self.names.get(p.name_key(name))

    def user(self, name: str) -> Session[P]:
        target = self.named(name)
        if target is None:
            raise ProtocolError(ErrorCode.NO_SUCH_USER, f"no user named {name[:40]}")
        return target

    def devices_of(self, session: Session[P]) -> list[Session[P]]:
        """The sessions of the user (18.4): its account's, or itself alone."""
        if session.account:
            devices = self.devices.get(session.account)
            if devices:
                return devices
        return [session]

    def siblings(self, session: Session[P]) -> list[Session[P]]:
        """The user's other sessions (devices)."""
        return [s for s in self.devices_of(session) if s is not session]

    def check_free(self, name: str, session: Session[P] | None) -> None:
        """Refuse a name someone else has (or a look-alike of it, 5.1)."""
        holder = self.named(name)
        if holder is not None and holder is not session:
            raise ProtocolError(ErrorCode.NAME_TAKEN, f"{holder.name} is taken")

    def free_name(self, wanted: str, registered: Callable[[str], bool] | None = None) -> str:
        """`wanted`, or its first variant nobody has (nor, `registered`, an account)."""
        name, n = wanted, 1
        while p.name_key(name) in self.names or (
                registered is not None and registered(p.name_key(name))):
            n += 1
            name = p.name_variant(wanted, n)
        return name

    # ------------------------------------------------------------------ connections

    def expect(self, peer: P) -> None:
        """The peer's connect is on its way through the log."""
        self.joining[peer.cid] = peer

    def settle(self, cid: int) -> P | None:
        """Its connect was applied (or refused): the peer, if it is still here."""
        return self.joining.pop(cid, None)

    def bind(self, session: Session[P], peer: P) -> None:
        """Attach the session to its local connection (it reads the session's rooms)."""
        session.peer = peer
        self.local[peer.cid] = session

    def unbind(self, session: Session[P]) -> P | None:
        """Stop delivering to the session's local connection (it is going away); the
        connection, if it had one here."""
        peer = session.peer
        if peer is not None:
            self.local.pop(peer.cid, None)
            session.peer = None
        return peer

    # ------------------------------------------------------------------ sessions

    def add(self, session: Session[P]) -> None:
        """A new session (in no room yet: `enter` one), or one restored from a snapshot."""
        self.sessions[session.sid] = session
        if session.account and self.devices.get(session.account):
            self.devices[session.account].append(session)  # a further device (18.4)
        else:
            self.names[_key_of(session.name)] = session
            if session.account:
                self.devices[session.account] = [session]
        if session.status is Status.HELD:
            self.held[session.sid] = session

    def log_in(self, session: Session[P], account: str) -> None:
        """A session not logged in registered its name: it is that account's."""
        session.account = account
        self.devices.setdefault(account, []).append(session)

    def rekey(self, old: str, new: str) -> None:
        """The account is renamed (18.8): its devices are the new key's."""
        devices = self.devices.pop(old, [])
        for session in devices:
            session.account = new
        if devices:
            self.devices[new] = devices

    def log_out(self, account: str) -> None:
        """The account went (unregistered, dropped): its one device left is a guest."""
        for session in self.devices.pop(account, ()):
            session.account = ""

    def rename(self, session: Session[P], name: str) -> None:
        """The user takes a new name: every device of it."""
        first = self.names.pop(p.name_key(session.name))
        for key in session.rooms:  # the devices share them
            self.rooms[key].unlist(session)
        for each in self.devices_of(session):
            each.name = name
        self.names[_key_of(name)] = first

    def set_oper(self, session: Session[P], oper: bool) -> None:
        """The session is an operator now, or no longer (its rooms list it so)."""
        if session.oper != oper:
            session.oper = oper
            for key in session.rooms:
                self.rooms[key].unlist(session)

    def hold(self, session: Session[P], now: float, reason: str, grace: float) -> None:
        """Its connection went: held for resume (unbind its local connection first)."""
        session.status, session.origin = Status.HELD, None
        session.detached_at, session.lost, session.grace = now, reason, grace
        self.held[session.sid] = session

    def reattach(self, session: Session[P], origin: Origin) -> bool:
        """A resume: the session has a connection again; whether it was held."""
        session.status, session.origin = Status.ATTACHED, origin
        return self.held.pop(session.sid, None) is not None

    def remove(self, session: Session[P]) -> tuple[bool, list[tuple[Room[P], bool]]]:
        """The session ends (unbind its local connection first): whether it was held,
        and the rooms it was in, each with whether it is gone (see `exit`)."""
        del self.sessions[session.sid]
        held = self.held.pop(session.sid, None) is not None
        others = self.siblings(session)
        if session.account:
            if others:
                self.devices[session.account] = others
            else:
                self.devices.pop(session.account, None)
        if self.names.get(p.name_key(session.name)) is session:
            if others:
                self.names[p.name_key(session.name)] = others[0]
            else:
                del self.names[p.name_key(session.name)]
        rooms = [self.rooms[key] for key in session.rooms]
        return held, [(room, self.exit(session, room)) for room in rooms]

    # ------------------------------------------------------------------ rooms

    def room(self, name: str) -> Room[P]:
        """The room of that name, made if nobody is in it."""
        k = p.name_key(name)
        room = self.rooms.get(k)
        if room is None:
            room = self.rooms[k] = Room(k, name)
        return room

    def enter(self, session: Session[P], room: Room[P], since: Key, current: bool = True
              ) -> None:
        """A membership begins, and the room becomes the session's current room (unless
        not `current` and it has one: another device of the user joined, 18.4)."""
        session.rooms[room.key] = since
        if current or not session.room:
            session.room = room.key
        self._admit(session, room)

    def readmit(self, session: Session[P], room: Room[P], since: Key) -> None:
        """A membership restored from a snapshot, as it was (the current room is set
        apart)."""
        session.rooms[room.key] = since
        if session.sid not in room.members:
            self._admit(session, room)
        room.unlist()  # restored members were put in place directly

    def _admit(self, session: Session[P], room: Room[P]) -> None:
        further = bool(session.account) and self._sibling_in(session, room)
        if further:
            room.extra += 1
        room.members[session.sid] = session
        room.admitted(session, further)

    def _sibling_in(self, session: Session[P], room: Room[P]) -> bool:
        return any(s is not session and s.sid in room.members
                   for s in self.devices.get(session.account, ()))

    def recount(self, room: Room[P]) -> None:
        """A room restored from a snapshot: its further devices counted."""
        room.extra = len(room.members) - len({s.account or s.sid
                                              for s in room.members.values()})
        room.unlist()

    def switch(self, session: Session[P], key: str) -> None:
        """Make one of its rooms the session's current room."""
        assert key in session.rooms
        session.room = key

    def exit(self, session: Session[P], room: Room[P]) -> bool:
        """A membership ends (if the room was the current one, the most recently joined
        of the others becomes current, or none); whether the room is gone with it (held
        sessions are members: nobody is left)."""
        del session.rooms[room.key]
        del room.members[session.sid]
        room.unlist(session)
        if session.account and self._sibling_in(session, room):
            room.extra -= 1
        if session.room == room.key:
            session.room = next(reversed(session.rooms), "")
        gone = not room.members and self.rooms.get(room.key) is room
        if gone:
            del self.rooms[room.key]
        return gone
