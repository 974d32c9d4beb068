"""Unit tests of chatd.protocol, the pure wire codec (no sockets, no asyncio).

Each test cites the PROTOCOL.txt section it checks.
"""

from __future__ import annotations

import itertools
import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd import protocol as p
from chatd.protocol import LINE_TOO_LONG, ErrorCode, LineSplitter, LineTooLong, ProtocolError

# --------------------------------------------------------------------------- helpers

C0_C1 = [chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
        "\u2069", "\u200e", "\u200f"]


def error_of(fn: Any, *args: Any) -> ProtocolError:
    """The ProtocolError that fn(*args) raises (fails the test if it raises none)."""
    with pytest.raises(ProtocolError) as info:
        fn(*args)
    return info.value


def jline(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def reference_split(stream: bytes, limit: int) -> list[bytes | LineTooLong]:
    """What a LineSplitter must have produced after reading `stream` (PROTOCOL.txt 1.2, 8.1).

    Every complete line, less one trailing "\\r", or LINE_TOO_LONG when it is over the
    limit; plus LINE_TOO_LONG for an unfinished line that has already passed the limit
    (a held "\\r" may still turn out to be the line end, so it does not count yet).
    """
    *complete, tail = stream.split(b"\n")
    out: list[bytes | LineTooLong] = []
    for line in complete:
        body = line[:-1] if line.endswith(b"\r") else line
        out.append(LINE_TOO_LONG if len(body) > limit else body)
    body = tail[:-1] if tail.endswith(b"\r") else tail
    if len(body) > limit:
        out.append(LINE_TOO_LONG)
    return out


# --------------------------------------------------------------------------- framing


def test_splitter_splits_lines_and_keeps_the_unfinished_one() -> None:
    """PROTOCOL.txt 1.2: a line ends with "\\n"; an unfinished line waits for more bytes."""
    s = LineSplitter(100)
    assert s.feed(b"one\ntwo\nthr") == [b"one", b"two"]
    assert s.pending == 3
    assert s.feed(b"ee\n") == [b"three"]
    assert s.pending == 0
    assert s.feed(b"") == []


def test_splitter_drops_one_cr_before_lf() -> None:
    """PROTOCOL.txt 1.2: "\\r\\n" is accepted too (the "\\r" is dropped)."""
    s = LineSplitter(100)
    assert s.feed(b"a\r\nb\r\r\nc\rd\n") == [b"a", b"b\r", b"c\rd"]


def test_splitter_cr_and_lf_in_separate_feeds() -> None:
    """PROTOCOL.txt 1.2: "\\r" and "\\n" may arrive in different reads."""
    s = LineSplitter(4)
    assert s.feed(b"abcd") == []
    assert s.feed(b"\r") == []
    assert s.feed(b"\n") == [b"abcd"]


def test_splitter_line_split_byte_by_byte() -> None:
    """PROTOCOL.txt 1.2: framing does not depend on how the bytes were cut into reads."""
    s = LineSplitter(100)
    data = '{"type":"message","message":"한글 👋"}\r\n'.encode()
    out: list[bytes | LineTooLong] = []
    for i in range(len(data)):
        out += s.feed(data[i : i + 1])
    assert out == [data[:-2]]


def test_splitter_yields_blank_lines_for_the_caller_to_ignore() -> None:
    """PROTOCOL.txt 1.2: blank lines reach the caller as b"" (which ignores them)."""
    assert LineSplitter(10).feed(b"\n\r\nx\n") == [b"", b"", b"x"]


def test_splitter_line_of_exactly_the_limit_is_accepted() -> None:
    """PROTOCOL.txt 1.4: at most max bytes, not counting the "\\n" (or "\\r\\n")."""
    s = LineSplitter(4)
    assert s.feed(b"abcd\nabcd\r\n") == [b"abcd", b"abcd"]


def test_splitter_too_long_complete_line_then_a_good_one() -> None:
    """PROTOCOL.txt 8.1: a longer line gives line_too_long once, the next line is handled."""
    s = LineSplitter(4)
    assert s.feed(b"abcdefgh\nok\n") == [LINE_TOO_LONG, b"ok"]


def test_splitter_reports_too_long_before_the_newline_arrives() -> None:
    """PROTOCOL.txt 8.1: line_too_long "as soon as it passes the limit", rest thrown away."""
    s = LineSplitter(4)
    assert s.feed(b"abcdefg") == [LINE_TOO_LONG]
    assert s.pending == 0
    assert s.feed(b"x" * 10_000) == []
    assert s.pending == 0
    assert s.feed(b"tail\nok\n") == [b"ok"]


def test_splitter_one_byte_over_the_limit_is_too_long_at_once() -> None:
    """PROTOCOL.txt 8.1: limit+1 bytes that are not a "\\r" have passed the limit already."""
    s = LineSplitter(4)
    assert s.feed(b"abcde") == [LINE_TOO_LONG]
    assert s.pending <= 4
    assert s.feed(b"\nok\n") == [b"ok"]


def test_splitter_too_long_across_feeds_then_good_line() -> None:
    """PROTOCOL.txt 8.1: the error comes once however the long line is cut into reads."""
    s = LineSplitter(8)
    out: list[bytes | LineTooLong] = []
    for chunk in [b"0123", b"4567", b"89ab", b"cdef\n", b"fine\n"]:
        out += s.feed(chunk)
    assert out == [LINE_TOO_LONG, b"fine"]


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 12),
    pieces=st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n", b"xyzxyzxyz", b"\xff"]),
                    max_size=30),
    cuts=st.lists(st.integers(0, 200), max_size=10),
)
def test_splitter_matches_reference_for_any_chunking(
    limit: int, pieces: list[bytes], cuts: list[int]
) -> None:
    """PROTOCOL.txt 1.2, 8.1: after every read the lines given so far equal the reference,
    and the splitter never holds more than the limit of an unfinished line (plus a "\\r"
    that may still be its line end)."""
    stream = b"".join(pieces)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    s = LineSplitter(limit)
    out: list[bytes | LineTooLong] = []
    for start, end in itertools.pairwise(bounds):
        out += s.feed(stream[start:end])
        seen = stream[:end]
        assert out == reference_split(seen, limit)
        assert s.pending <= limit or (s.pending == limit + 1 and seen.endswith(b"\r"))


