"""What the hub does with each client line (`EVENTS`) and each command of the log
(`COMMANDS`): tables from type to handler, each covering its union (chatd.protocol's
`Event`, chatd.commands' `Command`: tests/unit/test_hub_handlers.py checks it).

A client line is answered at once where local state can answer it (errors, who, rooms,
history); every change of state becomes a command for the log (chatd.hub.apply,
chatd.hub.lifecycle, chatd.hub.account_apply and chatd.hub.moderation carry them out, in
log order, on every node).
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import hmac
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeAlias

from chatd import protocol as p
from chatd.accounts import Account
from chatd.commands import (
    AccountCmd,
    BanCmd,
    BeatCmd,
    DetachCmd,
    JoinCmd,
    JoinRoomCmd,
    KickCmd,
    LeaveCmd,
    MuteCmd,
    OperCmd,
    Origin,
    PartCmd,
    ReadCmd,
    RenameCmd,
    ResumeCmd,
    SayCmd,
    SwitchCmd,
    TopicCmd,
    UnbanCmd,
)
from chatd.effects import Close, Effects
from chatd.hub import account_apply, accounts, apply, lifecycle, markers, moderation
from chatd.hub.base import Stamp, id_key
from chatd.hub.state import Room, Session, names_cost
from chatd.moderation import ban_error
from chatd.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from chatd.hub.core import Core as Hub

# (hub, effects, peer, the line, the peer's address)
EventHandler: TypeAlias = Callable[["Hub[Any]", Effects[Any], Any, Any, str], None]
JoinedHandler: TypeAlias = Callable[["Hub[Any]", Effects[Any], Any, Session[Any], Any], None]
CommandHandler: TypeAlias = Callable[["Hub[Any]", Effects[Any], Any, Stamp], None]

SINK_FULL = ("the history database is not accepting lines; your line was not sent, "
             "try again shortly")
ROOMS_LISTED = 200  # rooms in an answer to rooms or who all (4.7, 4.8)


def joined(handler: JoinedHandler) -> EventHandler:
    """A line only a joined connection may send."""
    def checked(hub: Hub[Any], fx: Effects[Any], peer: Any, event: Any, address: str) -> None:
        session = hub.state.local.get(peer.cid)
        if session is None:
            raise ProtocolError(ErrorCode.NOT_JOINED, 'send {"type":"connect"} first')
        handler(hub, fx, peer, session, event)
    return checked


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# ---------------------------------------------------------------------- before joining


def connect(hub: Hub[Any], fx: Effects[Any], peer: Any, event: p.Connect, address: str,
            *, account: Account | None = None, digest: str = "") -> None:
    """`account`: the login's password verified (chatd.hub.accounts.hashed), `digest`
    its device's login token's."""
    if hub.state.status(peer) is not None:
        raise ProtocolError(ErrorCode.ALREADY_JOINED, "this connection has joined already")
    name = p.normalize_name(event.name)
    room = p.normalize_room(event.room) if event.room is not None else p.DEFAULT_ROOM
    if event.last_id is not None:
        id_key(event.last_id)
    ban = hub.mod.name_ban(name, hub.now) or (
        hub.mod.address_ban(address, hub.now) if address else None)
    if ban is not None:  # PROTOCOL.txt 15.3: told until when, then closed
        hub.reply(fx, peer, ban_error(ban, name))
        fx.ops.append(Close(peer))
        return
    if account is None and not (event.resume and _check_token(hub, event.resume)):
        verdict = accounts.login(hub, fx, peer, event, name=name, address=address)
        if verdict is False:
            return  # a hash or a text-mode password prompt first (PROTOCOL.txt 18.3)
        if verdict is not True:
            account, digest = verdict  # a login token
    hub.serial += 1
    sid = f"{hub.node}-{hub.serial}"
    secret = secrets.token_urlsafe(18)
    origin = Origin(hub.node, peer.cid)
    join = JoinCmd(origin, sid, name, room, peer.text, hash_token(secret), address=address,
                   account=account.key if account is not None else "", login_digest=digest)
    hub.state.expect(peer)
    hub.tokens[sid] = f"{sid}.{secret}"
    if event.resume:
        old = _check_token(hub, event.resume)
        if old is None:
            join = replace(
                join, notice="could not resume: the session is unknown or has expired")
        else:
            fx.publish(ResumeCmd(origin, old.sid, event.last_id, join))
            return
    fx.publish(join)


def _check_token(hub: Hub[Any], token: str) -> Session[Any] | None:
    sid, _, secret = token.rpartition(".")
    session = hub.state.sessions.get(sid)
    if session is None or not hmac.compare_digest(session.token_hash, hash_token(secret)):
        return None
    return session


def ping(hub: Hub[Any], fx: Effects[Any], peer: Any, event: p.Ping | p.Pong, address: str
         ) -> None:
    if isinstance(event, p.Ping):
        hub.reply(fx, peer, p.ServerPong())


def help_(hub: Hub[Any], fx: Effects[Any], peer: Any, event: p.Help, address: str) -> None:
    session = hub.state.local.get(peer.cid)
    hub.reply(fx, peer, p.help_info(session is not None and session.oper))


def disconnect(hub: Hub[Any], fx: Effects[Any], peer: Any, event: p.Disconnect, address: str
               ) -> None:
    session = hub.state.local.get(peer.cid)
    if session is not None:
        hub.unbind(fx, session)
        fx.publish(LeaveCmd(session.sid))
        if peer.text:  # a person at nc
            hub.reply(fx, peer, p.farewell(session.name))
    fx.ops.append(Close(peer))


# ---------------------------------------------------------------------- joined


def say(hub: Hub[Any], fx: Effects[Any], peer: Any, event: p.Message, address: str) -> None:
    session = hub.state.local.get(peer.cid)
    if session is None:
        raise ProtocolError(ErrorCode.NOT_JOINED, 'send {"type":"connect"} first')
    room_name = None
    if event.to is None:
        if event.room is not None:
            try:
                room_name = p.normalize_room(event.room)
            except ProtocolError as exc:
                raise ProtocolError(exc.code, exc.message, event.ref) from None
        if hub.mod.mutes and _muted(hub, fx, peer, session, event, room_name=room_name):
            return
        if hub.history.keeps and not hub.history.sink.accepting():  # PROTOCOL.txt 8.7
            hub.reply(fx, peer, p.Error(ErrorCode.UNAVAILABLE, SINK_FULL, event.ref))
            return
    # Which room is decided when the log applies it: after a join or a switch sent
    # before it, on every node (17.5).
    fx.ops.append(SayCmd(hub.origin_of(session, peer), session.sid, event.message, event.to,
                         event.ref, room_name))


def _muted(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
           event: p.Message, *, room_name: str | None) -> bool:
    """A muted sender's room line is refused; others see nothing (PROTOCOL.txt 15.4)."""
    key = p.name_key(room_name) if room_name is not None else session.room
    mute = hub.mod.muted(key, session.sid)
    if mute is None:
        return False
    room = hub.state.rooms[key].name if key in hub.state.rooms else room_name or key
    hub.reply(fx, peer, p.Error(
        ErrorCode.MUTED, f"you are muted in {room} by {mute.by}"
        + (f" ({mute.reason})" if mute.reason else "") + "; your line was not sent",
        event.ref))
    return True


