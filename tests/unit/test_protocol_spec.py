"""Unit tests of the one declaration per line type (chatd.protocol.spec and serverlines,
issue 24): every consumer handles every declared type, and PROTOCOL.txt documents every
type and code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chatd import protocol as p
from chatd.effects import Charge, Page, Reply
from chatd.protocol import serverlines, spec
from tests.support.hub_world import World

FILL = {"NAME": "bob", "PASSWORD": "pw", "TEXT": "hi", "ROOM": "dev", "ADDRESS": "192.0.2.1",
        "[TIME]": "2h", "[REASON]": "spam", "[N]": "5", "[all]": "all"}
PROTOCOL = (Path(__file__).parents[2] / "PROTOCOL.txt").read_text()


def section(number: int) -> str:
    """The text of one numbered section of PROTOCOL.txt."""
    match = re.search(rf"^{number}\. .*?(?=^{number + 1}\. )", PROTOCOL, re.M | re.S)
    assert match is not None, number
    return match.group()


# ---------------------------------------------------------------- declared once, all used


def test_every_event_and_update_class_is_declared_once() -> None:
    declared = [line.event for line in spec.CLIENT_LINES]
    assert sorted(map(str, declared)) == sorted(map(str, spec.declared_events()))
    assert len(set(declared)) == len(declared)
    assert set(serverlines.SERVER_BY_UPDATE) == serverlines.declared_updates()
    assert len(serverlines.SERVER_BY_UPDATE) == len(serverlines.SERVER_LINES)
    assert {type(line.sample) for line in spec.CLIENT_LINES} == spec.declared_events()
    assert ({type(line.sample) for line in serverlines.SERVER_LINES}
            == serverlines.declared_updates())


@pytest.mark.parametrize("line", [c for c in spec.CLIENT_LINES if c.json], ids=lambda c: c.wire)
def test_every_client_line_round_trips_through_json(line: spec.ClientLine) -> None:
    encoded = p.encode_event(line.sample)
    assert json.loads(encoded)["type"] == line.wire
    assert p.parse_json_line(encoded) == line.sample
    wire_fields = {f.name for f in line.fields} | {"type"}
    assert set(json.loads(encoded)) <= wire_fields


@pytest.mark.parametrize("line", serverlines.SERVER_LINES, ids=lambda s: s.wire)
def test_every_server_line_encodes_decodes_and_renders(line: serverlines.ServerLine) -> None:
    encoded = p.encode_json(line.sample)
    obj = json.loads(encoded)
    assert obj["type"] == line.wire
    assert set(obj) - {"type"} <= {f.name for f in line.fields}, "a field not declared"
    assert p.decode_update(encoded) == line.sample
    assert isinstance(p.text_lines(line.sample), list)


def test_the_hub_handles_every_client_line() -> None:
    """Every declared line reaches a handler of the hub (chatd/hub/handlers.py) and is
    answered without a "not handled" error."""
    w = World()
    alice = w.join("alice")
    last = (p.Connect, p.Disconnect)  # joined already; one that leaves goes last
    for line in spec.CLIENT_LINES:
        if line.event not in last:
            w.send(alice, line.sample)
    w.send(alice, p.Disconnect())
    answers = w.take(alice)
    assert answers and not [a for a in answers if "not handled" in a.get("message", "")]


def test_the_declared_cost_is_what_flood_control_charges() -> None:
    """PROTOCOL.txt 8.3: the lines declared cost "answer" are charged by their answer's
    size; every other line takes its one token only."""
    w = World(opers=(("alice", "s3cret-A"),))
    alice = w.join("alice")
    w.send(alice, p.Oper("alice", "s3cret-A"))
    w.take(alice)
    for line in spec.CLIENT_LINES:
        if line.event in (p.Connect, p.Disconnect, p.Oper):
            continue
        if line.event is p.History:  # an empty page costs nothing: one line for it
            w.say(alice, "a line for history to answer with")
        fx = w.send(alice, line.sample)
        charged = any(isinstance(op, Charge) or (isinstance(op, Reply) and op.charge)
                      or (isinstance(op, Page) and op.lines) for op in fx.ops)
        assert charged == (line.cost == "answer"), line.wire
        w.take(alice)


# ------------------------------------------------------------------------- text mode


def test_every_listed_command_parses_as_listed() -> None:
    for command in p.COMMANDS:
        example = " ".join(FILL.get(w, w) for w in command.usage.split())
        event = p.parse_text_line(example.encode())
        assert event is not None, command.usage
        assert type(event) in {line.event for line in spec.CLIENT_LINES
                               if command in line.commands}


def test_a_command_that_does_not_parse_gets_its_declared_usage() -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.parse_text_line(b"/join two words")
    assert caught.value == p.ProtocolError(p.ErrorCode.BAD_FIELD, "usage: /join ROOM")
    with pytest.raises(p.ProtocolError) as caught:
        p.parse_text_line(b"/frobnicate")
    assert caught.value.code == p.ErrorCode.UNKNOWN_COMMAND


def test_nc_and_chatc_list_the_table() -> None:
    from chatc import commands

    everyone = [c.usage for c in p.COMMANDS if not c.oper]
    assert list(p.TEXT_COMMANDS) == everyone == [u for u, _ in commands.HELP]
    assert list(p.OPER_COMMANDS) == [u for u, _ in commands.OPER_HELP]


def test_the_page_gets_the_tables_as_a_module() -> None:
    text = p.commands_js().decode()
    found = dict(re.findall(r"^export const (\w+) = Object\.freeze\((.*)\);$", text, re.M))
    assert [(e["usage"], e["help"], e["oper"]) for e in json.loads(found["COMMANDS"])] == [
        (c.usage, c.help, c.oper) for c in p.COMMANDS]
    assert set(json.loads(found["ERRORS"])) == {e.code for e in p.ERRORS}


# ------------------------------------------------------------------- PROTOCOL.txt


def test_protocol_documents_every_client_line() -> None:
    documented = section(3) + section(15)
    for line in spec.CLIENT_LINES:
        if line.json:
            assert f'{{"type":"{line.wire}"' in documented, line.wire


def test_protocol_documents_every_server_line() -> None:
    headings = re.findall(r"^4\.\d+ ([a-z_ /]+)", section(4), re.M)
    named = {w.strip() for h in headings for w in h.split("/")}
    moderation = re.search(r"^4\.13 Moderation lines \(section 15\): ([a-z, ]+)\.", section(4),
                           re.M)
    assert moderation is not None
    named |= {w.strip() for w in moderation.group(1).split(",")}
    assert {line.wire for line in serverlines.SERVER_LINES if line.json} <= named


def test_protocol_lists_every_error_code_with_one_meaning() -> None:
    table = re.findall(r"^    ([a-z0-9_]+) {2,}\S", section(7), re.M)
    assert sorted(table) == sorted(e.code for e in p.ERRORS)
    assert len(table) == len(set(table))
    codes = {v for k, v in vars(p.ErrorCode).items() if k.isupper()}
    assert codes == {e.code for e in p.ERRORS}
    for error in p.ERRORS:  # the structured fields are named where the code is
        entry = re.search(rf"^    {error.code} .*?(?=^    \S|\Z)", section(7), re.M | re.S)
        assert entry is not None
        for field in error.fields:
            assert f'"{field}"' in entry.group(), (error.code, field)