def test_splitter_memory_bound_on_a_huge_line() -> None:
    """PROTOCOL.txt 8.1: "The server never holds more than the limit of an unfinished line"."""
    s = LineSplitter(1024)
    for _ in range(200):
        s.feed(b"y" * 4096)
        assert s.pending <= 1024
    assert s.feed(b"\n{}\n") == [b"{}"]


# --------------------------------------------------------------------------- names, rooms, text


def test_normalize_name_trims_and_defaults_to_anonymous() -> None:
    """PROTOCOL.txt 5.1: trimmed; blank or missing gives "익명" (ORIGIN.md point 7)."""
    assert p.normalize_name("  alice \t") == "alice"
    assert p.normalize_name(None) == "익명"
    assert p.normalize_name("") == "익명"
    assert p.normalize_name(" \t ") == "익명"
    assert p.DEFAULT_NAME == "익명"


def test_normalize_name_is_nfc_and_counts_characters_after_nfc() -> None:
    """PROTOCOL.txt 5.1: names are put in NFC; at most 32 characters."""
    decomposed = "\u1100\u1161"  # ᄀ + ᅡ = 가
    assert p.normalize_name(decomposed) == "가"
    assert p.normalize_name("e\u0301") == "\u00e9"
    assert p.normalize_name(decomposed * 32) == "가" * 32  # 64 code points in, 32 out
    assert error_of(p.normalize_name, decomposed * 33).code == ErrorCode.BAD_NAME


def test_normalize_name_length_limit() -> None:
    """PROTOCOL.txt 5.1: a name has at most 32 characters."""
    assert p.normalize_name("a" * 32) == "a" * 32
    assert p.normalize_name("철" * 32) == "철" * 32
    assert error_of(p.normalize_name, "a" * 33).code == ErrorCode.BAD_NAME


@pytest.mark.parametrize("bad", [
    "a b", "a\tb", "a\u3000b", "a\u00a0b", *(f"a{c}b" for c in C0_C1), *(f"a{c}b" for c in BIDI),
])
def test_normalize_name_rejects_space_control_and_bidi(bad: str) -> None:
    """PROTOCOL.txt 5.1: no white space, C0/C1/DEL controls or bidi formatting characters."""
    assert error_of(p.normalize_name, bad).code == ErrorCode.BAD_NAME


def test_normalize_name_accepts_unicode_names() -> None:
    """PROTOCOL.txt 5.1: any other Unicode is fine in a name."""
    for name in ["철수", "Zoë", "🐱", "a.b-c_d", "名前"]:
        assert p.normalize_name(name) == name


def test_normalize_room_rules() -> None:
    """PROTOCOL.txt 5.2: rooms follow the name rules but may not be blank; bad_room."""
    assert p.normalize_room(" dev ") == "dev"
    assert p.normalize_room("e\u0301") == "\u00e9"
    assert p.normalize_room("r" * 32) == "r" * 32
    for bad in ["", "   ", "a b", "r" * 33, "a\x1bb", "a\u202eb", "a\x85b"]:
        assert error_of(p.normalize_room, bad).code == ErrorCode.BAD_ROOM, bad


def test_name_key_ignores_case() -> None:
    """PROTOCOL.txt 5.1, 5.2: "Alice" and "alice" are the same name."""
    assert p.name_key("Alice") == p.name_key("ALICE") == p.name_key("alice")
    assert p.name_key("Straße") == p.name_key("STRASSE")
    assert p.name_key("alice") != p.name_key("alice2")


def test_name_variant_fits_32_characters() -> None:
    """PROTOCOL.txt 5.1: taken names get alice2, alice3, ... cut to fit 32 characters."""
    assert p.name_variant("alice", 2) == "alice2"
    assert p.name_variant("alice", 13) == "alice13"
    long = "a" * 32
    assert p.name_variant(long, 2) == "a" * 31 + "2"
    assert p.name_variant(long, 10) == "a" * 30 + "10"
    assert len(p.name_variant(long, 999)) == 32


def test_clean_message_removes_controls_but_keeps_newline_and_tab() -> None:
    """PROTOCOL.txt 5.3: C0/C1 controls (and DEL) other than "\\n" and "\\t" are removed."""
    assert p.clean_message("a\x00b\x1b[31mc\x7fd\x85e\x9ff") == "ab[31mcdef"
    assert p.clean_message("line1\nline2\tcol") == "line1\nline2\tcol"
    assert p.clean_message("".join(C0_C1)) == "\t\n"


def test_clean_message_removes_lone_surrogates() -> None:
    """PROTOCOL.txt 5.3: unpaired UTF-16 surrogates from JSON escapes are removed."""
    assert p.clean_message("a\ud800b\udfffc") == "abc"


