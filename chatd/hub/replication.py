"""The replicated state as a snapshot, taken in a moment and written in parts.

A cluster node that starts later restores the hub from the last snapshot and replays
the log after it (PROTOCOL.txt 14.2). That state grows with the sessions and the private
lines they hold for resume, so it is never made in one piece:

* `capturing` copies it a slice of sessions at a time (the caller applies no command
  in between, so the copy is of one moment), cheaply: a tuple a session, whose private
  lines are shared, not copied (an Entry never changes once made);
* `encode` turns the copy into parts of at most about PART_BYTES of JSON and
  PART_RECORDS records, one part a step, so the loop serves clients between parts
  (chatd.snapshotstore awaits after each) and no value stored in Redis comes near its
  512 MB limit for one value;
* `restore` rebuilds a hub from the parts, in order.

Part 0 is the header {"moderation", "rooms", "beats", ...what the caller adds}; each
further part is {"sessions": [...], "private": [[sid, line], ...]}, every session
before its private lines. A session's record holds its rooms in joining order, each
with the key of its first line there, and its current room (PROTOCOL.txt 17.13); the
header's rooms hold their members in joining order. `as_dict` / `restore_dict` are the
same state in one piece (small hubs, tests, and snapshots written by chatd before the parts).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator
from typing import Any, NamedTuple

from chatd.commands import Origin
from chatd.hub.base import Entry, P
from chatd.hub.facade import Hub
from chatd.hub.state import Session, Status
from chatd.moderation import Moderation

PART_BYTES = 1024 * 1024  # JSON text a part holds, about (escapes may make it more)
# Records a part holds at most: small records cost by their number, not their bytes
# (measured: about 8 us each to build and encode, so a part takes a few ms).
PART_RECORDS = 500
CAPTURE_SLICE = 1000  # sessions copied in one step (about 2 us each)
SESSION_BYTES = 400  # what a session's record takes besides its private lines, about
LINE_BYTES = 200  # what a private line's record takes besides its text, about


class Held(NamedTuple):
    """A session as it was when captured."""

    sid: str
    name: str
    room: str  # the current room's key ("": none)
    text: bool
    token_hash: str
    rooms: tuple[tuple[str, tuple[int, int, int]], ...]  # (key, since), joining order
    lost: str
    origin: Origin | None
    detached_at: float
    grace: float
    oper: bool
    address: str
    inbox: tuple[Entry, ...]
    account: str = ""


class Captured(NamedTuple):
    header: dict[str, Any]
    sessions: list[Held]


def capture(hub: Hub[P], **extra: Any) -> Captured:
    """The hub's replicated state now, in one step; `extra` goes into the header."""
    steps = capturing(hub, **extra)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            captured: Captured = done.value
            return captured


def capturing(hub: Hub[P], every: int = CAPTURE_SLICE, **extra: Any
              ) -> Generator[None, None, Captured]:
    """The hub's replicated state, copied `every` sessions a step (it yields between
    steps, and returns the copy); no command may be applied until it is done."""
    header = {
        **extra,
        "moderation": hub.mod.snapshot(),
        "rooms": [{"key": r.key, "name": r.name, "members": list(r.members)}
                  for r in hub.state.rooms.values() if r.members],
        "beats": dict(hub.beats),
        "accounts": hub.acc.snapshot(),  # PROTOCOL.txt 18.11
        "markers": hub.acc.policy.markers.rows(),
        "tokens": hub.acc.policy.tokens.rows(),
    }
    sessions = list(hub.state.sessions.values())
    held: list[Held] = []
    for at in range(0, len(sessions), every):
        if at:
            yield
        held += [Held(s.sid, s.name, s.room, s.text, s.token_hash, tuple(s.rooms.items()),
                      s.lost,
                      s.origin, s.detached_at, s.grace, s.oper, s.address,
                      tuple(s.inbox) if s.inbox else (), s.account)
                 for s in sessions[at:at + every]]
    return Captured(header, held)


def _session_record(s: Held) -> dict[str, Any]:
    return {"sid": s.sid, "name": s.name, "room": s.room, "text": s.text,
            "token_hash": s.token_hash,
            "rooms": [[key, list(since)] for key, since in s.rooms], "lost": s.lost,
            "origin": [s.origin.node, s.origin.cid] if s.origin else None,
            "detached_at": s.detached_at, "grace": s.grace, "inbox": [], "oper": s.oper,
            "address": s.address, "account": s.account}


