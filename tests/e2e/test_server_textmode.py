"""End to end: text mode (PROTOCOL.txt section 6) driven by the real `nc` binary
(netcat-openbsd) against the real `chatd`, with a JSON client on the other side.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.support.harness import StartChatd
from tests.support.nc import Nc, OpenNc

# The old import path of a helper now in tests.support.nc, kept while branches merge.
__all__ = ["Nc"]
from tests.support.harness import Client
from tests.support.server_opts import start


def is_join(name: str) -> Callable[[dict[str, object]], bool]:
    return lambda m: m["type"] == "connect" and m["name"] == name


async def test_nc_session_with_a_json_user(start_chatd: StartChatd, open_nc: OpenNc) -> None:
    """PROTOCOL.txt 6.1, 6.2, 6.3: a whole text-mode session from nc: the name line, chat both
    ways, commands, private lines, errors and /quit."""
    chatd = await start(start_chatd)
    bob = await Client.joined(chatd.port, "bob")
    nc = await open_nc(chatd.port)
    await nc.send("tina")
    welcome = "* welcome, tina: you are in lobby with bob (/help for commands)"
    assert await nc.line() == welcome
    assert await nc.line() == "* tina joined"
    await bob.recv_until(is_join("tina"))

    await bob.say("hi tina")
    assert await nc.line() == "<bob> hi tina"
    await nc.send("hello bob")
    msg = await bob.recv("message")
    assert (msg["name"], msg["message"], msg["room"]) == ("tina", "hello bob", "lobby")

    await bob.say("안녕 👋🏽 e\u0301")
    assert await nc.raw_line() == "<bob> 안녕 👋🏽 e\u0301\n".encode()
    await nc.send("반가워 🙂")
    assert (await bob.recv("message"))["message"] == "반가워 🙂"

    await bob.say("one\ntwo\tthree\u001b[2J")
    assert [await nc.line(), await nc.line()] == ["<bob> one", "  two three[2J"]

    await nc.send("/who")
    assert await nc.line() == "* lobby: bob, tina"
    await nc.send("/rooms")
    assert await nc.line() == "* lobby: 2 users (current)"
    await nc.send("/msg BOB just for you")
    assert await nc.line() == "-> *BOB* just for you"
    private = await bob.recv("message")
    assert private["private"] is True and private["message"] == "just for you"
    await bob.say("psst", to="tina")
    assert await nc.line() == "*bob* psst"
    await nc.send("//not a command")
    assert (await bob.recv("message"))["message"] == "/not a command"
    await nc.send("/dance")
    assert (await nc.line()).startswith("! unknown_command: ")
    await nc.send("/msg bob")
    assert await nc.line() == "! bad_field: usage: /msg NAME TEXT"
    await nc.send("/nick bob")
    assert (await nc.line()).startswith("! name_taken: ")
    await nc.send("/help")
    help_lines = await nc.until(lambda s: s.startswith("* /quit"))
    assert all(h.startswith("* /") for h in help_lines)
    await nc.send("/nick tanya")
    assert await nc.line() == "* tina is now known as tanya"
    assert (await bob.recv("nick"))["name"] == "tanya"

    await nc.send("/quit")
    left = await bob.recv("disconnect")
    assert left["name"] == "tanya" and "reason" not in left
    assert await nc.eof() == b"* bye, tanya: you left the chat (Ctrl-C closes nc)\n"
    assert await nc.exit_code() == 0
    # nc saw no JSON, ever (PROTOCOL.txt 6.1)
    assert not any(s.startswith("{") for s in nc.seen)


async def test_nc_sees_history_and_room_moves(start_chatd: StartChatd, open_nc: OpenNc) -> None:
    """PROTOCOL.txt 6.1: history after joining, "* -- N earlier lines above --", and rooms."""
    chatd = await start(start_chatd)
    bob = await Client.joined(chatd.port, "bob")
    await bob.say("earlier one")
    await bob.say("earlier two")
    nc = await open_nc(chatd.port)
    await nc.send("tina")
    lines = await nc.until("* tina joined")
    assert lines[0].startswith("* welcome, tina: ")
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] <bob> earlier one", lines[1])
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] <bob> earlier two", lines[2])
    assert lines[3:] == ["* -- 2 earlier lines above --", "* tina joined"]
    await nc.send("/history 1")
    again = await nc.until(lambda s: s.startswith("* --"))
    assert len(again) == 2 and again[0].endswith("<bob> earlier two")
    assert again[1] == "* -- 1 earlier line above --"
    await nc.send("/join dev")  # a move: join, then part (17.2, 17.3, 17.10)
    assert await nc.line() == "* dev: tina"
    assert await nc.line() == "* tina joined"
    assert await nc.line() == "* you now talk in dev"
    await nc.send("/part lobby")
    assert await nc.line() == "[lobby] * tina left lobby"
    left = await bob.recv_until(lambda m: m["type"] == "disconnect")
    assert (left[-1]["message"], left[-1]["part"]) == ("tina left lobby", True)
    await nc.send("/who all")
    assert await nc.until("* lobby: bob") == ["* dev: tina", "* lobby: bob"]


async def test_nc_bad_name_then_another_try(start_chatd: StartChatd, open_nc: OpenNc) -> None:
    """PROTOCOL.txt 6.1, 5.1: a bad name gets an error; the next line is another try."""
    chatd = await start(start_chatd)
    taken = await Client.joined(chatd.port, "tina")
    nc = await open_nc(chatd.port)
    await nc.send("two words")
    assert (await nc.line()).startswith("! bad_name: ")
    await nc.send("x" * 33)
    assert (await nc.line()).startswith("! bad_name: ")
    await nc.send("TINA")
    welcome = await nc.line()
    assert welcome.startswith("* welcome, TINA2: you are in lobby with tina (")
    assert await nc.line() == "* TINA is taken, so you are TINA2"
    await taken.recv_until(is_join("TINA2"))


async def test_nc_framing_errors(start_chatd: StartChatd, open_nc: OpenNc) -> None:
    """PROTOCOL.txt 6.1, 7, 8.1: bad_utf8 and line_too_long in text mode, then go on."""
    chatd = await start(start_chatd, "--max-line-bytes", "4K")
    bob = await Client.joined(chatd.port, "bob")
    nc = await open_nc(chatd.port)
    await nc.send(b"caf\xe9")
    assert (await nc.line()).startswith("! bad_utf8: ")
    await nc.send("tina")
    await nc.until("* tina joined")
    await nc.send("z" * 100_000)
    assert (await nc.line()).startswith("! line_too_long: ")
    await nc.send(b"\xff\xfe")
    assert (await nc.line()).startswith("! bad_utf8: ")
    await nc.send("")
    await nc.send("   ")
    await nc.send("still here")
    msgs = await bob.recv_until(lambda m: m["type"] == "message")
    assert msgs[-1]["message"] == "still here"


async def test_nc_stdin_eof_is_a_clean_leave(start_chatd: StartChatd, open_nc: OpenNc) -> None:
    """PROTOCOL.txt 2.4: closing the connection (nc -N after its input ends) is announced at
    once, without a reason; nc then sees the server close and exits."""
    chatd = await start(start_chatd)
    bob = await Client.joined(chatd.port, "bob")
    nc = await open_nc(chatd.port)
    await nc.send("tina")
    await nc.until("* tina joined")
    await bob.recv_until(is_join("tina"))
    assert await nc.eof() == b""
    left = await bob.recv("disconnect")
    assert left["name"] == "tina" and "reason" not in left
    assert await nc.exit_code() == 0


async def test_nc_is_greeted_before_typing_and_json_clients_are_not(
    start_chatd: StartChatd, open_nc: OpenNc,
) -> None:
    """PROTOCOL.txt 6.1: a person at nc who has typed nothing learns what to do."""
    # 3 s: a JSON client's connect, sent at once, is in long before on a loaded machine
    chatd = await start(start_chatd, "--greet-after", "3")
    json_user = await Client.joined(chatd.port, "bob")
    nc = await open_nc(chatd.port)
    assert await nc.line() == "* welcome to chatd! Type your name and press Enter to join."
    await nc.send("tina")
    assert (await nc.line()).startswith("* welcome, tina")
    await json_user.send({"type": "who"})
    got = await json_user.recv_until(lambda m: m["type"] == "who")
    assert all(m["type"] in ("connect", "who") for m in got)


async def test_nc_paste_over_the_rate_names_each_dropped_line(
    start_chatd: StartChatd, open_nc: OpenNc,
) -> None:
    """PROTOCOL.txt 8.3: with the default flood control, a 15-line paste."""
    chatd = await start_chatd("--max-per-ip", "0")
    bob = await Client.joined(chatd.port, "bob")
    nc = await open_nc(chatd.port)
    await nc.send("tina")
    await nc.until(lambda s: s == "* tina joined")
    await nc.send("".join(f"pasted line {i}\n" for i in range(1, 16)).encode())
    dropped = await nc.until(lambda s: s.endswith("not sent: pasted line 15"))
    named = [s.rpartition("not sent: ")[2] for s in dropped if s.startswith("! rate_limited")]
    last_sent = f"pasted line {15 - len(named)}"
    got = await bob.recv_until(lambda m: m.get("message") == last_sent)
    sent = [m["message"] for m in got if m["type"] == "message"]
    assert named and sent + named == [f"pasted line {i}" for i in range(1, 16)]


async def test_nc_welcome_names_the_others_or_says_alone_and_help_is_complete(
    start_chatd: StartChatd, open_nc: OpenNc,
) -> None:
    """PROTOCOL.txt 6.1, 6.2."""
    chatd = await start(start_chatd)
    nc = await open_nc(chatd.port)
    await nc.send("solo")
    assert await nc.line() == "* welcome, solo: you are in lobby alone for now (/help for commands)"
    await nc.send("/help")
    help_lines = await nc.until(lambda s: s.startswith("* /quit"))
    assert any(h.startswith("* //text") for h in help_lines)


async def test_nc_blank_name_joins_as_anonymous(start_chatd: StartChatd, open_nc: OpenNc) -> None:
    """PROTOCOL.txt 6.1, 5.1: Enter alone as the name joins as 익명, as from chatc and the
    page, whether or not the greeting came first."""
    # 3 s: bob's connect, sent at once, is in long before on a loaded machine
    chatd = await start(start_chatd, "--greet-after", "3")
    bob = await Client.joined(chatd.port, "bob")
    nc = await open_nc(chatd.port)
    assert (await nc.line()).startswith("* welcome to chatd!")
    await nc.send("")
    assert await nc.line() == "* welcome, 익명: you are in lobby with bob (/help for commands)"
    assert (await bob.recv("connect"))["name"] == "익명"
    quick = await open_nc(chatd.port)  # Enter at once: most likely before the greeting
    await quick.send("   ")
    welcome = await quick.until(lambda s: not s.startswith("* welcome to chatd!"))
    assert welcome[-1].startswith("* welcome, 익명2: you are in lobby with ")


async def test_nc_blank_name_with_a_server_password(
    start_chatd: StartChatd, open_nc: OpenNc,
) -> None:
    """PROTOCOL.txt 6.1, 11.2: with --password the blank name is asked its password; Enter
    alone at the prompt asks again; then the right password joins as 익명."""
    chatd = await start(start_chatd, "--password", "right horse")
    nc = await open_nc(chatd.port)
    await nc.send("")
    assert await nc.line() == "* password:"
    await nc.send("")
    assert await nc.line() == "* password:"
    await nc.send("right horse")
    assert (await nc.line()).startswith("* welcome, 익명: you are in lobby")


async def test_nc_private_line_is_shown_to_its_sender(
    start_chatd: StartChatd, open_nc: OpenNc,
) -> None:
    """PROTOCOL.txt 6.2: /msg shows "-> *NAME* TEXT" at nc, as chatc shows it; a name
    nobody has gets the echo, then no_such_user."""
    chatd = await start(start_chatd)
    bob = await Client.joined(chatd.port, "bob")
    nc = await open_nc(chatd.port)
    await nc.send("tina")
    await nc.until("* tina joined")
    await nc.send("/msg bob  see you at 5")
    assert await nc.line() == "-> *bob*  see you at 5"
    got = await bob.recv_until(lambda m: m["type"] == "message")
    assert got[-1]["message"] == " see you at 5"
    await nc.send("/msg nobody hello?")
    assert await nc.line() == "-> *nobody* hello?"
    assert (await nc.line()).startswith("! no_such_user: ")


async def test_nc_oper_password_is_the_rest_of_the_line(
    start_chatd: StartChatd, open_nc: OpenNc,
) -> None:
    """PROTOCOL.txt 6.2, 15.1: README's CHATD_OPERS='alice:long secret' works as typed:
    /oper alice long secret."""
    chatd = await start_chatd("--rate", "0", env={"CHATD_OPERS": "alice:long secret"})
    nc = await open_nc(chatd.port)
    await nc.send("tina")
    await nc.until("* tina joined")
    await nc.send("/oper alice long secrets")
    assert (await nc.line()).startswith("! oper_failed: ")
    await nc.send("/oper alice long secret")
    assert await nc.line() == "* tina is now an operator"


async def test_whois_over_json_and_nc(start_chatd: StartChatd, open_nc: OpenNc) -> None:
    """PROTOCOL.txt 3.10, 4.14, 6.2: whois says which room a user is in, to the asker
    only; a name nobody has gets no_such_user."""
    chatd = await start(start_chatd)
    bob = await Client.joined(chatd.port, "Bob")
    await bob.send({"type": "join", "room": "dev"})  # a move: join, then part (17.2, 17.3)
    await bob.recv_until(lambda m: m["type"] == "connect" and m["room"] == "dev")
    await bob.send({"type": "part", "room": "lobby"})
    await bob.recv_until(lambda m: m["type"] == "disconnect")
    nc = await open_nc(chatd.port)
    await nc.send("tina")
    await nc.until(lambda line: line.startswith("* welcome, tina"))
    await nc.send("/whois bob")
    await nc.until("* Bob is in dev")
    await nc.send("/whois nobody")
    await nc.until(lambda line: line.startswith("! no_such_user: "))
    await bob.send({"type": "whois", "name": "tina"})
    assert await bob.recv("whois") == {"type": "whois", "name": "tina", "room": "lobby",
                                       "oper": False, "rooms": ["lobby"]}