def test_clean_message_keeps_text_exactly() -> None:
    """PROTOCOL.txt 5.3: text is kept exactly as sent: no NFC, emoji sequences intact."""
    for text in ["e\u0301", "\u1100\u1161", "👨\u200d👩\u200d👧", "👋🏽", "안녕하세요",
                 "  padded  ", "\u202eevil"]:
        assert p.clean_message(text) == text


@given(st.text())
def test_clean_message_output_has_no_forbidden_characters(text: str) -> None:
    """PROTOCOL.txt 5.3: nothing but "\\n" and "\\t" among controls survives; idempotent."""
    cleaned = p.clean_message(text)
    forbidden = set(C0_C1) - {"\n", "\t"}
    assert not forbidden & set(cleaned)
    assert p.clean_message(cleaned) == cleaned
    assert cleaned == "".join(c for c in text if c not in forbidden)


# --------------------------------------------------------------------------- JSON client lines


def test_looks_like_json_decides_the_mode() -> None:
    """PROTOCOL.txt 2.1: a first line starting with "{" (after optional spaces) is JSON."""
    assert p.looks_like_json(b'{"type":"connect"}')
    assert p.looks_like_json(b'   {"type":"connect"}')
    assert not p.looks_like_json(b"alice")
    assert not p.looks_like_json(b"[1]")
    assert not p.looks_like_json(b"x{")


@pytest.mark.parametrize(("obj", "event"), [
    ({"type": "connect"}, p.Connect()),
    ({"type": "connect", "name": "alice", "room": "dev", "password": "pw", "resume": "t",
      "last_id": "42"},
     p.Connect(name="alice", room="dev", password="pw", resume="t", last_id="42")),
    ({"type": "connect", "name": None}, p.Connect()),
    ({"type": "message", "message": "hi"}, p.Message("hi")),
    ({"type": "message", "message": "hi", "to": "bob", "ref": "c1"},
     p.Message("hi", to="bob", ref="c1")),
    ({"type": "message", "message": "x", "ref": "r" * 64}, p.Message("x", ref="r" * 64)),
    ({"type": "disconnect"}, p.Disconnect()),
    ({"type": "join", "room": "dev"}, p.Join("dev")),
    ({"type": "who"}, p.Who()),
    ({"type": "who", "all": True}, p.Who(all=True)),
    ({"type": "rooms"}, p.Rooms()),
    ({"type": "nick", "name": "bob"}, p.Nick("bob")),
    ({"type": "history"}, p.History()),
    ({"type": "history", "before": "120", "limit": 50}, p.History(before="120")),
    ({"type": "history", "after": "7", "limit": 100}, p.History(after="7", limit=100)),
    ({"type": "history", "limit": 1}, p.History(limit=1)),
    ({"type": "ping"}, p.Ping()),
    ({"type": "pong"}, p.Pong()),
])
def test_parse_json_line_every_type(obj: dict[str, Any], event: p.Event) -> None:
    """PROTOCOL.txt 3.1-3.9: every client line type parses to its event."""
    assert p.parse_json_line(jline(obj)) == event


def test_parse_json_line_ignores_unknown_fields_and_a_spoofed_name() -> None:
    """PROTOCOL.txt 3 (unknown fields are ignored), 2.3 (a "name" on a message is ignored)."""
    event = p.parse_json_line(jline({"type": "message", "message": "hi", "name": "mallory",
                                     "color": "red"}))
    assert event == p.Message("hi")


def test_parse_json_line_allows_spaces_and_crlf_leftovers() -> None:
    """PROTOCOL.txt 1.3, 2.1: JSON may have spaces around it."""
    assert p.parse_json_line(b'  { "type" : "ping" }  ') == p.Ping()
    assert p.parse_json_line(b'{"type":"ping"}\r') == p.Ping()


def test_parse_json_line_cleans_message_text() -> None:
    """PROTOCOL.txt 5.3: controls are removed from message text on the way in."""
    event = p.parse_json_line(jline({"type": "message", "message": "a\u001b[2Jb\nc\td\u0085"}))
    assert event == p.Message("a[2Jb\nc\td")
    event = p.parse_json_line(b'{"type":"message","message":"x\\ud800y"}')
    assert event == p.Message("xy")


