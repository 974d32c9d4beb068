"""Read markers in the hub (PROTOCOL.txt 18.5): how far an account has read each of its
rooms, moved by read lines (a command of the log, so every node and device agree) and
by the account's own lines, and what is unread after each marker.

The markers themselves are chatd.accounts.ReadMarkers' (forward only, bounded); unread
lines are counted in the room's history as kept (9.4), other than the account's own.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from chatd import protocol as p
from chatd.accounts import mentions
from chatd.commands import ReadCmd
from chatd.effects import Effects
from chatd.hub.base import id_key
from chatd.hub.state import Session
from chatd.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from chatd.hub.core import Core as Hub


def read(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Read
         ) -> None:
    """A read line: checked here, moved in log order (`apply_read`). An id not after the
    marker changes nothing and gets no answer."""
    if not hub.acc.on:
        raise ProtocolError(ErrorCode.ACCOUNTS_OFF, "this server has no accounts")
    if not session.account:
        raise ProtocolError(ErrorCode.NOT_LOGGED_IN, "read markers are an account's: log in")
    room = session.room if event.room is None else p.name_key(p.normalize_room(event.room))
    if room not in session.rooms:
        raise ProtocolError(ErrorCode.NOT_IN_ROOM,
                            f"you are not in {event.room or 'any room'}")
    wanted, id_ = id_key(event.id), event.id  # bad_id
    lines = hub.history.retained(room)
    if lines and wanted > lines[-1].key:  # past the newest line: the newest line
        id_ = lines[-1].id
    old = hub.acc.policy.markers.get(session.account, room)
    if old is not None and id_key(old) >= id_key(id_):
        return
    fx.publish(ReadCmd(hub.origin_of(session, peer), session.account, room, id_))


def apply_read(hub: Hub[Any], fx: Effects[Any], cmd: ReadCmd, st: Any) -> None:
    """The marker moves; every device of the account is told, with what is unread."""
    acc = hub.acc
    account = acc.policy.accounts.get(cmd.account)
    if account is None or not acc.policy.markers.advance(cmd.account, cmd.room, cmd.id):
        return
    if acc.sink is not None:
        acc.sink.save_marker(cmd.account, cmd.room, cmd.id)
    room = hub.state.rooms.get(cmd.room)
    mark = mark_of(hub, account.name, cmd.room,
                   room_name=room.name if room is not None else cmd.room, id_=cmd.id)
    for session in hub.state.sessions.values():
        if session.account == cmd.account and session.peer is not None:
            hub.reply(fx, session.peer, mark)


def mark_of(hub: Hub[Any], name: str, room: str, *, room_name: str, id_: str
            ) -> p.ReadMark:
    """The marker with the room's chat lines after it that are not the account's own,
    and how many of those mention it (18.6)."""
    lines = hub.history.retained(room)
    at = bisect.bisect_right(lines, id_key(id_), key=lambda e: e.key)
    unread = mentioned = 0
    for entry in lines[at:]:
        if entry.name == name:  # a logged-in user's name is its account's, as registered
            continue
        unread += 1
        mentioned += mentions(entry.message, name)
    return p.ReadMark(room_name, id_, unread, mentioned)


def marks(hub: Hub[Any], session: Session[Any]) -> tuple[p.ReadMark, ...]:
    """For a welcome (a join or a resume): the markers of the session's rooms."""
    if not session.account:
        return ()
    got = []
    markers = hub.acc.policy.markers
    for key in session.rooms:
        id_ = markers.get(session.account, key)
        room = hub.state.rooms.get(key)
        if id_ is not None and room is not None:
            got.append(mark_of(hub, session.name, key, room_name=room.name, id_=id_))
    return tuple(got)


def said(hub: Hub[Any], session: Session[Any], room: str, id_: str) -> None:
    """What one writes one has read: the account's own line moves its marker there."""
    if hub.acc.policy.markers.advance(session.account, room, id_) and hub.acc.sink:
        hub.acc.sink.save_marker(session.account, room, id_)


def entered(hub: Hub[Any], session: Session[Any], room: str) -> None:
    """A logged-in user joined a room it has no marker in: the marker starts at the
    room's newest line (what was said before is not unread)."""
    if not session.account or hub.acc.policy.markers.get(session.account, room) is not None:
        return
    lines = hub.history.retained(room)
    if lines:
        said(hub, session, room, lines[-1].id)
