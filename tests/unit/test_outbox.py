"""Unit tests of chatd.outbox, the writer, alone: effects in, one write per turn out.

No event loop: the test calls `flush()` where the loop would, once per turn. An outlet
here records each write (chatd.channels.Outlet is all the writer knows of a socket).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import replace

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd import protocol as p
from chatd.channels import Apart, ChannelBuffer
from chatd.effects import Page
from chatd.outbox import LAZY_CHANNELS
from chatd.serverlog import ServerLog
from chatd.writer import Writer

LOBBY = ("lobby", False)
DEV = ("dev", False)


class Outlet:
    """A TCP connection's outlet and its transport in one (chatd.tcp.StreamOutlet): every
    other one made has no `direct` transport, as a WebSocket's, so that the writer's
    two ways to write (its own loop, or the outlet's `send`) are both in every test of
    more than one connection, side by side."""

    made = 0

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.unsent = 0  # what the "kernel" has not taken yet
        self.closed = self.aborted = False
        Outlet.made += 1
        self.sends_only = Outlet.made % 2 == 0

    @property
    def direct(self) -> Outlet | None:
        return None if self.sends_only or self.closed else self

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def write(self, data: bytes) -> None:
        if data:
            self.writes.append(data)
        self.unsent += len(data)

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def send(self, data: bytes) -> int:
        if self.is_closing():
            return -1
        self.write(data)  # an empty send asks how much is unsent
        return self.unsent

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class Conn:
    """What the writer needs of a connection (chatd.channels.Receiver)."""

    def __init__(self, name: str, text: bool = False) -> None:
        self.name = name
        self.text = text
        self.out: list[bytes] = []
        self.queued = False
        self.bufs: list[ChannelBuffer] = []
        self.starts: dict[ChannelBuffer, int] | None = None
        self.own: list[tuple[int, bytes]] | None = None
        self.special = False
        self.closing = False
        self.gone = False
        self.outlet = Outlet()
        self.dropped: str | None = None

    def __repr__(self) -> str:
        return self.name

    @property
    def direct(self) -> Outlet | None:
        """As a Connection keeps it: the outlet's transport until it is closing or gone
        (these tests set `closing` by hand)."""
        return None if self.closing or self.gone else self.outlet.direct

    def drop(self, reason: str) -> None:
        self.dropped = reason
        self.closing = True
        self.outlet.abort()

    def got(self) -> bytes:
        return b"".join(self.outlet.writes)


def writer(max_send_queue: int = 1 << 20) -> Writer:
    return Writer(max_send_queue, ServerLog("warning", io.StringIO()))


def test_a_turns_broadcasts_are_one_shared_write_per_member() -> None:
    w = writer()
    a, b, c = Conn("a"), Conn("b"), Conn("c")
    for conn in (a, b, c):
        w.enter(LOBBY, conn)
    for i in range(3):
        w.broadcast(LOBBY, b"line%d\n" % i, None)
    assert len(w.channels[LOBBY].data) == 3  # stored once, not once per member
    w.flush()
    assert a.outlet.writes == b.outlet.writes == c.outlet.writes == [b"line0\nline1\nline2\n"]
    assert a.outlet.writes[0] is b.outlet.writes[0]  # the very same bytes object


def test_a_room_update_is_encoded_once_per_mode_that_reads_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PROTOCOL.txt 6.3: JSON and text members of a room each get their mode's bytes,
    made once for all the members of that mode."""
    encoded: list[str] = []
    def counted(name: str) -> Callable[[p.Update], bytes]:
        real: Callable[[p.Update], bytes] = getattr(p, name)

        def encode(update: p.Update) -> bytes:
            encoded.append(name)
            return real(update)
        return encode

    for name in ("encode_json", "encode_text"):
        monkeypatch.setattr(p, name, counted(name))
    w = writer()
    a, b, t, u = Conn("a"), Conn("b"), Conn("t", text=True), Conn("u", text=True)
    for conn in (a, b, t, u):
        w.enter_room("lobby", conn)
    line = p.Chat("alice", "hey", "4", "2025-11-25T20:00:00Z", room="lobby")
    w.broadcast_update("lobby", line, a)
    w.broadcast_update("dev", line, None)  # nobody reads it here: nothing is encoded
    w.flush()
    assert sorted(encoded) == ["encode_json", "encode_text"]
    assert a.got() == b"" and b.got() == p.encode_json(line)
    assert t.got() == u.got() == b"<alice> hey\n"


def test_a_page_is_cut_to_its_bytes_in_the_readers_mode_and_its_lines_charged() -> None:
    """PROTOCOL.txt 3.8, 8.3: as many lines as fit, newest kept, then history_end; the
    lines' bytes are what flood control charges."""
    lines = [p.Chat("bob", f"{i}" + "x" * 90, str(i), "t", room="lobby", history=True)
             for i in range(5)]
    for text in (False, True):
        w = writer()
        reader = Conn("r", text)
        size = len(p.encode_text(lines[0]) if text else p.encode_json(lines[0]))
        charged = w.send_page(reader, Page(reader, "lobby", lines, True, False, 2 * size))
        w.flush()
        got = reader.got().splitlines(keepends=True)
        assert len(got) == 3 and charged == 2 * size
        assert b"4xx" in got[1] and b"3xx" in got[0]  # the newest two


@pytest.mark.parametrize("rooms", ["one", "several"])
def test_the_sender_skips_its_own_line_and_replies_stay_in_order(rooms: str) -> None:
    """In one room, and for readers of several rooms in a lazy turn (chatd.outbox): the
    reply comes after the lines before it, in one write a turn."""
    w = writer()
    a, b = Conn("a"), Conn("b")
    if rooms == "several":
        several(w, a, b)
    else:
        w.enter(LOBBY, a)
        w.enter(LOBBY, b)
    w.broadcast(LOBBY, b"1\n", None)
    w.broadcast(LOBBY, b"a says\n", a)
    w.send(a, b"ack\n")
    w.broadcast(LOBBY, b"3\n", None)
    w.flush()
    assert a.got() == b"1\nack\n3\n"
    assert b.got() == b"1\na says\n3\n"
    assert len(a.outlet.writes) == len(b.outlet.writes) == 1


def test_order_across_a_room_move_within_one_turn() -> None:
    """A member gets the old room's lines up to its exit, then the new room's from its
    entry: nothing from before it entered, nothing after it left."""
    w = writer()
    mover, stay, there = Conn("mover"), Conn("stay"), Conn("there")
    w.enter(LOBBY, mover)
    w.enter(LOBBY, stay)
    w.enter(DEV, there)
    w.broadcast(LOBBY, b"lobby-1\n", None)
    w.broadcast(DEV, b"dev-before\n", None)
    w.send(mover, b"reply-in-lobby\n")
    w.exit(LOBBY, mover)
    w.broadcast(LOBBY, b"mover left\n", None)
    w.enter(DEV, mover)
    w.send(mover, b"who-in-dev\n")
    w.broadcast(DEV, b"mover joined\n", None)
    w.broadcast(LOBBY, b"lobby-2\n", None)
    w.flush()
    assert mover.got() == b"lobby-1\nreply-in-lobby\nwho-in-dev\nmover joined\n"
    assert stay.got() == b"lobby-1\nmover left\nlobby-2\n"
    assert there.got() == b"dev-before\nmover joined\n"


def test_a_channel_nobody_reads_is_forgotten() -> None:
    w = writer()
    a = Conn("a")
    w.enter(LOBBY, a)
    w.broadcast(LOBBY, b"x\n", None)
    w.exit(LOBBY, a)
    assert LOBBY in w.channels  # its turn is not written yet
    w.flush()
    assert w.channels == {} and a.got() == b"x\n"
    w.broadcast(LOBBY, b"to nobody\n", None)
    assert w.channels == {}


def test_the_send_queue_bound_cuts_off_a_client_that_does_not_read() -> None:
    """PROTOCOL.txt 8.2: past --max-send-queue unsent bytes the connection is dropped;
    the others get their lines."""
    w = writer(max_send_queue=100)
    slow, fast = Conn("slow"), Conn("fast")
    w.enter(LOBBY, slow)
    w.enter(LOBBY, fast)
    for i in range(5):
        w.broadcast(LOBBY, b"%02d" % i + b"x" * 27 + b"\n", None)
        w.flush()
        fast.outlet.unsent = 0  # fast reads everything
    assert slow.dropped == "send queue full" and slow.outlet.aborted
    assert fast.dropped is None and len(fast.got()) == 150
    assert len(slow.got()) == 120  # the write that passed the bound was the last one


def test_close_writes_what_is_owed_first() -> None:
    w = writer()
    a, b = Conn("a"), Conn("b")
    w.enter(LOBBY, a)
    w.enter(LOBBY, b)
    w.broadcast(LOBBY, b"last line\n", None)
    w.send(a, b"bye\n")
    a.closing = True
    assert w.close_soon(a)
    w.exit(LOBBY, a)  # the hub stops delivering to it before the flush
    w.flush()
    assert a.got() == b"last line\nbye\n" and a.outlet.closed
    assert b.got() == b"last line\n" and not b.outlet.closed


@pytest.mark.parametrize("leaves_room", [False, True])
def test_a_talker_closed_in_the_turn_of_its_line_is_closed_at_the_flush(
        leaves_room: bool) -> None:
    """A line then a quit in one turn: the talker is owed nothing (its own line), and is
    still closed when the turn is written; the others get the line."""
    w = writer()
    a, b = Conn("a"), Conn("b")
    w.enter(LOBBY, a)
    w.enter(LOBBY, b)
    w.broadcast(LOBBY, b"a says\n", a)
    a.closing = True
    assert w.close_soon(a)
    if leaves_room:
        w.exit(LOBBY, a)
    w.flush()
    assert a.got() == b"" and a.outlet.closed
    assert b.got() == b"a says\n" and not b.outlet.closed


def test_a_sender_of_the_other_mode_keeps_its_replies() -> None:
    """A text-mode sender's line goes to the JSON channel too; its own replies (in the
    text channel) must survive the JSON channel's flush (issue 13.8's lost errors)."""
    w = writer()
    tina, bob = Conn("tina"), Conn("bob")
    text, json_channel = ("lobby", True), ("lobby", False)
    w.enter(text, tina)
    w.enter(json_channel, bob)
    w.broadcast(json_channel, b"{tina says}\n", tina)
    w.send(tina, b"! rate_limited\n")
    w.broadcast(json_channel, b"{tina again}\n", tina)
    w.flush()
    assert bob.got() == b"{tina says}\n{tina again}\n"
    assert tina.got() == b"! rate_limited\n"


@given(st.lists(st.tuples(st.sampled_from(["bcast", "send", "enter"]),
                          st.integers(0, 3)), max_size=40))
def test_each_member_gets_exactly_its_turns_lines_in_order(steps: list[tuple[str, int]]
                                                           ) -> None:
    """Against a model: every member's bytes this turn are the broadcasts made while it
    was in the channel, less its own, with its replies where they were made."""
    writer = Writer(1 << 20, ServerLog("warning", io.StringIO()))
    conns = [Conn(f"c{i}") for i in range(4)]
    expected: dict[str, list[bytes]] = {c.name: [] for c in conns}
    inside: set[str] = set()
    for n, (what, who) in enumerate(steps):
        conn, data = conns[who], f"{n}|".encode()
        if what == "enter" and conn.name not in inside:
            writer.enter(LOBBY, conn)
            inside.add(conn.name)
        elif what == "send":
            writer.send(conn, data)
            expected[conn.name].append(data)
        elif what == "bcast":
            writer.broadcast(LOBBY, data, conn)
            for other in conns:
                if other.name in inside and other is not conn:
                    expected[other.name].append(data)
    writer.flush()
    for conn in conns:
        assert b"".join(conn.outlet.writes) == b"".join(expected[conn.name]), conn.name
    assert writer.written == sum(len(b) for c in conns for b in c.outlet.writes)


# The lazy turn (chatd.outbox.Outbox._store) has cases the default 100 examples missed:
# three mutations of it (a talker or a named reader not set apart, a channel made lazy
# again after its lines went to the outboxes) passed at 100 and each failed within 3,000.
@settings(max_examples=3000, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["bcast", "send", "enter", "exit", "mention",
                                           "flush"]),
                          st.integers(0, 3), st.integers(0, 2)), max_size=60))
