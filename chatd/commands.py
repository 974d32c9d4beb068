"""Commands: the state changes the hub applies in log order, and their record form.

A command is what `Hub.handle` decides a client asked for; `Hub.apply` carries it out.
One process applies commands as soon as they are made (chatd.bus); a cluster writes
their records to a Redis stream and every node applies every record (chatd.cluster).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, TypeAlias

BEAT_EVERY: Final = 1.0  # seconds between a node's heartbeats (BeatCmd)


@dataclass(frozen=True, slots=True)
class Origin:
    """The connection a command came from, so that its answer goes back there."""

    node: str
    cid: int


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


@dataclass(frozen=True, slots=True)
class BeatCmd:
    """A node is alive. Applying it ends sessions past their resume grace, and declares
    nodes dead that have not beaten for a while (the clock is the log's, so every node
    decides the same at the same point of the log)."""

    node: str


Command: TypeAlias = (
    JoinCmd | ResumeCmd | LeaveCmd | DetachCmd | MoveCmd | RenameCmd | SayCmd | BeatCmd
)

_KINDS: Final[dict[str, type[Any]]] = {
    cls.__name__: cls
    for cls in (JoinCmd, ResumeCmd, LeaveCmd, DetachCmd, MoveCmd, RenameCmd, SayCmd, BeatCmd)
}


def to_record(cmd: Command) -> bytes:
    """A command as one JSON document, for a log shared between processes."""
    return json.dumps({"kind": type(cmd).__name__, **asdict(cmd)},
                      ensure_ascii=False, separators=(",", ":")).encode()


def from_record(data: bytes | str) -> Command:
    obj = json.loads(data)
    return _build(_KINDS[obj.pop("kind")], obj)  # type: ignore[no-any-return]


def _build(cls: type[Any], obj: dict[str, Any]) -> Any:
    args = {}
    for f in fields(cls):
        value: Any = obj.get(f.name)
        if f.name == "origin" and value is not None:
            value = Origin(value["node"], value["cid"])
        elif f.name == "fallback":
            value = _build(JoinCmd, value)
        args[f.name] = value
    return cls(**args)
