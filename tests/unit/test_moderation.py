"""Unit tests of moderation (PROTOCOL.txt 15): operators, kick, ban, mute and topics in the
hub, their lines in the protocol package, and the pure tables of chatd.moderation.

No sockets: the hub runs on a LocalBus with the clock the test sets (tests.unit.test_hub's
World). Addresses are passed as chatd.server passes a connection's IP with its connect.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatd import protocol as p
from chatd.cli import build_parser, config_from, main, opers_from
from chatd.commands import (
    BanCmd,
    KickCmd,
    MuteCmd,
    OperCmd,
    Origin,
    TopicCmd,
    UnbanCmd,
    from_records,
    to_records,
)
from chatd.effects import WrongPassword
from chatd.hub import Effects, Hub, Status, replication
from chatd.moderation import BanRecord, Credentials, Moderation, ban_network, parse_opers
from chatd.protocol import ErrorCode, ProtocolError
from tests.support.hub_world import T0, FakePeer, World, only
from tests.support.replay import Delivery

OPERS = (("alice", "s3cret-A"), ("dora", "s3cret-D"))


class ModWorld(World):
    def __init__(self, **config: Any) -> None:
        super().__init__(opers=OPERS, **config)
        self.addresses: dict[int, str] = {}

    def effects(self, fx: Effects[FakePeer]) -> list[Delivery[FakePeer]]:
        if fx.audit:  # as chatd.server logs it
            self.notes.append("audit: " + fx.audit)
        return super().effects(fx)

    def join_from(self, name: str, address: str, room: str | None = None) -> FakePeer:
        peer = self.peer()
        self.addresses[peer.cid] = address
        self.effects(self.hub.handle(peer, p.Connect(name=name, room=room), address))
        return peer

    def oper(self, peer: FakePeer, name: str = "alice", password: str = "s3cret-A") -> None:
        self.send(peer, p.Oper(name, password))

    def errors(self, peer: FakePeer) -> list[tuple[str, str]]:
        return [(m["code"], m["message"]) for m in self.take(peer) if m["type"] == "error"]


def _cast(w: ModWorld) -> tuple[FakePeer, FakePeer, FakePeer]:
    """alice (operator), troll, bystander carol; inboxes emptied."""
    alice, troll, carol = w.join("alice"), w.join("troll"), w.join("carol")
    w.oper(alice)
    for peer in (alice, troll, carol):
        w.take(peer)
    return alice, troll, carol


# --------------------------------------------------------------------------- operators


def test_wrong_operator_password_is_refused_and_reported_to_the_shell() -> None:
    """PROTOCOL.txt 15.1: oper_failed, the connection stays; the shell gets WrongPassword (it
    throttles the address); no note or error line holds the password."""
    w = ModWorld()
    alice = w.join("alice")
    w.take(alice)
    fx = w.send(alice, p.Oper("alice", "guess-1"))
    assert any(isinstance(op, WrongPassword) and op.peer is alice for op in fx.ops)
    assert w.errors(alice) == [(ErrorCode.OPER_FAILED, "wrong operator name or password")]
    w.send(alice, p.Oper("dora", "s3cret-A"))  # another operator's name: no mix-ups
    assert w.errors(alice)[0][0] == ErrorCode.OPER_FAILED
    assert not w.hub.state.local.get(alice.cid).oper  # type: ignore[union-attr]
    assert "guess-1" not in repr(p.Oper("alice", "guess-1"))
    assert not any("guess" in note or "s3cret" in note for note in w.notes)


def test_operator_is_announced_and_marked_in_who_and_welcome() -> None:
    """PROTOCOL.txt 15.1: the room sees "alice is now an operator"; who and later
    welcomes list her in "opers"; the audit note says as whom, never the password."""
    w = ModWorld()
    alice, bob = w.join("alice"), w.join("bob")
    w.take(alice), w.take(bob)
    w.oper(alice)
    note = only(w.take(bob), "oper")
    assert note["name"] == "alice" and note["message"] == "alice is now an operator"
    assert note["id"] and note["room"] == "lobby"
    w.send(bob, p.Who())
    assert only(w.take(bob), "who")["opers"] == ["alice"]
    w.send(bob, p.Who(all=True))
    assert only(w.take(bob), "who")["opers"] == ["alice"]
    carol = w.join("carol")
    assert w.take(carol)[0]["opers"] == ["alice"]
    assert any("alice" in n and "operator" in n for n in w.notes)
    assert not any("s3cret" in n for n in w.notes)


def test_help_lists_operator_commands_for_operators_only() -> None:
    """PROTOCOL.txt 6.2, 15: /help shows the operator commands to operators."""
    w = ModWorld()
    alice, bob = w.join("alice", text=True), w.join("bob", text=True)
    w.send(bob, p.Help())
    w.oper(alice)
    w.take_text(alice)
    w.send(alice, p.Help())
    plain = [line for line in w.take_text(bob) if line.startswith("* /")]
    full = [line for line in w.take_text(alice) if line.startswith("* /")]
    assert not any(line.startswith("* /kick") for line in plain)
    assert any(line.startswith("* /kick") for line in full)
    assert len(full) == len(p.TEXT_COMMANDS) + len(p.OPER_COMMANDS)


@pytest.mark.parametrize("event", [
    p.Kick("troll"), p.Ban(name="troll"), p.Unban(name="troll"), p.Bans(), p.Mute("troll"),
    p.Unmute("troll"), p.SetTopic("mine now"),
])
def test_non_operators_get_not_operator(event: p.Event) -> None:
    """PROTOCOL.txt 15: every operator line from anyone else is refused."""
    w = ModWorld()
    troll = w.join("troll")
    w.take(troll)
    w.send(troll, event)
    assert w.errors(troll)[0][0] == ErrorCode.NOT_OPERATOR
    assert w.hub.names.keys() == {p.name_key("troll")}


def test_operator_status_survives_a_resume_and_a_held_session_can_be_kicked() -> None:
    """PROTOCOL.txt 15.1: operator for the session's life (a resume keeps it); 15.2: a
    session held for resume is removed too, and its slot released."""
    w = ModWorld()
    alice, troll = w.join("alice"), w.join("troll")
    token, troll_token = w.take(alice)[0]["resume"], w.take(troll)[0]["resume"]
    w.oper(alice)
    w.lost(alice)
    back = w.join("alice", resume=token)
    welcome = w.take(back)[0]
    assert welcome["resumed"] is True and welcome["opers"] == ["alice"]
    w.lost(troll)
    fx = w.send(back, p.Kick("troll", "gone"))
    assert fx.commands and w.hub.sessions.keys() == {w.hub.state.local.get(back.cid).sid}  # type: ignore[union-attr]
    assert any(type(op).__name__ == "Released" for done in w.applied for op in done.ops)
    again = w.join("troll", resume=troll_token)
    assert "could not resume" in w.take(again)[0]["notice"]


# --------------------------------------------------------------------------- kick


def test_kick_from_the_server_tells_everyone_why_and_the_session_cannot_resume() -> None:
    """PROTOCOL.txt 15.2: the room sees "troll was removed by alice (spam)", the troll gets
    kicked with the reason and is closed; its resume token no longer works."""
    w = ModWorld()
    alice, troll, carol = w.join("alice"), w.join("troll"), w.join("carol")
    token = w.take(troll)[0]["resume"]
    w.oper(alice)
    w.take(alice), w.take(carol)
    w.send(alice, p.Kick("troll", "spam"))
    assert w.errors(troll) == [(ErrorCode.KICKED, "you were removed from the server by alice "
                                                  "(spam)")]
    assert troll in w.closed
    left = only(w.take(carol), "disconnect")
    assert left["message"] == "troll was removed by alice (spam)" and left["name"] == "troll"
    assert only(w.take(alice), "notice")["message"] == "troll was removed from the server"
    assert any(n.startswith("audit: alice kicked troll from the server (reason: spam)")
               for n in w.notes)
    again = w.join("troll", resume=token)
    welcome = w.take(again)[0]
    assert welcome["resumed"] is False and "could not resume" in welcome["notice"]


def test_kick_from_a_room_moves_the_user_to_the_lobby() -> None:
    """PROTOCOL.txt 15.2: from the room only: dev sees why, the user lands in lobby."""
    w = ModWorld()
    alice = w.join("alice", room="dev")
    troll, carol, lobby = w.join("troll", room="dev"), w.join("carol", room="dev"), w.join("x")
    w.oper(alice)
    for peer in (alice, troll, carol, lobby):
        w.take(peer)
    w.send(alice, p.Kick("troll", "off topic", room=True))
    got = w.take(troll)
    assert got[0]["type"] == "notice"
    assert got[0]["message"] == ("you were removed from dev by alice (off topic); you are in "
                                 "lobby now")
    assert only(got, "who")["room"] == "lobby"
    assert troll not in w.closed
    assert only(w.take(carol), "disconnect")["message"] == (
        "troll was removed from dev by alice (off topic)")
    assert only(w.take(lobby), "connect")["name"] == "troll"
    w.send(alice, p.Kick("troll", room=True))  # from alice's current room, dev: gone
    assert w.errors(alice)[-1][0] == ErrorCode.NOT_IN_ROOM
    w.send(alice, p.Kick("troll", room=True, where="lobby"))  # in lobby alone already
    assert w.errors(alice)[-1][0] == ErrorCode.ALREADY_IN_ROOM
    w.send(alice, p.Kick("nobody"))
    assert w.errors(alice)[-1][0] == ErrorCode.NO_SUCH_USER


# --------------------------------------------------------------------------- bans


def test_name_ban_covers_look_alikes_and_says_until_when() -> None:
    """PROTOCOL.txt 15.3: a name ban removes the user; a connect with the name or a
    look-alike (Cyrillic o, U+043E) is refused with banned, saying until when, and closed."""
    w = ModWorld()
    alice, troll, carol = _cast(w)
    w.send(alice, p.Ban(name="troll", seconds=3600, reason="insults"))
    until = p.format_time(w.now + 3600)
    told = w.take(troll)
    assert [m for m in told if m["type"] == "error"] == [{
        "type": "error", "code": ErrorCode.BANNED, "until": until,
        "message": f"the name troll is banned from this server by alice until {until} (insults)"}]
    assert troll in w.closed
    assert only(w.take(carol), "disconnect")["message"] == "troll was banned by alice (insults)"
    again = w.join("tr\u043ell")
    assert w.errors(again) == [(ErrorCode.BANNED, "the name tr\u043ell is banned from this "
                                                  f"server by alice until {until} (insults)")]
    assert again in w.closed and w.hub.state.status(again) is None
    w.send(carol, p.Nick("TROLL"))
    assert w.take(carol) == [{"type": "error", "code": "name_banned", "until": until,
                              "message": f"the name TROLL is banned until {until} (insults)"}]
    w.now += 3601  # the log's clock passes the end of the ban
    w.expire()
    back = w.join("troll")
    assert w.take(back)[0]["type"] == "welcome"


def test_address_ban_ipv6_covers_the_64_and_ipv4_prefixes() -> None:
    """PROTOCOL.txt 15.3: an IPv6 address is banned with its /64; IPv4 by address or
    prefix; users connected from there are removed, new connects refused."""
    w = ModWorld()
    alice = w.join_from("alice", "2001:db8:1:2::1")
    near = w.join_from("near", "2001:db8:1:2::ff")
    far = w.join_from("far", "2001:db8:1:3::1")
    v4 = w.join_from("v4", "192.0.2.77")
    w.oper(alice)
    w.send(alice, p.Ban(address="2001:db8:1:2::99", reason="flood"))
    assert [m for m in w.take(near) if m["type"] == "error"] == [{
        "type": "error", "code": "banned", "until": None,
        "message": "your address (2001:db8:1:2::/64) is banned from this server by alice "
                   "permanently (flood)"}]
    assert near in w.closed and alice in w.closed  # the operator's own /64 too
    assert far not in w.closed
    w.send(far, p.Oper("dora", "s3cret-D"))
    w.send(far, p.Ban(address="192.0.2.0/24"))
    assert v4 in w.closed
    refused = w.join_from("v4b", "::ffff:192.0.2.8")  # IPv4-mapped counts as IPv4
    assert w.errors(refused)[0][0] == ErrorCode.BANNED
    w.send(far, p.Ban(address="10.0.0.0/4"))
    assert "too broad" in w.errors(far)[-1][1]
    w.send(far, p.Ban(address="not-an-address"))
    assert w.errors(far)[-1][0] == ErrorCode.BAD_FIELD


def test_bans_are_listed_and_lifted() -> None:
    """PROTOCOL.txt 15.3: bans lists them; unban lifts one; an unknown one: no_such_ban."""
    w = ModWorld()
    alice, _, _ = _cast(w)
    w.send(alice, p.Ban(name="troll", seconds=60, reason="spam"))
    w.send(alice, p.Ban(address="198.51.100.0/24"))
    w.take(alice)
    w.send(alice, p.Bans())
    bans = only(w.take(alice), "bans")["bans"]
    assert [(b["kind"], b["target"], b["by"]) for b in bans] == [
        ("name", "troll", "alice"), ("address", "198.51.100.0/24", "alice")]
    assert bans[0]["until"] == p.format_time(w.now + 60) and bans[1]["until"] is None
    w.send(alice, p.Unban(name="Troll"))
    assert only(w.take(alice), "notice")["message"] == "the ban of troll is lifted"
    w.send(alice, p.Unban(name="troll"))
    assert w.errors(alice)[0][0] == ErrorCode.NO_SUCH_BAN
    assert w.take(w.join("troll"))[0]["type"] == "welcome"
    assert any(n == "audit: alice lifted the ban of name troll" for n in w.notes)


def test_a_join_already_in_the_log_when_the_ban_lands_is_refused_in_log_order() -> None:
    """PROTOCOL.txt 15.6: the ban is checked again where the join is applied."""
    w = ModWorld()
    hub: Hub[FakePeer] = w.hub
    alice = w.join("alice")
    w.oper(alice)
    peer = w.peer()
    fx = hub.handle(peer, p.Connect(name="troll"))  # not applied yet: published only
    origin = Origin(hub.node, alice.cid)
    w.bus.publish(BanCmd(origin, "name", p.name_key("troll"), "troll", 0, "alice", ""))
    w.effects(fx)
    assert w.errors(peer)[0][0] == ErrorCode.BANNED
    assert hub.state.status(peer) is not Status.ATTACHED and "troll" not in hub.names


def test_a_failed_resume_falls_back_to_a_join_that_keeps_its_address() -> None:
    """PROTOCOL.txt 10.4, 15.3, 15.6: the session goes (its address is banned) while the
    resume is on its way through the log; the join applied instead is refused as banned,
    for it carries the connection's address."""
    w = ModWorld()
    hub: Hub[FakePeer] = w.hub
    alice = w.join("alice")
    w.oper(alice)
    troll = w.join_from("troll", "192.0.2.7")
    token = w.take(troll)[0]["resume"]
    w.lost(troll)
    peer = w.peer()
    fx = hub.handle(peer, p.Connect(name="troll", resume=token), "192.0.2.7")
    origin = Origin(hub.node, alice.cid)
    w.bus.publish(BanCmd(origin, "address", "192.0.2.7/32", "192.0.2.7/32", 0, "alice", ""))
    assert "troll" not in hub.names  # the held session went with the ban
    w.effects(fx)  # the resume, applied now: the session is gone, so a join instead
    assert w.errors(peer)[0][0] == ErrorCode.BANNED
    assert hub.state.status(peer) is not Status.ATTACHED
    assert "troll" not in hub.names and peer in w.closed