def test_a_member_of_several_channels_gets_their_lines_in_the_turns_order(
        steps: list[tuple[str, int, int]]) -> None:
    """PROTOCOL.txt 17, 10.2: a connection reads a channel of each of its rooms; what a
    turn owes it is every broadcast made while it was in that channel (less its own)
    and its replies, in the order they were made across channels: so the last id it
    saw is a true mark for a resume. A line naming a reader (18.6) reaches it as its
    own copy, in the same place; turns end anywhere (`flush`)."""
    writer = Writer(1 << 20, ServerLog("warning", io.StringIO()))
    conns = [Conn(f"c{i}") for i in range(4)]
    channels = [("lobby", 0), ("dev", 0), ("ops", 2)]
    expected: dict[str, list[bytes]] = {c.name: [] for c in conns}
    inside: set[tuple[str, int]] = set()
    turns = 1
    for n, (what, who, chan) in enumerate(steps):
        conn, data, channel = conns[who], f"{n}|".encode(), channels[chan]
        if what == "enter" and (conn.name, chan) not in inside:
            writer.enter(channel, conn)
            inside.add((conn.name, chan))
        elif what == "exit" and (conn.name, chan) in inside:
            writer.exit(channel, conn)
            inside.discard((conn.name, chan))
        elif what == "send":
            writer.send(conn, data)
            expected[conn.name].append(data)
        elif what == "bcast":
            writer.broadcast(channel, data, conn)
            for other in conns:
                if (other.name, chan) in inside and other is not conn:
                    expected[other.name].append(data)
        elif what == "mention":  # as Writer.broadcast_mentioning does it
            named = conns[(who + 1) % 4]
            writer.broadcast(channel, data, Apart(conn, [named]))  # type: ignore[arg-type]
            writer.send(named, b"!" + data)
            for other in conns:
                if (other.name, chan) in inside and other not in (conn, named):
                    expected[other.name].append(data)
            expected[named.name].append(b"!" + data)
        elif what == "flush":
            writer.flush()
            turns += 1
        for buf in writer.channels.values():  # who is sent each line as it is made
            assert buf.multi == {c for c in buf.peers if len(c.bufs) > 1}
    writer.flush()
    for conn in conns:
        assert b"".join(conn.outlet.writes) == b"".join(expected[conn.name]), conn.name
        assert len(conn.outlet.writes) <= turns  # still one write a turn
    assert writer.written == sum(len(b) for c in conns for b in c.outlet.writes)