@pytest.mark.parametrize(("line", "code"), [
    (b'{"type":"ping","x":"\xff"}', ErrorCode.BAD_UTF8),
    (b"\xc3\x28", ErrorCode.BAD_UTF8),
    (b"\xed\xa0\x80", ErrorCode.BAD_UTF8),  # a surrogate encoded in UTF-8 is not UTF-8
    (b"{oops}", ErrorCode.BAD_JSON),
    (b'{"type":"ping"', ErrorCode.BAD_JSON),
    (b'{"type":"ping"} {"type":"ping"}', ErrorCode.BAD_JSON),
    (b"[1, 2]", ErrorCode.BAD_JSON),
    (b'"text"', ErrorCode.BAD_JSON),
    (b"42", ErrorCode.BAD_JSON),
    (b"null", ErrorCode.BAD_JSON),
    (b"", ErrorCode.BAD_JSON),
    (b"[" * 100_000 + b"]" * 100_000, ErrorCode.BAD_JSON),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, ErrorCode.BAD_JSON),
    (b"{}", ErrorCode.BAD_FIELD),
    (b'{"type":7}', ErrorCode.BAD_FIELD),
    (b'{"type":null}', ErrorCode.BAD_FIELD),
    (b'{"type":"dance"}', ErrorCode.UNKNOWN_TYPE),
    (b'{"type":"Message","message":"hi"}', ErrorCode.UNKNOWN_TYPE),
    (b'{"type":"welcome"}', ErrorCode.UNKNOWN_TYPE),
    (b'{"type":"message"}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":null}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":5}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":["hi"]}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":""}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":" \\n\\t "}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":"\\u0000\\u001b"}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":"hi","to":5}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":"hi","ref":""}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":"hi","ref":5}', ErrorCode.BAD_FIELD),
    (b'{"type":"message","message":"hi","ref":"' + b"r" * 65 + b'"}', ErrorCode.BAD_FIELD),
    (b'{"type":"connect","name":5}', ErrorCode.BAD_FIELD),
    (b'{"type":"connect","room":true}', ErrorCode.BAD_FIELD),
    (b'{"type":"connect","resume":{}}', ErrorCode.BAD_FIELD),
    (b'{"type":"connect","last_id":42}', ErrorCode.BAD_FIELD),
    (b'{"type":"connect","password":1}', ErrorCode.BAD_FIELD),
    (b'{"type":"join"}', ErrorCode.BAD_FIELD),
    (b'{"type":"join","room":1}', ErrorCode.BAD_FIELD),
    (b'{"type":"nick"}', ErrorCode.BAD_FIELD),
    (b'{"type":"nick","name":false}', ErrorCode.BAD_FIELD),
    (b'{"type":"who","all":"yes"}', ErrorCode.BAD_FIELD),
    (b'{"type":"who","all":1}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","limit":0}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","limit":101}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","limit":-1}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","limit":"5"}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","limit":5.0}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","limit":true}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","limit":null}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","before":120}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","after":[]}', ErrorCode.BAD_FIELD),
    (b'{"type":"history","before":"1","after":"2"}', ErrorCode.BAD_FIELD),
])
def test_parse_json_line_errors(line: bytes, code: str) -> None:
    """PROTOCOL.txt 3, 7: each bad line gets its stable error code."""
    exc = error_of(p.parse_json_line, line)
    assert exc.code == code
    assert exc.message
    assert exc.ref is None


def test_parse_json_line_error_about_a_message_carries_its_ref() -> None:
    """PROTOCOL.txt 4.10, 9.3: errors about a line with a ref carry the ref."""
    for obj in [{"type": "message", "message": "", "ref": "c9"},
                {"type": "message", "ref": "c9"},
                {"type": "message", "message": "hi", "to": 3, "ref": "c9"}]:
        exc = error_of(p.parse_json_line, jline(obj))
        assert (exc.code, exc.ref) == (ErrorCode.BAD_FIELD, "c9")


def test_unknown_type_message_is_bounded() -> None:
    """PROTOCOL.txt 4.10: the error text does not echo an arbitrarily long type back."""
    exc = error_of(p.parse_json_line, jline({"type": "x" * 10_000}))
    assert exc.code == ErrorCode.UNKNOWN_TYPE
    assert len(exc.message) < 100


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8,
)
FIELDS = ["message", "to", "ref", "name", "room", "password", "resume", "last_id", "all",
          "before", "after", "limit"]
TYPES = ["connect", "message", "disconnect", "join", "who", "rooms", "nick", "history", "ping",
         "pong", "dance"]
CLIENT_OBJECTS = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from(TYPES) | JSON_VALUES,
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=4),
)


def _parses_or_protocol_error(line: bytes, parse: Any) -> None:
    try:
        result = parse(line)
    except ProtocolError as exc:
        assert exc.code in vars(ErrorCode).values()
        return
    assert result is None or isinstance(result, p.Event)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_parse_json_line_any_bytes_gives_event_or_protocol_error(line: bytes) -> None:
    """PROTOCOL.txt 7: any byte line is an event or a protocol error, nothing else."""
    _parses_or_protocol_error(line, p.parse_json_line)


@settings(max_examples=500, deadline=None)
@given(CLIENT_OBJECTS)
def test_parse_json_line_any_object_gives_event_or_protocol_error(obj: dict[str, Any]) -> None:
    """PROTOCOL.txt 3, 7: JSON objects with odd field types never raise anything else."""
    _parses_or_protocol_error(jline(obj), p.parse_json_line)
    _parses_or_protocol_error(json.dumps(obj).encode(), p.parse_json_line)


# --------------------------------------------------------------------------- text-mode lines


@pytest.mark.parametrize(("line", "event"), [
    (b"hello there", p.Message("hello there")),
    (b"  indented", p.Message("  indented")),
    (b"\tcol", p.Message("\tcol")),
    (b"//help", p.Message("/help")),
    (b"//", p.Message("/")),
    (b"// x", p.Message("/ x")),
    (b"///", p.Message("//")),
    (b"a\x1bb\x07", p.Message("ab")),
    ("안녕 👋".encode(), p.Message("안녕 👋")),
    (b"", None),
    (b"   ", None),
    (b"\x1b\x07", None),
    (b"/quit", p.Disconnect()),
    (b"/QUIT", p.Disconnect()),
    (b"/help", p.Help()),
    (b"/who", p.Who()),
    (b"/who all", p.Who(all=True)),
    (b"/who *", p.Who(all=True)),
    (b"/rooms", p.Rooms()),
    (b"/join dev", p.Join("dev")),
    (b"/join   dev  ", p.Join("dev")),
    (b"/nick bob", p.Nick("bob")),
    (b"/msg bob hi there", p.Message("hi there", to="bob")),
    (b"/msg bob  spaced", p.Message(" spaced", to="bob")),
    (b"/history", p.History()),
    (b"/history 5", p.History(limit=5)),
    (b"/history 100", p.History(limit=100)),
    (b"/oper alice pw", p.Oper("alice", "pw")),
    (b"/oper alice long secret", p.Oper("alice", "long secret")),
    (b"/oper  alice   two  spaces ", p.Oper("alice", "two  spaces")),
])
def test_parse_text_line(line: bytes, event: p.Event | None) -> None:
    """PROTOCOL.txt 6.2: chat lines, commands and the "//" escape."""
    assert p.parse_text_line(line) == event


