"""chatc.render: every update type as rich text and as plain line-mode text; colours per
name; network text never interpreted (markup, control characters); wide characters."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.style import Style

from chatc import render
from chatd import protocol as p

NOON = datetime(2026, 11, 25, 12, 0, 0)
STAMP = "2026-11-25T20:00:01.123Z"


def local(stamp: str) -> str:
    return p.parse_time(stamp).astimezone().strftime("%H:%M:%S")


def now() -> datetime:
    return NOON


def lines(update: p.Update, me: str = "me") -> list[str]:
    return render.plain(render.render(update, me, now=now))


def shown(line: render.Line, width: int = 80, no_color: bool = False) -> tuple[str, str]:
    """What a terminal shows: (text, the bytes written, escape codes and all)."""
    file = io.StringIO()
    out = Console(record=True, width=width, force_terminal=True, color_system="truecolor",
                  no_color=no_color, file=file)
    out.print(line)
    return out.export_text(), file.getvalue()


# --------------------------------------------------------------------------- each update


def test_chat_line_has_time_name_and_text() -> None:
    assert lines(p.Chat("alice", "hi", "1", STAMP, room="lobby")) == [
        f"{local(STAMP)} <alice> hi"]


def test_line_without_time_takes_the_current_time() -> None:
    assert lines(p.Chat("alice", "hi", room="lobby")) == ["12:00:00 <alice> hi"]
    assert render.clock_text("not a time", now) == "12:00:00"


def test_time_is_converted_to_local_time() -> None:
    utc = datetime(2026, 11, 25, 20, 0, 1, tzinfo=UTC)
    assert render.clock_text(STAMP) == utc.astimezone().strftime("%H:%M:%S")


def test_notices() -> None:
    t = local(STAMP)
    assert lines(p.Joined("bob", "lobby", "bob joined", "2", STAMP)) == [f"{t} * bob joined"]
    assert lines(p.Left("bob", "lobby", "bob left", "3", STAMP)) == [f"{t} * bob left"]
    assert lines(p.Left("bob", "lobby", "bob left", "3", STAMP, reason="ping timeout")) == [
        f"{t} * bob left (ping timeout)"]
    assert lines(p.Renamed("bo", "bob", "lobby", "bob is now known as bo", "4", STAMP)) == [
        f"{t} * bob is now known as bo"]
    assert lines(p.Shutdown()) == ["12:00:00 * server shutting down"]


def test_notices_are_dim_and_errors_red() -> None:
    joined = render.render(p.Joined("bob", "lobby", "bob joined", "2", STAMP), "me")[0]
    assert joined.head.plain == "*" and Style.parse(joined.body.style).dim
    error = render.render(p.Error("bad_name", "name is too long"), "me", now=now)[0]
    assert render.plain([error]) == [
        "12:00:00 ! that name cannot be used: name is too long; try another with /nick NAME"
        "  (bad_name)"]
    assert Style.parse(str(error.body.style)).color.name == "red"  # type: ignore[union-attr]


def test_errors_say_what_happened_and_what_to_do_with_the_code_dim_at_the_end() -> None:
    """Issue 13 item 5: words first; the code, dim, last."""
    taken = render.render(p.Error("name_taken", "bob is taken"), "me", now=now)[0]
    assert render.plain([taken]) == [  # the message is shown, never read (PROTOCOL.txt 7)
        "12:00:00 ! that name is taken; try another with /nick NAME  (name_taken)"]
    code = taken.body.spans[-1]
    assert taken.body.plain[code.start:code.end] == "  (name_taken)"
    assert Style.parse(str(code.style)).dim
    nobody = render.render(p.Error("no_such_user", "no user named zed"), "me", now=now)[0]
    assert render.plain([nobody])[0] == (
        "12:00:00 ! nobody by that name is online; see /who all  (no_such_user)")
    unknown = render.render(p.Error(
        "unknown_command", "unknown command /x (try /help; // sends a /)"), "me", now=now)[0]
    assert "unknown_command:" not in render.plain([unknown])[0]
    assert render.plain([unknown])[0] == (
        "12:00:00 ! that is not a command; /help lists them  (unknown_command)")


def test_private_lines_look_distinct() -> None:
    incoming = render.render(p.Chat("bob", "psst", "5", STAMP, to="me"), "me")[0]
    outgoing = render.chat("me", "psst", "me", STAMP, to="bob")
    assert render.plain([incoming]) == [f"{local(STAMP)} *bob* psst"]
    assert render.plain([outgoing]) == [f"{local(STAMP)} -> *bob* psst"]
    assert Style.parse(str(incoming.body.style)).italic
    room_line = render.render(p.Chat("bob", "psst", "5", STAMP, room="lobby"), "me")[0]
    assert not room_line.body.style


def test_own_lines_are_marked_as_own() -> None:
    own = render.chat("me", "hello", "me", STAMP)
    other = render.chat("bob", "hello", "me", STAMP)
    assert Style.parse(str(own.head.spans[0].style)).bold
    assert not Style.parse(str(other.head.spans[0].style)).bold


def test_pending_own_line_has_no_time_yet() -> None:
    assert render.plain([render.pending("on its way", "me")]) == [
        "··:··:·· <me> on its way"]
    assert render.plain([render.pending("psst", "me", to="bob")]) == [
        "··:··:·· -> *bob* psst"]


def test_welcome_shows_the_assigned_name_and_notice() -> None:
    welcome = p.Welcome("alice2", "lobby", ("alice", "alice2"),
                        notice="alice is taken, so you are alice2", server="chatd 0.1.0")
    assert lines(welcome) == [
        "12:00:00 * you are alice2 in lobby, with alice (chatd 0.1.0; /help for commands)",
        "12:00:00 * alice is taken, so you are alice2"]
    alone = p.Welcome("익명", "lobby", ("익명",), server="chatd 0.1.0")
    assert lines(alone) == [
        "12:00:00 * you are 익명 in lobby, alone for now (chatd 0.1.0; /help for commands)"]


def test_who_rooms_and_history_end() -> None:
    assert lines(p.WhoList("lobby", ("alice", "bob"))) == ["12:00:00 * in lobby: alice, bob"]
    assert lines(p.WhoList(None, rooms=(("dev", ("carol",)), ("lobby", ("a", "b"))))) == [
        "12:00:00 * dev: carol", "12:00:00 * lobby: a, b"]
    assert lines(p.RoomList((("dev", 1), ("lobby", 2)))) == [
        "12:00:00 * rooms: dev (1), lobby (2)"]
    assert lines(p.HistoryEnd("lobby", 2, more=False)) == [
        "12:00:00 ── 2 earlier lines of lobby above ──"]
    assert lines(p.HistoryEnd("lobby", 1, more=True)) == [
        "12:00:00 ── 1 earlier line of lobby above; the server has older ones ──"]
    assert lines(p.HistoryEnd("lobby", 0, more=False)) == []


def test_invisible_updates_render_nothing() -> None:
    for update in (p.Ack("r1", "9", STAMP), p.ServerPing(), p.ServerPong(),
                   p.Unknown("typing", {"name": "bob"})):
        assert render.render(update, "me") == []


def test_multi_line_message() -> None:
    update = p.Chat("bob", "first\nsecond", "1", STAMP, room="lobby")
    t = local(STAMP)
    assert lines(update) == [f"{t} <bob> first", f"{t} <bob> second"]
    text, _ = shown(render.render(update, "me")[0])
    assert text.splitlines() == [f"{t} <bob> first", " " * len(f"{t} <bob> ") + "second"]
    assert render.render(update, "me")[0].text().plain == (
        f"{t} <bob> first\n" + " " * len(f"{t} <bob> ") + "second")


# --------------------------------------------------------------------------- colours


def test_colour_is_stable_per_name_and_differs_between_names() -> None:
    assert render.name_colour("alice") == render.name_colour("alice")
    names = [f"user{n}" for n in range(60)]
    assert len({render.name_colour(n) for n in names}) == len(render.PALETTE)
    assert {render.name_colour(n) for n in names} <= set(render.PALETTE)


def test_colour_is_the_same_in_every_process() -> None:
    # Python's hash() of a str changes per process; the colour must not.
    code = "from chatc.render import name_colour; print(name_colour('alice'), name_colour('민수'))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
            for seed in ("1", "2", "3")}
    assert runs == {f"{render.name_colour('alice')} {render.name_colour('민수')}\n"}


def test_name_is_drawn_in_its_colour() -> None:
    _, raw = shown(render.chat("alice", "hi", "me", STAMP))
    r, g, b = (int(render.name_colour("alice")[i:i + 2], 16) for i in (1, 3, 5))
    assert f"\x1b[38;2;{r};{g};{b}malice" in raw


def test_no_color_console_prints_no_colour() -> None:
    for line in (render.chat("alice", "hi", "me", STAMP), render.error("boom")):
        _, raw = shown(line, no_color=True)
        assert "38;" not in raw and "[31m" not in raw and "[1;31m" not in raw
        assert "\x1b[1m" in raw or "\x1b[2m" in raw  # bold and dim are not colours


# --------------------------------------------------------------------------- escaping


def test_markup_in_network_text_is_shown_literally() -> None:
    update = p.Chat("[bold]bob[/]", "[bold red]x[/] and [link=http://e.vil]y[/link]", "1",
                    STAMP, room="lobby")
    text, raw = shown(render.render(update, "me")[0])
    assert text.strip() == (f"{local(STAMP)} <[bold]bob[/]> "
                            "[bold red]x[/] and [link=http://e.vil]y[/link]")
    assert "\x1b[1;31m" not in raw and "\x1b]8;" not in raw  # no red, no hyperlink


def test_emoji_codes_and_repr_highlighting_are_not_applied() -> None:
    text, raw = shown(render.chat("bob", ":smile: 123 'str' None", "me", STAMP))
    assert text.strip().endswith(":smile: 123 'str' None")
    body = raw.split("> ", 1)[1]
    assert "\x1b[" not in body.strip().removesuffix("\x1b[0m")


@pytest.mark.parametrize(("raw", "visible"), [
    ("\x1b[31mred", "^[[31mred"),
    ("bell\x07", "bell^G"),
    ("back\x08space", "back^Hspace"),
    ("carriage\rreturn", "carriage^Mreturn"),
    ("del\x7f", "del^?"),
    ("c1\x9bcsi", "c1\ufffdcsi"),
    ("tab\there", "tab here"),
    ("osc\x1b]0;title\x07", "osc^[]0;title^G"),
    ("bidi \u202eevil", "bidi \ufffdevil"),
])
def test_control_characters_are_made_visible(raw: str, visible: str) -> None:
    update = p.decode_update(p.encode_json(p.Chat("bob", raw, "1", STAMP, room="lobby")))
    assert isinstance(update, p.Chat) and update.message == raw  # arrives unchanged
    line = render.render(update, "me")[0]
    assert render.plain([line]) == [f"{local(STAMP)} <bob> {visible}"]
    _, out = shown(line)
    assert not any(c in out for c in "\x07\x08\r\x7f\x9b\u202e")
    assert "\x1b[31m" not in out and "\x1b]0" not in out


def test_control_characters_in_names_and_notices_are_made_visible() -> None:
    update = p.Joined("e\x1bvil", "lobby", "e\x1bvil joined\x07", "1", STAMP)
    assert lines(update) == [f"{local(STAMP)} * e^[vil joined^G"]
    assert render.plain([render.chat("e\x1bvil", "x", "me", STAMP)]) == [
        f"{local(STAMP)} <e^[vil> x"]


# --------------------------------------------------------------------------- wide characters


def test_wide_characters_line_up() -> None:
    line = render.chat("민수", "안녕하세요 " * 12, "me", STAMP)
    text, _ = shown(line, width=50)
    rows = text.rstrip("\n").split("\n")
    head = f"{local(STAMP)} <민수> "
    assert len(rows) > 1 and rows[0].startswith(head)
    # Every continuation row starts in the column where the text started, measured in
    # terminal cells (민수 is 4 cells wide, not 2 characters).
    indent = cell_len(head)
    assert indent == len(head) + 2
    for row in rows[1:]:
        assert row[:indent] == " " * indent and row[indent] != " "
        assert cell_len(row.rstrip()) <= 50


def test_plain_line_mode_has_no_escape_codes() -> None:
    for update in (p.Chat("민수", "[b]x[/b]", "1", STAMP, room="lobby"),
                   p.Error("no_such_user", "no user named x"),
                   p.HistoryEnd("lobby", 3, more=False)):
        for text in lines(update):
            assert "\x1b" not in text


@pytest.mark.parametrize("width", [20, 34, 41, 42, 43, 44, 45, 50, 100, 140])
def test_a_divider_fits_the_width_and_no_row_is_a_lone_rule(width: int) -> None:
    """Issue 13 item 3: "── 3 earlier lines of dev above ──" never wraps into a row
    holding only rule characters, and no row is wider than the terminal."""
    for title in ("3 earlier lines of dev above", "earlier in dev",
                  "1 earlier line of lobby above; the server has older ones"):
        text, _ = shown(render.divider(title, now), width=width)
        rows = text.rstrip("\n").split("\n")
        for row in rows:
            assert cell_len(row.rstrip()) <= width
            assert row.strip(" ─") != "" or not row.strip(), rows
        assert rows[0].startswith("12:00:00 ── ")
        assert " ".join(row.strip() for row in rows).replace("12:00:00 ── ", "", 1) \
            .removesuffix(" ──").split() == title.split()


def test_moderation_lines() -> None:
    """PROTOCOL.txt 15: the topic in the welcome and on change, operators marked with @
    in who, notices and ban lists."""
    welcome = p.Welcome("bob", "lobby", ("alice", "bob"), server="chatd", topic="be nice",
                        opers=("alice",))
    assert lines(welcome)[1] == "12:00:00 * topic: be nice"
    assert lines(p.WhoList("lobby", ("alice", "bob"), opers=("alice",))) == [
        "12:00:00 * in lobby: @alice, bob"]
    changed = p.Topic("lobby", "be nice", "alice", "alice set the topic: be nice", "7", STAMP)
    assert lines(changed) == [f"{local(STAMP)} * alice set the topic: be nice"]
    assert lines(p.Topic("dev", "")) == ["12:00:00 * dev has no topic"]
    assert lines(p.Opered("alice", "lobby", "alice is now an operator", "8", STAMP)) == [
        f"{local(STAMP)} * alice is now an operator"]
    assert lines(p.Notice("you were muted in lobby by alice")) == [
        "12:00:00 * you were muted in lobby by alice"]
    assert lines(p.BanList((p.BanEntry("name", "troll", "", "alice", "spam"),))) == [
        "12:00:00 * name troll: permanent, by alice (spam)"]
    assert lines(p.BanList()) == ["12:00:00 * no bans"]