def several(w: Writer, *conns: Conn) -> None:
    """Each of `conns` in LOBBY and DEV: a reader of several channels."""
    for conn in conns:
        w.enter(LOBBY, conn)
        w.enter(DEV, conn)
    w.flush()


def test_a_turn_of_one_channel_is_one_shared_write_to_its_readers_of_several() -> None:
    """The lazy turn: no outbox a reader, the channel's joined bytes to each, the
    talker its share less its own line."""
    w = writer()
    a, b, c = Conn("a"), Conn("b"), Conn("c")
    several(w, a, b, c)
    w.broadcast(LOBBY, b"1\n", a)
    w.broadcast(LOBBY, b"2\n", b)
    assert not (a.out or b.out or c.out)  # nothing put in an outbox as it was made
    w.flush()
    assert c.outlet.writes == [b"1\n2\n"] and b.outlet.writes == [b"1\n"]
    assert a.outlet.writes == [b"2\n"]
    w.broadcast(LOBBY, b"3\n", c)
    w.flush()  # the next turn is lazy again, its talker set apart again
    assert a.got() == b"2\n3\n" and c.got() == b"1\n2\n"


def test_readers_of_two_lazy_channels_get_their_lines_merged_in_order() -> None:
    """Two channels in a turn, both lazy: a reader in both gets their lines in the order
    they were made, a reader in one its shared write; one write each."""
    w = writer()
    a, b = Conn("a"), Conn("b")
    several(w, a, b)
    only_lobby, only_dev = Conn("only-lobby"), Conn("only-dev")
    w.enter(LOBBY, only_lobby)
    w.enter(DEV, only_dev)
    w.flush()
    w.broadcast(LOBBY, b"lobby-1\n", a)
    w.broadcast(DEV, b"dev-1\n", None)
    w.broadcast(LOBBY, b"lobby-2\n", None)
    assert not (a.out or b.out)  # still lazy, both
    w.flush()
    assert a.outlet.writes == [b"dev-1\nlobby-2\n"]
    assert b.outlet.writes == [b"lobby-1\ndev-1\nlobby-2\n"]
    assert only_lobby.outlet.writes == [b"lobby-1\nlobby-2\n"]
    assert only_dev.outlet.writes == [b"dev-1\n"]