@pytest.mark.parametrize(("line", "code", "usage"), [
    (b"/join", ErrorCode.BAD_FIELD, "/join ROOM"),
    (b"/join   ", ErrorCode.BAD_FIELD, "/join ROOM"),
    (b"/nick", ErrorCode.BAD_FIELD, "/nick NAME"),
    (b"/msg", ErrorCode.BAD_FIELD, "/msg NAME TEXT"),
    (b"/msg bob", ErrorCode.BAD_FIELD, "/msg NAME TEXT"),
    (b"/msg bob   ", ErrorCode.BAD_FIELD, "/msg NAME TEXT"),
    (b"/history 0", ErrorCode.BAD_FIELD, "/history [N]"),
    (b"/history 101", ErrorCode.BAD_FIELD, "/history [N]"),
    (b"/history many", ErrorCode.BAD_FIELD, "/history [N]"),
    (b"/oper", ErrorCode.BAD_FIELD, "/oper NAME PASSWORD"),
    (b"/oper alice", ErrorCode.BAD_FIELD, "/oper NAME PASSWORD"),
    (b"/dance", ErrorCode.UNKNOWN_COMMAND, "/help"),
    (b"/", ErrorCode.UNKNOWN_COMMAND, "/help"),
    (b"/frobnicate bob", ErrorCode.UNKNOWN_COMMAND, "/help"),
    (b"hi \xff", ErrorCode.BAD_UTF8, ""),
])
def test_parse_text_line_errors(line: bytes, code: str, usage: str) -> None:
    """PROTOCOL.txt 6.1, 6.2, 7: usage errors are bad_field; unknown words unknown_command."""
    exc = error_of(p.parse_text_line, line)
    assert exc.code == code
    assert usage in exc.message


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200) | st.builds(lambda b: b"/" + b, st.binary(max_size=50)))
def test_parse_text_line_any_bytes_gives_event_or_protocol_error(line: bytes) -> None:
    """PROTOCOL.txt 6, 7: any byte line is an event, nothing (blank) or a protocol error."""
    _parses_or_protocol_error(line, p.parse_text_line)


# --------------------------------------------------------------------------- server updates

# Names and rooms as the hub produces them: they pass the rules of 5.1.
LABELS = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=32
).filter(lambda s: unicodedata.is_normalized("NFC", s) and _valid_name(s))
TEXT = st.text(max_size=40)  # any text, controls included
SPICY = st.text(st.sampled_from(["a", "한", "👋", "\n", "\t", "\x1b", "\x85", "\x7f", "\x00",
                                 "\u202e", "\r", "\\", '"', " "]), max_size=20)
IDS = st.integers(0, 10**15).map(str)
TIMES = st.floats(0, 4e9).map(p.format_time)


def _valid_name(s: str) -> bool:
    try:
        return p.normalize_name(s) == s
    except ProtocolError:
        return False


def _chat(name: str, message: str, id_: str, time: str, *, room: str, to: str | None,
          history: bool) -> p.Chat:
    if to is not None:
        return p.Chat(name, message, id_, time, to=to)
    return p.Chat(name, message, id_, time, room=room, history=history)


UPDATES: st.SearchStrategy[p.Update] = st.one_of(
    st.builds(p.Welcome, LABELS, LABELS, st.lists(LABELS, max_size=4).map(tuple),
              resume=TEXT, resumed=st.booleans(), notice=st.none() | TEXT,
              version=st.integers(1, 3), server=TEXT,
              max_line_bytes=st.sampled_from([0, 1, 65536]) | st.integers(0, 2**40)),
    st.builds(_chat, LABELS, TEXT | SPICY, IDS, TIMES, room=LABELS, to=st.none() | LABELS,
              history=st.booleans()),
    st.builds(p.Joined, LABELS, LABELS, TEXT | SPICY, IDS, TIMES),
    st.builds(p.Left, LABELS, LABELS, TEXT | SPICY, IDS, TIMES, st.none() | TEXT),
    st.builds(p.Renamed, LABELS, LABELS, LABELS, TEXT | SPICY, IDS, TIMES),
    st.builds(p.Ack, TEXT, IDS, TIMES),
    st.builds(p.Error, st.sampled_from(sorted(v for k, v in vars(ErrorCode).items()
                                               if k.isupper())),
              TEXT | SPICY, st.none() | TEXT),
    st.builds(lambda room, users: p.WhoList(room, tuple(users)),
              LABELS, st.lists(LABELS, max_size=4)),
    st.builds(lambda rooms: p.WhoList(None, rooms=tuple((r, tuple(u)) for r, u in rooms)),
              st.lists(st.tuples(LABELS, st.lists(LABELS, max_size=3)), max_size=3)),
    st.builds(lambda rooms: p.RoomList(tuple(rooms)),
              st.lists(st.tuples(LABELS, st.integers(0, 10**6)), max_size=4)),
    st.builds(p.HistoryEnd, LABELS, st.integers(0, 1000), st.booleans()),
    st.builds(p.Shutdown, LABELS),  # server-made text
    st.just(p.ServerPing()),
    st.just(p.ServerPong()),
    st.builds(lambda lines: p.Info(tuple(lines)), st.lists(TEXT | SPICY, max_size=3)),
)


