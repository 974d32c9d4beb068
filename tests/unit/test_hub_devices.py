"""Several devices, one user, in the hub (PROTOCOL.txt 18.4): connections logged in to
one account are one user to the others; its rooms are shared; a line from one device
reaches the others marked "own"; each device resumes on its own; kick, ban and mute
are the user's; the bound of 18.10."""

from __future__ import annotations

import json
import random
from typing import Any

from chatd import protocol as p
from chatd.commands import AccountCmd, Origin
from chatd.hub import Hub, HubConfig, replication
from chatd.protocol import ErrorCode, name_key
from tests.support.hub_world import FakePeer, World, chats, only

HASH = "$scrypt$ln=14,r=8,p=1$" + "A" * 22 + "$" + "B" * 43  # never checked: tokens log in


def _world(**config: Any) -> World:
    w = World(**config)
    w.hub.acc.policy.accounts.add("alice", HASH, w.now)
    return w


def _device(w: World, room: str | None = None, text: bool = False) -> FakePeer:
    """One more device of alice, logged in with a login token (no hash: 18.3)."""
    token, _ = w.hub.acc.policy.tokens.issue(name_key("alice"), w.now)
    return w.join("alice", room=room, text=text, login_token=token)


def _of(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in lines if m["type"] == kind]


def _drain(w: World, *peers: FakePeer) -> None:
    for peer in peers:
        w.take(peer)


def test_a_second_device_is_not_announced_and_opens_in_the_users_rooms() -> None:
    w = _world()
    a1 = _device(w)
    carol = w.join("carol")
    w.send(a1, p.Join("dev"))
    w.say(carol, "before", room="lobby")
    _drain(w, a1, carol)
    a2 = _device(w)
    assert w.take(carol) == [] and w.take(a1) == []  # nobody is told
    got = w.take(a2)
    welcome = only(got, "welcome")
    assert welcome["name"] == "alice" and welcome["account"] == "alice"
    assert welcome["rooms"] == ["lobby", "dev"] and welcome["room"] == "lobby"
    assert welcome["users"] == ["alice", "carol"]  # the user once
    assert [m["room"] for m in _of(got, "who")] == ["dev"]
    assert "before" in chats(got)  # the history a join gives
    assert [m["room"] for m in _of(got, "history_end")] == ["lobby", "dev"]
    assert got[-1]["type"] == "connect" and got[-1]["room"] == "lobby"  # its own, last
    w.send(carol, p.Who())
    assert only(w.take(carol), "who")["users"] == ["alice", "carol"]
    w.send(carol, p.Whois("alice"))
    assert only(w.take(carol), "whois")["rooms"] == ["dev", "lobby"]
    w.send(carol, p.Rooms())
    assert only(w.take(carol), "rooms")["rooms"] == [
        {"room": "dev", "users": 1}, {"room": "lobby", "users": 2}]
    w.send(carol, p.Who(all=True))
    assert "more" not in only(w.take(carol), "who")


def test_a_line_from_one_device_reaches_the_others_marked_own() -> None:
    w = _world()
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    _drain(w, a1, a2, carol)
    w.say(a1, "hello", ref="r1")
    mine = w.take(a1)
    assert [m["type"] for m in mine] == ["ack"]  # the sender: its ack, as today
    other = only(w.take(a2), "message")
    seen = only(w.take(carol), "message")
    assert other["own"] is True and other["id"] == mine[0]["id"] == seen["id"]
    assert "own" not in seen and other["message"] == "hello"


def test_private_lines_reach_every_device_and_what_one_sends_the_others() -> None:
    w = _world()
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    _drain(w, a1, a2, carol)
    w.say(carol, "psst", to="alice")
    for device in (a1, a2):
        line = only(w.take(device), "message")
        assert (line["message"], line["to"], line.get("own")) == ("psst", "alice", None)
    w.say(a2, "back", to="carol", ref="r2")
    assert only(w.take(carol), "message")["message"] == "back"
    assert _of(w.take(a2), "ack")
    copy = only(w.take(a1), "message")
    assert (copy["message"], copy["to"], copy["own"], copy["name"]) == (
        "back", "carol", True, "alice")