def test_past_the_lazy_channels_bound_a_turn_goes_the_eager_way_in_order() -> None:
    """LAZY_CHANNELS (chatd.outbox): the next channel with readers of several puts the
    lazy lines into their outboxes, in the order made, and is sent as its lines come."""
    w = writer()
    a, b = Conn("a"), Conn("b")
    ops = ("ops", False)
    for conn in (a, b):
        w.enter(ops, conn)
    several(w, a, b)
    w.broadcast(LOBBY, b"lobby-1\n", a)
    w.broadcast(DEV, b"dev-1\n", None)
    w.broadcast(LOBBY, b"lobby-2\n", None)
    assert LAZY_CHANNELS == 2 and not (a.out or b.out)
    w.broadcast(ops, b"ops-1\n", b)
    assert a.out and b.out  # no longer lazy
    w.broadcast(DEV, b"dev-2\n", a)
    w.flush()
    assert a.outlet.writes == [b"dev-1\nlobby-2\nops-1\n"]
    assert b.outlet.writes == [b"lobby-1\ndev-1\nlobby-2\ndev-2\n"]


def test_a_channel_with_lines_before_its_readers_of_several_is_not_lazy() -> None:
    """Its lines of the turn so far went to its one-channel readers only: a newcomer
    reading several channels is sent only what comes after it, into its outbox, after
    the lazy lines it was owed."""
    w = writer()
    a, b, single = Conn("a"), Conn("b"), Conn("single")
    ops = ("ops", False)
    several(w, a, b)
    w.enter(ops, single)
    w.flush()
    w.broadcast(ops, b"ops-1\n", None)  # ops has no reader of several channels yet
    w.enter(ops, a)
    w.broadcast(LOBBY, b"lobby-1\n", None)  # lazy
    w.broadcast(ops, b"ops-2\n", None)  # not lazy: the lazy lines go first
    w.flush()
    assert a.got() == b"lobby-1\nops-2\n"
    assert b.got() == b"lobby-1\n"
    assert single.got() == b"ops-1\nops-2\n"


