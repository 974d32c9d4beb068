"""The lines of several rooms at once (PROTOCOL.txt 17) that chatc speaks, pure.

A version 2 server takes `part` and `switch`, and `room` on a chat line; its welcome
lists the user's rooms. These are read and written here, next to chatd.protocol's
codec, so that chatc works against both versions: a version 1 server's welcome has
no `rooms` (then the one room is the welcome's), and chatc sends it none of these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from chatd import protocol as p

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class Part:
    """Leave one room (None: the server's current room)."""

    room: str | None = None


@dataclass(frozen=True, slots=True)
class Switch:
    """Make `room` the one a line without `room` is for."""

    room: str


@dataclass(frozen=True, slots=True)
class InRoom:
    """A chat line for one room, named on the line."""

    message: p.Message
    room: str


Outbound: TypeAlias = p.Event | Part | Switch | InRoom


def encode(event: Outbound) -> bytes:
    """One client line, ready for the wire."""
    obj: dict[str, Any]
    if isinstance(event, InRoom):
        obj = json.loads(p.encode_event(event.message))
        obj["room"] = event.room
    elif isinstance(event, Part):
        obj = {"type": "part"} if event.room is None else {"type": "part", "room": event.room}
    elif isinstance(event, Switch):
        obj = {"type": "switch", "room": event.room}
    else:
        return p.encode_event(event)
    return (_dumps(obj) + "\n").encode()


def welcome_rooms(line: bytes) -> tuple[str, ...]:
    """The rooms a welcome line lists, in joining order; () from a version 1 server."""
    try:
        obj = json.loads(line)
    except ValueError:
        return ()
    rooms = obj.get("rooms") if isinstance(obj, dict) else None
    if not isinstance(rooms, list):
        return ()
    return tuple(dict.fromkeys(r for r in rooms if isinstance(r, str) and r))


def switched(update: p.Update) -> str | None:
    """The room a `switch` answer names (the server's current room now), else None."""
    if isinstance(update, p.Unknown) and update.type == "switch":
        room = update.fields.get("room")
        return room if isinstance(room, str) else None
    if type(update).__name__ == "Switched":  # a codec that knows the line (temporary)
        room = getattr(update, "room", None)
        return room if isinstance(room, str) else None
    return None