def test_join_and_part_from_one_device_apply_to_the_user_and_the_current_room_is_each_own(
        ) -> None:
    w = _world()
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol", room="dev")
    _drain(w, a1, a2, carol)
    w.send(a1, p.Join("dev"))
    assert len(_of(w.take(carol), "connect")) == 1
    got = w.take(a2)
    assert only(got, "who")["users"] == ["carol", "alice"]
    assert only(got, "connect")["name"] == "alice"
    one, two = w.hub.state.devices[name_key("alice")]
    assert (one.room, two.room) == ("dev", "lobby")  # a2 still talks in lobby
    w.say(a2, "where")
    assert w.take(carol) == []  # lobby's line, not dev's
    w.send(a2, p.Part("dev"))
    assert only(w.take(a1), "disconnect")["part"] is True
    assert len(_of(w.take(carol), "disconnect")) == 1
    assert list(one.rooms) == list(two.rooms) == ["lobby"]


def test_the_user_leaves_when_its_last_device_goes() -> None:
    w = _world(resume_grace=0)
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    _drain(w, a1, a2, carol)
    w.send(a1, p.Disconnect())
    assert w.take(carol) == [] and w.take(a2) == []
    assert w.hub.state.named("alice") is not None
    w.lost(a2)
    assert only(w.take(carol), "disconnect")["name"] == "alice"
    assert w.hub.state.named("alice") is None and not w.hub.state.devices


def test_a_held_device_resumes_on_its_own_and_nobody_is_told() -> None:
    w = _world()
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    token = only(w.take(a1), "welcome")["resume"]
    _drain(w, a2, carol)
    w.lost(a1)
    w.say(a2, "while away")
    w.say(carol, "hi alice")
    back = w.join("alice", resume=token)
    got = w.take(back)
    assert only(got, "welcome")["resumed"] is True
    missed = _of(got, "message")
    assert [(m["message"], m.get("own")) for m in missed] == [
        ("while away", True), ("hi alice", None)]
    assert [m["type"] for m in w.take(carol)] == ["message"]  # no leave, no join
    assert len(w.hub.state.devices[name_key("alice")]) == 2


def test_the_bound_of_devices_and_a_held_one_giving_way() -> None:
    w = _world(max_devices=2)
    a1, a2 = _device(w), _device(w)
    a3 = _device(w)
    assert only(w.take(a3), "error")["code"] == ErrorCode.TOO_MANY_DEVICES
    assert w.hub.state.status(a3) is None  # unjoined: it may try again
    w.lost(a1)  # held for resume: at the bound, a new login takes its place
    a4 = _device(w)
    assert only(w.take(a4), "welcome")["name"] == "alice"
    assert [s.status.value for s in w.hub.state.devices[name_key("alice")]] == [
        "attached", "attached"]
    assert a2.cid in w.hub.state.local


def test_kick_removes_every_device_and_the_room_sees_one_leave() -> None:
    w = _world()
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    w.hub.state.sessions[w.hub.state.local[carol.cid].sid].oper = True
    _drain(w, a1, a2, carol)
    w.send(carol, p.Kick("alice", "spam"))
    for device in (a1, a2):
        assert only(w.take(device), "error")["code"] == ErrorCode.KICKED
        assert device in w.closed
    assert len(_of(w.take(carol), "disconnect")) == 1
    assert w.hub.state.named("alice") is None


def test_a_ban_of_an_address_one_device_is_at_removes_every_device() -> None:
    w = _world()
    a1 = _device(w)
    w.hub.state.local[a1.cid].address = "192.0.2.7"
    a2 = _device(w)
    carol = w.join("carol")
    w.hub.state.local[carol.cid].oper = True
    _drain(w, a1, a2, carol)
    w.send(carol, p.Ban(address="192.0.2.7"))
    assert a1 in w.closed and a2 in w.closed
    assert len(_of(w.take(carol), "disconnect")) == 1