# Joins, parts and switches are checked when the log applies them (chatd.hub.apply): a
# line sent right after another one changing the rooms must find it done (17.13).


def join_room(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
              event: p.Join) -> None:
    fx.publish(JoinRoomCmd(hub.origin_of(session, peer), session.sid,
                           p.normalize_room(event.room)))


def part(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Part
         ) -> None:
    room = p.normalize_room(event.room) if event.room is not None else None
    fx.publish(PartCmd(hub.origin_of(session, peer), session.sid, room))


def switch(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
           event: p.Switch) -> None:
    fx.publish(SwitchCmd(hub.origin_of(session, peer), session.sid,
                         p.normalize_room(event.room)))


def nick(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
         event: p.Nick) -> None:
    if not event.name.strip():
        raise ProtocolError(ErrorCode.BAD_NAME, "name is blank")
    name = p.normalize_name(event.name)
    if name == session.name:
        raise ProtocolError(ErrorCode.SAME_NAME, f"you are {name} already")
    hub.state.check_free(name, session)
    hub.mod.check_name(name, hub.now)
    accounts.check_nick(hub, session, name)
    fx.publish(RenameCmd(hub.origin_of(session, peer), session.sid, name))


def _by_name(room: Room[Any]) -> tuple[str, str]:
    # Keys are look-alike skeletons ("room1" -> "roornl"): order by what people read.
    return (room.name.casefold(), room.key)