def test_a_mention_in_a_lazy_turn_reaches_its_reader_in_its_place() -> None:
    w = writer()
    a, b, c = Conn("a"), Conn("b"), Conn("c")
    several(w, a, b, c)
    w.broadcast(LOBBY, b"first\n", None)
    w.broadcast(LOBBY, b"hi b\n", Apart(a, [b]))  # type: ignore[arg-type]
    w.send(b, b"hi b (mention)\n")
    w.flush()
    assert a.got() == b"first\n"
    assert b.got() == b"first\nhi b (mention)\n"
    assert c.got() == b"first\nhi b\n"


def test_a_member_coming_or_going_in_a_lazy_turn_gets_exactly_its_lines() -> None:
    w = writer()
    a, b, comer = Conn("a"), Conn("b"), Conn("comer")
    several(w, a, b)
    w.enter(DEV, comer)
    w.flush()
    w.broadcast(LOBBY, b"before\n", a)
    w.enter(LOBBY, comer)  # now in two channels: nothing from before it came
    w.exit(LOBBY, b)  # gone from lobby: nothing after it left
    w.broadcast(LOBBY, b"after\n", None)
    w.flush()
    assert comer.got() == b"after\n" and b.got() == b"before\n"
    assert a.got() == b"after\n"


def test_a_reader_closed_in_a_lazy_turn_gets_its_lines_then_the_close() -> None:
    w = writer()
    a, b = Conn("a"), Conn("b")
    several(w, a, b)
    w.broadcast(LOBBY, b"last\n", b)
    a.closing = True
    assert w.close_soon(a)
    w.flush()
    assert a.got() == b"last\n" and a.outlet.closed
    assert b.got() == b"" and not b.outlet.closed


