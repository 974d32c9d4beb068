"""chatc at the edges (issue 13, items 1-5): nothing typed is lost without a word, and
what chatc says is written for people. Real chatd, chatc in tmux panes or on pipes.
"""

from __future__ import annotations

import asyncio
import json
import re

from tests.support.chatc import (
    HEIGHT,
    STAMP,
    WIDTH,
    Proxy,
    Screen,
    Screens,
    finish,
    input_line,
    line,
    read_until,
    resident_mb,
    spawn,
)
from tests.support.harness import TIMEOUT, Chatd, Client, StartChatd


async def bottom_rows(screen: Screen, check: str, what: str, timeout: float = TIMEOUT
                      ) -> list[str]:
    """Wait until the visible rows, bottom up from the input line, match `check` (a regex
    over the last rows joined by newlines); the visible rows."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await screen.screen()
        while rows and not rows[-1].strip():
            rows.pop()
        if re.search(check, "\n".join(rows[-3:]), re.M):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{screen.label}: no {what}; screen:\n" + "\n".join(rows))
        await asyncio.sleep(0.05)  # polling the screen, bounded by the deadline


async def wait_words(screen: Screen, words: str) -> str:
    """Wait for `words` on the screen, however they are wrapped."""
    return await screen.wait_until(lambda text: words in " ".join(text.split()), repr(words))


# ------------------------------------------------------------------ 1. over-long lines


async def test_an_over_long_paste_is_refused_here_and_stays_in_the_input(
        chatd: Chatd, screens: Screens) -> None:
    bob = await Client.joined(chatd.port, "bob")
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby · 2 here")
    await alice.paste("x" * 70_000)
    await alice.wait_for(r"x{80}")
    await alice.keys("Enter")
    await alice.wait_for(r"! not sent: 70,0\d\d bytes is 4,\d\d\d over the server's limit "
                         r"\(65,536\); shorten it below")
    # The text is there to edit (the bottom rows show its end).
    rows = await bottom_rows(alice, r"\nx+$", "the text in the input line")
    assert re.fullmatch(r"x+", input_line(rows))
    assert "··:··:··" not in "\n".join(rows)  # and not waiting, unsendable, as pending
    await alice.keys("C-u")
    await alice.enter("after the long one")
    await bob.recv_until(lambda m: m.get("message") == "after the long one")
    await alice.wait_for(line("alice", "after the long one"))
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_a_big_paste_leaves_chatc_small_and_quick_and_the_screen_clean(
        chatd: Chatd, screens: Screens) -> None:
    """Issue 23 item 1: typed out key by key (a terminal without bracketed paste), a
    paste cost prompt_toolkit a copy of the whole text per key, kept for undo. A quarter
    of the issue's megabyte shows it as well (those copies would be 31 GB) in a quarter
    of the time."""
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby")
    pid = await alice.pid()
    await alice.paste("x" * (250_000 - 4) + "-end", bracketed=False)
    rows = await bottom_rows(alice, r"x-end$", "the end of the paste", timeout=120)
    assert resident_mb(pid) < 150
    assert sum("x" in row for row in rows) <= HEIGHT // 3  # the input area stays a third
    await alice.type("!")  # still answering keys (a generous bound: no timing claim)
    await bottom_rows(alice, r"x-end!$", "a key typed after the paste")
    await alice.keys("Enter")
    # The line as sent names its room (PROTOCOL.txt 17): 250,000 + 64 bytes of JSON.
    await alice.wait_for(r"! not sent: 250,064 bytes is 184,528 over the server's limit")
    await alice.keys("C-u")
    await alice.enter("after the paste")
    await alice.wait_for(line("alice", "after the paste"))
    # Clean: the input line is back on the bottom row, right under the status bar, and
    # nothing of the paste is left on the screen.
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while (rows := await alice.screen())[-1].rstrip() != "lobby>":
        assert asyncio.get_running_loop().time() < deadline, "\n".join(rows)
        await asyncio.sleep(0.05)  # polling the screen, bounded by the deadline
    assert rows[-2].startswith(" alice in lobby"), rows
    assert not any("xxx" in row for row in rows), rows
    assert resident_mb(pid) < 150
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


def without_announced_limit(raw: bytes) -> bytes:
    """The welcome as a server that does not announce its line limit sends it."""
    update = json.loads(raw)
    if update.get("type") != "welcome":
        return raw
    update.pop("max_line_bytes", None)
    return json.dumps(update).encode() + b"\n"


async def test_line_too_long_without_ref_fails_that_line_and_the_next_is_sent(
        start_chatd: StartChatd, screens: Screens) -> None:
    """A server with a smaller limit that chatc does not know: its line_too_long has no
    ref (it cannot read the line), and still frees the line in flight."""
    server = await start_chatd("--rate", "0", "--max-line-bytes", "1000")
    proxy = await Proxy(server.port, rewrite=without_announced_limit).start()
    bob = await Client.joined(server.port, "bob")
    alice = await screens.chatc("alice", proxy.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby · 2 here")
    await alice.enter("y" * 1500)
    await alice.enter("the next line")
    await wait_words(alice, f"! “{'y' * 30}…” not sent: over the server's limit of 1,000 "
                            "bytes; shorten it (line_too_long)")
    got = await bob.recv_until(lambda m: m.get("message") == "the next line")
    assert not any(m.get("message", "").startswith("yyy") for m in got)
    await alice.wait_for(line("alice", "the next line"))
    assert "··:··:··" not in "\n".join(await alice.screen())
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    await proxy.close()


async def test_an_unanswered_line_does_not_block_the_next_and_a_late_ack_is_shown(
        chatd: Chatd, screens: Screens) -> None:
    proxy = await Proxy(chatd.port).start()
    bob = await Client.joined(chatd.port, "bob")
    alice = await screens.chatc("alice", proxy.port, "--name", "alice", "--ack-timeout", "1")
    await alice.wait_for(r"alice in lobby · 2 here")
    proxy.to_client.clear()  # the server's answers are held up on the way
    await alice.enter("one")
    await wait_words(alice, "! “one”: no answer from the server in 1s; it may not have "
                            "arrived (check, then send it again) (no_answer)")
    await alice.enter("two")
    got = await bob.recv_until(lambda m: m.get("message") == "two")  # not held by "one"
    assert [m["message"] for m in got if m["type"] == "message"] == ["one", "two"]
    proxy.to_client.set()
    await alice.wait_for(line("alice", "two"))
    text = await alice.wait_for(rf"{STAMP} \* the server took “one” after all")
    assert re.search(line("alice", "one"), text)
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    await proxy.close()


# ------------------------------------------------------------------ 2. quitting with unsent lines


async def away_with_a_pending_line(chatd: Chatd, screens: Screens) -> tuple[Proxy, Screen]:
    proxy = await Proxy(chatd.port).start()
    alice = await screens.chatc("alice", proxy.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby")
    proxy.cut()
    await alice.wait_for(r"connection lost")
    await alice.enter("typed while away")
    await alice.wait_for(r"··:··:·· <alice> typed while away")
    await alice.keys("C-d")
    await wait_words(alice, "* 1 line not sent yet: waiting for the server to take it "
                            "(Ctrl-D again: quit without it)")
    return proxy, alice


async def test_ctrl_d_with_an_unsent_line_waits_for_it_then_quits(
        chatd: Chatd, screens: Screens) -> None:
    bob = await Client.joined(chatd.port, "bob")
    proxy, alice = await away_with_a_pending_line(chatd, screens)
    proxy.restore()
    await bob.recv_until(lambda m: m.get("message") == "typed while away")
    assert await alice.exit_status() == 0  # by itself, once the line was taken
    assert re.search(line("alice", "typed while away"), await alice.text())
    await proxy.close()


async def test_a_second_ctrl_d_quits_anyway_and_names_what_was_not_sent(
        chatd: Chatd, screens: Screens) -> None:
    proxy, alice = await away_with_a_pending_line(chatd, screens)
    await alice.keys("C-d")
    assert await alice.exit_status() == 1
    assert re.search(rf"{STAMP} ! not sent: “typed while away”", await alice.text())
    await proxy.close()


async def test_line_mode_waits_a_bounded_time_then_names_the_unsent_lines(
        chatd: Chatd) -> None:
    proxy = await Proxy(chatd.port).start()
    bot = await spawn("127.0.0.1", str(proxy.port), "--name", "bot", "--reconnect",
                      "--ack-timeout", "1")
    await read_until(bot, r" \* bot joined$")
    proxy.cut()
    assert bot.stdin is not None
    bot.stdin.write(b"one line while away\n")
    bot.stdin.close()
    code, _, err = await finish(bot)
    assert code == 1
    assert "chatc: not sent: 'one line while away'\n" in err
    assert err.endswith("chatc: 1 line not sent\n")
    await proxy.close()


async def test_line_mode_names_an_over_long_line_and_sends_the_rest(chatd: Chatd) -> None:
    bob = await Client.joined(chatd.port, "bob")
    bot = await spawn("127.0.0.1", str(chatd.port), "--name", "bot")
    await read_until(bot, r" \* bot joined$")
    assert bot.stdin is not None
    bot.stdin.write(b"first\n" + b"z" * 70_000 + b"\nthird\n")
    bot.stdin.close()
    code, out, err = await finish(bot)
    got = await bob.recv_until(lambda m: m.get("message") == "third")
    assert [m["message"] for m in got if m["type"] == "message"] == ["first", "third"]
    assert code == 1
    assert re.search(r"^chatc: line 2 not sent: 70,0\d\d bytes, and the server takes at "
                     r"most 65,536: 'z{60}…'$", err, re.M)
    assert re.search(rf"^{STAMP} <bot> third$", out, re.M)


# ------------------------------------------------------------------ 3. resizing


async def test_resizing_leaves_no_stale_status_bar_and_dividers_fit(
        chatd: Chatd, screens: Screens) -> None:
    bob = await Client.joined(chatd.port, "bob", room="dev")
    for n in range(3):
        await bob.say(f"line {n} in dev, long enough to wrap at a narrow width of the pane")
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby")
    await alice.enter("/join dev")
    await alice.wait_for(r"3 earlier lines of dev above")
    await alice.type("half typed")
    status = r"^ alice in dev · 2 here"
    for width, height in ((50, 20), (140, 40), (34, 14)):
        await alice.resize(width, height)
        # Drawn again at the new width: the status bar is right above the input line.
        await bottom_rows(alice, status + r".*\ndev> half typed$", f"redraw at {width}")
        text = await alice.text()
        assert len(re.findall(status, text, re.M)) == 1, text
        assert len(re.findall(r"^dev> ", text, re.M)) == 1, text
    await alice.keys("C-u")
    # Back to lobby and to dev again: moves, a join then a part (PROTOCOL.txt 17.2, 17.3)
    await alice.enter("/part dev")
    await alice.enter("/part lobby")
    await alice.enter("/join lobby")
    await alice.wait_for(r"(?m)^ alice in lobby · 1 here")  # the status bar, not the welcome
    await alice.enter("/join dev")
    await alice.wait_for(r"alice in dev · 2 here")
    await alice.enter("/who")
    await alice.wait_for(r"in dev: bob, alice", count=1)
    rows = await alice.screen()
    assert any("── 3 earlier lines" in row for row in rows)  # printed at 34 columns
    for row in rows:
        assert not row.strip() or row.strip(" ─"), rows  # no row of a lone rule
    # (Polled: a capture can fall between the erase and the redraw of the input area.)
    await alice.wait_until(lambda text: len(re.findall(status, text, re.M)) == 1,
                           "one status bar")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    assert WIDTH == 100  # the other tests' panes are not resized


async def test_after_a_narrower_resize_lines_on_screen_wrap_with_their_indent(
        chatd: Chatd, screens: Screens) -> None:
    """Issue 23 item 5: the terminal re-wraps rows already drawn at the new width, so
    `(ban evasio` / `n)` came out without the hanging indent new lines have."""
    bob = await Client.joined(chatd.port, "bob")
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby · 2 here")
    words = " ".join(f"word{n}" for n in range(30))  # 2 rows at 100 columns
    await bob.say(words)
    await alice.wait_for(line("bob", "word0 word1"))
    await alice.type("half typed")
    await alice.resize(50, HEIGHT)
    rows = await bottom_rows(alice, r"^ alice in lobby.*\nlobby> half typed$", "a redraw")
    head = rows.index(next(row for row in rows if "<bob> word0" in row))
    body = [rows[head]]
    for row in rows[head + 1:]:
        if not row.startswith(" " * 15) or row.startswith(" alice in lobby"):
            break
        body.append(row)
    # Every row of bob's line is within 50 columns and under its body, as when printed.
    assert " ".join(" ".join(body).split()[2:]) == words, rows
    assert all(len(row) <= 50 for row in rows), rows
    await alice.keys("C-u")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    assert WIDTH == 100  # the other tests' panes are not resized


# ------------------------------------------------------------------ 4. /msg to oneself


async def test_a_private_line_to_oneself_is_shown_once(chatd: Chatd, screens: Screens) -> None:
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby")
    await alice.enter("/msg alice a note to myself")
    await alice.enter("/who")  # answered after the line's echo and ack
    text = await alice.wait_for(r"in lobby: alice")
    assert len(re.findall(rf"{STAMP} -> \*alice\* a note to myself", text)) == 1, text
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


# ------------------------------------------------------------------ issue 23 item 3


async def test_after_a_restart_chatc_is_back_soon_and_says_so_in_one_line(
        start_chatd: StartChatd, screens: Screens) -> None:
    first = await start_chatd("--rate", "0")
    alice = await screens.chatc("alice", first.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby · 1 here")
    await first.stop()
    # Long enough for a growing backoff to grow: it used to wait 15 s by attempt 6.
    await bottom_rows(alice, r"reconnecting \(attempt 7\)\n", "seventh attempt", 2 * TIMEOUT)
    await start_chatd("--rate", "0", "--port", str(first.port))
    # The cap is 2 s (tests/unit/test_chatc_session.py); this is a failure timeout.
    text = await alice.wait_for(r"reconnected after")
    said = text[text.index("server shutting down"):]
    assert re.search(rf"{STAMP} \* reconnected after \d+s as a new session; lines sent "
                     r"while you were away may be lost\n", said), said
    # One line for the way back: not also the server's notice, nor a second remark.
    rows = [row for row in said.split("\n")[1:]
            if re.match(STAMP, row) and re.search(r"reconnect|resume|lost|missed", row)]
    assert len(rows) == 2, rows  # "connection lost: ...", then "reconnected ..."
    assert "could not resume" not in said
    await bottom_rows(alice, r"^ alice in lobby · 1 here", "the status bar again")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


# ------------------------------------------------------------------ 5. words, not codes


async def test_errors_say_what_happened_and_what_to_do(chatd: Chatd, screens: Screens) -> None:
    bob = await Client.joined(chatd.port, "bob")
    minsu = await screens.chatc("minsu", chatd.port, "--name", "민수")
    await minsu.wait_for(r"민수 in lobby · 2 here")
    await minsu.enter("/nick bob")
    await minsu.wait_for(rf"{STAMP} ! bob is taken; try /nick bob_  \(name_taken\)")
    await minsu.enter("/nick 민수")
    await minsu.wait_for(rf"{STAMP} \* you are 민수 already")
    await minsu.enter("/join lobby")
    await minsu.wait_for(rf"{STAMP} \* you are in lobby already")
    await minsu.enter("/frobnicate")
    text = await minsu.wait_for(rf"{STAMP} ! /frobnicate is not a command; /help lists them, "
                                r"and //frobnicate sends it as text")
    for code in ("name_taken:", "bad_name", "bad_room", "unknown_command"):
        assert code not in text
    await minsu.enter("/quit")
    assert await minsu.exit_status() == 0
    await bob.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "민수")


async def test_reconnecting_keeps_one_status_line_and_does_not_claim_nothing_was_missed(
        start_chatd: StartChatd, screens: Screens) -> None:
    first = await start_chatd("--rate", "0")
    bob = await Client.joined(first.port, "bob")
    alice = await screens.chatc("alice", first.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby · 2 here")
    await bob.say("before the restart")
    await alice.wait_for(line("bob", "before the restart"))
    await first.stop()
    rows = await bottom_rows(alice, r"reconnecting \(attempt 3\)\n", "third attempt")
    assert re.fullmatch(r" alice in lobby · 127\.0\.0\.1:\d+ · reconnecting \(attempt 3\)",
                        rows[-2].rstrip())  # no head count while nobody is known to be there
    text = await alice.text()
    assert len(re.findall(r"reconnecting", text)) == 2, text  # the first notice + status bar
    second = await start_chatd("--rate", "0", "--port", str(first.port))
    # "after Ns" only when the way back took a second or more: that is the machine's speed
    text = await alice.wait_for(rf"{STAMP} \* reconnected( after \d+s)? as a new session; "
                                r"lines sent while you were away may be lost")
    assert "no lines were missed" not in text
    await bottom_rows(alice, r"^ alice in lobby · 1 here", "head count again")
    carol = await Client.joined(second.port, "carol")
    await alice.wait_for(r"alice in lobby · 2 here")
    await alice.enter("/quit")
    assert await alice.exit_status() == 0
    await carol.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "alice")
