"""Effects: what the core (a connection's link, the hub) asks the I/O shell to do.

One vocabulary for both: chatd.link returns a list of these for one connection, the
hub (chatd.hub) an `Effects` whose `ops` hold them; the shell carries both out, in
order, with one dispatcher (chatd.server.Server.perform). Order is the contract: a
member that leaves a room gets every line broadcast to the room before its `Exit`, and
none after; a reply sent before a `Broadcast` arrives before it. The writer
(chatd.outbox) keeps its own room membership from `Enter` and `Exit`.

Vocabulary (a peer is a connection as the core knows it; the shell chooses its type):
  update     a value of chatd.protocol's `Update` union. The core never encodes one: the
             writer (chatd.writer) does, in the mode of whoever reads it, once per mode
             for a room however many members read it in that mode.
  Send       bytes for one peer alone, made by the link (its prompts and errors).
  Reply      an update for one peer alone (a reply, an ack, a private line); `charge`:
             flood control charges the peer the bytes it takes as sent (a reply whose
             size grows with the server, 8.3).
  SendPaced  updates for one peer alone, encoded as they are written: the writer writes
             them as the peer's send queue drains (a resume's replay, PROTOCOL.txt 8.2,
             10.2), and what it is sent after them waits behind them.
  Page       history lines for one peer, as many as fit `limit` bytes as sent (3.8),
             then their history_end; the lines' bytes are charged to flood control.
  Broadcast  an update for every member of a room (its local peers) but `skip`.
  Multicast  an update for some members of a room (`peers`), encoded once per mode they
             read the room in (a nick for those sharing no earlier room, 17.7).
  Enter/Exit a peer starts/stops receiving a room's broadcasts; a text-mode peer reads
             the rooms other than its current one `prefixed` with "[room] " (17.10).
  Deliver    a client event a link read, for the hub (chatd.hub.Hub.handle).
  Leave      the peer's session ends here (or is held for resume when `resumable`).
  Close      write what the peer is owed, then close its connection.
  Abort      cut the peer's connection now, discarding what it has not read.
  Log        a line for the server log about the peer's connection.
  WrongPassword  a wrong server password (PROTOCOL.txt 11.2) or operator password
             (15.1): the shell makes the peer's address wait before its next try.
  a command  (chatd.commands: a `Logged`) for the log: chatd.bus or chatd.cluster
             applies it.
  Settled    a peer's connect has been decided: joined, or not (its backlog may go on);
             `login`: not yet, a text-mode peer's next line is its account's password.
  Hash       a password to hash (`stored` None) or to verify against `stored`, off the
             loop (chatd.passwords.Hasher); the outcome goes back to the hub with
             `then` (Hub.hashed). PROTOCOL.txt 18.7.
  Charge     a request cost this many reply bytes: flood control charges the peer (8.3).
  Released   a session held for resume ended or was resumed: the slot it held against
             the connection limits is free (chatd.admission.Admission).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeAlias, TypeVar, final

from chatd.commands import Command, Logged, Origin
from chatd.protocol import Chat, Event, Update

P = TypeVar("P")


@final
@dataclass(slots=True)
class Send(Generic[P]):
    peer: P
    data: bytes


@final
@dataclass(slots=True)
class Reply(Generic[P]):
    peer: P
    update: Update
    charge: bool = False


@final
@dataclass(slots=True)
class SendPaced(Generic[P]):
    peer: P
    lines: Iterator[Update]


@final
@dataclass(slots=True)
class Page(Generic[P]):
    peer: P
    room: str  # the room's name, for the history_end
    lines: list[Chat]  # oldest first
    newest: bool  # what does not fit goes from the oldest end (else from the newest)
    more: bool  # the room has lines beyond these
    limit: int  # bytes of lines as sent, at most (at least one line is sent)


@final
@dataclass(slots=True)
class Broadcast(Generic[P]):
    room: str  # its key
    update: Update
    skip: P | None
    # JSON readers the line names (18.6): they get a copy of their own with "mention"
    # (the rest still share one encoding); nearly always none.
    mentioned: tuple[P, ...] = ()
    # JSON readers that are another device of the sender (18.4): a copy with "own".
    own: tuple[P, ...] = ()


@final
@dataclass(slots=True)
class Multicast(Generic[P]):
    room: str  # its key
    update: Update
    peers: list[P]


@final
@dataclass(slots=True)
class Enter(Generic[P]):
    room: str
    peer: P
    prefixed: bool = False  # text mode: not its current room (PROTOCOL.txt 17.10)


@final
@dataclass(slots=True)
class Exit(Generic[P]):
    room: str
    peer: P


@final
@dataclass(slots=True)
class Deliver(Generic[P]):
    peer: P
    event: Event


@final
@dataclass(slots=True)
class Leave(Generic[P]):
    peer: P
    reason: str | None  # None: a clean end (EOF, /quit)
    resumable: bool = True


@final
@dataclass(slots=True)
class Close(Generic[P]):
    peer: P


@final
@dataclass(slots=True)
class Abort(Generic[P]):
    peer: P
    reason: str


@final
@dataclass(slots=True)
class Log(Generic[P]):
    peer: P
    level: Literal["info", "warning"]
    text: str


@final
@dataclass(slots=True)
class WrongPassword(Generic[P]):
    peer: P
    oper: bool = False  # an operator password (15.1), not the server's (11.2)


@final
@dataclass(slots=True)
class Settled(Generic[P]):
    peer: P
    joined: bool
    login: bool = False  # text mode: ask for the account's password (18.3)


@final
@dataclass(slots=True)
class Hash(Generic[P]):
    peer: P
    password: str = field(repr=False)
    stored: str | None  # verify against this stored hash; None: make a new hash
    then: object  # the hub's own record of what waits for the outcome


HASH_BUSY: Final = None  # the outcome when too many hashes are in flight (18.7)


@final
@dataclass(slots=True)
class Released:
    sid: str


@final
@dataclass(slots=True)
class Charge(Generic[P]):
    peer: P
    reply_bytes: int


# What a link returns (chatd.link): effects on its own connection.
LinkOp: TypeAlias = (Send[P] | Deliver[P] | Leave[P] | Close[P] | Abort[P] | Log[P]
                     | WrongPassword[P])
Op: TypeAlias = (LinkOp[P] | Reply[P] | SendPaced[P] | Page[P] | Broadcast[P] | Multicast[P]
                 | Enter[P] | Exit[P]
                 | Command | Settled[P] | Released | Charge[P] | Hash[P])


class Effects(Generic[P]):
    """The ordered operations of one hub call, and a line for the server log.

    Made twice per chat line, so a plain class with slots (a list subclass with the
    other attributes on the class until set was slower: the attributes set make a dict).
    """

    __slots__ = ("about", "audit", "note", "ops")

    def __init__(self) -> None:
        self.ops: list[Op[P]] = []
        self.note = ""  # what happened, for the server log
        # The note's event, the command's origin (if it has one), user and room
        self.about: tuple[str, Origin | None, str, str | None] | None = None
        self.audit = ""  # an operator's action (PROTOCOL.txt 15.7): logged at any level

    def reply(self, peer: P, update: Update, charge: bool = False) -> None:
        self.ops.append(Reply(peer, update, charge))

    def broadcast(self, room: str, update: Update, skip: P | None = None) -> None:
        self.ops.append(Broadcast(room, update, skip))

    def publish(self, command: Command) -> None:
        self.ops.append(command)

    @property
    def commands(self) -> list[Command]:
        """Every command published, in order (for tests and the log)."""
        return [op for op in self.ops if isinstance(op, Logged)]

    @property
    def closed(self) -> list[P]:
        return [op.peer for op in self.ops if isinstance(op, Close)]