@pytest.mark.parametrize("talked", [False, True])
def test_paced_lines_for_a_reader_of_a_lazy_turn_come_after_its_lines(talked: bool) -> None:
    """A resume's replay begun in a lazy turn (PROTOCOL.txt 10.2) comes after what the
    turn owed the reader before it, and before what comes after."""
    w = writer()
    a, b = Conn("a"), Conn("b")
    several(w, a, b)
    w.broadcast(LOBBY, b"before\n", None)
    if talked:
        w.broadcast(LOBBY, b"a says\n", a)
    w.send_paced(a, iter([b"replay\n"]))
    w.broadcast(LOBBY, b"after\n", b)
    w.flush()
    assert a.got() == b"before\nreplay\nafter\n"
    assert b.got() == b"before\n" + (b"a says\n" if talked else b"")


def test_a_text_reader_gets_its_other_rooms_prefixed_and_switches_between_them() -> None:
    """PROTOCOL.txt 17.10: each room's line is encoded once per channel: JSON, text and
    text with "[room] " before each line."""
    w = writer()
    j, t = Conn("j"), Conn("t", text=True)
    w.enter_room("lobby", j)
    w.enter_room("lobby", t, prefixed=True)
    w.enter_room("dev", t)
    lobby = p.Chat("bob", "hi\nthere", "1", "t", room="lobby")
    w.broadcast_update("lobby", lobby, None)
    w.broadcast_update("dev", p.Joined("dan", "dev", "dan joined", "2", "t"), None)
    w.exit_room("lobby", t)  # a switch to lobby: the two rooms swap channels
    w.enter_room("lobby", t)
    w.exit_room("dev", t)
    w.enter_room("dev", t, prefixed=True)
    w.broadcast_update("dev", p.Chat("dan", "yo", "3", "t", room="dev"), None)
    w.multicast_update("dev", p.Renamed("d", "dan", "dev", "dan is now known as d", "4"),
                       [t])
    w.flush()
    assert j.got() == p.encode_json(lobby)
    assert t.got().decode().splitlines() == [
        "[lobby] <bob> hi", "[lobby]   there", "* dan joined", "[dev] <dan> yo",
        "[dev] * dan is now known as d"]


def test_a_history_page_of_a_room_a_text_reader_has_among_its_others_is_prefixed() -> None:
    """PROTOCOL.txt 17.10, 3.8: a page of a room that a text-mode reader reads with the
    room's name before each line (not its current room) comes prefixed too, its
    history_end included; its current room's page does not."""
    w = writer()
    t = Conn("t", text=True)
    w.enter_room("lobby", t, prefixed=True)
    w.enter_room("dev", t)
    line = p.Chat("bob", "hi", "1", "2026-01-01T00:00:00.000Z", room="Lobby", history=True)
    w.send_page(t, Page(t, "Lobby", [line], True, False, 1 << 16))
    w.send_page(t, Page(t, "dev", [replace(line, room="dev")], True, False, 1 << 16))
    w.flush()
    shown = t.got().decode().splitlines()
    assert [row.startswith("[Lobby] ") for row in shown] == [True, True, False, False], shown


# ------------------------------------------------------------------ paced lines (8.2, 10.2)


def _lines(count: int, size: int) -> list[bytes]:
    return [b"%03d" % i + b"x" * (size - 4) + b"\n" for i in range(count)]


def test_paced_lines_keep_at_most_half_the_send_queue_unsent() -> None:
    """PROTOCOL.txt 8.2: a replay far over the bound goes out as the client reads it,
    after the welcome and before the live lines that came meanwhile; nothing is cut off."""
    w = writer(max_send_queue=100)
    a, b = Conn("a"), Conn("b")
    w.enter(LOBBY, a)
    w.enter(LOBBY, b)
    w.send(a, b"welcome\n")
    replay = _lines(20, 20)
    w.send_paced(a, iter(replay))
    w.broadcast(LOBBY, b"live\n", b)
    w.flush()
    assert a.outlet.writes == [b"welcome\n", *replay[:3]]  # 8 + 20 + 20 < 50 <= 68
    while a.outlet.unsent:
        assert a.outlet.unsent <= 50 + 20
        a.outlet.unsent = 0  # the client reads all
        w.pace()
    assert a.got() == b"welcome\n" + b"".join(replay) + b"live\n"
    assert a.dropped is None and w.cut_off == 0