@settings(max_examples=400, deadline=None)
@given(UPDATES)
def test_encode_json_decode_update_round_trip(update: p.Update) -> None:
    """PROTOCOL.txt 4, 1.3: every update survives encode_json -> decode_update unchanged."""
    data = p.encode_json(update)
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    assert p.decode_update(data) == update


@settings(max_examples=400, deadline=None)
@given(UPDATES)
def test_encode_json_has_no_raw_control_characters(update: p.Update) -> None:
    """PROTOCOL.txt 1.3: compact UTF-8 JSON on one line: no raw C0 control character, so a
    "\n" inside a message is the two characters \n."""
    text = p.encode_json(update).decode("utf-8")
    assert not any(ord(c) < 0x20 for c in text[:-1])
    obj = json.loads(text)
    assert p.encode_json(update).decode() == json.dumps(
        obj, ensure_ascii=False, separators=(",", ":")) + "\n"


@given(LABELS, TEXT | SPICY, LABELS)
def test_a_room_chat_line_takes_the_short_way_to_the_same_bytes(name: str, text: str,
                                                                room: str) -> None:
    """encode_json writes the commonest line without its declaration's table: the same
    bytes as the table's object through the standard library (PROTOCOL.txt 4.2)."""
    chat = p.Chat(name, text, "42", p.format_time(0), room=room)
    assert p.encode_json(chat) == (json.dumps(p.to_wire(chat), ensure_ascii=False,
                                              separators=(",", ":")) + "\n").encode()


def test_encode_json_keeps_non_ascii_as_utf8() -> None:
    """PROTOCOL.txt 1.3: non-ASCII characters are UTF-8, not \\u escapes."""
    text = "안녕하세요 👋🏽 e\u0301 👨\u200d👩\u200d👧"
    data = p.encode_json(p.Chat("철수", text, "1", p.format_time(0), room="lobby"))
    assert text.encode() in data
    assert "철수".encode() in data
    assert b"\\u" not in data


def test_encode_json_wire_shapes() -> None:
    """PROTOCOL.txt 4.2-4.11: field names and values of each line type on the wire."""
    t = "2026-11-25T20:00:00.123Z"
    shapes: list[tuple[p.Update, dict[str, Any]]] = [
        (p.Chat("alice", "hi", "42", t, room="lobby"),
         {"type": "message", "name": "alice", "message": "hi", "room": "lobby", "id": "42",
          "time": t}),
        (p.Chat("alice", "psst", "43", t, to="bob"),
         {"type": "message", "name": "alice", "message": "psst", "to": "bob", "private": True,
          "id": "43", "time": t}),
        (p.Chat("alice", "old", "4", t, room="lobby", history=True),
         {"type": "message", "name": "alice", "message": "old", "room": "lobby", "id": "4",
          "time": t, "history": True}),
        (p.Joined("alice", "lobby", "alice joined", "41", t),
         {"type": "connect", "name": "alice", "message": "alice joined", "room": "lobby",
          "id": "41", "time": t}),
        (p.Left("alice", "lobby", "alice left", "44", t, "connection reset"),
         {"type": "disconnect", "name": "alice", "message": "alice left", "room": "lobby",
          "id": "44", "time": t, "reason": "connection reset"}),
        (p.Renamed("bob", "alice", "lobby", "alice is now known as bob", "45", t),
         {"type": "nick", "name": "bob", "old": "alice", "message": "alice is now known as bob",
          "room": "lobby", "id": "45", "time": t}),
        (p.Ack("c17", "46", t), {"type": "ack", "ref": "c17", "id": "46", "time": t}),
        (p.Error("bad_json", "nope"), {"type": "error", "code": "bad_json", "message": "nope"}),
        (p.Error("bad_field", "nope", "r"),
         {"type": "error", "code": "bad_field", "message": "nope", "ref": "r"}),
        (p.WhoList("lobby", ("alice", "bob")),
         {"type": "who", "room": "lobby", "users": ["alice", "bob"]}),
        (p.WhoList(None, rooms=(("dev", ("carol",)),)),
         {"type": "who", "all": True, "rooms": [{"room": "dev", "users": ["carol"]}]}),
        (p.RoomList((("dev", 1), ("lobby", 2))),
         {"type": "rooms", "rooms": [{"room": "dev", "users": 1}, {"room": "lobby", "users": 2}]}),
        (p.HistoryEnd("lobby", 2, False),
         {"type": "history_end", "room": "lobby", "count": 2, "more": False}),
        (p.Shutdown(), {"type": "shutdown", "message": "server shutting down"}),
        (p.ServerPing(), {"type": "ping"}),
        (p.ServerPong(), {"type": "pong"}),
        (p.Welcome("alice2", "lobby", ("alice", "alice2"), "tok", notice="n", server="chatd x"),
         {"type": "welcome", "version": 2, "server": "chatd x", "name": "alice2",
          "room": "lobby", "users": ["alice", "alice2"], "resume": "tok", "resumed": False,
          "notice": "n"}),
        (p.Welcome("alice", "lobby", ("alice",), "tok", max_line_bytes=65536),
         {"type": "welcome", "version": 2, "server": "chatd", "name": "alice", "room": "lobby",
          "users": ["alice"], "resume": "tok", "resumed": False, "max_line_bytes": 65536}),
    ]
    for update, wire in shapes:
        assert json.loads(p.encode_json(update)) == wire


