"""chatd.serverlog: the text format unchanged, the JSON format, the log file's reopen."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chatd import protocol as p
from chatd.serverlog import LOG_TEXT_MAX, ServerLog, loggable


def test_text_lines_name_the_connection_as_before() -> None:
    out = io.StringIO()
    log = ServerLog("info", out)
    log.info("connected", event="connect", cid=7, address="127.0.0.1:4000")
    log.info("<alice@lobby> hi\x1b[2J", event="message", user="alice", room="lobby")
    first, second = out.getvalue().splitlines()
    assert re.fullmatch(r"\S+Z INFO  #7 127\.0\.0\.1:4000 connected", first)
    assert "INFO  <alice@lobby> hi" in second and "\x1b" not in second  # made visible


def test_json_lines_carry_the_fields_that_are_known() -> None:
    out = io.StringIO()
    log = ServerLog("debug", out, json=True)
    log.warning("refused: full", event="refuse", cid=3, address="[::1]:5")
    log.info("<bob@dev> x\u202ey", event="message", user="bob", room="dev")
    log.always("bye")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0] == {"time": records[0]["time"], "level": "warning", "event": "refuse",
                          "conn": 3, "address": "[::1]:5", "message": "refused: full"}
    assert records[1]["user"] == "bob" and records[1]["room"] == "dev"
    assert "\u202e" not in records[1]["message"] and "conn" not in records[1]
    assert records[2] == {"time": records[2]["time"], "level": "info", "event": "log",
                          "message": "bye"}


def test_levels_can_change_while_running() -> None:
    out = io.StringIO()
    log = ServerLog("info", out)
    log.set_level("warning")
    log.info("hidden")
    log.warning("shown")
    assert "hidden" not in out.getvalue() and "shown" in out.getvalue()


def test_reopen_writes_to_a_new_file_at_the_path(tmp_path: Path) -> None:
    path = tmp_path / "chatd.log"
    log = ServerLog("info", path=str(path))
    log.info("before")
    path.rename(tmp_path / "chatd.log.1")
    log.reopen()
    log.info("after")
    assert "before" in (tmp_path / "chatd.log.1").read_text()
    assert "after" in path.read_text() and "before" not in path.read_text()


HEAD = "<alice@lobby> "  # the hub's note for a room line: "<name@room> message"


def logged(text: str) -> str:
    stream = io.StringIO()
    ServerLog("info", stream).info(text)
    return stream.getvalue()


def wire_bytes(message: str) -> int:
    """The fewest bytes a client sends to have `message` logged: its text-mode line, or
    its JSON string (what the rest of the JSON line costs is left out)."""
    lone = sum(1 for c in message if "\ud800" <= c <= "\udfff")  # JSON only: "\udxxx"
    as_json = len(json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2
    as_json += 3 * lone  # raw, a lone surrogate took 3 bytes above
    if "\n" in message or lone:
        return as_json
    return min(as_json, len(message.encode()))


SPICY = st.text(st.sampled_from(["a", "한", "👋", "\n", "\t", "\r", "\x1b", "\x85", "\x7f",
                                 "\u061c", "\u200e", "\u202e", "\u2066", "\u2028", "\ud800"]))


@settings(max_examples=500, deadline=None)
@given(st.text() | SPICY | st.builds(lambda s, n: s * n, SPICY, st.integers(1, 600)))
def test_the_log_grows_at_most_half_again_the_bytes_received(sent: str) -> None:
    """Issue 22.8: whatever a client sends as a message, its log line grows by at most 1.5
    bytes per byte it sent (apart from the line's fixed head: time, level, name, room),
    and stays one line."""
    message = p.clean_message(sent)  # what the hub gets, from either mode (5.3)
    line = logged(HEAD + message)
    assert line.endswith("\n") and "\n" not in line[:-1]
    added = len(line.encode()) - len(logged(HEAD).encode())
    assert added <= 1.5 * wire_bytes(sent)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["<alice@lobby> ", "<민수@로비> ", "<a_b@dev> "]),
       st.text() | SPICY | st.builds(lambda s, n: s * n, SPICY, st.integers(1, 600)))
def test_a_room_lines_note_is_logged_as_any_other_line(head: str, sent: str) -> None:
    """ServerLog.chat's cheaper check (the hub's note for a room line: label names and a
    clean_message text) writes exactly what info writes."""
    note = head + p.clean_message(sent)
    by_chat = io.StringIO()
    ServerLog("info", by_chat).chat(note)
    _, _, line = by_chat.getvalue().partition(" ")
    assert line == logged(note).partition(" ")[2]
    assert "\x1b" not in line and line.count("\n") == 1


def test_a_long_line_is_cut_with_its_size() -> None:
    """Every message keeps its line; past LOG_TEXT_MAX characters the line is cut and says
    how big the whole was."""
    assert loggable("x" * LOG_TEXT_MAX) == "x" * LOG_TEXT_MAX
    cut = loggable("<a@lobby> " + "한" * 65_000)
    assert len(cut) <= LOG_TEXT_MAX and cut.startswith("<a@lobby> 한한")
    assert cut.endswith(f"… ({10 + 3 * 65_000:,} bytes)")
    assert loggable("\u061c" * 2000).startswith("\ufffd" * 900)