def test_lines_waiting_behind_paced_ones_are_bounded() -> None:
    """PROTOCOL.txt 8.2: a client that does not read is cut off by what waits behind its
    replay (more than half the send queue), as by its send queue."""
    w = writer(max_send_queue=100)
    a, b = Conn("a"), Conn("b")
    w.enter(LOBBY, a)
    w.enter(LOBBY, b)
    w.send_paced(a, iter(_lines(20, 20)))
    w.flush()
    for i in range(4):  # 44 bytes wait
        w.broadcast(LOBBY, b"%02d" % i + b"y" * 8 + b"\n", b)
        w.flush()
    assert a.dropped is None
    w.broadcast(LOBBY, b"y" * 11 + b"\n", b)
    w.flush()
    assert a.dropped == "send queue full" and w.cut_off == 1
    w.pace()
    assert not w._paced  # forgotten once it is gone


def test_close_after_paced_lines_waits_for_them() -> None:
    w = writer(max_send_queue=100)
    a = Conn("a")
    w.enter(LOBBY, a)
    replay = _lines(5, 20)
    w.send_paced(a, iter(replay))
    w.send(a, b"bye\n")
    a.closing = True
    w.exit(LOBBY, a)
    assert w.close_soon(a)
    w.flush()
    assert not a.outlet.closed
    while not a.outlet.closed:
        a.outlet.unsent = 0
        w.pace()
    assert a.got() == b"".join(replay) + b"bye\n"


# ------------------------------------------------------------------ spreading (SPREAD_AFTER)


class WriteClock:
    """A clock that moves only when an outlet is written: 10 µs a write."""

    def __init__(self) -> None:
        self.writes = 0

    def __call__(self) -> float:
        return self.writes * 1e-5

    def conn(self, name: str) -> Conn:
        conn = Conn(name)
        write = conn.outlet.write  # through `send` or not (Outlet.direct)

        def counted(data: bytes) -> None:
            self.writes += bool(data)
            write(data)

        conn.outlet.write = counted  # type: ignore[method-assign]
        return conn


class Loop:
    """What the writer asks of the event loop: when its next flush is due."""

    def __init__(self) -> None:
        self.due: list[float] = []  # seconds from now of each flush scheduled

    def call_soon(self, callback: object) -> None:
        self.due.append(0.0)

    def call_later(self, delay: float, callback: object) -> None:
        self.due.append(delay)


def test_only_a_costly_room_makes_the_next_flush_wait() -> None:
    """SPREAD_AFTER: after a room of 1,000 (10 ms a flush here) the next flush waits as
    long, so a burst of joins goes out in one; after a flush of five rooms of 100 (1 ms
    each, 5 ms in all, as in a busy city), or of one room of 300 (3 ms: the largest of
    city-multi, read whole), the next goes out in the next loop turn."""
    clock = WriteClock()
    w = Writer(1 << 20, ServerLog("warning", io.StringIO()), clock=clock)
    loop = Loop()
    w.loop = loop  # type: ignore[assignment]
    big = [clock.conn(f"b{i}") for i in range(1000)]
    for conn in big:
        w.enter(DEV, conn)
    hundreds = ("hundreds", False)
    for i in range(300):
        w.enter(hundreds, clock.conn(f"h{i}"))
    w.broadcast(hundreds, b"hello\n", None)
    w.flush()
    w.broadcast(hundreds, b"again\n", None)
    w.flush()
    assert loop.due == [0.0, 0.0]
    loop.due.clear()
    rooms = [(f"r{r}", False) for r in range(5)]
    small = [[clock.conn(f"s{r}.{i}") for i in range(100)] for r in range(5)]
    for room, members in zip(rooms, small, strict=True):
        for conn in members:
            w.enter(room, conn)

    for room in rooms:
        w.broadcast(room, b"hello\n", None)
    w.flush()
    w.broadcast(rooms[0], b"again\n", None)
    assert loop.due == [0.0, 0.0]

    w.flush()
    w.broadcast(DEV, b"join 1\n", None)
    w.broadcast(rooms[0], b"hello\n", None)
    w.flush()  # 10 ms in the room of 1,000, 1 ms in the other
    w.broadcast(DEV, b"join 2\n", None)
    assert loop.due[-1] == pytest.approx(0.011)
    w.flush()  # 10 ms again
    w.broadcast(rooms[1], b"hello\n", None)
    assert loop.due[-1] == pytest.approx(0.01)
    w.flush()  # 1 ms: back to the next turn
    w.broadcast(rooms[1], b"hello\n", None)
    assert loop.due[-1] == 0.0
    assert big[0].got() == b"join 1\njoin 2\n"


