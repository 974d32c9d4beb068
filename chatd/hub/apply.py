"""Commands carried out in log order, on every node alike (chatd.bus, chatd.cluster):
a line said, a room joined, parted or made current (PROTOCOL.txt 17), a session renamed.
Each handler changes the state through `State`'s methods and tells the local peers.
A session's coming and going (join, resume, hold, end, heartbeats) is
chatd.hub.lifecycle's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from chatd import protocol as p
from chatd.commands import (
    DetachCmd,
    JoinRoomCmd,
    LeaveCmd,
    PartCmd,
    RenameCmd,
    SayCmd,
    SwitchCmd,
)
from chatd.effects import Broadcast, Effects
from chatd.hub import accounts, markers
from chatd.hub.base import Entry, Stamp
from chatd.hub.state import Room, Session
from chatd.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from chatd.hub.core import Core as Hub

C = TypeVar("C", LeaveCmd, DetachCmd, JoinRoomCmd, PartCmd, SwitchCmd, RenameCmd)


def of_session(handler: Callable[[Hub[Any], Effects[Any], Session[Any], C, Stamp], None]
               ) -> Callable[[Hub[Any], Effects[Any], C, Stamp], None]:
    """A command about a session that may have ended meanwhile: then it does nothing."""
    def found(hub: Hub[Any], fx: Effects[Any], cmd: C, st: Stamp) -> None:
        session = hub.state.sessions.get(cmd.sid)
        if session is not None:
            handler(hub, fx, session, cmd, st)
    return found


def say(hub: Hub[Any], fx: Effects[Any], cmd: SayCmd, st: Stamp) -> None:
    sender = hub.state.sessions.get(cmd.sid)
    if sender is None:
        return
    if cmd.to is not None:
        say_privately(hub, fx, sender, cmd, st)
        return
    where = p.name_key(cmd.room) if cmd.room is not None else sender.room
    if where not in sender.rooms:  # parted meanwhile, or never joined (17.5)
        hub.answer(fx, cmd.origin, p.Error(
            ErrorCode.NOT_IN_ROOM, f"you are not in {cmd.room or 'any room'}; your "
            "line was not sent", cmd.ref))
        return
    room = hub.state.rooms[where]
    line_id, key = st.next_id()
    name, message, time = sender.name, cmd.message, st.time
    chat = p.Chat(name, message, line_id, time, room.name)
    if hub.mentions.by_key:
        named = hub.mentions.readers(message, where, sender)
        # One dict look-up, for logged-in senders only: nearly all have one device.
        own = (_own_copies(sender, hub.state.devices.get(sender.account, ()), where)
               if sender.account else ())
        fx.ops.append(Broadcast(where, chat, sender.peer, named, own) if named or own
                      else Broadcast(where, chat, sender.peer))  # 18.6, 18.4
    elif sender.account:
        own = _own_copies(sender, hub.state.devices.get(sender.account, ()), where)
        fx.ops.append(Broadcast(where, chat, sender.peer, (), own))
    else:
        fx.ops.append(Broadcast(where, chat, sender.peer))
    hub.history.remember(where, Entry(key, line_id, time, name, message, sender.sid, cmd.ref),
                         cmd.origin.node == hub.node)
    if sender.account:  # one's own lines are never unread (18.5)
        markers.said(hub, sender, where, line_id)
    fx.note = f"<{name}@{room.name}> {message}"
    fx.about = ("message", cmd.origin, name, room.name)
    if cmd.ref is not None:
        hub.answer(fx, cmd.origin, p.Ack(cmd.ref, line_id, time))


def say_privately(hub: Hub[Any], fx: Effects[Any], sender: Session[Any], cmd: SayCmd,
                  st: Stamp) -> None:
    """A private line (PROTOCOL.txt 3.2 "to")."""
    assert cmd.to is not None
    line_id, key = st.next_id()
    target = hub.state.named(cmd.to)
    if target is None:
        hub.answer(fx, cmd.origin, p.Error(
            ErrorCode.NO_SUCH_USER, f"no user named {cmd.to[:40]}", cmd.ref))
        return
    entry = Entry(key, line_id, st.time, sender.name, cmd.message, sender.sid, cmd.ref,
                  to=target.name)
    # Every device of both (18.4) keeps it, for its resume. In this order on every
    # node: which line goes first past a bound must agree.
    mine = hub.state.devices_of(sender)
    same = target is sender or (bool(sender.account) and sender.account == target.account)
    theirs = mine if same else hub.state.devices_of(target)
    for holder in mine if same else (*mine, *theirs):
        hub.keep_private(holder, entry)
    line = p.Chat(sender.name, cmd.message, line_id, st.time, to=target.name)
    for device in theirs:
        if device.peer is not None:
            fx.reply(device.peer, line)
    if len(mine) > 1 and not same:  # what it sent, on its other devices
        for device in mine:
            if device is not sender and device.peer is not None:
                fx.reply(device.peer, replace(line, own=True))
    fx.note = f"{sender.name} -> {target.name}: private line ({len(cmd.message)} chars)"
    fx.about = ("private", cmd.origin, sender.name, None)
    if cmd.ref is not None:
        hub.answer(fx, cmd.origin, p.Ack(cmd.ref, line_id, st.time))


def _own_copies(sender: Session[Any], devices: Sequence[Session[Any]], room: str
                ) -> tuple[Any, ...]:
    """The sender's other devices that read the room here in JSON: they get the line
    marked "own" (18.4; text mode shows it plain)."""
    if len(devices) < 2:
        return ()
    return tuple(d.peer for d in devices if d is not sender and d.peer is not None
                 and not d.peer.text and room in d.rooms)


def join_room(hub: Hub[Any], fx: Effects[Any], session: Session[Any], cmd: JoinRoomCmd,
              st: Stamp) -> None:
    """One more room, which becomes the current one (PROTOCOL.txt 17.2)."""
    key = p.name_key(cmd.room)
    if key in session.rooms:  # the log decides: a join may have overtaken another
        hub.answer(fx, cmd.origin, p.Error(
            ErrorCode.ALREADY_IN_ROOM, f"you are in {hub.state.rooms[key].name} already "
            f"(/switch {hub.state.rooms[key].name} to talk there)"))
        return
    most = hub.config.max_rooms
    if len(session.rooms) >= most:
        hub.answer(fx, cmd.origin, p.Error(
            ErrorCode.TOO_MANY_ROOMS, f"you are in {most} rooms, the most this server "
            "allows: /part one first"))
        return
    enter(hub, fx, session, hub.state.room(cmd.room), st)


def enter(hub: Hub[Any], fx: Effects[Any], session: Session[Any], room: Room[Any],
          st: Stamp) -> None:
    """The session joins the room and talks there: it gets the room's people, topic and
    last lines, then the room (the joiner too) sees it join. Every device of the user
    joins it (18.4); the room becomes the current one of the device that asked only."""
    joined_id, key = st.next_id()
    devices = hub.state.devices_of(session)
    for device in devices:
        hub.enter_room(fx, device, room, key, device is session)
    markers.entered(hub, session, room.key)
    for device in devices:
        if device.peer is not None:
            hub.costly_reply(fx, device.peer, hub.who_of(room))
            if topic := hub.topic_of(room):
                hub.reply(fx, device.peer, p.Topic(room.name, topic))
            hub.send_recent(fx, device.peer, room)
    hub.broadcast(fx, room, p.Joined(session.name, room.name, f"{session.name} joined",
                                     joined_id, st.time))
    peer = session.peer
    if peer is not None and peer.text:  # a person at nc: where their lines go now
        hub.reply(fx, peer, p.Switched(room.name))
    fx.note = f"{session.name} joined {room.name}"
    fx.about = ("join", None, session.name, room.name)


def part(hub: Hub[Any], fx: Effects[Any], session: Session[Any], cmd: PartCmd, st: Stamp
         ) -> None:
    """Leave one room (PROTOCOL.txt 17.3)."""
    key = p.name_key(cmd.room) if cmd.room is not None else session.room
    room = hub.state.rooms.get(key)
    if room is None or key not in session.rooms:
        hub.answer(fx, cmd.origin, p.Error(
            ErrorCode.NOT_IN_ROOM, f"you are not in {cmd.room or 'any room'}"))
        return
    leave_room(hub, fx, session, room, st, said=f"{session.name} left {room.name}")


def leave_room(hub: Hub[Any], fx: Effects[Any], session: Session[Any], room: Room[Any],
               st: Stamp, *, said: str) -> None:
    """A membership ends: the room, the leaver included, sees it go ("part": true). The
    user leaves it on every device (18.4)."""
    left_id, _ = st.next_id()
    hub.broadcast(fx, room, p.Left(session.name, room.name, said, left_id, st.time,
                                   part=True))
    for device in list(hub.state.devices_of(session)):
        current = device.room
        hub.exit_room(fx, device, room)
        peer = device.peer
        if peer is not None and peer.text and device.room != current and device.room:
            hub.reply(fx, peer, p.Switched(hub.state.rooms[device.room].name))
    fx.note = f"{session.name} left {room.name}"
    fx.about = ("part", None, session.name, room.name)


def switch(hub: Hub[Any], fx: Effects[Any], session: Session[Any], cmd: SwitchCmd,
           st: Stamp) -> None:
    """Talk in another of one's rooms (PROTOCOL.txt 17.4)."""
    key = p.name_key(cmd.room)
    if key not in session.rooms:
        hub.answer(fx, cmd.origin, p.Error(
            ErrorCode.NOT_IN_ROOM, f"you are not in {cmd.room} (/join it first)"))
        return
    hub.switch_room(fx, session, key)
    hub.answer(fx, cmd.origin, p.Switched(hub.state.rooms[key].name))


def rename(hub: Hub[Any], fx: Effects[Any], session: Session[Any], cmd: RenameCmd,
           st: Stamp) -> None:
    try:
        hub.state.check_free(cmd.name, session)
        hub.mod.check_name(cmd.name, st.now)  # banned meanwhile: the log decides
        accounts.check_nick(hub, session, cmd.name)  # registered meanwhile (18.1)
    except ProtocolError as exc:
        hub.answer(fx, cmd.origin, p.error_of(exc))
        return
    old = session.name
    hub.state.rename(session, cmd.name)  # every device of the user (18.4)
    for device in hub.state.devices_of(session):
        if device.peer is not None and not device.peer.text:  # named as it is now (18.6)
            hub.mentions.remove(device, old)
            hub.mentions.add(device)
        hub.mod.renamed(device.sid, cmd.name)  # a mute follows the person (15.4)
    notice_id, _ = st.next_id()
    said = f"{old} is now known as {cmd.name}"
    hub.to_company(fx, session, lambda room: p.Renamed(cmd.name, old, room.name, said,
                                                       notice_id, st.time))
    fx.note = f"{old} is now known as {cmd.name}"
    fx.about = ("rename", None, cmd.name, None)