def who(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Who
        ) -> None:
    rooms = hub.state.rooms
    if not event.all:
        if event.room is None:
            room = hub.room_of(session, None)
        else:  # any room, as who all shows them all (17.6)
            name = p.normalize_room(event.room)
            room = rooms.get(p.name_key(name)) or Room("", name)
        hub.costly_reply(fx, peer, hub.who_of(room))
        return
    # every room by name, up to a bound of names' bytes (PROTOCOL.txt 4.7)
    listed: list[tuple[str, tuple[str, ...]]] = []
    names, budget = 0, hub.config.names_bytes
    for room in heapq.nsmallest(ROOMS_LISTED, rooms.values(), key=_by_name):
        users, _, _ = room.listed(budget)
        if not users:
            break
        listed.append((room.name, users))
        names += len(users)
        budget -= sum(map(names_cost, users))
    total = sum(room.people for room in rooms.values())  # a name in each of its rooms
    opers = tuple(s.name for s in hub.state.sessions.values() if s.oper)
    hub.costly_reply(fx, peer, p.WhoList(None, rooms=tuple(listed), more=total - names,
                                         opers=opers))


def rooms(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Rooms
          ) -> None:
    """The biggest rooms, by name; the rest counted (PROTOCOL.txt 4.8). Choosing them
    is linear in the rooms, so a server with very many costs no sort per request."""
    known = hub.state.rooms
    every = known.values()
    shown = heapq.nlargest(ROOMS_LISTED, every, key=lambda r: r.people)
    current = known[session.room].name if session.room in known else ""
    hub.costly_reply(fx, peer, p.RoomList(tuple((room.name, room.people)
                                                for room in sorted(shown, key=_by_name)),
                                          more=len(every) - len(shown),
                                          yours=hub.room_names(session), current=current))


def whois(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any], event: p.Whois
          ) -> None:
    user = hub.state.user(event.name)
    rooms = hub.room_names(user)  # the first in joining order; the current is theirs (17.9)
    hub.reply(fx, peer, p.WhoisReply(user.name, rooms[0] if rooms else "", user.oper,
                                     tuple(sorted(rooms, key=str.casefold))))


def history(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
            ask: p.History) -> None:
    room = hub.room_of(session, ask.room)
    lines = hub.history.retained(room.key)
    if ask.after is not None:
        start = bisect.bisect_right(lines, id_key(ask.after), key=lambda e: e.key)
        hub.send_page(fx, peer, room, lines[start : start + ask.limit], newest=False,
                      more=start + ask.limit < len(lines))
    else:
        end = (bisect.bisect_left(lines, id_key(ask.before), key=lambda e: e.key)
               if ask.before is not None else len(lines))
        hub.send_page(fx, peer, room, lines[max(0, end - ask.limit) : end], newest=True,
                      more=end - ask.limit > 0)


EVENTS: dict[type[p.Event], EventHandler] = {
    p.Connect: connect,
    p.Ping: ping,
    p.Pong: ping,
    p.Help: help_,
    p.Disconnect: disconnect,
    p.Message: say,
    p.Join: joined(join_room),
    p.Part: joined(part),
    p.Switch: joined(switch),
    p.Nick: joined(nick),
    p.Who: joined(who),
    p.Rooms: joined(rooms),
    p.Whois: joined(whois),
    p.History: joined(history),
    p.Oper: joined(moderation.oper),
    p.SetTopic: joined(moderation.set_topic),
    p.Kick: joined(moderation.kick),
    p.Ban: joined(moderation.ban),
    p.Unban: joined(moderation.ban),
    p.Bans: joined(moderation.bans),
    p.Mute: joined(moderation.mute),
    p.Unmute: joined(moderation.unmute),
    p.Register: accounts.register,
    p.Password: joined(accounts.change),
    p.Unregister: joined(accounts.change),
    p.AccountAdmin: joined(accounts.admin),
    p.Read: joined(markers.read),
    p.Logout: joined(accounts.logout),
}

COMMANDS: dict[type[Any], CommandHandler] = {
    SayCmd: apply.say,
    JoinCmd: lifecycle.join,
    ResumeCmd: lifecycle.resume,
    BeatCmd: account_apply.with_expiry(lifecycle.beat),
    LeaveCmd: apply.of_session(lifecycle.leave),
    DetachCmd: apply.of_session(lifecycle.detach),
    JoinRoomCmd: apply.of_session(apply.join_room),
    PartCmd: apply.of_session(apply.part),
    SwitchCmd: apply.of_session(apply.switch),
    RenameCmd: apply.of_session(apply.rename),
    OperCmd: moderation.apply_oper,
    KickCmd: moderation.apply_kick,
    BanCmd: moderation.apply_ban,
    UnbanCmd: moderation.apply_unban,
    MuteCmd: moderation.apply_mute,
    TopicCmd: moderation.apply_topic,
    AccountCmd: account_apply.applier(apply.rename, lifecycle.remove),
    ReadCmd: markers.apply_read,
}
