"""A session's life, in log order, on every node alike (chatd.bus, chatd.cluster): joined
(or a further device of a user online, 18.4), resumed with the lines it missed, held
for resume when its connection breaks, ended; and the heartbeats that end the held
sessions past their grace and the sessions of nodes gone (PROTOCOL.txt 14).

What a session does once in (its lines, its rooms, its name) is chatd.hub.apply's."""

from __future__ import annotations

import bisect
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chatd import protocol as p
from chatd.accounts import Account
from chatd.commands import BEAT_EVERY, BeatCmd, DetachCmd, JoinCmd, LeaveCmd, Origin, ResumeCmd
from chatd.effects import Close, Effects, Released, Settled
from chatd.hub import accounts, markers
from chatd.hub.apply import enter
from chatd.hub.base import Entry, Stamp, id_key
from chatd.hub.state import Session, Status
from chatd.moderation import ban_error

if TYPE_CHECKING:
    from chatd.hub.core import Core as Hub


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
    chosen = accounts.join_name(hub, fx, cmd)  # PROTOCOL.txt 18.1: accounts' names
    if chosen is None:
        return
    name, why, account = chosen
    if account is not None and state.devices.get(account.key):
        _join_device(hub, fx, cmd, account, st)
        return
    room = state.room(cmd.room)
    notice_id, key = st.next_id()
    session: Session[Any] = Session(cmd.sid, name, cmd.text, cmd.token_hash, cmd.origin,
                                    address=cmd.address)
    accounts.joined(hub, session, account, cmd.login_digest)
    state.add(session)
    state.enter(session, room, key)  # its peer, bound below, reads the room from then
    markers.entered(hub, session, room.key)
    mod.joined(session.sid, (cmd.name, name), cmd.address)
    token = hub.tokens.pop(session.sid, "")  # only the joining node holds it
    peer = _attach(hub, fx, session, cmd.origin)
    if peer is not None:
        notice = cmd.notice
        if why:
            notice = f"{notice}; {why}" if notice else why
        users, opers, more = room.listed(hub.config.names_bytes)
        hub.reply(fx, peer, p.Welcome(
            name, room.name, users, token,
            notice=notice, server=hub.config.server_name,
            max_line_bytes=hub.config.max_line_bytes, topic=hub.topic_of(room),
            opers=opers, rooms=(room.name,), max_rooms=hub.config.max_rooms,
            account=account.name if account is not None else "",
            read=markers.marks(hub, session),
            login_token=hub.acc.issued.pop(cmd.origin.cid, ""), more=more))
        hub.send_recent(fx, peer, room)
    hub.broadcast(fx, room, p.Joined(name, room.name, f"{name} joined", notice_id, st.time))
    if peer is not None:  # its held lines go on now, answered after all of the above
        fx.ops.append(Settled(peer, True))
    fx.note = f"{hub.tag(cmd.origin)} {name} joined {room.name}"
    fx.about = ("join", cmd.origin, name, room.name)