# --------------------------------------------------------------------------- mute, topic


def test_muted_lines_are_refused_and_nobody_else_sees_them() -> None:
    """PROTOCOL.txt 15.4: muted in the room: an error with the ref, nothing to others."""
    w = ModWorld()
    alice, troll, carol = _cast(w)
    w.send(alice, p.Mute("troll", "calm down"))
    assert only(w.take(troll), "notice")["message"] == "you were muted in lobby by alice " \
                                                      "(calm down)"
    assert w.take(carol) == []
    w.say(troll, "noise", ref="r1")
    assert w.take(troll) == [{"type": "error", "code": "muted", "ref": "r1", "message":
                              "you are muted in lobby by alice (calm down); your line was "
                              "not sent"}]
    assert w.take(carol) == []
    w.send(alice, p.Unmute("troll"))
    w.take(troll)
    w.say(troll, "sorry")
    assert [m["message"] for m in w.take(carol)] == ["sorry"]
    w.send(alice, p.Unmute("troll"))
    assert w.errors(alice)[-1][0] == ErrorCode.NOT_MUTED


def _talks(w: ModWorld, speaker: FakePeer, listener: FakePeer, text: str) -> bool:
    """Whether `speaker`'s room line reaches `listener` (or is refused as muted)."""
    w.take(speaker), w.take(listener)
    w.say(speaker, text)
    heard = [m.get("message") for m in w.take(listener)] == [text]
    muted = [c for c, _ in w.errors(speaker)] == [ErrorCode.MUTED]
    assert heard != muted
    return heard


