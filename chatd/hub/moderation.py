"""Operators' lines (PROTOCOL.txt 15): checked when they arrive, carried out in log
order by the `apply_*` handlers, each leaving an audit line (`Effects.audit`: who, what,
whom, why; never a password). The records themselves (bans, mutes, topics, operator
credentials) are chatd.moderation's `Moderation`, which the store and the admission
limits read too; the hub holds one as `hub.mod` and changes it only here and when a
session joins, is renamed or ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatd import protocol as p
from chatd.commands import BanCmd, KickCmd, MuteCmd, OperCmd, TopicCmd, UnbanCmd
from chatd.effects import Close, Effects, WrongPassword
from chatd.hub import apply, lifecycle
from chatd.hub.base import Stamp
from chatd.hub.state import Room, Session
from chatd.moderation import BanRecord, TopicRecord, ban_error, ban_network
from chatd.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from chatd.hub.core import Core as Hub


# ---------------------------------------------------------------------- lines


def _require_oper(session: Session[Any]) -> None:
    if not session.oper:
        raise ProtocolError(ErrorCode.NOT_OPERATOR,
                            "only operators may do that (/oper NAME PASSWORD)")


# ---------------------------------------------------------------------- lines


def oper(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Oper
         ) -> None:
    if not hub.credentials.check(event.name, event.password):
        fx.ops.append(WrongPassword(peer, oper=True))  # the shell makes the address wait
        raise ProtocolError(ErrorCode.OPER_FAILED, "wrong operator name or password")
    if session.oper:
        hub.reply(fx, peer, p.Notice("you are an operator already"))
        return
    fx.publish(OperCmd(hub.origin_of(session, peer), session.sid, p.normalize_name(event.name)))


def set_topic(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
              event: p.SetTopic) -> None:
    name = p.normalize_room(event.room) if event.room is not None else None
    if event.topic is None:  # a question anyone may ask, of any room (17.6)
        if name is None:
            room = hub.room_of(session, None)
        else:
            room = hub.state.rooms.get(p.name_key(name)) or Room(p.name_key(name), name)
        hub.reply(fx, peer, p.Topic(room.name, hub.topic_of(room)))
        return
    _require_oper(session)
    if name is None:
        hub.room_of(session, None)  # in some room, or not_in_room
    fx.publish(TopicCmd(hub.origin_of(session, peer), session.sid, event.topic, name))


def kick(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Kick
         ) -> None:
    _require_oper(session)
    target = hub.state.user(event.name)
    where = None
    if event.room:  # from one room: the one named, or the operator's current room (17.12)
        where = (p.name_key(p.normalize_room(event.where)) if event.where is not None
                 else hub.room_of(session, None).key)
        _check_in(hub, target, where)
    fx.publish(KickCmd(hub.origin_of(session, peer), target.sid, session.name, event.reason,
                       event.room, where))


def _check_in(hub: Hub[Any], target: Session[Any], key: str) -> None:
    """A room kick needs the target in the room, and somewhere to go after."""
    if key not in target.rooms:
        raise ProtocolError(ErrorCode.NOT_IN_ROOM, f"{target.name} is not in that room")
    if list(target.rooms) == [p.name_key(p.DEFAULT_ROOM)]:
        raise ProtocolError(ErrorCode.ALREADY_IN_ROOM, f"{target.name} is in "
                            f"{p.DEFAULT_ROOM} alone already: kick them from the server "
                            "instead")


def ban(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
        event: p.Ban | p.Unban) -> None:
    _require_oper(session)
    if event.name is not None:
        label = p.normalize_name(event.name)
        kind, key = "name", p.name_key(label)
    else:
        kind, key = "address", ban_network(event.address or "")
        label = key
    origin = hub.origin_of(session, peer)
    if isinstance(event, p.Ban):
        fx.publish(BanCmd(origin, kind, key, label, event.seconds or 0, session.name,
                          event.reason))
    elif (kind, key) not in hub.mod.bans:
        raise ProtocolError(ErrorCode.NO_SUCH_BAN, f"{label} is not banned")
    else:
        fx.publish(UnbanCmd(origin, kind, key, session.name))


def bans(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Bans
         ) -> None:
    _require_oper(session)
    hub.costly_reply(fx, peer, p.BanList(hub.mod.listed(hub.now)))


def mute(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Mute
         ) -> None:
    _require_oper(session)
    target = hub.state.user(event.name)  # a person, never a name nobody has (15.4)
    room_key = (p.name_key(p.normalize_room(event.room)) if event.room is not None
                else hub.room_of(session, None).key)  # the operator's current room (17.12)
    fx.publish(MuteCmd(hub.origin_of(session, peer), room_key, target.name, session.name,
                       event.reason, True, target.sid))


def unmute(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Unmute
           ) -> None:
    _require_oper(session)
    in_room = p.name_key(p.normalize_room(event.room)) if event.room else None
    if not hub.mod.is_muted(event.name, in_room):
        raise ProtocolError(ErrorCode.NOT_MUTED, f"{event.name[:40]} is not muted")
    fx.publish(MuteCmd(hub.origin_of(session, peer), in_room, p.normalize_name(event.name),
                       session.name, "", False))


# ---------------------------------------------------------------------- commands (15.6)


def apply_oper(hub: Hub[Any], fx: Effects[Any], cmd: OperCmd, st: Stamp) -> None:
    session = hub.state.sessions.get(cmd.sid)
    if session is None:
        return
    for device in hub.state.devices_of(session):  # the user's, on every device (18.4)
        hub.state.set_oper(device, True)
    notice_id, _ = st.next_id()
    said = f"{session.name} is now an operator"
    hub.to_company(fx, session, lambda room: p.Opered(session.name, room.name, said,
                                                      notice_id, st.time))
    fx.audit = (f"{session.name} ({hub.tag(cmd.origin)}) became an operator "
                f"(as {cmd.as_name})")


def apply_kick(hub: Hub[Any], fx: Effects[Any], cmd: KickCmd, st: Stamp) -> None:
    target = hub.state.sessions.get(cmd.sid)
    if target is None:
        hub.answer(fx, cmd.origin, p.Error(ErrorCode.NO_SUCH_USER, "that user has left"))
        return
    why = f" ({cmd.reason})" if cmd.reason else ""
    name = target.name
    if cmd.room:
        key = cmd.where if cmd.where is not None else target.room
        try:  # the log decides: they may have parted meanwhile
            _check_in(hub, target, key)
        except ProtocolError as exc:
            hub.answer(fx, cmd.origin, p.error_of(exc))
            return
        old = hub.state.rooms[key]
        alone = len(target.rooms) == 1  # nowhere left: lobby, as before several rooms
        for device in hub.state.devices_of(target):  # a notice: the code kicked closes
            if device.peer is not None:
                hub.reply(fx, device.peer, p.Notice(
                    f"you were removed from {old.name} by {cmd.by}{why}"
                    + (f"; you are in {p.DEFAULT_ROOM} now" if alone else "")))
        apply.leave_room(hub, fx, target, old, st,
                         said=f"{name} was removed from {old.name} by {cmd.by}{why}")
        if alone:
            apply.enter(hub, fx, target, hub.state.room(p.DEFAULT_ROOM), st)
        where = f"from {old.name}"
    else:
        for device in list(hub.state.devices_of(target)):  # every device (18.4)
            _end_session(hub, fx, device, st, told=p.Error(
                ErrorCode.KICKED, f"you were removed from the server by {cmd.by}{why}"),
                         said=f"{name} was removed by {cmd.by}{why}")
        where = "from the server"
    hub.answer(fx, cmd.origin, p.Notice(f"{name} was removed {where}"))
    fx.audit = f"{cmd.by} kicked {name} {where} (reason: {cmd.reason or 'none'})"


def _end_session(hub: Hub[Any], fx: Effects[Any], target: Session[Any], st: Stamp, *,
                 told: p.Error, said: str) -> None:
    """An operator ends a session: it is told why, the room sees why, and it cannot
    be resumed (it is gone)."""
    peer = target.peer
    if peer is not None:
        hub.reply(fx, peer, told)
    lifecycle.remove(hub, fx, target, st, None, said=said)
    if peer is not None:
        fx.ops.append(Close(peer))


def apply_ban(hub: Hub[Any], fx: Effects[Any], cmd: BanCmd, st: Stamp) -> None:
    record = BanRecord(cmd.kind, cmd.key, cmd.label,
                       st.now + cmd.seconds if cmd.seconds else 0, cmd.by, cmd.reason, st.now)
    hub.mod.ban(record)
    for ended in hub.mod.expire(st.now):  # bans past their end go from the tables
        if hub.mod_sink is not None:
            hub.mod_sink.drop_ban(ended.kind, ended.key)
    if hub.mod_sink is not None:
        hub.mod_sink.save_ban(record)
    sessions = hub.state.sessions.values()
    if cmd.kind == "name":
        hit = [s for s in sessions if p.name_key(s.name) == cmd.key]
    else:
        hit = [s for s in sessions
               if s.address and hub.mod.address_ban(s.address, st.now) is record]
        # a user with a device at a banned address loses every device (18.4)
        hit = list({id(d): d for s in hit for d in hub.state.devices_of(s)}.values())
    for target in hit:
        _end_session(hub, fx, target, st, told=ban_error(record, target.name),
                     said=f"{target.name} was banned by {cmd.by}"
                     + (f" ({cmd.reason})" if cmd.reason else ""))
    gone = ", ".join(dict.fromkeys(s.name for s in hit)) or "nobody"  # devices: once
    hub.answer(fx, cmd.origin, p.Notice(
        f"{cmd.label} is banned {record.describe()}; removed: {gone}"))
    fx.audit = f"{cmd.by} banned {cmd.kind} {cmd.label} {record.describe()}; removed: {gone}"


def apply_unban(hub: Hub[Any], fx: Effects[Any], cmd: UnbanCmd, st: Stamp) -> None:
    record = hub.mod.unban(cmd.kind, cmd.key)
    if hub.mod_sink is not None:
        hub.mod_sink.drop_ban(cmd.kind, cmd.key)
    label = record.label if record is not None else cmd.key
    hub.answer(fx, cmd.origin, p.Notice(f"the ban of {label} is lifted"))
    fx.audit = f"{cmd.by} lifted the ban of {cmd.kind} {label}"


def apply_mute(hub: Hub[Any], fx: Effects[Any], cmd: MuteCmd, st: Stamp) -> None:
    target = hub.state.sessions.get(cmd.sid) if cmd.sid else hub.state.named(cmd.name)
    room = hub.state.rooms.get(cmd.room) if cmd.room is not None else None
    where = room.name if room is not None else (cmd.room or "every room")
    why = f" ({cmd.reason})" if cmd.reason else ""
    if cmd.on:
        assert cmd.room is not None
        if target is None:  # gone meanwhile: nobody else is muted in their place
            hub.answer(fx, cmd.origin, p.Error(ErrorCode.NO_SUCH_USER, f"{cmd.name} has left"))
            return
        for device in hub.state.devices_of(target):  # the user's, every device (18.4)
            hub.mod.mute(cmd.room, device.sid, name=target.name, address=target.address,
                         by=cmd.by, reason=cmd.reason)
        told, said = f"you were muted in {where} by {cmd.by}{why}", f"{cmd.name} is muted"
        fx.audit = f"{cmd.by} muted {cmd.name} in {where} (reason: {cmd.reason or 'none'})"
    else:
        hub.mod.unmute(cmd.room, cmd.name)
        told, said = f"{cmd.by} lifted your mute in {where}", f"{cmd.name} is not muted"
        fx.audit = f"{cmd.by} unmuted {cmd.name} in {where}"
    for device in hub.state.devices_of(target) if target is not None else ():
        if device.peer is not None:
            hub.reply(fx, device.peer, p.Notice(told))
    hub.answer(fx, cmd.origin, p.Notice(f"{said} in {where}"))


def apply_topic(hub: Hub[Any], fx: Effects[Any], cmd: TopicCmd, st: Stamp) -> None:
    session = hub.state.sessions.get(cmd.sid)
    if session is None:
        return
    key = p.name_key(cmd.room) if cmd.room is not None else session.room
    if not key:  # parted every room meanwhile
        hub.answer(fx, cmd.origin, p.Error(ErrorCode.NOT_IN_ROOM, "you are not in any room"))
        return
    # Setting it needs no membership (17.12): a room nobody is in keeps it for later.
    room = hub.state.rooms.get(key) or Room(key, cmd.room or key)
    record = TopicRecord(cmd.topic, session.name, st.now) if cmd.topic else None
    if record is not None:
        hub.mod.topics[room.key] = record
    else:
        hub.mod.topics.pop(room.key, None)
    if hub.mod_sink is not None:
        hub.mod_sink.save_topic(room.key, record)
    notice_id, _ = st.next_id()
    said = (f"{session.name} set the topic: {cmd.topic}" if cmd.topic
            else f"{session.name} cleared the topic")
    hub.broadcast(fx, room, p.Topic(room.name, cmd.topic, session.name, said, notice_id,
                                    st.time))
    fx.audit = f"{session.name} set the topic of {room.name} to {cmd.topic!r}"
