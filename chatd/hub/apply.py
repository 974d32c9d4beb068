"""Commands carried out in log order, on every node alike (chatd.bus, chatd.cluster):
a line said, a session joined, resumed, held, ended, moved or renamed, a heartbeat.
Each handler changes the state through `State`'s methods and tells the local peers."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from chatd import protocol as p
from chatd.commands import (
    BEAT_EVERY,
    BeatCmd,
    DetachCmd,
    JoinCmd,
    LeaveCmd,
    MoveCmd,
    Origin,
    RenameCmd,
    ResumeCmd,
    SayCmd,
)
from chatd.effects import Broadcast, Close, Effects, Released, Settled
from chatd.hub.base import Entry, Stamp, id_key
from chatd.hub.state import Session, Status
from chatd.moderation import ban_error
from chatd.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from chatd.hub.core import Core as Hub

C = TypeVar("C", LeaveCmd, DetachCmd, MoveCmd, RenameCmd)


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
    line_id, key = st.next_id()
    if cmd.to is not None:
        target = hub.state.named(cmd.to)
        if target is None:
            hub.answer(fx, cmd.origin, p.Error(
                ErrorCode.NO_SUCH_USER, f"no user named {cmd.to[:40]}", cmd.ref))
            return
        entry = Entry(key, line_id, st.time, sender.name, cmd.message, sender.sid, cmd.ref,
                      to=target.name)
        # In this order on every node: which line goes first past a bound must agree.
        for holder in (sender, target) if target is not sender else (sender,):
            hub.keep_private(holder, entry)
        if target.peer is not None:
            fx.reply(target.peer, p.Chat(sender.name, cmd.message, line_id, st.time,
                                        to=target.name))
        fx.note = f"{sender.name} -> {target.name}: private line ({len(cmd.message)} chars)"
        fx.about = ("private", cmd.origin, sender.name, None)
    else:
        room = hub.state.rooms[sender.room]
        fx.ops.append(Broadcast(room.key, p.Chat(sender.name, cmd.message, line_id, st.time,
                                                 room.name), sender.peer))
        entry = Entry(key, line_id, st.time, sender.name, cmd.message, sender.sid, cmd.ref)
        hub.history.remember(room.key, entry, cmd.origin.node == hub.node)
        fx.note = f"<{sender.name}@{room.name}> {cmd.message}"
        fx.about = ("message", cmd.origin, sender.name, room.name)
    if cmd.ref is not None:
        hub.answer(fx, cmd.origin, p.Ack(cmd.ref, line_id, st.time))


def join(hub: Hub[Any], fx: Effects[Any], cmd: JoinCmd, st: Stamp) -> None:
    mod = hub.mod
    ban = mod.name_ban(cmd.name, st.now) or (
        mod.address_ban(cmd.address, st.now) if cmd.address and mod.networks else None)
    if ban is not None:  # banned meanwhile: the log decides (PROTOCOL.txt 15.6)
        hub.tokens.pop(cmd.sid, None)
        peer = hub.state.settle(cmd.origin.cid) if cmd.origin.node == hub.node else None
        if peer is not None:
            hub.reply(fx, peer, ban_error(ban, cmd.name))
            fx.ops.append(Close(peer))
        return
    state = hub.state
    name = state.free_name(cmd.name)
    room = state.room(cmd.room)
    notice_id, key = st.next_id()
    session: Session[Any] = Session(cmd.sid, name, cmd.text, cmd.token_hash, cmd.origin,
                                    address=cmd.address)
    state.add(session)
    state.enter(session, room, key)  # its peer, bound below, reads the room from then
    mod.joined(session.sid, (cmd.name, name), cmd.address)
    token = hub.tokens.pop(session.sid, "")  # only the joining node holds it
    peer = _attach(hub, fx, session, cmd.origin)
    if peer is not None:
        notice = cmd.notice
        if name != cmd.name:
            taken = f"{cmd.name} is taken, so you are {name}"
            notice = f"{notice}; {taken}" if notice else taken
        hub.reply(fx, peer, p.Welcome(
            name, room.name, room.users(), token,
            notice=notice, server=hub.config.server_name,
            max_line_bytes=hub.config.max_line_bytes, topic=hub.topic_of(room),
            opers=room.opers()))
        hub.send_recent(fx, peer, room)
    hub.broadcast(fx, room, p.Joined(name, room.name, f"{name} joined", notice_id, st.time))
    fx.note = f"{hub.tag(cmd.origin)} {name} joined {room.name}"
    fx.about = ("join", cmd.origin, name, room.name)


def _attach(hub: Hub[Any], fx: Effects[Any], session: Session[Any], origin: Origin
            ) -> Any | None:
    """Bind the session to its local peer, if the origin is a connection of this node."""
    hub.beats.setdefault(origin.node, hub.now)  # a join is a sign of life too
    if origin.node != hub.node:
        return None
    peer = hub.state.settle(origin.cid)
    if peer is None:  # the connection closed before its join was applied
        fx.publish(DetachCmd(session.sid, "connection lost while joining"))
        return None
    hub.bind(fx, session, peer)
    fx.ops.append(Settled(peer, True))
    return peer


def resume(hub: Hub[Any], fx: Effects[Any], cmd: ResumeCmd, st: Stamp) -> None:
    session = hub.state.sessions.get(cmd.sid)
    if session is None:
        # replace, not a rebuild: every field of the join (its address: 15.3) holds
        join(hub, fx, replace(cmd.fallback,
                              notice="could not resume: the session has expired"), st)
        return
    old_peer = hub.unbind(fx, session)
    if old_peer is not None:  # the old connection is still open here: replace it
        fx.ops.append(Close(old_peer))
    hub.tokens.pop(cmd.fallback.sid, None)
    if hub.state.reattach(session, cmd.origin):
        fx.ops.append(Released(session.sid))
    # The resumed session keeps its old token: a client may resume any number of times.
    peer = _attach(hub, fx, session, cmd.origin)
    room = hub.state.rooms[session.room]
    fx.note = f"{hub.tag(cmd.origin)} {session.name} resumed in {room.name}"
    fx.about = ("resume", cmd.origin, session.name, room.name)
    if cmd.origin.node == hub.node:
        hub.resumes += 1
    if peer is None:
        return
    hub.reply(fx, peer, p.Welcome(
        session.name, room.name, room.users(), "", resumed=True,
        server=hub.config.server_name, max_line_bytes=hub.config.max_line_bytes,
        topic=hub.topic_of(room), opers=room.opers()))
    seen = id_key(cmd.last_id) if cmd.last_id is not None else (0, 0, 0)
    start = max(seen, session.since)
    lines = hub.history.retained(room.key)
    missed = lines[bisect.bisect_right(lines, start, key=lambda e: e.key):]
    private = [e for e in session.inbox or () if e.key > seen]
    entries = sorted([*missed, *private], key=lambda e: e.key)
    if entries:
        hub.send_paced(fx, peer, session, room, entries)


def beat(hub: Hub[Any], fx: Effects[Any], cmd: BeatCmd, st: Stamp) -> None:
    """Expire sessions past their grace; declare silent nodes gone (PROTOCOL.txt 14)."""
    now = st.now
    previous = hub.beats.get(cmd.node)
    hub.beats[cmd.node] = now
    for session in [s for s in hub.state.held.values() if s.detached_at + s.grace <= now]:
        remove(hub, fx, session, st, session.lost)
    # Judge others only while this node beats steadily: right after the log itself
    # was unreachable, every node looks silent and none should be declared gone.
    if previous is None or now - previous > 3 * BEAT_EVERY:
        return
    for node, last in list(hub.beats.items()):
        if node != cmd.node and now - last > hub.config.node_timeout:
            del hub.beats[node]
            gone = [s for s in hub.state.sessions.values()
                    if s.status is Status.ATTACHED and s.origin is not None
                    and s.origin.node == node]
            for session in gone:
                lose(hub, fx, session, st, "server went away")
            fx.note = (f"node {node} is gone (no heartbeat for {now - last:.1f}s); "
                       f"{len(gone)} session(s) lost")


def detach(hub: Hub[Any], fx: Effects[Any], session: Session[Any], cmd: DetachCmd,
           st: Stamp) -> None:
    lose(hub, fx, session, st, cmd.reason, grace=cmd.grace)


def lose(hub: Hub[Any], fx: Effects[Any], session: Session[Any], st: Stamp, reason: str, *,
         grace: float | None = None) -> None:
    """The session's connection is gone: hold it for resume (the resume grace, or
    `grace` if shorter), or end it without grace."""
    peer = hub.unbind(fx, session)
    if peer is not None:  # this node was declared gone, yet lives: let go
        fx.ops.append(Close(peer))
    full = hub.config.resume_grace
    if full <= 0:
        remove(hub, fx, session, st, reason)
        return
    hub.state.hold(session, st.now, reason, full if grace is None else min(grace, full))
    fx.note = (f"{session.name} lost the connection ({reason}); held "
               f"{session.grace:g}s for resume")
    fx.about = ("detach", None, session.name, None)


def leave(hub: Hub[Any], fx: Effects[Any], session: Session[Any], cmd: LeaveCmd,
          st: Stamp) -> None:
    remove(hub, fx, session, st, cmd.reason)


def remove(hub: Hub[Any], fx: Effects[Any], session: Session[Any], st: Stamp,
           reason: str | None, *, said: str | None = None) -> None:
    """The session ends: its rooms are told, its private lines and mutes go."""
    hub.unbind(fx, session)
    hub.history.inboxes.drop(session)
    hub.mod.ended(session.sid)  # its mutes wait for the person's return (15.4)
    held, rooms = hub.state.remove(session)
    if held:
        fx.ops.append(Released(session.sid))
    for room, gone in rooms:
        notice_id, _ = st.next_id()
        hub.broadcast(fx, room, p.Left(session.name, room.name,
                                       said or f"{session.name} left", notice_id, st.time,
                                       reason))
        if gone:
            hub.history.forget(room.key)
        fx.note = f"{session.name} left {room.name}" + (f" ({reason})" if reason else "")
        fx.about = ("leave", None, session.name, room.name)


def move(hub: Hub[Any], fx: Effects[Any], session: Session[Any], cmd: MoveCmd, st: Stamp, *,
         said: str | None = None) -> None:
    old, new = hub.state.rooms[session.room], hub.state.room(cmd.room)
    if old is new:
        return
    peer = session.peer
    hub.exit_room(fx, session, old)
    left_id, _ = st.next_id()
    hub.broadcast(fx, old, p.Left(session.name, old.name,
                                  said or f"{session.name} left for {new.name}", left_id,
                                  st.time))
    joined_id, key = st.next_id()
    hub.enter_room(fx, session, new, key)
    if peer is not None:
        hub.reply(fx, peer, p.WhoList(new.name, new.users(), opers=new.opers()))
        if topic := hub.topic_of(new):
            hub.reply(fx, peer, p.Topic(new.name, topic))
        hub.send_recent(fx, peer, new)
    hub.broadcast(fx, new, p.Joined(session.name, new.name,
                                    f"{session.name} joined", joined_id, st.time))
    fx.note = f"{session.name} moved from {old.name} to {new.name}"
    fx.about = ("move", None, session.name, new.name)


def rename(hub: Hub[Any], fx: Effects[Any], session: Session[Any], cmd: RenameCmd,
           st: Stamp) -> None:
    try:
        hub.state.check_free(cmd.name, session)
        hub.mod.check_name(cmd.name, st.now)  # banned meanwhile: the log decides
    except ProtocolError as exc:
        hub.answer(fx, cmd.origin, p.error_of(exc))
        return
    old = session.name
    hub.state.rename(session, cmd.name)
    hub.mod.renamed(session.sid, cmd.name)  # a mute follows the person (15.4)
    room = hub.state.rooms[session.room]
    notice_id, _ = st.next_id()
    hub.broadcast(fx, room, p.Renamed(cmd.name, old, room.name,
                                      f"{old} is now known as {cmd.name}", notice_id, st.time))
    fx.note = f"{old} is now known as {cmd.name}"
    fx.about = ("rename", None, cmd.name, None)