def test_a_mute_follows_the_person_through_nick_and_resume_not_the_name() -> None:
    """PROTOCOL.txt 15.4: muted bob renames himself and is still muted; the person who
    takes the freed name "bob" is not; a resume keeps the mute; an unmute finds him by
    the name he has now."""
    w = ModWorld()
    alice, carol = w.join("alice"), w.join("carol")
    w.oper(alice)
    bob = w.join_from("bob", "192.0.2.7")
    token = w.take(bob)[0]["resume"]
    w.send(alice, p.Mute("bob", "shh"))
    w.send(bob, p.Nick("bob_"))
    assert not _talks(w, bob, carol, "still here")
    other = w.join_from("bob", "198.51.100.9")  # the free name, another person
    assert w.take(other)[0]["name"] == "bob"
    assert _talks(w, other, carol, "hello, I am the new bob")
    w.lost(bob)
    back = w.peer()
    w.send(back, p.Connect(resume=token))
    assert w.take(back)[0]["resumed"] is True
    assert not _talks(w, back, carol, "resumed")
    w.send(alice, p.Unmute("bob"))  # the new bob is not muted: nothing to lift
    assert w.errors(alice)[-1][0] == ErrorCode.NOT_MUTED
    w.send(alice, p.Unmute("bob_"))
    assert _talks(w, back, carol, "free again")


