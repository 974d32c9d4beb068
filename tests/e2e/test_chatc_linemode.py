"""chatc without a terminal (line mode), and failures that must read as one line.

A real chatd, chatc as a subprocess on pipes, and chatc in a pseudo-terminal (pexpect)
for the failure that happens before any terminal UI starts.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pexpect

from tests.support.chatc import finish, read_until, spawn
from tests.support.harness import StartChatd

# The old import path of helpers now in tests.support.chatc, kept while branches merge.
__all__ = ["finish", "read_until", "spawn"]
from tests.support.chatc import STAMP, refused_port
from tests.support.harness import CHATC, TIMEOUT, Chatd, Client


async def test_pipe_in_pipe_out(chatd: Chatd) -> None:
    bob = await Client.joined(chatd.port, "bob")
    bot = await spawn("127.0.0.1", str(chatd.port), "--name", "bot", module=True)
    head = await read_until(bot, r" \* bot joined$")
    assert re.fullmatch(rf"{STAMP} \* you are bot in lobby, with bob \(chatd [^)]*\)", head[0])
    assert bot.stdin is not None
    bot.stdin.write("hi\n[bold red]x[/] 안녕\n".encode())
    await bot.stdin.drain()
    await read_until(bot, rf"^{STAMP} <bot> hi$")
    await read_until(bot, rf"^{STAMP} <bot> \[bold red\]x\[/\] 안녕$")
    got = await bob.recv_until(lambda m: m.get("message") == "[bold red]x[/] 안녕")
    assert [m["message"] for m in got if m["type"] == "message"] == ["hi", "[bold red]x[/] 안녕"]
    await bob.say("hello bot")
    await read_until(bot, rf"^{STAMP} <bob> hello bot$")
    bot.stdin.close()
    code, out, err = await finish(bot)
    assert (code, out, err) == (0, "", "")
    await bob.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "bot")


async def test_printf_into_chatc_sends_everything_then_exits(chatd: Chatd) -> None:
    bob = await Client.joined(chatd.port, "bob")
    script = await asyncio.create_subprocess_shell(
        f"printf 'one\\ntwo\\nthree\\n' | {CHATC} 127.0.0.1 {chatd.port} --name bot",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    code, out, err = await finish(script)
    assert (code, err) == (0, "")
    assert "\x1b" not in out
    lines = out.splitlines()
    assert re.fullmatch(rf"{STAMP} \* bot joined", lines[1])
    assert [re.sub(rf"^{STAMP} ", "", line) for line in lines[2:]] == [
        "<bot> one", "<bot> two", "<bot> three"]
    got = await bob.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "bot")
    assert [m["message"] for m in got if m["type"] == "message"] == ["one", "two", "three"]


async def test_line_mode_without_name_gets_the_server_default(chatd: Chatd) -> None:
    anon = await spawn("127.0.0.1", str(chatd.port))
    await read_until(anon, r" \* 익명 joined$")
    assert anon.stdin is not None
    anon.stdin.close()
    assert (await finish(anon))[0] == 0


async def test_server_going_away_in_line_mode_exits_1(start_chatd: StartChatd) -> None:
    server = await start_chatd()
    bot = await spawn("127.0.0.1", str(server.port), "--name", "bot")
    await read_until(bot, r" \* bot joined$")
    await server.stop()
    code, out, err = await finish(bot)
    assert code == 1
    assert re.fullmatch(rf"{STAMP} \* server shutting down\n", out)
    assert err == "chatc: disconnected: the server shut down\n"


async def test_refused_without_a_terminal_exits_1_with_one_line() -> None:
    sock, port = refused_port()
    with sock:
        code, out, err = await finish(await spawn("127.0.0.1", str(port), "--name", "x"))
    assert (code, out) == (1, "")
    assert err == f"chatc: connection to 127.0.0.1:{port} refused (is chatd running there?)\n"


def _run_in_pty(*args: str) -> tuple[int, str]:
    child = pexpect.spawn(CHATC, list(args), dimensions=(30, 100), encoding="utf-8",
                          timeout=TIMEOUT)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


async def test_refused_in_a_terminal_exits_1_with_one_line() -> None:
    sock, port = refused_port()
    with sock:
        code, output = await asyncio.to_thread(
            _run_in_pty, "127.0.0.1", str(port), "--name", "alice")
    assert code == 1
    assert output.strip().splitlines() == [
        f"chatc: connection to 127.0.0.1:{port} refused (is chatd running there?)"]


async def test_refused_name_exits_1_in_line_mode(chatd: Chatd) -> None:
    code, out, err = await finish(await spawn("127.0.0.1", str(chatd.port), "--name", "a b"))
    assert (code, out) == (1, "")
    assert err == "chatc: that name cannot be used: name cannot contain spaces (bad_name)\n"


async def test_line_mode_says_a_reconnect_came_back_under_another_name(
        start_chatd: StartChatd, tmp_path: Path) -> None:
    """10.4, 18.3: a name registered from line mode has no login token, so after a
    restart the new session is bot2; stderr says so, with the server's reason."""
    db = str(tmp_path / "chat.db")
    first = await start_chatd("--rate", "0", "--db", db)
    bot = await spawn("127.0.0.1", str(first.port), "--name", "bot", "--reconnect",
                      env={"XDG_STATE_HOME": str(tmp_path / "state")})
    await read_until(bot, r" \* bot joined$")
    assert bot.stdin is not None
    bot.stdin.write(b"/register correct horse\n")
    await bot.stdin.drain()
    await read_until(bot, r" \* bot is registered")
    await first.stop()
    await start_chatd("--rate", "0", "--db", db, "--port", str(first.port))
    await read_until(bot, r" \* bot2 joined$")
    bot.stdin.close()
    code, _, err = await finish(bot)
    assert code == 0
    assert re.search(r"^chatc: you are bot2 now, not bot \(.*bot is a registered name",
                     err, re.M), err