def test_a_flush_put_behind_the_readers_writes_what_they_cause_in_the_same_turn() -> None:
    """Bytes fed to two stream readers in one loop turn wake their tasks for the next
    one, where a flush is already due (output of the turn before): put behind the
    readers, it writes their lines too, one write per member, in that turn."""
    loop = uvloop.new_event_loop()
    w = writer()
    w.loop = loop
    a, b = Conn("a"), Conn("b")
    for conn in (a, b):
        w.enter(LOBBY, conn)

    def reader(line: bytes) -> Callable[[], None]:
        return lambda: w.broadcast(LOBBY, line, None)

    async def turns() -> None:
        w.send(a, b"reply\n")  # a flush is due in the next turn
        for line in (b"one\n", b"two\n"):
            loop.call_soon(reader(line))  # a reader's task, woken by its bytes
            w.flush_after_readers()
        await asyncio.sleep(0)  # back after the next turn's callbacks
        assert a.outlet.writes == [b"reply\none\ntwo\n"]
        assert b.outlet.writes == [b"one\ntwo\n"]

    try:
        loop.run_until_complete(turns())
    finally:
        loop.close()


def test_readers_a_line_names_get_their_own_marked_copy_in_its_place() -> None:
    """PROTOCOL.txt 18.6: the JSON readers a room line names get a copy with "mention"
    where the line stands among the turn's others; the rest share one encoding; text
    readers see it as ever; the sender gets nothing of it."""
    w = writer()
    sender, named, other, text = Conn("s"), Conn("n"), Conn("o"), Conn("t", text=True)
    for conn in (sender, named, other, text):
        w.enter_room("lobby", conn)
    before = p.Chat("bob", "one", "1", "t", room="lobby")
    line = p.Chat("bob", "hi n", "2", "t", room="lobby")
    after = p.Chat("bob", "three", "3", "t", room="lobby")
    w.broadcast_update("lobby", before, sender)
    w.broadcast_mentioning("lobby", line, sender, [named])
    w.broadcast_update("lobby", after, sender)
    w.flush()
    marked = p.encode_json(p.Chat("bob", "hi n", "2", "t", room="lobby", mention=True))
    assert b'"mention":true' in marked
    assert named.got() == p.encode_json(before) + marked + p.encode_json(after)
    assert other.got() == b"".join(p.encode_json(u) for u in (before, line, after))
    assert text.got() == b"<bob> one\n<bob> hi n\n<bob> three\n"
    assert sender.got() == b""


def test_the_senders_other_devices_get_their_own_copy_marked_own() -> None:
    """PROTOCOL.txt 18.4: the sender's other JSON devices get a copy with "own" in the
    line's place, beside a reader it names (18.6); the rest share one encoding."""
    w = writer()
    sender, phone, named, other = Conn("s"), Conn("p"), Conn("n"), Conn("o")
    for conn in (sender, phone, named, other):
        w.enter_room("lobby", conn)
    before = p.Chat("bob", "one", "1", "t", room="lobby")
    line = p.Chat("bob", "hi n", "2", "t", room="lobby")
    w.broadcast_update("lobby", before, sender)
    w.broadcast_mentioning("lobby", line, sender, [named], [phone])
    w.flush()
    own = p.encode_json(p.Chat("bob", "hi n", "2", "t", room="lobby", own=True))
    assert b'"own":true' in own and b"mention" not in own
    assert phone.got() == p.encode_json(before) + own
    assert b'"mention":true' in named.got()
    assert other.got() == p.encode_json(before) + p.encode_json(line)
    assert sender.got() == b""