def test_decode_update_is_lenient() -> None:
    """PROTOCOL.txt 4, 12.1: clients ignore unknown line types and fields."""
    assert p.decode_update(b'{"type":"sparkle","x":1}') == p.Unknown("sparkle")
    got = p.decode_update(b'{"type":"message","name":"a","message":"hi","room":"r","id":"1",'
                          b'"time":"t","extra":[1,2]}')
    assert got == p.Chat("a", "hi", "1", "t", room="r")
    assert p.decode_update(b'{"type":"who","room":"r","users":["a",5]}') == p.WhoList("r", ("a",))
    assert error_of(p.decode_update, b"[1]").code == ErrorCode.BAD_JSON


def test_welcome_max_line_bytes_is_optional() -> None:
    """PROTOCOL.txt 4.1: "max_line_bytes" is sent only when announced; a welcome without it,
    or with a value that is not a positive integer, reads as 0 (not announced)."""
    assert b"max_line_bytes" not in p.encode_json(p.Welcome("a", "lobby", ("a",)))
    assert p.encode_json(p.Welcome("a", "lobby", ("a",), max_line_bytes=0)) == p.encode_json(
        p.Welcome("a", "lobby", ("a",)))
    base = b'{"type":"welcome","version":1,"name":"a","room":"lobby","users":["a"]'
    for tail, want in [(b"}", 0), (b',"max_line_bytes":4096}', 4096),
                       (b',"max_line_bytes":-5}', 0), (b',"max_line_bytes":"9"}', 0),
                       (b',"max_line_bytes":1.5}', 0), (b',"max_line_bytes":true}', 0)]:
        got = p.decode_update(base + tail)
        assert isinstance(got, p.Welcome) and got.max_line_bytes == want, tail


def test_text_mode_welcome_ignores_max_line_bytes() -> None:
    """PROTOCOL.txt 6.1: text mode shows the same welcome line with or without the limit."""
    plain = p.Welcome("alice", "lobby", ("alice",))
    assert p.encode_text(p.Welcome("alice", "lobby", ("alice",), max_line_bytes=4096)) == (
        p.encode_text(plain))


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0


@settings(max_examples=400, deadline=None)
@given(UPDATES)
def test_encode_text_never_emits_control_characters(update: p.Update) -> None:
    """PROTOCOL.txt 6.1: no raw control character is ever sent to a text-mode reader."""
    data = p.encode_text(update)
    text = data.decode("utf-8")
    assert not any(_is_control(c) for c in text if c != "\n")
    assert data == b"" or data.endswith(b"\n")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("a \n\t가é"), min_size=1, max_size=3000),
       st.booleans(), st.booleans())
def test_a_message_renders_to_at_most_two_and_a_half_times_its_size_in_text_mode(
        message: str, private: bool, history: bool) -> None:
    """PROTOCOL.txt 6.1: further lines after two spaces, a run of blank lines as one:
    what a message renders to is its head plus at most two and a half times its size
    (7/3 at worst: see the next test)."""
    name = "가" * 32
    chat = p.Chat(name, message, "1", "2026-11-25T20:00:01.123Z",
                  to="x" if private else None, room=None if private else "lobby",
                  history=history and not private)
    head = p.encode_text(p.Chat(name, "", "1", chat.time, to=chat.to, room=chat.room,
                                history=chat.history))
    assert 2 * len(p.encode_text(chat)) <= 2 * len(head) + 5 * len(message.encode())
    assert p.encode_text(chat).decode().split("\n")[0].startswith(head.decode().rstrip("\n"))


def test_the_costliest_text_mode_rendering_is_a_blank_line_between_two_others() -> None:
    """PROTOCOL.txt 6.1: "\n\na" shows as "\n  \n  a", 3 bytes as 7, the most a message
    grows by (hypothesis found it past the "twice" this section once said)."""
    message = "a" + "\n\na" * 1000
    head = p.encode_text(p.Chat("bob", "", "1", "2026-11-25T20:00:01.123Z", room="lobby"))
    shown = p.encode_text(p.Chat("bob", message, "1", "2026-11-25T20:00:01.123Z",
                                 room="lobby"))
    assert shown.startswith(b"<bob> a\n  \n  a\n  \n  a\n")
    assert len(shown) - len(head) == 1 + 7 * 1000  # 7/3 of the message, not over 5/2