def test_a_mute_waits_for_its_person_under_the_name_from_the_same_network() -> None:
    """PROTOCOL.txt 15.4: muted bob leaves; whoever joins as bob from his network (his
    address; for IPv6 its /64) is muted again, from another network is not; a mute of a
    name nobody has is refused (it could land on anyone)."""
    w = ModWorld()
    alice, carol = w.join("alice"), w.join("carol")
    w.oper(alice)
    bob = w.join_from("bob", "2001:db8:1:2::7")
    w.send(alice, p.Mute("bob"))
    w.send(bob, p.Nick("bobby"))
    w.send(bob, p.Disconnect())
    stranger = w.join_from("bobby", "2001:db8:9::1")
    assert _talks(w, stranger, carol, "not him")
    w.send(stranger, p.Disconnect())
    again = w.join_from("bobby", "2001:db8:1:2::99")
    assert not _talks(w, again, carol, "me again")
    w.send(again, p.Disconnect())
    taken = w.join_from("bobby", "203.0.113.5")  # holds the name: he gets a variant
    variant = w.join_from("bobby", "2001:db8:1:2::7")
    assert w.take(variant)[0]["name"] == "bobby2"
    assert not _talks(w, variant, carol, "as bobby2") and _talks(w, taken, carol, "ok")
    w.send(alice, p.Mute("nobody-here"))
    assert w.errors(alice)[-1][0] == ErrorCode.NO_SUCH_USER


