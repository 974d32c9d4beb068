"""chatc in real terminals (tmux panes) against a real chatd, with nc as a third user.

What is checked is what a person sees: capture-pane of a 100x30 pane.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.support.chatc import (
    STAMP,
    Proxy,
    Screen,
    Screens,
    input_line,
    line,
)
from tests.support.harness import TIMEOUT, Chatd, Client, StartChatd


class Nc:
    """A person at `nc`: text mode (PROTOCOL.txt 6)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def open(cls, port: int, name: str) -> Nc:
        proc = await asyncio.create_subprocess_exec(
            "nc", "127.0.0.1", str(port), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        nc = cls(proc)
        await nc.send(name)
        await nc.until(rf"\* {re.escape(name)} joined")
        return nc

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def until(self, pattern: str) -> str:
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        async def scan() -> str:
            while line := await stdout.readline():
                text = line.decode()
                if re.search(pattern, text):
                    return text
            raise AssertionError(f"nc: connection closed before {pattern!r}")

        return await asyncio.wait_for(scan(), TIMEOUT)

    async def quit(self) -> None:
        await self.send("/quit")
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # nc ends when both directions have
        await asyncio.wait_for(self.proc.wait(), TIMEOUT)


async def wait_input(screen: Screen, expected: str) -> None:
    """Wait until the input line (the bottom row) reads `expected`."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while (found := input_line(await screen.screen())) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"input line is {found!r}, not {expected!r}")
        await asyncio.sleep(0.05)  # polling the screen, bounded by the deadline



def colours(text: str) -> set[str]:
    """Foreground colours set by SGR sequences in `text` (30-37, 90-97, 38;...)."""
    found = set()
    for params in re.findall(r"\x1b\[([0-9;]*)m", text):
        codes = params.split(";")
        for n, code in enumerate(codes):
            if code == "38":
                found.add(";".join(codes[n:n + 3]))
            elif code.isdigit() and (30 <= int(code) <= 37 or 90 <= int(code) <= 97):
                found.add(code)
    return found


def notice(text: str) -> str:
    return rf"{STAMP} \* {re.escape(text)}"


async def test_two_chatc_users_and_an_nc_user_chat(chatd: Chatd, screens: Screens) -> None:
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby")
    bob = await screens.chatc("bob", chatd.port, "--name", "bob")
    await bob.wait_for(r"you are bob in lobby, with alice")
    await alice.wait_for(notice("bob joined"))
    carol = await Nc.open(chatd.port, "carol")
    await alice.wait_for(notice("carol joined"))
    await bob.wait_for(notice("carol joined"))

    await alice.type("half-typed 한글 words")
    await bob.enter("hello from bob, 안녕하세요")
    await carol.send("[bold red]x[/] markup")
    await carol.send("esc \x1b[31mred\x07 bell")
    await alice.wait_for(line("bob", "hello from bob, 안녕하세요"))
    await alice.wait_for(line("carol", "esc [31mred bell"))
    await alice.wait_for(line("carol", "[bold red]x[/] markup"))  # not interpreted
    rows = await alice.screen()
    assert input_line(rows) == "lobby> half-typed 한글 words"  # survived the incoming lines
    # On a terminal the ESC would have turned the text red and vanished from the screen;
    # shown literally, the escape's tail is plain text with no colour of its own.
    coloured = await alice.text(colours=True)
    assert "esc [31mred bell" in coloured
    assert "[bold red]x[/] markup" in coloured

    await alice.enter(" done")
    await bob.wait_for(line("alice", "half-typed 한글 words done"))
    await alice.wait_for(line("alice", "half-typed 한글 words done"))  # own line, confirmed
    await carol.until(r"<alice> half-typed 한글 words done")
    text = await bob.text()
    assert re.search(line("bob", "hello from bob, 안녕하세요"), text)  # own line shown too

    await bob.enter("/quit")
    assert await bob.exit_status() == 0
    await alice.wait_for(notice("bob left"))
    await carol.until(r"\* bob left")
    await carol.quit()
    await alice.wait_for(notice("carol left"))
    await alice.keys("C-u", "C-d")
    assert await alice.exit_status() == 0


async def test_commands_rooms_history_private_lines_and_nick(
        chatd: Chatd, screens: Screens) -> None:
    bob = await Client.joined(chatd.port, "bob", room="dev")
    await bob.say("first in dev")
    await bob.say("second in dev")
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby")
    await alice.enter("/help")
    help_text = await alice.wait_for(r"/msg NAME TEXT")
    for command in ("/who", "/rooms", "/join ROOM", "/nick NAME", "/quit"):
        assert command in help_text
    await alice.enter("/join dev")
    text = await alice.wait_for(r"2 earlier lines of dev above")
    assert re.search(r"── earlier in dev ─+\n" + line("bob", "first in dev") + r"\n"
                     + line("bob", "second in dev") + r"\n", text)
    await alice.wait_for(r"alice in dev · 2 here · 1:lobby \[2:dev\]")  # a window of its own
    await alice.enter("/rooms")
    await alice.wait_for(notice("rooms: dev (2, yours), lobby (1, yours)"))
    await alice.enter("/who")
    # The second: the join showed who is in dev once already.
    await alice.wait_for(notice("in dev: bob, alice"), count=2)
    await alice.keys("Up")  # line editing history
    await wait_input(alice, "dev> /who")
    await alice.keys("Up")
    await wait_input(alice, "dev> /rooms")
    await alice.keys("C-u")
    await wait_input(alice, "dev>")
    await alice.enter("/msg bob just for you")
    private = await bob.recv_until(lambda m: m.get("message") == "just for you")
    assert private[-1].get("private") is True
    await alice.wait_for(rf"{STAMP} -> \*bob\* just for you")
    await bob.say("psst back", to="alice")
    # A private line goes to its partner's window (the /msg opened it), marked unread.
    await alice.wait_for(r"alice in dev · 2 here · 1:lobby \[2:dev\] 3:\*bob\*\(!1\)")
    await alice.keys("M-3")
    await alice.wait_for(rf"{STAMP} \*bob\* psst back")
    await alice.keys("M-2")
    await alice.wait_for(r"alice in dev · 2 here · 1:lobby \[2:dev\] 3:\*bob\* ")
    await alice.enter("/msg nobody hello")
    await alice.wait_for(rf"{STAMP} ! “hello” not sent: nobody called nobody is online; "
                         r"see /who all  \(no_such_user\)")
    await alice.enter("/nick alicia")
    await alice.wait_for(notice("alice is now known as alicia"))
    await alice.wait_for(r"alicia in dev")
    await alice.enter("/frobnicate")
    await alice.wait_for(rf"{STAMP} ! /frobnicate is not a command; /help lists them")
    await alice.enter("//slash line")
    got = await bob.recv_until(lambda m: m["type"] == "message" and m["name"] == "alicia")
    assert got[-1]["message"] == "/slash line"
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    await bob.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "alicia")


async def test_nickname_prompt_blank_gives_the_server_default(
        chatd: Chatd, screens: Screens) -> None:
    taken = await Client.joined(chatd.port, "익명")
    anon = await screens.chatc("anon", chatd.port)
    await anon.wait_for(r"Nickname")
    await anon.keys("Enter")
    # The name the server gave (the default was taken, so a variant) is what is shown.
    await anon.wait_for(r"you are 익명2 in lobby, with 익명")
    await anon.wait_for(notice("익명 is taken, so you are 익명2"))
    await anon.wait_for(r"익명2 in lobby · 2 here")
    await taken.recv_until(lambda m: m["type"] == "connect" and m["name"] == "익명2")
    await anon.keys("C-d")
    assert await anon.exit_status() == 0


async def test_reconnect_after_a_network_drop_shows_missed_lines_once(
        chatd: Chatd, screens: Screens) -> None:
    proxy = await Proxy(chatd.port).start()
    bob = await Client.joined(chatd.port, "bob")
    alice = await screens.chatc("alice", proxy.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby · 2 here")
    await bob.say("before the drop")
    await alice.wait_for(line("bob", "before the drop"))
    proxy.cut()
    await alice.wait_for(r"connection lost: .+; reconnecting in")
    await bob.say("missed one")
    await bob.say("missed two")
    await alice.enter("typed while away")
    await alice.wait_for(r"··:··:·· <alice> typed while away")  # pending, no ack yet
    proxy.restore()
    text = await alice.wait_for(line("alice", "typed while away"))
    assert re.search(r"\* reconnected( after \d+s)?; nothing was lost", text), text
    assert re.search(line("bob", "missed one") + r"\n" + line("bob", "missed two"), text)
    for seen in ("before the drop", "missed one", "missed two"):
        assert len(re.findall(line("bob", seen), text)) == 1
    got = await bob.recv_until(lambda m: m.get("message") == "typed while away")
    assert not any(m["type"] == "disconnect" for m in got)
    rows = await alice.screen()
    assert "··:··:··" not in "\n".join(rows)  # the pending mark is gone with the ack
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    await proxy.close()


async def test_server_restart_is_survived(start_chatd: StartChatd, screens: Screens) -> None:
    first = await start_chatd()
    alice = await screens.chatc("alice", first.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby")
    await first.stop()
    await alice.wait_for(notice("server shutting down"))
    await alice.wait_for(r"reconnecting")
    second = await start_chatd("--port", str(first.port))
    # "after Ns" only when the restart took a second or more: that is the machine's speed.
    await alice.wait_for(r"reconnected( after \d+s)? as a new session; ")
    bob = await Client.joined(second.port, "bob")
    await bob.say("welcome back")
    await alice.wait_for(line("bob", "welcome back"))
    await alice.enter("thanks")
    await bob.recv_until(lambda m: m.get("message") == "thanks")
    await alice.keys("C-d")
    assert await alice.exit_status() == 0


async def test_restart_with_history_db_shows_the_lines_sent_while_away(
        start_chatd: StartChatd, screens: Screens, tmp_path: Path) -> None:
    """Issue 6: chatc in a real terminal survives a chatd restart with --history-db and
    shows the lines sent while it was away, each once, in order."""
    db = ("--history-db", str(tmp_path / "history.sqlite"), "--rate", "0")
    first = await start_chatd(*db)
    proxy = await Proxy(first.port).start()
    alice = await screens.chatc("alice", proxy.port, "--name", "alice")
    bob = await Client.joined(first.port, "bob")
    await alice.wait_for(r"alice in lobby · 2 here")
    await bob.say("before it all")
    await alice.wait_for(line("bob", "before it all"))
    proxy.cut()  # alice is away before, during and after the restart
    await alice.wait_for(r"reconnecting")
    await bob.say("missed before the restart")
    await bob.send({"type": "ping"})  # its pong: the line before it was taken
    await bob.recv_until(lambda m: m["type"] == "pong")
    await first.stop()
    second = await start_chatd("--port", str(first.port), *db)
    carol = await Client.joined(second.port, "carol")
    await carol.say("missed after the restart")
    await carol.send({"type": "ping"})
    await carol.recv_until(lambda m: m["type"] == "pong")
    proxy.restore()
    text = await alice.wait_for(line("carol", "missed after the restart"))
    assert re.search(line("bob", "missed before the restart") + r"\n"
                     + line("carol", "missed after the restart"), text)
    for seen in ("before it all", "missed before the restart"):
        assert len(re.findall(line("bob", seen), text)) == 1
    await carol.say("live again")
    await alice.wait_for(line("carol", "live again"))
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    await proxy.close()


async def test_server_going_away_without_reconnect_exits_1_with_one_line(
        start_chatd: StartChatd, screens: Screens) -> None:
    server = await start_chatd()
    alice = await screens.chatc("alice", server.port, "--name", "alice", "--no-reconnect")
    await alice.wait_for(r"alice in lobby")
    await server.stop()
    assert await alice.exit_status() == 1
    text = await alice.text()
    assert len(re.findall(r"chatc: ", text)) == 1
    assert re.search(rf"{STAMP} ! chatc: the server shut down", text)
    assert "Traceback" not in text


async def test_no_color_is_honoured(chatd: Chatd, screens: Screens) -> None:
    bob = await Client.joined(chatd.port, "bob")
    plain = await screens.chatc("plain", chatd.port, "--name", "alice",
                                env={"NO_COLOR": "1"})
    await plain.wait_for(r"alice in lobby")
    await bob.say("colourless")
    await plain.wait_for(line("bob", "colourless"))
    assert not colours(await plain.text(colours=True))
    coloured = await screens.chatc("coloured", chatd.port, "--name", "carol")
    await coloured.wait_for(r"carol in lobby")
    await bob.say("colourful")
    await coloured.wait_for(line("bob", "colourful"))
    assert colours(await coloured.text(colours=True))
    await plain.keys("C-c")  # leaves too, like Ctrl-D
    assert await plain.exit_status() == 0
    await bob.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "alice")