def test_encode_text_renderings() -> None:
    """PROTOCOL.txt 6.1: the readable lines of text mode."""
    t = "2026-11-25T20:00:01.123Z"
    cases: list[tuple[p.Update, str]] = [
        (p.Welcome("alice", "lobby", ("bob", "alice")),
         "* welcome, alice: you are in lobby with bob (/help for commands)\n"),
        (p.Chat("bob", "earlier line", "1", t, room="lobby", history=True),
         "[20:00:01] <bob> earlier line\n"),
        (p.HistoryEnd("lobby", 1, False), "* -- 1 earlier line above --\n"),
        (p.HistoryEnd("lobby", 3, True), "* -- 3 earlier lines above --\n"),
        (p.HistoryEnd("lobby", 0, False), ""),
        (p.Joined("alice", "lobby", "alice joined"), "* alice joined\n"),
        (p.Chat("bob", "hi", "2", t, room="lobby"), "<bob> hi\n"),
        (p.Chat("bob", "psst", "3", t, to="alice"), "*bob* psst\n"),
        (p.Left("bob", "lobby", "bob left"), "* bob left\n"),
        (p.Left("bob", "lobby", "bob left", reason="connection reset"),
         "* bob left (connection reset)\n"),
        (p.Renamed("carol", "alice", "lobby", "alice is now known as carol"),
         "* alice is now known as carol\n"),
        (p.Error("bad_field", "usage: /msg NAME TEXT"), "! bad_field: usage: /msg NAME TEXT\n"),
        (p.Chat("bob", "one\ntwo", "4", t, room="lobby"), "<bob> one\n  two\n"),
        (p.Chat("bob", "\n\na\n\n\n \nb\n\n", "4", t, room="lobby"), "<bob> \n  a\n  \n  b\n"),
        (p.Chat("bob", "a\nb", "4", t, to="al"), "*bob* a\n  b\n"),
        (p.Chat("bob", "a\nb", "4", t, room="lobby", history=True),
         "[20:00:01] <bob> a\n  b\n"),
        (p.Chat("bob", "a\tb\x1bc\x85d\x7f", "5", t, room="lobby"), "<bob> a b^[c\ufffdd^?\n"),
        (p.Shutdown(), "* server shutting down\n"),
        (p.Ack("r", "1", t), ""),
        (p.ServerPing(), ""),
        (p.WhoList("lobby", ("a", "b")), "* lobby: a, b\n"),
        (p.RoomList(()), "* no rooms\n"),
        (p.RoomList((("dev", 2),)), "* dev: 2 users\n"),
    ]
    for update, text in cases:
        assert p.encode_text(update) == text.encode(), update


def test_visible_caret_notation() -> None:
    """PROTOCOL.txt 6.1: ESC as ^[, C1 and bidirectional controls and the Unicode line
    separators as U+FFFD, tabs as a space."""
    assert p.visible("a\x1bb") == "a^[b"
    assert p.visible("\x00\x7f") == "^@^?"
    assert p.visible("\x85\u061c\u202e\u2066\u2028\u2029") == "\ufffd" * 6
    assert p.visible("a\tb") == "a b"
    assert p.visible("a\nb") == "a^Jb"
    assert p.visible("plain 한글") == "plain 한글"


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_visible_costs_at_most_half_again_the_bytes_of_what_it_escapes(text: str) -> None:
    """PROTOCOL.txt 6.1: every escape but caret notation (C0 controls, which no message
    keeps: 5.3) takes at most 1.5 times the UTF-8 bytes it replaces, and what comes out
    is one line whichever way a reader splits lines."""
    shown = p.visible(text)
    controls = sum(1 for c in text if ord(c) < 0x20 or c == "\x7f")
    size = len(text.encode("utf-8", "surrogatepass"))
    assert len(shown.encode("utf-8", "surrogatepass")) <= 1.5 * size + controls
    assert len(("a" + shown + "b").splitlines()) == 1


def test_time_format_is_rfc3339_utc_with_milliseconds() -> None:
    """PROTOCOL.txt 9.2: UTC, RFC 3339 with milliseconds."""
    assert p.format_time(0) == "1970-01-01T00:00:00.000Z"
    assert p.format_time(1764100800.123456) == "2025-11-25T20:00:00.123Z"
    stamp = p.parse_time("2026-11-25T20:00:00.123Z")
    assert p.format_time(stamp.timestamp()) == "2026-11-25T20:00:00.123Z"


CLIENT_TEXT = st.text(min_size=1, max_size=30).filter(lambda s: p.clean_message(s) == s
                                                      and bool(s.strip()))
CLIENT_EVENTS: st.SearchStrategy[p.Event] = st.one_of(
    st.builds(p.Message, CLIENT_TEXT, to=st.none() | LABELS,
              ref=st.none() | st.text(min_size=1, max_size=64)),
    st.builds(p.Connect, name=st.none() | TEXT, password=st.none() | TEXT,
              resume=st.none() | TEXT, last_id=st.none() | IDS, room=st.none() | LABELS),
    st.builds(p.Join, LABELS),
    st.builds(p.Who, st.booleans()),
    st.builds(p.Nick, LABELS),
    st.builds(p.History, before=st.none() | IDS, limit=st.integers(1, 100)),
    st.builds(p.History, after=IDS, limit=st.integers(1, 100)),
    st.sampled_from([p.Disconnect(), p.Rooms(), p.Ping(), p.Pong()]),
)


@settings(max_examples=300, deadline=None)
@given(CLIENT_EVENTS)
def test_encode_event_parse_json_line_round_trip(event: p.Event) -> None:
    """PROTOCOL.txt 3: what chatc sends parses back to the same event on the server."""
    data = p.encode_event(event)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert p.parse_json_line(data[:-1]) == event


MESSAGE_FIELDS = st.dictionaries(
    st.sampled_from(["message", "ref", "room"]),
    st.text(max_size=12) | st.text(st.characters(max_codepoint=0x7F), max_size=12)
    | st.sampled_from(["dev", "#dev", "r" * 33, " ", "\ud800"]) | JSON_VALUES,
    max_size=3,
)


@settings(max_examples=500, deadline=None)
@given(MESSAGE_FIELDS)
def test_a_message_the_quick_way_takes_decodes_as_the_full_way(fields: dict[str, Any]) -> None:
    """PROTOCOL.txt 3.2: the chat line's quick decode (printable text, an ASCII ref and
    room) gives what the full one gives, event or error; a "to" field (null here: no
    private line) always takes the full way."""
    from chatd.protocol.events import decode_message

    def outcome(obj: dict[str, Any]) -> object:
        try:
            return decode_message(obj)
        except ProtocolError as exc:
            return (exc.code, exc.message, exc.ref)

    obj = {"type": "message", **fields}
    assert outcome(obj) == outcome({**obj, "to": None})