def test_a_name_ban_removes_the_holder_and_refuses_the_name_even_on_a_late_rename() -> None:
    """PROTOCOL.txt 15.3: a name ban is on the name: whoever holds it is removed, nobody
    takes it later, and a rename to it already in the log when the ban lands is
    refused where it is applied."""
    w = ModWorld()
    hub: Hub[FakePeer] = w.hub
    alice, bob = w.join("alice"), w.join("bob")
    w.oper(alice)
    w.take(bob)
    fx = hub.handle(bob, p.Nick("troll"))  # published, not applied yet
    origin = Origin(hub.node, alice.cid)
    w.bus.publish(BanCmd(origin, "name", p.name_key("troll"), "troll", 0, "alice", ""))
    w.effects(fx)
    assert w.errors(bob)[0][0] == ErrorCode.NAME_BANNED
    assert hub.state.local.get(bob.cid).name == "bob"  # type: ignore[union-attr]


def test_topic_is_announced_in_welcome_and_on_moving_in() -> None:
    """PROTOCOL.txt 15.5: a change is a notice to the room; the welcome carries it; who
    moves in gets it after the who; anyone may ask for it."""
    w = ModWorld()
    alice, troll, carol = _cast(w)
    w.send(alice, p.SetTopic("be nice"))
    for peer in (alice, troll, carol):
        topic = only(w.take(peer), "topic")
        assert topic["message"] == "alice set the topic: be nice" and topic["id"]
    assert w.take(w.join("dan"))[0]["topic"] == "be nice"
    elsewhere = w.join("erin", room="dev")
    w.take(elsewhere)
    w.send(elsewhere, p.Join("lobby"))
    got = w.take(elsewhere)
    assert [m["type"] for m in got][:2] == ["who", "topic"]
    assert got[1] == {"type": "topic", "room": "lobby", "topic": "be nice"}
    w.send(troll, p.SetTopic())
    assert only(w.take(troll), "topic")["topic"] == "be nice"
    w.send(alice, p.SetTopic(""))
    assert only(w.take(carol), "topic")["message"] == "alice cleared the topic"
    assert "topic" not in w.take(w.join("fay"))[0]