def test_a_mute_is_the_users_on_every_device() -> None:
    w = _world()
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    w.hub.state.local[carol.cid].oper = True
    w.send(carol, p.Mute("alice"))
    _drain(w, a1, carol)
    w.say(a2, "can I?", ref="m")
    assert only(w.take(a2), "error")["code"] == ErrorCode.MUTED
    a3 = _device(w)  # a device arriving later is muted too
    w.say(a3, "and now?", ref="n")
    assert only(w.take(a3), "error")["code"] == ErrorCode.MUTED
    assert w.take(carol) == []


def test_a_logged_in_user_cannot_nick_and_an_account_rename_renames_every_device() -> None:
    w = _world()
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    _drain(w, a1, a2, carol)
    w.send(a2, p.Nick("alicia"))
    assert only(w.take(a2), "error")["code"] == ErrorCode.ACCOUNT_NAME
    w.hub.state.local[carol.cid].oper = True
    w.send(carol, p.AccountAdmin("alice", rename="alicia"))
    assert len(_of(w.take(carol), "nick")) == 1
    assert {s.name for s in w.hub.state.sessions.values()} == {"alicia", "carol"}
    w.say(a1, "renamed")
    assert only(w.take(a2), "message")["own"] is True


def test_dropping_the_account_keeps_one_device_as_a_guest_and_closes_the_others() -> None:
    w = _world()
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    w.hub.state.local[carol.cid].oper = True
    _drain(w, a1, a2, carol)
    w.send(carol, p.AccountAdmin("alice", drop=True))
    assert only(w.take(a1), "error")["code"] == ErrorCode.LOGGED_OUT and a1 in w.closed
    assert only(w.take(a2), "account")["event"] == "dropped"
    assert _of(w.take(carol), "disconnect") == []  # the user stays, on a2
    stays = w.hub.state.local[a2.cid]
    assert stays.account == "" and w.hub.state.named("alice") is stays


def test_a_snapshot_keeps_the_devices_of_a_user() -> None:
    w = _world()
    _device(w)
    _device(w)
    w.join("carol")
    snap = json.loads(json.dumps(replication.snapshot(w.hub)))
    copy: Hub[FakePeer] = Hub(HubConfig(), node="n2")
    replication.restore_dict(copy, snap)
    assert len(copy.state.devices[name_key("alice")]) == 2
    assert copy.state.rooms["lobby"].listed(1 << 20)[0] == ("alice", "carol")
    assert copy.state.rooms["lobby"].people == 2


def test_a_text_mode_device_reads_a_room_joined_elsewhere_prefixed() -> None:
    """17.10 with 18.4: a room joined on another device is not the text-mode device's
    current room: it reads it prefixed, and its lines still go where they went."""
    w = _world()
    a1 = _device(w)
    nc = _device(w, text=True)
    carol = w.join("carol", room="dev")
    _drain(w, a1, carol)
    w.take_text(nc)
    w.send(a1, p.Join("dev"))
    w.say(carol, "hi all")
    shown = w.take_text(nc)
    assert "[dev] * alice joined" in shown and "[dev] <carol> hi all" in shown, shown
    w.take(a1)
    w.line(nc, b"from nc")
    line = only(w.take(a1), "message")
    assert (line["message"], line["room"], line["own"]) == ("from nc", "lobby", True)
    assert w.hub.state.local[nc.cid].room == "lobby"


def test_a_further_device_of_a_user_in_no_room_joins_the_connects_room_for_the_user(
        ) -> None:
    w = _world()
    a1 = _device(w)
    carol = w.join("carol")
    w.send(a1, p.Part())
    _drain(w, a1, carol)
    a2 = _device(w)
    assert only(w.take(carol), "connect")["name"] == "alice"
    assert only(w.take(a1), "who")["room"] == "lobby"
    got = w.take(a2)
    assert "rooms" not in only(got, "welcome") and only(got, "connect")["room"] == "lobby"
    one, two = w.hub.state.devices[name_key("alice")]
    assert list(one.rooms) == list(two.rooms) == ["lobby"] and two.room == "lobby"


