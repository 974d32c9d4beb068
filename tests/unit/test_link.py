"""Unit tests of chatd.link, one connection's protocol without sockets or an event loop.

Each test cites the PROTOCOL.txt section it checks. The clock is a number passed in.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chatd import protocol as p
from chatd.admission import Refusal
from chatd.backlog import HELD_LINE_OVERHEAD
from chatd.effects import Abort, Close, Deliver, Leave, LinkOp, Log, Send
from chatd.link import Link, LinkConfig, Mode
from chatd.protocol import ErrorCode
from chatd.textlogin import GREETING, GREETING_PASSWORD, PASSWORD_PROMPT

T0 = 1000.0
PEER = "conn"  # what the shell names the connection by: opaque to the link
Action = LinkOp[str]
OPEN = LinkConfig(rate=0)  # flood control off unless a test is about it


def events(actions: list[Action]) -> list[p.Event]:
    return [a.event for a in actions if isinstance(a, Deliver)]


def sent(actions: list[Action]) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, Send)]


def errors(actions: list[Action]) -> list[dict[str, Any]]:
    out = []
    for data in sent(actions):
        for line in data.splitlines():
            if line.startswith(b"{"):
                msg = json.loads(line)
                if msg["type"] == "error":
                    out.append(msg)
    return out


def joined_link(config: LinkConfig = OPEN, mode: Mode = Mode.UNKNOWN) -> Link[str]:
    link = Link(PEER, config, T0, mode=mode)
    assert isinstance(events(link.receive_data(b'{"type":"connect","name":"a"}\n', T0))[0],
                      p.Connect)
    assert link.settle(True, T0) == []
    return link


# --------------------------------------------------------------------------- framing


def test_lines_split_at_newline_and_crlf() -> None:
    """PROTOCOL.txt 1.2: "\\n" ends a line, "\\r\\n" is accepted."""
    link = joined_link()
    got = events(link.receive_data(b'{"type":"message","message":"x"}\r\n{"type":"who"}\n', T0))
    assert got == [p.Message("x"), p.Who()]


def test_a_line_over_the_limit_is_line_too_long_and_the_next_one_works() -> None:
    """PROTOCOL.txt 8.1: line_too_long once, the rest of the line skipped, then go on."""
    link = joined_link(LinkConfig(rate=0, max_line_bytes=40))
    out = link.receive_data(b'{"type":"message","message":"' + b"x" * 100, T0)
    assert [e["code"] for e in errors(out)] == [ErrorCode.LINE_TOO_LONG]
    out = link.receive_data(b"x" * 1000 + b'"}\n{"type":"who"}\n', T0)
    assert events(out) == [p.Who()] and errors(out) == []


def test_a_tls_hello_on_a_plaintext_port_aborts() -> None:
    """PROTOCOL.txt 11.1: a TLS handshake on a plaintext port is closed at once."""
    link = Link(PEER, OPEN, T0, detect_tls=True)
    out = link.receive_data(b"\x16\x03\x01\x02\x00", T0)
    assert isinstance(out[-1], Abort) and link.closed
    assert link.receive_data(b"alice\n", T0) == []


def test_eof_delivers_the_last_unterminated_line_then_leaves_cleanly() -> None:
    """PROTOCOL.txt 2.4: EOF is a clean leave; a last line without "\\n" still counts."""
    link = joined_link()
    assert link.receive_data(b'{"type":"message","message":"bye"}', T0) == []
    out = link.receive_eof(T0)
    assert events(out) == [p.Message("bye")]
    assert out[-2:] == [Leave(PEER, None), Close(PEER)]
    assert link.receive_eof(T0) == []


CHAT = [b'{"type":"connect","name":"alice"}', b'{"type":"message","message":"h\xc3\xa9"}',
        b"", b'{"type":"who"}', b'{"type":"message","message":"\xf0\x9f\x98\x80"}',
        b'{"type":"rooms"}']


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=30), st.booleans())
def test_any_chunking_gives_the_same_actions(cuts: list[int], crlf: bool) -> None:
    """PROTOCOL.txt 1.2: how the stream is cut into reads changes nothing."""
    stream = b"".join(line + (b"\r\n" if crlf else b"\n") for line in CHAT)
    whole = Link(PEER, OPEN, T0)
    expected = whole.receive_data(stream, T0)
    expected += whole.settle(True, T0)
    link = Link(PEER, OPEN, T0)
    got: list[Action] = []
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    for start, end in itertools.pairwise(points):
        got += link.receive_data(stream[start:end], T0)
    got += link.settle(True, T0)
    assert events(got) == events(expected)
    assert events(got)[1:] == [p.Message("hé"), p.Who(), p.Message("😀"), p.Rooms()]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=10))
def test_any_bytes_in_any_chunks_never_raise(data: bytes, cuts: list[int]) -> None:
    """PROTOCOL.txt 7: any input gets events or error lines; the link never raises."""
    link = Link(PEER, LinkConfig(rate=0, max_line_bytes=50), T0, detect_tls=True)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(points):
        for action in link.receive_data(data[start:end], T0):
            if isinstance(action, Deliver) and isinstance(action.event, p.Connect):
                link.settle(False, T0)
    link.receive_eof(T0)
    assert link.closed


# --------------------------------------------------------------------------- mode and login


def test_mode_is_decided_by_the_first_line() -> None:
    """PROTOCOL.txt 2.1: "{" first means JSON mode, anything else is text mode."""
    json_link, text_link = Link(PEER, OPEN, T0), Link(PEER, OPEN, T0)
    json_link.receive_data(b'  {"type":"connect"}\n', T0)
    text_link.receive_data(b"alice\n", T0)
    assert json_link.mode is Mode.JSON and text_link.mode is Mode.TEXT
    assert text_link.text and not json_link.text


def test_text_mode_first_line_is_the_name_then_lines_are_chat() -> None:
    """PROTOCOL.txt 6.1, 6.2."""
    link = Link(PEER, OPEN, T0)
    out = link.receive_data(b"alice\nhello\n", T0)
    assert events(out) == [p.Connect(name="alice", text=True)]
    assert events(link.settle(True, T0)) == [p.Message("hello")]
    assert events(link.receive_data(b"/who\n", T0)) == [p.Who()]


def test_text_mode_password_prompt_then_password_line() -> None:
    """PROTOCOL.txt 11.2: text mode asks "* password:" after the name."""
    link = Link(PEER, LinkConfig(rate=0, password="s3cret"), T0)
    out = link.receive_data(b"alice\n", T0)
    assert sent(out) == [PASSWORD_PROMPT] and events(out) == []
    out = link.receive_data(b"s3cret\n", T0)
    assert events(out) == [p.Connect(name="alice", password="s3cret", text=True)]


def test_a_blank_first_line_is_the_default_name() -> None:
    """PROTOCOL.txt 6.1: Enter alone at nc joins under the default name (5.1 makes "" 익명),
    greeted or not; only as the first line: the blank line that ends an HTTP request
    sent to the chat port, after its refused "names", joins nobody."""
    for first in (b"\n", b"  \r\n"):
        link = Link(PEER, OPEN, T0)
        name = first.removesuffix(b"\n").removesuffix(b"\r").decode()
        assert events(link.receive_data(first, T0)) == [p.Connect(name=name, text=True)]
        assert link.text
    link = Link(PEER, OPEN, T0)
    out = link.receive_data(b"GET / HTTP/1.1\r\n", T0)
    assert events(out) == [p.Connect(name="GET / HTTP/1.1", text=True)]
    link.settle(False, T0)  # bad_name
    assert link.receive_data(b"\r\n", T0) == []


def test_blank_lines_stay_ignored_in_json_mode_and_once_joined() -> None:
    """PROTOCOL.txt 1.2: a JSON client's blank lines, and blank lines after joining, are
    nothing."""
    link = Link(PEER, OPEN, T0)
    link.receive_data(b'{"type":"connect","name":" "}\n', T0)
    link.settle(False, T0)  # refused: a JSON connection stays JSON
    assert link.receive_data(b"\n\n", T0) == []
    text = Link(PEER, OPEN, T0)
    text.receive_data(b"alice\n", T0)
    assert text.receive_data(b"\n", T0) == []  # while the name is decided
    text.settle(True, T0)
    assert text.receive_data(b"  \n", T0) == []


def test_text_mode_blank_name_and_enter_at_the_password_prompt() -> None:
    """PROTOCOL.txt 6.1, 11.2: with a password, a blank name is still the default name and
    the password is asked; Enter alone at the prompt asks again."""
    link = Link(PEER, LinkConfig(rate=0, password="s3cret"), T0)
    out = link.receive_data(b"\n", T0)
    assert sent(out) == [PASSWORD_PROMPT] and events(out) == []
    out = link.receive_data(b"\n", T0)
    assert sent(out) == [PASSWORD_PROMPT] and events(out) == []
    out = link.receive_data(b"s3cret\n", T0)
    assert events(out) == [p.Connect(name="", password="s3cret", text=True)]


def test_text_mode_private_line_is_shown_to_its_sender() -> None:
    """PROTOCOL.txt 6.2: /msg shows the sender "-> *NAME* TEXT" before the hub has it."""
    link = Link(PEER, OPEN, T0)
    link.receive_data(b"alice\n", T0)
    link.settle(True, T0)
    out = link.receive_data(b"/msg bob hi \xe2\x80\xae there\n", T0)
    assert out == [Send(PEER, "-> *bob* hi \ufffd there\n".encode()),
                   Deliver(PEER, p.Message("hi \u202e there", to="bob"))]
    assert sent(link.receive_data(b"hello\n", T0)) == []  # a room line: no echo


def test_a_wrong_password_closes_without_reaching_the_hub() -> None:
    """PROTOCOL.txt 11.2: auth_failed, then close; the connect is not delivered."""
    link = Link(PEER, LinkConfig(rate=0, password="s3cret"), T0)
    out = link.receive_data(b'{"type":"connect","name":"a","password":"guess"}\n', T0)
    assert events(out) == [] and [e["code"] for e in errors(out)] == [ErrorCode.AUTH_FAILED]
    assert Close(PEER) in out and link.closed
    assert not any(isinstance(a, Log) and "guess" in a.text for a in out)


def test_lines_wait_while_the_connect_is_decided_and_go_on_in_order() -> None:
    """PROTOCOL.txt 8.8: lines sent before the welcome are held, then handled in order."""
    link = Link(PEER, OPEN, T0)
    out = link.receive_data(b'{"type":"connect","name":"a"}\n{"type":"message","message":"1"}\n'
                            b'{"type":"message","message":"2"}\n', T0)
    assert events(out) == [p.Connect(name="a")]
    assert events(link.receive_data(b'{"type":"message","message":"3"}\n', T0)) == []
    assert events(link.settle(True, T0)) == [p.Message("1"), p.Message("2"), p.Message("3")]


def test_a_refused_connect_lets_the_next_connect_through() -> None:
    """PROTOCOL.txt 5.1: after bad_name the connection may try again."""
    link = Link(PEER, OPEN, T0)
    out = link.receive_data(b'{"type":"connect","name":" "}\n{"type":"connect","name":"b"}\n'
                            b'{"type":"who"}\n', T0)
    assert events(out) == [p.Connect(name=" ")]
    out = link.settle(False, T0)
    assert events(out) == [p.Connect(name="b")]  # the who waits for this connect now
    assert events(link.settle(True, T0)) == [p.Who()]


def test_the_backlog_is_bounded_in_bytes() -> None:
    """PROTOCOL.txt 8.8: past the bound in bytes (each line's overhead counted), held lines
    are dropped with rate_limited and their ref; the ones held go on."""
    line = b'{"type":"message","message":"%s","ref":"r%d"}\n'
    big = [line % (b"x" * 60_000, i) for i in range(3)]
    link = Link(PEER, LinkConfig(rate=0), T0)  # 128 KiB: two lines of the largest size
    out = link.receive_data(b'{"type":"connect","name":"a"}\n' + b"".join(big), T0)
    assert [(e["code"], e.get("ref")) for e in errors(out)] == [(ErrorCode.RATE_LIMITED, "r2")]
    assert len(events(link.settle(True, T0))) == 2
    small = Link(PEER, LinkConfig(rate=0, backlog_bytes=10 * (HELD_LINE_OVERHEAD + 2)), T0)
    out = small.receive_data(b'{"type":"connect","name":"a"}\n' + b"{}\n" * 100, T0)
    assert len(errors(out)) == 90  # empty lines are not free
    assert len(small.backlog or ()) == 10


# --------------------------------------------------------------------------- flood control


def test_flood_control_drops_with_the_lines_ref_then_disconnects() -> None:
    """PROTOCOL.txt 8.3: rate_limited per dropped line (with its ref), then excess_flood."""
    link = joined_link(LinkConfig(rate=1, burst=2))
    line = b'{"type":"message","message":"x","ref":"r%d"}\n'
    out = link.receive_data(b"".join(line % i for i in range(3)), T0)
    assert len(events(out)) == 1  # the connect took one of the two tokens
    assert [(e["code"], e.get("ref")) for e in errors(out)] == [
        (ErrorCode.RATE_LIMITED, "r1"), (ErrorCode.RATE_LIMITED, "r2")]
    out = link.receive_data(b"".join(line % i for i in range(3, 10)), T0)
    assert ErrorCode.EXCESS_FLOOD in [e["code"] for e in errors(out)]
    assert Leave(PEER, "excess flood", resumable=False) in out and link.closed


def test_tokens_come_back_with_time() -> None:
    """PROTOCOL.txt 8.3: the bucket refills at --rate."""
    link = joined_link(LinkConfig(rate=2, burst=1))
    who = b'{"type":"who"}\n'
    assert errors(link.receive_data(who, T0))  # the connect used the only token
    assert events(link.receive_data(who, T0 + 0.5)) == [p.Who()]


def test_flood_control_counts_bytes_and_names_the_byte_limit() -> None:
    """PROTOCOL.txt 8.3: 64 KiB at once, then 4 KiB a second; a JSON line dropped for its
    bytes gets rate_limited with its ref, a text one is named by its start."""
    link = joined_link(LinkConfig())
    line = b'{"type":"message","message":"%s","ref":"r%d"}\n'
    out = link.receive_data(b"".join(line % (b"x" * 40_000, i) for i in range(3)), T0)
    assert len(events(out)) == 2  # 40,000 + 40,000: the second went into debt
    [error] = errors(out)
    assert (error["code"], error["ref"]) == (ErrorCode.RATE_LIMITED, "r2")
    assert error["message"] == ("more than 4,096 bytes a second (after 65,536 at once); "
                                "line dropped")
    text = Link(PEER, LinkConfig(), T0)
    text.receive_data(b"tina\n", T0)
    text.settle(True, T0)
    out = text.receive_data(b"a" * 65_000 + b"\n" + b"a" * 1_000 + b"\n" + b"b" * 100
                            + b"\n", T0)
    assert sent(out)[-1] == (b"! rate_limited: more than 4,096 bytes a second (after 65,536 "
                             b"at once); not sent: " + b"b" * 60 + b"...\n")
    assert events(text.receive_data(b"c\n", T0 + 0.1)) == []  # still in debt
    assert events(text.receive_data(b"c\n", T0 + 1.0)) == [p.Message("c")]


# --------------------------------------------------------------------------- deadlines


def test_registration_timeout() -> None:
    """PROTOCOL.txt 8.4: no connect within --registration-timeout closes the connection."""
    link = Link(PEER, LinkConfig(rate=0, registration_timeout=30, greet_after=0), T0)
    assert link.tick(T0 + 29.9) == []
    out = link.tick(T0 + 30)
    assert [e["code"] for e in errors(out)] == [ErrorCode.REGISTRATION_TIMEOUT]
    assert out[-1] == Close(PEER) and link.closed and link.tick(T0 + 60) == []


def test_keepalive_pings_then_times_out_json_only() -> None:
    """PROTOCOL.txt 8.5: ping after --ping-interval of silence, ping_timeout after more."""
    config = LinkConfig(rate=0, ping_interval=25, ping_timeout=20)
    link = joined_link(config)
    assert link.tick(T0 + 24) == []
    assert sent(link.tick(T0 + 25)) == [b'{"type":"ping"}\n']
    assert link.tick(T0 + 30) == []  # one ping per silence
    out = link.tick(T0 + 45)
    assert [e["code"] for e in errors(out)] == [ErrorCode.PING_TIMEOUT]
    assert Leave(PEER, "ping timeout") in out
    answered = joined_link(config)
    answered.tick(T0 + 25)
    answered.receive_data(b'{"type":"pong"}\n', T0 + 26)
    assert answered.tick(T0 + 45) == []
    text = Link(PEER, config, T0)
    text.receive_data(b"nc-user\n", T0)
    text.settle(True, T0)
    assert text.tick(T0 + 1000) == []  # nc readers are not pinged


STEP = st.one_of(
    st.tuples(st.just("tick"), st.floats(0, 30)),
    st.tuples(st.just("data"), st.sampled_from([
        b'{"type":"pong"}\n', b'{"type":"message","message":"hi"}\n', b"half a li",
        b"ne\n", b"\n", b'{"type":"connect","name":"a"}\n', b"bob\n"])),
    st.tuples(st.just("settle"), st.booleans()),
)


def test_due_is_the_next_keepalive_deadline() -> None:
    """PROTOCOL.txt 8.5: `Link.due`, the time the housekeeper next asks the link, is
    exactly when the next ping or ping timeout falls; input, which only puts them off,
    leaves it; after a ping it is no later than an answer could bring the next ping."""
    config = LinkConfig(rate=0, ping_interval=25, ping_timeout=20)
    link = joined_link(config)
    assert link.due == 0  # not asked since it joined
    assert link.tick(T0 + 1) == [] and link.due == T0 + 25
    assert sent(link.tick(T0 + 25)) == [b'{"type":"ping"}\n'] and link.due == T0 + 45
    link.receive_data(b'{"type":"pong"}\n', T0 + 26)
    assert link.due == T0 + 45  # asked then, it finds the next ping's time
    assert link.tick(T0 + 45) == [] and link.due == T0 + 51
    eager = joined_link(LinkConfig(rate=0, ping_interval=10, ping_timeout=40))
    assert eager.tick(T0 + 1) == [] and eager.due == T0 + 10
    assert sent(eager.tick(T0 + 10)) == [b'{"type":"ping"}\n'] and eager.due == T0 + 20
    text = started("joined text", config)
    assert text.tick(T0 + 1) == [] and text.due == float("inf")
    new = Link(PEER, config, T0)
    assert sent(new.tick(T0 + 1)) == [GREETING] and new.due == 0  # asked every time


def test_a_ping_sent_late_still_leaves_the_whole_timeout_to_answer() -> None:
    """PROTOCOL.txt 8.5: closed when silent for the ping timeout *after the ping*. A crowd
    seated at once is pinged a few hundred a second (chatd.housekeeping), so a ping can
    leave long after its time; the timeout once ran from that time, and such a client
    was closed at the next look, before its answer could come."""
    link = joined_link(LinkConfig(rate=0, ping_interval=25, ping_timeout=20))
    assert link.tick(T0 + 1) == [] and link.due == T0 + 25
    assert sent(link.tick(T0 + 60)) == [b'{"type":"ping"}\n']  # 35 s after its time
    assert link.tick(T0 + 60.02) == [] and link.due == T0 + 80
    assert link.tick(T0 + 79.9) == []
    assert b'"code":"ping_timeout"' in b"".join(sent(link.tick(T0 + 80)))


def started(how: str, config: LinkConfig) -> Link[str]:
    if how == "joined json":
        return joined_link(config)
    if how == "joined text":
        link = Link(PEER, config, T0)
        link.receive_data(b"nc-user\n", T0)
        link.settle(True, T0)
        return link
    return Link(PEER, config, T0, mode=Mode.JSON if how == "web" else Mode.UNKNOWN)


@given(st.sampled_from(["joined json", "joined text", "new", "web"]),
       st.sampled_from([(25, 20), (10, 40), (0, 20), (1, 0.5)]),
       st.lists(STEP, max_size=30))
@settings(max_examples=400)
def test_the_housekeepers_skip_until_due_changes_nothing(
        start: str, ping: tuple[float, float], steps: list[tuple[str, Any]]) -> None:
    """PROTOCOL.txt 8.4, 8.5: the housekeeper asks a link for its deadlines only from
    `Link.due` on; a link asked only then acts as one asked every time (same actions at
    the same times), whatever comes in between."""
    config = LinkConfig(rate=0, ping_interval=ping[0], ping_timeout=ping[1],
                        registration_timeout=60, greet_after=1)
    every, skipping = started(start, config), started(start, config)
    now = T0
    for kind, arg in steps:
        if kind == "tick":
            now += arg
            asked = every.tick(now)
            assert (skipping.tick(now) if skipping.due <= now else []) == asked
        elif kind == "data":
            assert skipping.receive_data(arg, now) == every.receive_data(arg, now)
        elif every.phase is skipping.phase and every.phase.name == "JOINING":
            assert skipping.settle(arg, now) == every.settle(arg, now)


def test_a_silent_new_connection_is_greeted_once_in_text() -> None:
    """PROTOCOL.txt 6.1: a person at nc learns what to type; a JSON client that sent its
    connect at once never sees the greeting."""
    link = Link(PEER, LinkConfig(rate=0, greet_after=1), T0)
    assert link.tick(T0 + 0.5) == []
    assert sent(link.tick(T0 + 1)) == [GREETING]
    assert link.tick(T0 + 2) == []
    prompt = Link(PEER, LinkConfig(rate=0, greet_after=1, password="pw"), T0)
    assert sent(prompt.tick(T0 + 1)) == [GREETING_PASSWORD]
    quick = Link(PEER, LinkConfig(rate=0, greet_after=1), T0)
    quick.receive_data(b'{"type":"connect","name":"a"}\n', T0 + 0.1)
    assert quick.tick(T0 + 5) == []
    typing = Link(PEER, LinkConfig(rate=0, greet_after=1), T0)
    typing.receive_data(b"ali", T0 + 0.5)  # half a name: no greeting in the middle
    assert typing.tick(T0 + 5) == []
    web = Link(PEER, LinkConfig(rate=0, greet_after=1), T0, mode=Mode.JSON)
    assert web.tick(T0 + 5) == []


def test_text_mode_names_each_line_flood_control_dropped() -> None:
    """PROTOCOL.txt 8.3: a person cannot tell which line was dropped without its start."""
    link = Link(PEER, LinkConfig(rate=1, burst=2), T0)
    link.receive_data(b"tina\n", T0)
    link.settle(True, T0)
    out = link.receive_data(b"line one\nline two\n" + b"x" * 100 + b"\n", T0)
    assert events(out) == [p.Message("line one")]
    texts = [d.decode() for d in sent(out)]
    assert texts == ["! rate_limited: more than 1 lines a second; not sent: line two\n",
                     "! rate_limited: more than 1 lines a second; not sent: "
                     + "x" * 60 + "...\n"]


def test_websocket_messages_are_lines_and_json_from_the_start() -> None:
    """PROTOCOL.txt 13.2, 13.3: one message, one line; too long is line_too_long."""
    link = Link(PEER, LinkConfig(rate=0, max_line_bytes=30), T0, mode=Mode.JSON)
    out = link.receive_message(b"alice", T0)
    assert [e["code"] for e in errors(out)] == [ErrorCode.BAD_JSON]
    out = link.receive_message(b'{"type":"connect","name":"a"}\n', T0)
    assert events(out) == [p.Connect(name="a")]
    out = link.receive_message(b"x" * 31, T0)
    assert [e["code"] for e in errors(out)] == [ErrorCode.LINE_TOO_LONG]


def test_errors_are_logged_in_summary_when_they_pile_up() -> None:
    """The log gets the first errors of a window, then a count (PROTOCOL.txt 8.3)."""
    link = joined_link()
    out = link.receive_data(b"{bad\n" * 20, T0)
    logged = [a for a in out if isinstance(a, Log)]
    assert len(errors(out)) == 20 and len(logged) == 5
    assert link.suppressed_errors() == [Log(PEER, "warning", "15 more errors not logged")]


def test_shutdown_and_refusal_lines() -> None:
    """PROTOCOL.txt 2.5 and 8.4."""
    text = Link(PEER, OPEN, T0)
    text.receive_data(b"tina\n", T0)
    assert text.shutdown() == [Send(PEER, b"* server shutting down\n"), Close(PEER)]
    assert json.loads(Refusal(ErrorCode.SERVER_FULL, "full").line()) == {
        "type": "error", "code": ErrorCode.SERVER_FULL, "message": "full"}
    assert json.loads(Refusal(ErrorCode.AUTH_THROTTLED, "wait", retry_after=4).line())[
        "retry_after"] == 4


def test_a_detached_link_forgets_its_peer_and_says_nothing_more() -> None:
    """The shell's connection holds its link and the link names it: `detach` breaks the
    cycle when the connection ends, so neither waits for a full collection."""
    link = joined_link()
    link.detach()
    assert link.peer is None and link.closed
    assert link.receive_data(b"late\n", T0) == link.error("internal", "x", T0) == []
    assert link.suppressed_errors() == link.tick(T0 + 3600) == link.shutdown() == []