def test_snapshot_carries_operators_bans_mutes_and_topics() -> None:
    """PROTOCOL.txt 14, 15.6: a node that starts from a snapshot enforces the same."""
    w = ModWorld()
    alice, _, _ = _cast(w)
    w.send(alice, p.Ban(name="spammer", seconds=600, reason="ads"))
    w.send(alice, p.Mute("carol"))
    w.send(alice, p.SetTopic("rules"))
    copy: Hub[FakePeer] = Hub(node="n2")
    replication.restore_dict(copy, json.loads(json.dumps(replication.snapshot(w.hub))))
    assert copy.sessions[w.hub.state.local.get(alice.cid).sid].oper  # type: ignore[union-attr]
    assert copy.mod.name_ban("spammer", T0) == w.hub.mod.name_ban("spammer", T0)
    carol = w.hub.names[p.name_key("carol")].sid
    assert copy.mod.muted(p.name_key("lobby"), carol) is not None
    assert copy.mod.topics == w.hub.mod.topics


# --------------------------------------------------------------------------- protocol


@pytest.mark.parametrize(("line", "event"), [
    (b"/oper alice pw", p.Oper("alice", "pw")),
    (b"/kick troll spam and more", p.Kick("troll", "spam and more")),
    (b"/roomkick troll", p.Kick("troll", "", room=True)),
    (b"/ban troll 2h insults", p.Ban(name="troll", seconds=7200, reason="insults")),
    (b"/ban troll insults", p.Ban(name="troll", reason="insults")),
    (b"/banip 192.0.2.0/24 7d", p.Ban(address="192.0.2.0/24", seconds=7 * 86400)),
    (b"/unban troll", p.Unban(name="troll")),
    (b"/unbanip 192.0.2.1", p.Unban(address="192.0.2.1")),
    (b"/bans", p.Bans()),
    (b"/mute troll shh", p.Mute("troll", "shh")),
    (b"/unmute troll", p.Unmute("troll")),
    (b"/topic", p.SetTopic()),
    (b"/topic welcome all", p.SetTopic("welcome all")),
    (b"/topic -", p.SetTopic("")),
])
def test_text_commands_and_their_json_lines_mean_the_same(line: bytes, event: p.Event) -> None:
    """PROTOCOL.txt 6.2, 15: each command, and its JSON line (encode_event) parsed back."""
    assert p.parse_text_line(line) == event
    assert p.parse_json_line(p.encode_event(event)[:-1]) == event


