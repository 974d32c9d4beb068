"""chatc with accounts (PROTOCOL.txt 18, issue 26), in a real terminal (tmux) against a
real chatd with --db and --mentions; JSON clients as the other people and devices."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.support.chatc import Proxy, Screens, finish, read_until, spawn, status_bar
from tests.support.harness import Chatd, Client, StartChatd, register

PASSWORD = "correct horse"



@pytest.fixture
async def server(start_chatd: StartChatd, tmp_path: Path) -> Chatd:
    return await start_chatd("--rate", "0", "--max-per-ip", "0", "--mentions",
                             "--db", str(tmp_path / "chat.db"))


def state_env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "state"), **more}


async def test_login_keeps_a_token_and_the_next_run_uses_it(
        server: Chatd, screens: Screens, tmp_path: Path) -> None:
    """18.3: --login with $CHATC_LOGIN logs in; the welcome's token is kept in a file
    only the user reads (not the password) and a later run with the same --name logs in
    with it; a token revoked meanwhile is forgotten and the password asked for (no
    echo); a registered name without login is a variant, and the notice says so."""
    await register(server.port, "alice", PASSWORD)
    first = await screens.chatc("first", server.port, "--name", "alice", "--login",
                                env=state_env(tmp_path, CHATC_LOGIN=PASSWORD))
    await first.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice logged in")
    tokens = tmp_path / "state" / "chatc" / "tokens.json"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    saved = json.loads(tokens.read_text())
    assert list(saved) == [f"127.0.0.1:{server.port} alice"]
    assert PASSWORD not in tokens.read_text()
    await first.enter("/quit")
    assert await first.exit_status() == 0

    again = await screens.chatc("again", server.port, "--name", "Alice",
                                env=state_env(tmp_path))
    await again.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice logged in with the token")
    await again.enter("/quit")
    assert await again.exit_status() == 0

    # A password change on another device revokes chatc's token (18.7).
    other = await Client.open(server.port)
    await other.join("alice", login=PASSWORD)
    await other.send({"type": "password", "password": PASSWORD, "new": "new horse"})
    assert (await other.recv("account"))["event"] == "password"
    await other.send({"type": "disconnect"})
    await other.closed()

    revoked = await screens.chatc("revoked", server.port, "--name", "alice",
                                  env=state_env(tmp_path))
    await revoked.wait_for(r"saved login is no longer valid")
    await revoked.wait_for(r"Password of alice")
    await revoked.enter("new horse")
    await revoked.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                             "alice logged in with the new password")
    assert "new horse" not in await revoked.text()  # asked without echo
    assert json.loads(tokens.read_text())[f"127.0.0.1:{server.port} alice"] \
        != saved[f"127.0.0.1:{server.port} alice"]
    await revoked.enter("/logout")  # revokes and forgets the token, and leaves
    assert await revoked.exit_status() == 0
    assert json.loads(tokens.read_text()) == {}

    guest = await screens.chatc("guest", server.port, "--name", "alice",
                                env={"XDG_STATE_HOME": str(tmp_path / "elsewhere")})
    await guest.wait_for(r"alice is a registered name, so you are alice2")
    await guest.enter("/quit")
    assert await guest.exit_status() == 0


async def test_line_mode_logs_in_from_the_environment_or_exits_1(
        server: Chatd, tmp_path: Path) -> None:
    """18.3 in line mode: CHATC_LOGIN logs in and the token is kept; --login with
    neither a password nor a saved token cannot ask: exit 1 with one clear line."""
    await register(server.port, "alice", PASSWORD)
    lost = await spawn("127.0.0.1", str(server.port), "--name", "alice", "--login",
                       env={"XDG_STATE_HOME": str(tmp_path / "none"), "CHATC_LOGIN": ""})
    code, _out, err = await finish(lost)
    assert (code, err) == (1, "chatc: --login: no password (set CHATC_LOGIN) and no "
                              "saved login\n")
    bot = await spawn("127.0.0.1", str(server.port), "--name", "alice",
                      env=state_env(tmp_path, CHATC_LOGIN=PASSWORD))
    await read_until(bot, r"you are alice in lobby")
    assert bot.stdin is not None
    bot.stdin.close()
    assert (await finish(bot))[0] == 0
    saved = json.loads((tmp_path / "state" / "chatc" / "tokens.json").read_text())
    assert list(saved) == [f"127.0.0.1:{server.port} alice"]


async def test_account_commands_send_and_their_answers_show(
        server: Chatd, screens: Screens, tmp_path: Path) -> None:
    """18.2, 18.7, 4.16: /register and /password from the shared command table reach
    the server, and the account lines that answer them are shown."""
    alice = await screens.chatc("alice", server.port, "--name", "alice",
                                env=state_env(tmp_path))
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice joined")
    await alice.enter(f"/register {PASSWORD}")
    await alice.wait_for(r"alice is registered: connect with its password")
    await alice.enter(f"/password {PASSWORD} new horse")
    await alice.wait_for(r"\* .*password")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_a_mention_rings_the_bell_but_history_own_and_other_lines_do_not(
        server: Chatd, screens: Screens, tmp_path: Path) -> None:
    """18.6 (--mentions): a live line naming the user rings the terminal bell; the join
    history naming them, their own lines and lines naming nobody do not; --no-bell
    keeps it quiet."""
    bob = await Client.joined(server.port, "bob")
    await bob.say("alice: from before", ref="r0")
    await bob.recv("ack")
    alice = await screens.chatc("alice", server.port, "--name", "alice",
                                env=state_env(tmp_path))
    quiet = await screens.chatc("quiet", server.port, "--name", "carol", "--no-bell",
                                env=state_env(tmp_path))
    await alice.wait_for(r"<bob> alice: from before")
    await quiet.wait_for(r"<bob> alice: from before")
    await alice.enter("alice here")
    await bob.say("nobody named", ref="r1")
    await alice.wait_for(r"<bob> nobody named")
    assert not await alice.rang()
    await bob.say("hi alice and carol", ref="r2")
    await alice.wait_for(r"<bob> hi alice and carol")
    await quiet.wait_for(r"<bob> hi alice and carol")
    assert await alice.rang()
    assert not await quiet.rang()
    for screen in (alice, quiet):
        await screen.enter("/quit")
        assert await screen.exit_status() == 0


async def test_showing_a_window_marks_its_lines_read_for_the_account(
        server: Chatd, screens: Screens, tmp_path: Path) -> None:
    """18.5: lines that came to another window are counted; showing that window sends a
    read line for its newest line, which the server answers with the room's read line
    (seen through a relay: the read lines from the server to chatc)."""
    await register(server.port, "alice", PASSWORD)
    reads: list[dict[str, Any]] = []
    answered = asyncio.Event()

    def watch(line: bytes) -> bytes:
        message = json.loads(line)
        if message.get("type") == "read" and message.get("room") == "lobby":
            reads.append(message)
            answered.set()
        return line

    proxy = await Proxy(server.port, rewrite=watch).start()
    bob = await Client.joined(server.port, "bob")
    alice = await screens.chatc("alice", proxy.port, "--name", "alice", "--login",
                                env=state_env(tmp_path, CHATC_LOGIN=PASSWORD))
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice logged in")
    await alice.enter("/join dev")
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in dev"),
                           "dev shown")
    ids = []
    for n, text in enumerate(("one", "two", "hi alice")):
        await bob.say(text, ref=f"r{n}")
        ack = await bob.recv_until(lambda m: m["type"] == "ack")
        ids.append(ack[-1]["id"])
    await alice.wait_shown(lambda rows: "1:lobby(!3)" in status_bar(rows),
                           "lobby's lines counted")
    assert not reads
    await alice.keys("M-1")
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "lobby shown")
    await asyncio.wait_for(answered.wait(), 10)
    assert (reads[-1]["id"], reads[-1]["unread"]) == (ids[-1], 0), reads
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    await proxy.close()


async def test_a_name_registered_in_chatc_is_logged_in_and_marks_what_it_read(
        server: Chatd, screens: Screens, tmp_path: Path) -> None:
    """18.2: /register logs the user in to the new account at once, so chatc tells the
    server what it has read from then on (18.5), as after a login: the account's other
    device (a JSON client logged in with the password) gets the read line of lobby up to
    bob's line shown in chatc."""
    bob = await Client.joined(server.port, "bob")
    alice = await screens.chatc("alice", server.port, "--name", "alice",
                                env=state_env(tmp_path))
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice joined")
    await alice.enter(f"/register {PASSWORD}")
    await alice.wait_for("alice is registered")
    phone = await Client.open(server.port)
    await phone.join("alice", login=PASSWORD)
    await bob.say("seen on the terminal", ref="r1")
    last = (await bob.recv_until(lambda m: m["type"] == "ack"))[-1]["id"]
    await alice.wait_for("<bob> seen on the terminal")
    got = await phone.recv_until(lambda m: m["type"] == "read" and m["id"] == last)
    assert got[-1]["room"] == "lobby" and got[-1]["unread"] == 0, got
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_a_read_line_from_the_server_clears_the_windows_count(
        server: Chatd, screens: Screens, tmp_path: Path) -> None:
    """18.5, 18.4: a read line (another device of the account read the room) sets the
    count of that room's window: the other device is a JSON client logged in to the
    same account, which reads lobby up to bob's last line."""
    await register(server.port, "alice", PASSWORD)
    bob = await Client.joined(server.port, "bob")
    alice = await screens.chatc("alice", server.port, "--name", "alice", "--login",
                                env=state_env(tmp_path, CHATC_LOGIN=PASSWORD))
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice logged in")
    await alice.enter("/join dev")
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in dev"),
                           "dev shown")
    last = ""
    for n, text in enumerate(("one", "hi alice", "three")):
        await bob.say(text, ref=f"r{n}")
        last = (await bob.recv_until(lambda m: m["type"] == "ack"))[-1]["id"]
    await alice.wait_shown(lambda rows: "1:lobby(!3)" in status_bar(rows),
                           "lobby's lines counted")
    phone = await Client.open(server.port)
    await phone.send({"type": "connect", "name": "alice", "login": PASSWORD})
    await phone.recv("welcome")
    await phone.send({"type": "read", "room": "lobby", "id": last})
    await phone.recv_until(lambda m: m["type"] == "read")
    await alice.wait_shown(lambda rows: "1:lobby " in status_bar(rows) + " "
                           and "1:lobby(" not in status_bar(rows), "lobby read elsewhere")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_after_a_server_restart_chatc_logs_in_again_with_its_token(
        start_chatd: StartChatd, screens: Screens, tmp_path: Path) -> None:
    """18.3, 10: a reconnect to a restarted server (no session to resume) logs in with
    the login token, not the password (which chatc no longer has): alice, not alice2."""
    db = str(tmp_path / "chat.db")
    first = await start_chatd("--rate", "0", "--db", db)
    await register(first.port, "alice", PASSWORD)
    alice = await screens.chatc("alice", first.port, "--name", "alice", "--login",
                                env=state_env(tmp_path, CHATC_LOGIN=PASSWORD))
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice logged in")
    await first.stop()
    await alice.wait_for(r"connection lost")
    await start_chatd("--rate", "0", "--db", db, "--port", str(first.port))
    await alice.wait_for(r"\* reconnected")
    await alice.enter("/whois alice")
    # One screen shows both: a redraw can catch the lines without the bar under them.
    await alice.wait_shown(
        lambda r: "* alice is in lobby" in r and status_bar(r).startswith(" alice in lobby"),
        "whois, alice in lobby")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_a_name_registered_in_chatc_comes_back_logged_in_after_a_restart(
        start_chatd: StartChatd, screens: Screens, tmp_path: Path) -> None:
    """18.2, 18.3, 10.4: the register answer gives the registering device its login
    token, which chatc keeps (not the password), so a reconnect to a restarted server
    logs in with it: alice again, not alice2."""
    db = str(tmp_path / "chat.db")
    first = await start_chatd("--rate", "0", "--db", db)
    alice = await screens.chatc("alice", first.port, "--name", "alice",
                                env=state_env(tmp_path))
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice joined")
    await alice.enter(f"/register {PASSWORD}")
    await alice.wait_for("alice is registered")
    tokens = tmp_path / "state" / "chatc" / "tokens.json"
    await alice.wait_shown(lambda rows: tokens.exists(), "the login token kept")
    assert PASSWORD not in tokens.read_text()
    await first.stop()
    await alice.wait_for(r"connection lost")
    await start_chatd("--rate", "0", "--db", db, "--port", str(first.port))
    await alice.wait_for(r"\* reconnected")
    await alice.enter("/whois alice")
    await alice.wait_shown(
        lambda r: "* alice is in lobby" in r and status_bar(r).startswith(" alice in lobby"),
        "whois, alice in lobby")
    assert "alice2" not in "\n".join(await alice.screen())
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_a_reconnect_under_another_name_says_so(
        start_chatd: StartChatd, screens: Screens, tmp_path: Path) -> None:
    """10.4, 18.3: after a restart the new session is alice2 (the restarted server
    knows alice as an account, which this chatc never logged in to); chatc says the
    user is alice2 now, with the server's reason, not only in the status bar."""
    registered = str(tmp_path / "registered.db")
    other = await start_chatd("--rate", "0", "--db", registered)
    await register(other.port, "alice", PASSWORD)
    await other.stop()
    first = await start_chatd("--rate", "0", "--db", str(tmp_path / "chat.db"))
    alice = await screens.chatc("alice", first.port, "--name", "alice",
                                env=state_env(tmp_path))
    await alice.wait_shown(lambda rows: status_bar(rows).startswith(" alice in lobby"),
                           "alice joined")
    await first.stop()
    await alice.wait_for(r"connection lost")
    await start_chatd("--rate", "0", "--db", registered, "--port", str(first.port))
    await alice.wait_for(r"you are alice2 now, not alice \(could not resume")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
