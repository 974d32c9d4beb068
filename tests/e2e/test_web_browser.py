"""The chat page in a real headless Chromium (Debian's package, driven by Playwright), next
to TCP users of the same chatd: chat, notices, history, rooms, text that stays text,
phone width, and reconnecting after a drop and after a restart.

Every wait is one of Playwright's bounded waits on the page's DOM (or a bounded wait on
chatd's log or a TCP client); nothing sleeps.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from chatd.palette import name_colour
from tests.support.harness import Client
from tests.support.web import (
    WAIT_MS,
    ChatPage,
    Cutter,
    StartWeb,
    browser,
    cutter_factory,
    start_web,
)

# The old import path of helpers now in tests.support.web, kept while branches merge.
__all__ = ["WAIT_MS", "ChatPage", "Cutter", "browser", "cutter_factory", "start_web"]


async def test_two_browsers_and_a_tcp_user_chat(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    server = await start_web("--rate", "0", "--resume-grace", "1")  # a closed tab: see below
    carol = await Client.joined(server.port, "carol")
    await carol.say("before anyone came", ref="h")
    await carol.recv("ack")

    alice = await ChatPage.open(browser, server.url, "alice")
    history = alice.line("before anyone came")
    await expect(history).to_have_class(re.compile(r"\bhistory\b"))
    await expect(alice.lines(".history-divider")).to_have_text("Earlier in #lobby")
    await expect(history.locator(".name")).to_have_css("--name", name_colour("carol"))
    await expect(alice.texts("li.notice")).to_have_text(["alice joined"])
    await expect(alice.page.locator("#users .name")).to_have_text(["alice", "carol"])
    await carol.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")

    bob = await ChatPage.open(browser, server.url, "   ")  # blank: the server names it
    await expect(bob.page.locator("#me")).to_have_text("익명")
    await expect(alice.texts("li.notice")).to_have_text(["alice joined", "익명 joined"])
    await expect(alice.page.locator("#users .name")).to_have_text(["alice", "carol", "익명"])
    await carol.recv_until(lambda m: m["type"] == "connect" and m["name"] == "익명")

    await alice.say("hello from alice")
    own = alice.line("hello from alice")
    await expect(own).to_have_attribute("data-id", re.compile(r"^\d+$"))  # acknowledged
    await expect(own).not_to_have_class(re.compile("pending"))
    await expect(bob.line("hello from alice").locator(".name")).to_have_text("alice")
    got = await carol.recv("message")
    assert (got["name"], got["message"]) == ("alice", "hello from alice")

    await carol.say("hi browsers\nsecond line")
    for page in (alice, bob):
        await expect(page.line("hi browsers\nsecond line").locator("time")).to_have_text(
            re.compile(r"^\d\d:\d\d$"))

    await carol.say("psst, alice", to="alice")
    await expect(alice.page.locator("#directs button")).to_have_text("carol1")  # 1 unread
    await expect(alice.line("psst, alice")).to_have_count(0)  # not in the room's log
    await alice.page.click("#users button:has-text('carol')")
    await expect(alice.page.locator("#room-title")).to_have_text("carol")
    await expect(alice.line("psst, alice")).to_have_class(re.compile(r"\bprivate\b"))
    await alice.say("psst back")
    got = await carol.recv("message")
    assert (got["message"], got.get("private"), got.get("to")) == ("psst back", True, "carol")
    await alice.page.click("#close-direct")
    await bob.say("bob is here")
    await expect(alice.line("bob is here")).to_be_visible()
    await expect(bob.line("psst, alice")).to_have_count(0)

    bob.assert_clean()
    # The tab goes: the page closes with 4000 (PROTOCOL.txt 13.4), so its session is held
    # as a reload would need; the leave is told when the grace ends.
    await bob.close()
    await expect(alice.texts("li.notice")).to_have_text(
        ["alice joined", "익명 joined", re.compile(r"^익명 left")])
    await expect(alice.page.locator("#users .name")).to_have_text(["alice", "carol"])
    await carol.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "익명")

    await alice.page.screenshot(path=tmp_path / "chat.png")
    alice.assert_clean()


async def test_network_text_is_shown_as_text(start_web: StartWeb, browser: Browser) -> None:
    server = await start_web("--rate", "0")
    alice = await ChatPage.open(browser, server.url, "alice")
    mallory = await Client.joined(server.port, "<i>mallory</i>")
    attacks = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>",
               "&lt;b&gt;not bold&lt;/b&gt;", "\u202eevil"]
    for attack in attacks:
        await mallory.say(attack)
    await expect(alice.texts()).to_have_text(attacks)
    await expect(alice.lines("li.message .name")).to_have_text(["<i>mallory</i>"] * len(attacks))
    await mallory.send({"type": "join", "room": "<b>room</b>"})
    await mallory.send({"type": "part", "room": "lobby"})  # its leave refreshes the rooms
    # One's own rooms, then the others to join (the sidebar's two lists).
    await expect(alice.page.locator("#side .room-name")).to_have_text(
        ["#lobby", "#<b>room</b>"])
    assert await alice.page.locator("#logs img, #logs script, #logs i, #logs b").count() == 0
    assert await alice.page.locator("#side b").count() == 0
    alice.assert_clean()


async def test_switching_rooms(start_web: StartWeb, browser: Browser) -> None:
    """/join adds a room and shows it; the room joined before stays (PROTOCOL.txt 17), and
    picking it in the sidebar shows its log again."""
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    dave = await Client.joined(server.port, "dave", room="dev")
    await dave.say("dev line", ref="d")
    await dave.recv("ack")
    alice = await ChatPage.open(browser, server.url, "alice")
    await carol.say("lobby line")
    await expect(alice.line("lobby line")).to_be_visible()

    await alice.say("/join dev")
    await expect(alice.page.locator("#room-title")).to_have_text("dev")
    await expect(alice.line("dev line")).to_have_class(re.compile(r"\bhistory\b"))
    await expect(alice.lines(".history-divider")).to_have_text("Earlier in #dev")
    await expect(alice.page.locator("#users .name")).to_have_text(["alice", "dave"])
    await expect(alice.line("lobby line")).to_have_count(0)  # each room its own log
    await dave.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    await alice.say("hi dev")
    got = await dave.recv("message")
    assert (got["message"], got["room"]) == ("hi dev", "dev")

    lobby = alice.page.locator("#rooms button", has_text="#lobby")
    await expect(lobby).to_contain_text("2")  # alice is still there, with carol
    await lobby.click()
    await expect(alice.page.locator("#room-title")).to_have_text("lobby")
    await expect(alice.line("lobby line")).to_have_count(1)  # kept, and not repeated
    await expect(alice.page.locator("#rooms button[aria-current=true]")).to_contain_text(
        "#lobby")
    seen = await carol.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    assert not [m for m in seen if m["type"] == "disconnect"], seen  # she never left lobby
    await carol.nothing_more()  # and showing lobby again is no join
    alice.assert_clean()


async def test_page_resumes_after_a_network_drop(
    start_web: StartWeb, browser: Browser, cutter_factory: list[Cutter],
) -> None:
    """PROTOCOL.txt 10: the server holds the lost session; the page resumes it, shows the
    missed lines, and sends what was typed while offline; nobody saw it leave."""
    server = await start_web("--rate", "0")
    cutter = await Cutter(server.web_port).start()
    cutter_factory.append(cutter)
    carol = await Client.joined(server.port, "carol")
    alice = await ChatPage.open(browser, cutter.url, "alice")
    await carol.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    await carol.say("seen before")
    await expect(alice.line("seen before")).to_be_visible()

    cutter.blocked = True
    cutter.cut()
    await server.wait_log(r"alice lost the connection \(connection reset\)")
    await expect(alice.page.locator("#banner")).to_be_visible()
    await alice.say("typed while away")
    await expect(alice.line("typed while away")).to_have_class(re.compile(r"\bpending\b"))
    await carol.say("missed 1")
    await carol.say("missed 2")
    cutter.blocked = False

    await expect(alice.lines(".reconnect-divider")).to_have_text(
        "Reconnected · 2 missed lines below")
    await expect(alice.texts(".missed")).to_have_text(["missed 1", "missed 2"])
    await expect(alice.line("typed while away")).not_to_have_class(re.compile("pending"))
    await expect(alice.line("seen before")).to_have_count(1)
    got = await carol.recv()  # the resent line, and no leave or join notice
    assert (got["type"], got["name"], got["message"]) == ("message", "alice", "typed while away")
    await expect(alice.page.locator("#banner")).to_be_hidden()
    alice.assert_clean()


@pytest.mark.parametrize("history_db", [True, False], ids=["history-db", "memory"])
async def test_page_reconnects_after_a_restart_and_shows_missed_lines(
    start_web: StartWeb, browser: Browser, cutter_factory: list[Cutter], tmp_path: Path,
    history_db: bool,
) -> None:
    """The page's resume fails against a new process, so it joins afresh and fetches
    history after its last id. With --history-db the ids go on, and the pages bring the
    missed lines; without, the new chatd numbers lines from 1 again, and they come from
    the join history (ids seen before the restart must not hide them)."""
    db = ("--history-db", str(tmp_path / "history.sqlite")) if history_db else ()
    first = await start_web("--rate", "0", *db)
    cutter = await Cutter(first.web_port).start()
    cutter_factory.append(cutter)
    alice = await ChatPage.open(browser, cutter.url, "alice")
    carol = await Client.joined(first.port, "carol")
    for text in ("before the restart", "and one more"):
        await carol.say(text)
        await expect(alice.line(text)).to_be_visible()

    cutter.blocked = True  # so the page cannot come back before the missed lines exist
    await first.stop()
    await expect(alice.texts("li.system")).to_contain_text(["server shutting down"])
    await expect(alice.page.locator("#status")).to_have_attribute("data-state", "waiting")

    second = await start_web("--rate", "0", *db, "--web", str(first.web_port))
    carol = await Client.joined(second.port, "carol")
    for text in ("missed after restart 1", "missed after restart 2"):
        await carol.say(text, ref=text)
        await carol.recv_until(lambda m, text=text: m.get("ref") == text)  # type: ignore[misc]
    cutter.blocked = False

    # One line says it all (10.4): no second notice repeating or contradicting it.
    await expect(alice.lines(".reconnect-divider")).to_have_text(
        "Reconnected as a new session · 2 missed lines below; private lines sent to you "
        "meanwhile were not kept")
    await expect(alice.texts("li.system.warn")).to_have_text(["server shutting down"])
    await expect(alice.texts(".missed")).to_have_text(
        ["missed after restart 1", "missed after restart 2"])
    await expect(alice.line("before the restart")).to_have_count(1)
    await expect(alice.page.locator("#users .name")).to_have_text(["alice", "carol"])
    await carol.say("live again")
    await expect(alice.line("live again")).to_be_visible()
    await alice.say("back again")
    await expect(alice.line("back again")).to_have_attribute("data-id", re.compile(r"\d"))
    await alice.page.screenshot(path=tmp_path / "reconnected.png")
    alice.assert_clean()


async def test_phone_width(start_web: StartWeb, browser: Browser, tmp_path: Path) -> None:
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    alice = await ChatPage.open(browser, server.url, "alice_with_a_long_name", width=390,
                                height=844)
    await carol.say("x" * 300)  # one long word
    await carol.say("a message of several lines\nthat wraps on a phone screen, "
                    "as chat lines on phones do\n안녕하세요")
    await alice.say("hello from a phone")
    await expect(alice.line("hello from a phone")).to_have_attribute("data-id", re.compile(r"\d"))
    page = alice.page
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    composer = await page.locator("#composer").bounding_box()
    assert composer is not None and composer["y"] + composer["height"] <= 844
    side = page.locator("#side")
    box = await side.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 0  # the drawer starts closed
    await page.click("#menu")
    await expect(page.locator("#rooms .room-name")).to_have_text(["#lobby"])
    await expect(side).to_be_in_viewport()
    await page.screenshot(path=tmp_path / "drawer.png")
    await page.click("#scrim", position={"x": 370, "y": 400})
    await expect(side).not_to_be_in_viewport()
    await page.screenshot(path=tmp_path / "phone.png")
    alice.assert_clean()


async def test_login_form_shows_a_refused_name(start_web: StartWeb, browser: Browser) -> None:
    server = await start_web()
    page = await browser.new_page()
    await page.goto(server.url, timeout=WAIT_MS)
    await page.fill("#nick", "two words")  # white space: bad_name (PROTOCOL.txt 5.1)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("name cannot contain spaces")
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#nick", "twowords")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#me")).to_have_text("twowords")
    await expect(page.locator("#login")).to_be_hidden()


async def test_name_colours_match_chatc(start_web: StartWeb, browser: Browser) -> None:
    server = await start_web()
    page = await browser.new_page()
    await page.goto(server.url, timeout=WAIT_MS)
    names = ["alice", "bob", "carol", "익명", "Zoë", "🦀crab", "a" * 32, "x1", ""]
    colours = await page.evaluate(
        "async (names) => { const m = await import('/colour.js');"
        " return names.map(m.nameColour); }", names)
    assert colours == [name_colour(name) for name in names]
    assert len(set(colours)) > 4  # spread over the palette
