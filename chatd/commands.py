"""Commands: the state changes the hub applies in log order, and their record form.

A command is what `Hub.handle` decides a client asked for; `Hub.apply` carries it out.
One process applies commands as soon as they are made (chatd.bus); a cluster writes
their records to a Redis stream and every node applies every record (chatd.cluster).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import field, fields
from typing import Any, Final, TypeAlias

from chatd.protocol import value

BEAT_EVERY: Final = 1.0  # seconds between a node's heartbeats (BeatCmd)


class Logged:
    """The base of every command (`Command`): an entry for the log. In the hub's effects
    a command is itself the operation "publish this" (chatd.effects): no wrapper to make
    on the way of every chat line."""

    __slots__ = ()


@value
class Origin:
    """The connection a command came from, so that its answer goes back there."""

    node: str
    cid: int


@value
class JoinCmd(Logged):
    origin: Origin
    sid: str
    name: str
    room: str
    text: bool
    token_hash: str
    notice: str | None = None  # why a requested resume did not happen
    address: str = ""  # the client's IP address, for address bans (PROTOCOL.txt 15.3)
    account: str = ""  # the key of the account it logged in to (18.3)
    login_digest: str = ""  # the digest of the device's login token (18.3), never it


@value
class ResumeCmd(Logged):
    origin: Origin
    sid: str
    last_id: str | None
    fallback: JoinCmd  # applied instead when the session has gone meanwhile


@value
class LeaveCmd(Logged):
    sid: str
    reason: str | None = None  # None: a polite or clean leave


@value
class DetachCmd(Logged):
    sid: str
    reason: str
    grace: float | None = None  # held this long at most; None: the resume grace (10.1)


@value
class JoinRoomCmd(Logged):
    """A session joins one more room, which becomes its current room (PROTOCOL 17.2)."""

    origin: Origin
    sid: str
    room: str  # its name, normalised


@value
class PartCmd(Logged):
    """A session leaves one room (17.3)."""

    origin: Origin
    sid: str
    room: str | None  # its name, normalised; None: the current room when applied


@value
class SwitchCmd(Logged):
    """A session talks in another of its rooms (17.4)."""

    origin: Origin
    sid: str
    room: str  # its name, normalised


@value
class RenameCmd(Logged):
    origin: Origin
    sid: str
    name: str


@value
class SayCmd(Logged):
    origin: Origin
    sid: str
    message: str
    to: str | None = None
    ref: str | None = None
    room: str | None = None  # its name; None: the sender's current room when applied (17.5)


@value
class BeatCmd(Logged):
    """A node is alive. Applying it ends sessions past their resume grace, and declares
    nodes dead that have not beaten for a while (the clock is the log's, so every node
    decides the same at the same point of the log)."""

    node: str


@value
class OperCmd(Logged):
    """A session became an operator (its credentials were checked where it connected)."""

    origin: Origin
    sid: str
    as_name: str  # the operator entry it logged in with (for the audit log)


@value
class KickCmd(Logged):
    origin: Origin
    sid: str  # the session removed
    by: str
    reason: str
    room: bool  # from one room only (17.12), not from the server
    where: str | None = None  # that room's key; None: the session's current room


@value
class BanCmd(Logged):
    """Ban a name key or a network; the ban ends `seconds` after the log applies it
    (0: never), so every node computes the same end."""

    origin: Origin
    kind: str  # "name" or "address"
    key: str
    label: str
    seconds: int
    by: str
    reason: str


@value
class UnbanCmd(Logged):
    origin: Origin
    kind: str
    key: str
    by: str


@value
class MuteCmd(Logged):
    origin: Origin
    room: str | None  # room key; None with `on` False: every room
    name: str
    by: str
    reason: str
    on: bool
    sid: str = ""  # the session muted (a mute follows the person, PROTOCOL.txt 15.4)


@value
class TopicCmd(Logged):
    origin: Origin
    sid: str
    topic: str
    room: str | None = None  # the room's name; None: the setter's current room (17.12)


@value
class AccountCmd(Logged):
    """A change of the accounts (PROTOCOL.txt 18.11), carrying a hash, never a password:
    `op` "register" (name, password hash; `sid` the registering session, "" before
    joining), "password" (the new hash), "drop" (an unregister: `sid` the device; or
    an operator's drop), and an operator's "oper", "deoper", "rename" (to `name`);
    "token" (a device's login token's digest in `password_hash`), "logout" (the same,
    revoked), "failed" (a wrong password for the account from the address `name`)."""

    origin: Origin
    op: str
    key: str
    name: str = ""
    password_hash: str = field(default="", repr=False)
    sid: str = ""
    by: str = ""  # the operator who asked (18.8): "drop", "oper", "deoper", "rename"


@value
class ReadCmd(Logged):
    """An account's read marker moves forward in a room (18.5)."""

    origin: Origin
    account: str  # its key
    room: str  # the room's key
    id: str


ModCommand: TypeAlias = OperCmd | KickCmd | BanCmd | UnbanCmd | MuteCmd | TopicCmd
Command: TypeAlias = (
    JoinCmd | ResumeCmd | LeaveCmd | DetachCmd | JoinRoomCmd | PartCmd | SwitchCmd | RenameCmd
    | SayCmd | BeatCmd
    | ModCommand | AccountCmd | ReadCmd
)

# A record is a JSON array per command: its kind's name, then its fields in order (an
# Origin as [node, cid], a fallback JoinCmd as a nested record). Compact, and quick to
# make and read: a cluster node makes one for every command and reads every one.
_KINDS: Final[dict[str, type[Any]]] = {
    cls.__name__: cls
    for cls in (JoinCmd, ResumeCmd, LeaveCmd, DetachCmd, JoinRoomCmd, PartCmd, SwitchCmd,
                RenameCmd, SayCmd, BeatCmd, OperCmd, KickCmd, BanCmd, UnbanCmd, MuteCmd, TopicCmd,
                AccountCmd, ReadCmd)
}


# Per kind, its fields as (name, how): 0 as is, 1 an Origin, 2 a nested JoinCmd; and,
# for reading, where the Origin and the nested JoinCmd sit (-1: nowhere). Worked out
# once: a record is made once per command and read on every node.
_SPECS: Final[dict[type[Any], tuple[tuple[str, int], ...]]] = {
    cls: tuple((f.name, 1 if f.name == "origin" else 2 if f.name == "fallback" else 0)
               for f in fields(cls))
    for cls in _KINDS.values()
}


def _where(cls: type[Any], how: int) -> int:
    return next((i for i, (_, h) in enumerate(_SPECS[cls]) if h == how), -1)


_BUILDERS: Final[dict[str, tuple[type[Any], int, int]]] = {
    name: (cls, _where(cls, 1), _where(cls, 2)) for name, cls in _KINDS.items()
}


def _plain(cmd: Any) -> list[Any]:
    out: list[Any] = [type(cmd).__name__]
    for name, how in _SPECS[type(cmd)]:
        value = getattr(cmd, name)
        if how == 1 and value is not None:
            value = [value.node, value.cid]
        elif how == 2:
            value = _plain(value)
        out.append(value)
    return out


def _build(record: list[Any]) -> Any:
    cls, origin_at, fallback_at = _BUILDERS[record[0]]
    del record[0]
    if origin_at >= 0 and record[origin_at] is not None:
        record[origin_at] = Origin(*record[origin_at])
    if fallback_at >= 0:
        record[fallback_at] = _build(record[fallback_at])
    return cls(*record)


def to_records(cmds: list[Command]) -> bytes:
    """Commands as one JSON document, for a log shared between processes."""
    return _dumps([_plain(cmd) for cmd in cmds])


def from_records(data: bytes | str) -> list[Command]:
    return [_build(record) for record in _loads(data)]


def _std_dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


_dumps: Callable[[Any], bytes]
_loads: Callable[[bytes | str], Any]
try:
    from orjson import dumps as _dumps
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - the same records, slower
    _dumps, _loads = _std_dumps, json.loads