def _join_device(hub: Hub[Any], fx: Effects[Any], cmd: JoinCmd, account: Account,
                 st: Stamp) -> None:
    """A further device of a user online (18.4): nobody else is told; it opens in the
    user's rooms, each with its people, topic and last lines, as a join gives, and ends
    with its own connect notice, as a join does (so a client waiting for it to know it
    is in, as after a restart, 10.4, need not know of devices). The connect's room is
    its current one if the user is there; a user in no room joins it."""
    state = hub.state
    first = state.devices[account.key][0]
    notice_id, key = st.next_id()
    session: Session[Any] = Session(cmd.sid, account.name, cmd.text, cmd.token_hash,
                                    cmd.origin, address=cmd.address)
    accounts.joined(hub, session, account, cmd.login_digest)
    session.oper = session.oper or first.oper
    state.add(session)
    rooms = [state.rooms[k] for k in first.rooms]
    for each in rooms:
        state.enter(session, each, key)
    wanted = p.name_key(cmd.room)
    if wanted in session.rooms:
        state.switch(session, wanted)
    elif session.rooms:
        state.switch(session, first.room or next(iter(session.rooms)))
    if mutes := hub.mod.mutes.get(first.sid):  # a mute is the user's (15.4)
        hub.mod.mutes[session.sid] = dict(mutes)
    token = hub.tokens.pop(session.sid, "")
    peer = _attach(hub, fx, session, cmd.origin)
    devices = len(state.devices[account.key])
    fx.note = f"{hub.tag(cmd.origin)} {account.name} joined on a further device ({devices})"
    fx.about = ("join", cmd.origin, account.name, None)
    room = state.rooms.get(session.room)
    if peer is not None:
        users, opers, more = room.listed(hub.config.names_bytes) if room is not None \
            else ((), (), 0)
        hub.reply(fx, peer, p.Welcome(
            account.name, room.name if room is not None else "", users, token,
            notice=cmd.notice,
            server=hub.config.server_name, max_line_bytes=hub.config.max_line_bytes,
            topic=hub.topic_of(room) if room is not None else "",
            opers=opers, rooms=hub.room_names(session),
            max_rooms=hub.config.max_rooms, account=account.name,
            read=markers.marks(hub, session),
            login_token=hub.acc.issued.pop(cmd.origin.cid, ""), more=more))
        for other in rooms:
            if other is not room:
                hub.reply(fx, peer, hub.who_of(other))
                if topic := hub.topic_of(other):
                    hub.reply(fx, peer, p.Topic(other.name, topic))
        for each in rooms:
            hub.send_recent(fx, peer, each)
        if room is not None:  # to it alone: the room saw the user join already
            hub.reply(fx, peer, p.Joined(account.name, room.name, f"{account.name} joined",
                                         notice_id, st.time))
    if room is None:  # the user is in no room: it joins the connect's, on every device
        enter(hub, fx, session, state.room(cmd.room), st)
    if peer is not None:
        fx.ops.append(Settled(peer, True))


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
    # Settled comes last in the caller's effects: the lines the client sent after its
    # connect are handled once the welcome and what follows it are on their way (2.2).
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
    rooms = [hub.state.rooms[key] for key in session.rooms]
    room = hub.state.rooms.get(session.room)
    where = room.name if room is not None else "no room"
    fx.note = f"{hub.tag(cmd.origin)} {session.name} resumed in {where}"
    fx.about = ("resume", cmd.origin, session.name, room.name if room is not None else None)
    if cmd.origin.node == hub.node:
        hub.resumes += 1
    if peer is None:
        return
    users, opers, more = room.listed(hub.config.names_bytes) if room is not None else ((), (), 0)
    hub.reply(fx, peer, p.Welcome(
        session.name, room.name if room is not None else "", users, "", resumed=True,
        server=hub.config.server_name, max_line_bytes=hub.config.max_line_bytes,
        topic=hub.topic_of(room) if room is not None else "",
        opers=opers, rooms=hub.room_names(session),
        max_rooms=hub.config.max_rooms, account=session.name if session.account else "",
        read=markers.marks(hub, session), more=more))
    for other in rooms:  # the others' people and topics, as a join would give (17.9)
        if other is not room:
            hub.reply(fx, peer, hub.who_of(other))
            if topic := hub.topic_of(other):
                hub.reply(fx, peer, p.Topic(other.name, topic))
    seen = id_key(cmd.last_id) if cmd.last_id is not None else (0, 0, 0)
    entries: list[tuple[Entry, str | None]] = []
    for each in rooms:  # every missed line of every room, and the private ones, in order
        start = max(seen, session.since(each.key))
        lines = hub.history.retained(each.key)
        entries += [(e, each.name) for e in
                    lines[bisect.bisect_right(lines, start, key=lambda e: e.key):]]
    entries += [(e, None) for e in session.inbox or () if e.key > seen]
    entries.sort(key=lambda pair: pair[0].key)
    if entries:
        hub.send_paced(fx, peer, session, entries)
    fx.ops.append(Settled(peer, True))


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
    """The session ends: its rooms are told, its private lines and mutes go. One of
    several devices of a user goes quietly (18.4): the user stays."""
    hub.unbind(fx, session)
    hub.history.inboxes.drop(session)
    others = len(hub.state.devices_of(session)) - 1
    if others:
        hub.mod.mutes.pop(session.sid, None)  # the user's other devices keep them
    else:
        hub.mod.ended(session.sid)  # its mutes wait for the person's return (15.4)
    held, rooms = hub.state.remove(session)
    if held:
        fx.ops.append(Released(session.sid))
    if others:
        fx.note = (f"{session.name} left on one device ({others} left)"
                   + (f" ({reason})" if reason else ""))
        fx.about = ("leave", None, session.name, None)
        return
    left = []
    for room, gone in rooms:
        notice_id, _ = st.next_id()
        hub.broadcast(fx, room, p.Left(session.name, room.name,
                                       said or f"{session.name} left", notice_id, st.time,
                                       reason))
        if gone:
            hub.history.forget(room.key)
        left.append(room.name)
    if left:  # one log line naming every room it left (17.8), not only the last
        fx.note = f"{session.name} left {', '.join(left)}" + (f" ({reason})" if reason else "")
        fx.about = ("leave", None, session.name, left[0] if len(left) == 1 else None)
