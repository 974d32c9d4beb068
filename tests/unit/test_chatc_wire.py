"""chatc.wire: the lines of several rooms at once (PROTOCOL.txt 17) as chatc writes and
reads them."""

from __future__ import annotations

import json

from chatc import wire
from chatc.session import Send, Session
from chatd import protocol as p


def test_client_lines_of_several_rooms() -> None:
    assert json.loads(wire.encode(wire.Part("dev"))) == {"type": "part", "room": "dev"}
    assert json.loads(wire.encode(wire.Part())) == {"type": "part"}
    assert json.loads(wire.encode(wire.Switch("dev"))) == {"type": "switch", "room": "dev"}
    said = wire.encode(wire.InRoom(p.Message("hé [b]", ref="r1"), "dev"))
    assert said.endswith(b"\n") and b"\n" not in said[:-1]
    assert json.loads(said) == {"type": "message", "message": "hé [b]", "ref": "r1",
                                "room": "dev"}
    assert wire.encode(p.Who()) == p.encode_event(p.Who())


def test_welcome_rooms_version_2_and_version_1() -> None:
    v2 = b'{"type":"welcome","version":2,"room":"dev","rooms":["lobby","dev",7,"lobby"]}\n'
    assert wire.welcome_rooms(v2) == ("lobby", "dev")
    assert wire.welcome_rooms(b'{"type":"welcome","version":1,"room":"lobby"}\n') == ()
    assert wire.welcome_rooms(b"garbled\n") == ()
    assert wire.welcome_rooms(b'{"type":"welcome","rooms":"dev"}\n') == ()


def test_the_switch_answer() -> None:
    assert wire.switched(p.decode_update(b'{"type":"switch","room":"dev"}\n')) == "dev"
    assert wire.switched(p.decode_update(b'{"type":"switch"}\n')) is None
    assert wire.switched(p.Notice("x")) is None


def test_an_own_line_names_its_room_and_is_measured_with_it() -> None:
    session = Session("alice", refs=iter(["r1", "r2"]))
    session.welcomed(p.Welcome("alice", "lobby", ("alice",)), 0.0, ("lobby", "dev"))
    assert session.rooms == ("lobby", "dev")
    line, actions = session.say("hi", None, 0.0, room="dev")
    assert line.room == "dev"
    assert actions == [Send(wire.InRoom(p.Message("hi", ref="r1"), "dev"))]
    # A private line ignores the room: it is sent without one.
    private, _ = session.say("psst", "bob", 0.0, room="dev")
    assert private.room is None