def _line_record(e: Entry) -> dict[str, Any]:
    return {"key": list(e.key), "id": e.id, "time": e.time, "name": e.name,
            "message": e.message, "sid": e.sid, "ref": e.ref, "to": e.to}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def encode(captured: Captured, part_bytes: int = PART_BYTES,
           part_records: int = PART_RECORDS) -> Iterator[bytes]:
    """The snapshot's parts, one at a time."""
    yield _dumps(captured.header)
    sessions: list[dict[str, Any]] = []
    private: list[list[Any]] = []
    size = 0

    def full() -> bool:
        return size >= part_bytes or len(sessions) + len(private) >= part_records

    for held in captured.sessions:
        sessions.append(_session_record(held))
        size += SESSION_BYTES
        for line in held.inbox:
            private.append([held.sid, _line_record(line)])
            size += LINE_BYTES + len(line.message) + len(line.name)
            if full():
                yield _dumps({"sessions": sessions, "private": private})
                sessions, private, size = [], [], 0
        if full():
            yield _dumps({"sessions": sessions, "private": private})
            sessions, private, size = [], [], 0
    if sessions or private:
        yield _dumps({"sessions": sessions, "private": private})


def as_dict(captured: Captured) -> dict[str, Any]:
    """The whole state as one JSON-able value, private lines inside their sessions."""
    sessions = []
    for held in captured.sessions:
        record = _session_record(held)
        record["inbox"] = [_line_record(e) for e in held.inbox]
        sessions.append(record)
    return {**captured.header, "sessions": sessions}


def _line(d: dict[str, Any]) -> Entry:
    return Entry((d["key"][0], d["key"][1], d["key"][2]), d["id"], d["time"], d["name"],
                 d["message"], d["sid"], d["ref"], d["to"])


def restore(hub: Hub[P], header: dict[str, Any], parts: Iterable[dict[str, Any]]) -> None:
    """Take over a snapshot's state (on a node with no connections yet)."""
    by_sid: dict[str, Session[P]] = {}
    # sid -> its rooms in joining order, each with the key of its first line there
    joined: dict[str, list[tuple[str, tuple[int, int, int]]]] = {}
    for part in parts:
        for d in part.get("sessions", ()):
            origin = Origin(d["origin"][0], d["origin"][1]) if d["origin"] else None
            session: Session[P] = Session(
                d["sid"], d["name"], d["text"], d["token_hash"], origin,
                Status.ATTACHED if origin is not None else Status.HELD,
                detached_at=d["detached_at"], lost=d["lost"],
                oper=d.get("oper", False), address=d.get("address", ""),
                grace=d.get("grace", hub.config.resume_grace),  # older snapshots: no grace
                account=d.get("account", ""))
            session.room = d["room"]
            if "rooms" in d:
                joined[session.sid] = [(key, (k[0], k[1], k[2])) for key, k in d["rooms"]]
            else:  # a snapshot from before several rooms: its one room
                joined[session.sid] = [(d["room"], (d["since"][0], d["since"][1],
                                                    d["since"][2]))]
            by_sid[session.sid] = session
            hub.state.add(session)
            for line in d.get("inbox", ()):  # the one-piece form
                hub.keep_private(session, _line(line))
        for sid, line in part.get("private", ()):
            hub.keep_private(by_sid[sid], _line(line))
    rooms = {}
    for d in header["rooms"]:  # each room's members in their joining order
        room = rooms[d["key"]] = hub.state.room(d["name"])
        for sid in d["members"]:
            room.members[sid] = by_sid[sid]
    for sid, memberships in joined.items():  # each session's rooms in its joining order
        session = by_sid[sid]
        for key, since in memberships:
            hub.state.readmit(session, rooms[key], since)
    for room in rooms.values():
        hub.state.recount(room)
    hub.beats = dict(header["beats"])
    hub.mod = Moderation()
    hub.mod.restore(header.get("moderation", {}))
    hub.acc.restore(header.get("accounts", []))
    hub.acc.restore_markers(header.get("markers", []))
    hub.acc.restore_tokens(header.get("tokens", []))
    # Lines came in part order, not log order: put the server-wide order right.
    hub.history.inboxes.reindex(hub.state.sessions.values())


def snapshot(hub: Hub[P]) -> dict[str, Any]:
    """The replicated state as JSON-able data, in one piece."""
    return as_dict(capture(hub))


def restore_dict(hub: Hub[P], snapshot: dict[str, Any]) -> None:
    """Take over a snapshot made by `as_dict`."""
    restore(hub, snapshot, [{"sessions": snapshot["sessions"]}])
