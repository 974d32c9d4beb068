"""Effects: what the core (a connection's link, the hub) asks the I/O shell to do.

One vocabulary for both: chatd.link returns a list of these for one connection, the
hub (chatd.hub) an `Effects` whose `ops` hold them; the shell carries both out, in
order, with one dispatcher (chatd.server.Server.perform). Order is the contract: a
member that leaves a room gets every line broadcast to the room before its `Exit`, and
none after; a reply sent before a `Broadcast` arrives before it. The writer
(chatd.outbox) keeps its own room membership from `Enter` and `Exit`, so nothing
depends on the identity of the hub's sets.

Vocabulary (a peer is a connection as the core knows it; the shell chooses its type):
  channel    a room's audience in one mode: (room key, mode). JSON readers (0), text
             readers whose current room it is (1) and text readers of it among their
             other rooms (2: lines prefixed "[room] ", PROTOCOL.txt 17.10) get
             differently encoded bytes, so they are three channels.
  Send       bytes for one peer alone (a reply, an ack, a private line, an error line).
  SendPaced  lines for one peer alone, made as they are written: the writer writes them
             as the peer's send queue drains (a resume's replay, PROTOCOL.txt 8.2, 10.2),
             and what it is sent after them waits behind them.
  Broadcast  bytes for every member of a channel but `skip` (the sender).
  Enter/Exit a peer starts/stops receiving a channel's broadcasts.
  Deliver    a client event a link read, for the hub (chatd.hub.Hub.handle).
  Leave      the peer's session ends here (or is held for resume when `resumable`).
  Close      write what the peer is owed, then close its connection.
  Abort      cut the peer's connection now, discarding what it has not read.
  Log        a line for the server log about the peer's connection.
  WrongPassword  a wrong server password (PROTOCOL.txt 11.2) or operator password
             (15.1): the shell makes the peer's address wait before its next try.
  Publish    commands for the log (chatd.bus / chatd.cluster applies them).
  Settled    a peer's connect has been decided: joined, or not (its backlog may go on).
  Charge     a request cost this many reply bytes: flood control charges the peer (8.3).
  Released   a session held for resume ended or was resumed: the slot it held against
             the connection limits is free (chatd.limits.Admission).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, Literal, TypeAlias, TypeVar, final

from chatd.commands import Command, Origin
from chatd.protocol import Event

P = TypeVar("P")
Channel: TypeAlias = tuple[str, int]  # (room key, mode: 0 JSON, 1 text, 2 text prefixed)


@final
@dataclass(slots=True)
class Send(Generic[P]):
    peer: P
    data: bytes


@final
@dataclass(slots=True)
class SendPaced(Generic[P]):
    peer: P
    lines: Iterator[bytes]


@final
@dataclass(slots=True)
class Broadcast(Generic[P]):
    channel: Channel
    data: bytes
    skip: P | None


@final
@dataclass(slots=True)
class Enter(Generic[P]):
    channel: Channel
    peer: P


@final
@dataclass(slots=True)
class Exit(Generic[P]):
    channel: Channel
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
class Publish:
    commands: list[Command]


@final
@dataclass(slots=True)
class Settled(Generic[P]):
    peer: P
    joined: bool


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
Op: TypeAlias = (LinkOp[P] | SendPaced[P] | Broadcast[P] | Enter[P] | Exit[P] | Publish
                 | Settled[P] | Released | Charge[P])


class Effects(Generic[P]):
    """The ordered operations of one hub call, and a line for the server log.

    Made twice per chat line, so a plain class with slots.
    """

    __slots__ = ("about", "audit", "note", "ops")

    def __init__(self) -> None:
        self.ops: list[Op[P]] = []
        self.note = ""  # what happened, for the server log
        # The note's event, the command's origin (if it has one), user and room
        self.about: tuple[str, Origin | None, str, str | None] | None = None
        self.audit = ""  # an operator's action (PROTOCOL.txt 15.7): logged at any level

    def send(self, peer: P, data: bytes) -> None:
        self.ops.append(Send(peer, data))

    def broadcast(self, channel: Channel, data: bytes, skip: P | None = None) -> None:
        self.ops.append(Broadcast(channel, data, skip))

    def publish(self, command: Command) -> None:
        self.ops.append(Publish([command]))

    @property
    def commands(self) -> list[Command]:
        """Every command published, in order (for tests and the log)."""
        return [cmd for op in self.ops if isinstance(op, Publish) for cmd in op.commands]

    @property
    def closed(self) -> list[P]:
        return [op.peer for op in self.ops if isinstance(op, Close)]