def test_an_unregister_keeps_the_device_that_asked_and_closes_the_others() -> None:
    """18.7: the device that unregistered stays, as a guest; the others get logged_out."""
    w = _world()
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    _drain(w, a1, a2, carol)
    asking = w.hub.state.local[a2.cid]
    w.bus.publish(AccountCmd(Origin("n1", a2.cid), "drop", name_key("alice"),
                             sid=asking.sid))
    assert only(w.take(a1), "error")["code"] == ErrorCode.LOGGED_OUT and a1 in w.closed
    assert only(w.take(a2), "account")["event"] == "unregistered"
    assert w.take(carol) == []
    assert asking.account == "" and w.hub.state.named("alice") is asking
    assert not w.hub.state.devices and w.hub.state.rooms["lobby"].extra == 0


def _check_invariants(w: World) -> None:
    state = w.hub.state
    for key, devices in state.devices.items():
        assert devices and all(d.account == key for d in devices)
        assert state.names[key] is devices[0]
        assert all(list(d.rooms) == list(devices[0].rooms) for d in devices), key
    for room in state.rooms.values():
        people = {s.account or s.sid for s in room.members.values()}
        assert room.extra == len(room.members) - len(people), room.key
        assert len(room.listed(1 << 20)[0]) == room.people
    for session in state.sessions.values():
        assert state.names[name_key(session.name)] in state.devices_of(session)


def test_devices_coming_and_going_keep_the_states_invariants() -> None:
    """Random joins, parts, leaves, losses and resumes of alice's devices (a seeded
    walk): one name entry, shared rooms, and rooms counting the user once, throughout."""
    rng = random.Random(26)
    w = _world(max_devices=3)
    w.join("carol")
    live: list[FakePeer] = []
    tokens: list[str] = []
    most = 0
    for _ in range(400):
        step = rng.choice(["device", "device", "join", "part", "quit", "lose", "resume"])
        if step == "device":
            peer = _device(w, room=rng.choice(["lobby", "dev"]))
            if w.hub.state.status(peer) is not None:
                live.append(peer)
                tokens += [m["resume"] for m in w.take(peer) if m["type"] == "welcome"]
        elif step in ("join", "part") and live:
            room = rng.choice(["dev", "ops", "lobby"])
            w.send(rng.choice(live), p.Join(room) if step == "join" else p.Part(room))
        elif step == "quit" and live:
            w.send(live.pop(rng.randrange(len(live))), p.Disconnect())
        elif step == "lose" and live:
            w.lost(live.pop(rng.randrange(len(live))))
        elif step == "resume" and tokens:
            peer = w.join("alice", resume=tokens.pop(rng.randrange(len(tokens))))
            if w.hub.state.status(peer) is not None:
                live.append(peer)
        _check_invariants(w)
        most = max(most, len(w.hub.state.devices.get("alice", ())))
    assert most == 3  # the walk met the bound


def test_a_room_kick_takes_the_user_out_on_every_device_and_oper_is_the_users() -> None:
    w = _world(opers=(("root", "secret"),))
    a1, a2 = _device(w), _device(w)
    carol = w.join("carol")
    w.send(a1, p.Join("dev"))
    w.send(carol, p.Join("dev"))
    w.send(carol, p.Oper("root", "secret"))
    _drain(w, a1, a2, carol)
    w.send(carol, p.Kick("alice", room=True, where="dev"))
    for device in (a1, a2):
        got = w.take(device)
        assert _of(got, "notice") and only(got, "disconnect")["part"] is True
    assert len(_of(w.take(carol), "disconnect")) == 1
    assert all(list(d.rooms) == ["lobby"] for d in w.hub.state.devices[name_key("alice")])
    w.send(a2, p.Oper("root", "secret"))
    assert all(d.oper for d in w.hub.state.devices[name_key("alice")])
    assert len(_of(w.take(carol), "oper")) == 1