@pytest.mark.parametrize(("line", "code"), [
    (b'{"type":"ban"}', ErrorCode.BAD_FIELD),
    (b'{"type":"ban","name":"a","address":"192.0.2.1"}', ErrorCode.BAD_FIELD),
    (b'{"type":"ban","name":"a","seconds":0}', ErrorCode.BAD_FIELD),
    (b'{"type":"ban","name":"a","seconds":"1h"}', ErrorCode.BAD_FIELD),
    (b'{"type":"kick","name":"a","from":"space"}', ErrorCode.BAD_FIELD),
    (b'{"type":"oper","name":"a"}', ErrorCode.BAD_FIELD),
    (b'{"type":"topic","topic":"' + b"x" * 301 + b'"}', ErrorCode.BAD_FIELD),
])
def test_bad_moderation_lines(line: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        p.parse_json_line(line)
    assert info.value.code == code


def test_usage_errors_for_operator_commands() -> None:
    with pytest.raises(ProtocolError, match="usage: /oper NAME PASSWORD"):
        p.parse_text_line(b"/oper alice")
    with pytest.raises(ProtocolError, match="usage: /unban NAME"):
        p.parse_text_line(b"/unban")


@pytest.mark.parametrize("update", [
    p.Topic("lobby", "be nice", "alice", "alice set the topic: be nice", "7", "t"),
    p.Topic("lobby", ""),
    p.Opered("alice", "lobby", "alice is now an operator", "8", "t"),
    p.Notice("troll is muted in lobby"),
    p.BanList((p.BanEntry("name", "troll", "", "alice", "spam", "t"),
               p.BanEntry("address", "192.0.2.0/24", "u", "dora", "", "t"))),
    p.Welcome("bob", "lobby", ("alice", "bob"), topic="hi", opers=("alice",)),
    p.WhoList("lobby", ("alice", "bob"), opers=("alice",)),
])
def test_updates_round_trip(update: p.Update) -> None:
    assert p.decode_update(p.encode_json(update)) == update
    p.text_lines(update)


def test_text_mode_marks_operators_and_shows_the_topic() -> None:
    assert p.text_lines(p.WhoList("lobby", ("alice", "bob"), opers=("alice",))) == [
        "* lobby: @alice, bob"]
    assert "* topic: be nice" in p.text_lines(p.Welcome("bob", "lobby", ("bob",), topic="be nice"))


def test_records_of_moderation_commands_round_trip() -> None:
    """PROTOCOL.txt 14.2: every command goes through the cluster log as a record."""
    origin = Origin("n1", 3)
    for cmd in (OperCmd(origin, "s1", "alice"), KickCmd(origin, "s2", "alice", "spam", True),
                BanCmd(origin, "address", "192.0.2.0/24", "192.0.2.0/24", 60, "alice", "x"),
                UnbanCmd(origin, "name", "troll", "alice"),
                MuteCmd(origin, None, "troll", "alice", "", False),
                TopicCmd(origin, "s1", "hello")):
        assert from_records(to_records([cmd])) == [cmd]


# --------------------------------------------------------------------------- pure tables


def test_credentials_and_operator_specs() -> None:
    creds = Credentials(parse_opers("alice:pw1, bob:p:w2"))
    assert creds.check("ALICE", "pw1") and creds.check("bob", "p:w2")
    assert not creds.check("alice", "p:w2") and not creds.check("carol", "pw1")
    assert not Credentials(())
    with pytest.raises(ValueError, match="alice: give NAME:PASSWORD") as info:
        parse_opers("alice")
    assert "pw" not in str(info.value)


def test_ban_networks() -> None:
    assert ban_network("192.0.2.7") == "192.0.2.7/32"
    assert ban_network("2001:db8::7") == "2001:db8::/64"
    assert ban_network("2001:db8::/48") == "2001:db8::/48"
    with pytest.raises(ProtocolError, match="too broad"):
        ban_network("::/0")


def test_ban_table_is_bounded_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = Moderation()
    names = ["ann", "ben", "cy"]
    for i, name in enumerate(names):
        mod.ban(BanRecord("name", p.name_key(name), name, T0 + i + 1, "a", "", T0))
    assert mod.name_ban("ann", T0) is not None and mod.name_ban("ann", T0 + 1) is None
    assert [b.label for b in mod.expire(T0 + 2)] == ["ann", "ben"]
    assert [b.target for b in mod.listed(T0 + 2)] == ["cy"]
    monkeypatch.setattr("chatd.moderation.MAX_BANS", 2)
    mod.ban(BanRecord("name", "dee", "dee", 0, "a", "", T0))
    mod.ban(BanRecord("name", "eve", "eve", 0, "a", "", T0))  # the full table drops cy
    assert sorted(b.label for b in mod.bans.values()) == ["dee", "eve"]


def test_operators_from_options_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    """PROTOCOL.txt 15.1: --oper (repeatable) and CHATD_OPERS add up; a bad entry stops
    chatd with exit status 2 and a message that holds no password."""
    assert opers_from(["alice:a1", "bob:b:2"], {"CHATD_OPERS": "dora:d1, eve:e1"}) == (
        ("alice", "a1"), ("bob", "b:2"), ("dora", "d1"), ("eve", "e1"))
    assert opers_from([], {}) == ()
    args = build_parser().parse_args(["--oper", "alice:a1"])
    assert config_from(args, {}).hub.opers == (("alice", "a1"),)
    assert "a1" not in repr(config_from(args, {}))
    with pytest.raises(SystemExit) as info:
        main(["--oper", "alice:a1", "--oper", "nopassword"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "operator nopassword: give NAME:PASSWORD" in err and "a1" not in err


def test_mutes_of_people_present_and_gone_survive_a_snapshot() -> None:
    """PROTOCOL.txt 15.4, 14.2: a node started from a snapshot mutes the same people,
    those who left included (they are muted again when they come back)."""
    mod = Moderation()
    mod.mute("lobby", "s1", name="bob", address="192.0.2.7", by="alice", reason="x")
    mod.mute("dev", "s2", name="eve", address="2001:db8:1:2::7", by="alice", reason="")
    mod.ended("s2")
    copy = Moderation()
    copy.restore(json.loads(json.dumps(mod.snapshot())))
    assert copy.muted("lobby", "s1") == mod.muted("lobby", "s1")
    copy.joined("s3", ["eve"], "2001:db8:1:2::99")
    assert copy.muted("dev", "s3") is not None
    copy.restore({"mutes": [["lobby", "bob", "alice", "old format"]]})  # by name: ignored
    assert copy.is_muted("bob", None) and copy.unmute(None, "bob") == 1
