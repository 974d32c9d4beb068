"""The chat page in Chromium as a person meets it (issue 23, items 8-15): a refused line
stays in the composer, the newest line stays in view, moderation said in words, a
reload that keeps the session, links, the same commands as nc and chatc, the phone
header, and one line after a reconnect.

Every wait is a bounded Playwright wait on the page, chatd's log or a TCP client.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from chatd import protocol as p
from tests.support.harness import Client
from tests.support.web import ChatPage, Cutter, StartWeb

SIZES = {"desktop": (1100, 720), "phone": (390, 844)}
WAIT_MS = 10_000
# words.js untilWords names the day only when the end is not today (a 2 h ban set after 22:00
# ends tomorrow), in the browser locale's order: "Mon, 7 Dec, " or "Mon, Dec 7, ".
LATER_DAY = r"(\w{3}, (\d{1,2} \w{3}|\w{3} \d{1,2}), )?"

# The newest row of the shown conversation lies wholly inside the log's box, above the
# composer: not scrolled away, not under a banner or the composer.
LAST_LINE_IN_VIEW = """() => {
  const logs = document.getElementById("logs").getBoundingClientRect();
  const composer = document.getElementById("composer").getBoundingClientRect();
  const rows = document.querySelectorAll(".log:not([hidden]) > li");
  const last = rows[rows.length - 1].getBoundingClientRect();
  return last.height > 0 && last.top >= logs.top - 1 && last.bottom <= logs.bottom + 1
    && last.bottom <= composer.top + 1;
}"""


async def last_line_in_view(chat: ChatPage) -> None:
    await chat.page.wait_for_function(LAST_LINE_IN_VIEW, timeout=WAIT_MS)


async def test_an_over_limit_line_stays_in_the_composer(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    """As chatc does: the line is not sent, not put in the conversation, and stays to be
    shortened, with the reason beside it (PROTOCOL.txt 8.1)."""
    server = await start_web("--rate", "0")
    alice = await ChatPage.open(browser, server.url, "alice")
    big = "x" * 70_000
    await alice.page.fill("#input", big)
    await alice.page.press("#input", "Enter")
    error = alice.page.locator("#composer-error")
    await expect(error).to_have_text(re.compile(r"^Not sent: this line is 70,0\d\d bytes"))
    assert await alice.page.input_value("#input") == big
    await expect(alice.page.locator("#input")).to_have_attribute("aria-invalid", "true")
    await expect(alice.lines("li.message")).to_have_count(0)
    await alice.page.screenshot(path=tmp_path / "over-limit.png")

    await alice.say("short enough")  # editing the line clears the error
    await expect(error).to_be_hidden()
    await expect(alice.line("short enough")).to_have_attribute("data-id", re.compile(r"\d"))
    assert await alice.page.input_value("#input") == ""
    alice.assert_clean()


@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
async def test_the_newest_line_stays_in_view(
    start_web: StartWeb, browser: Browser, tmp_path: Path, size: str,
) -> None:
    """After a refused line (its row grows a reason) and under the kick and ban banners,
    the conversation's last row is wholly visible above the composer."""
    server = await start_web("--rate", "0", "--oper", "boss:pw")
    boss = await Client.joined(server.port, "boss")
    await boss.send({"type": "oper", "name": "boss", "password": "pw"})
    await boss.recv_until(lambda m: m["type"] == "oper")
    width, height = SIZES[size]
    alice = await ChatPage.open(browser, server.url, "alice", width=width, height=height)
    bob = await ChatPage.open(browser, server.url, "bob", width=width, height=height)
    for n in range(40):  # more than a screen: the log scrolls
        await boss.say(f"line {n} " + "words " * (n % 7))
    await expect(alice.line("line 39 " + "words " * 4)).to_be_visible()
    await last_line_in_view(alice)

    await alice.say("z" * 70_000)  # refused: the composer keeps it and grows, the log shrinks
    await expect(alice.page.locator("#composer-error")).to_be_visible()
    await last_line_in_view(alice)
    await alice.page.fill("#input", "")

    await alice.say("/msg nobody hello?")  # no_such_user: the row gets its reason
    await expect(alice.lines("li.failed .fail")).to_contain_text("Nobody called nobody")
    await alice.page.click("#close-direct")
    await boss.say("back in the room")
    await expect(alice.line("back in the room")).to_be_visible()
    await alice.say("/kick boss")  # not an operator: an error row
    await expect(alice.texts("li.system.error")).to_contain_text(["Only operators"])
    await last_line_in_view(alice)

    await boss.send({"type": "kick", "name": "bob", "reason": "cool off"})
    await expect(bob.page.locator("#banner")).to_be_visible()
    await expect(bob.page.locator("#status")).to_have_attribute("data-state", "offline")
    await last_line_in_view(bob)
    await bob.page.screenshot(path=tmp_path / f"kicked-{size}.png")

    await boss.send({"type": "ban", "name": "alice", "seconds": 7200, "reason": "spam"})
    await expect(alice.page.locator("#banner")).to_be_visible()
    await expect(alice.page.locator("#status")).to_have_attribute("data-state", "offline")
    await last_line_in_view(alice)
    await alice.page.screenshot(path=tmp_path / f"banned-{size}.png")
    alice.assert_clean()
    bob.assert_clean()


async def test_moderation_in_words(start_web: StartWeb, browser: Browser) -> None:
    """PROTOCOL.txt 15.2, 15.3 said to people: who removed you and why, what you can do,
    times local and relative; observers see a kick as a kick, not as one of a run of
    leaves."""
    server = await start_web("--rate", "0", "--oper", "boss:pw", "--oper", "watcher:pw2")
    boss = await Client.joined(server.port, "boss")
    await boss.send({"type": "oper", "name": "boss", "password": "pw"})
    await boss.recv_until(lambda m: m["type"] == "oper")
    watcher = await ChatPage.open(browser, server.url, "watcher")
    kim = await ChatPage.open(browser, server.url, "kim")
    ben = await ChatPage.open(browser, server.url, "ben")
    for name in ("c1", "c2"):  # comings and goings right before, as in a busy room
        await (await Client.joined(server.port, name)).close()
    run = watcher.page.locator(".run-toggle")
    await expect(run).to_have_text(re.compile(r"; c1 and c2 left$"))

    await boss.send({"type": "kick", "name": "kim", "reason": "cool off"})
    banner = kim.page.locator("#banner-text")
    await expect(banner).to_have_text(
        "You were removed from the server by boss (cool off). You can join again.")
    await expect(kim.page.locator("#rejoin")).to_be_visible()
    row = watcher.page.locator(".log:not([hidden]) > li.notice.disconnect.removed")
    await expect(row).to_have_text(re.compile(r"kim was removed by boss \(cool off\)$"))
    await expect(run).to_have_text(re.compile(r"; c1 and c2 left$"))  # not "c1, c2 and kim"

    await watcher.say("/oper watcher pw2")  # the ban from the page, by an operator there
    await expect(watcher.texts("li.notice.oper")).to_have_text(["watcher is now an operator"])
    await watcher.say("/ban ben 2h spam")
    until = re.compile(r"^The name ben is banned from this server by watcher for 2 hours, until "
                       rf"{LATER_DAY}\d\d:\d\d \(spam\)\. You can come back when it ends\.$")
    await expect(ben.page.locator("#banner-text")).to_have_text(until)
    await expect(ben.page.locator("#rejoin")).to_be_hidden()
    await expect(ben.texts("li.system.error")).to_contain_text(["for 2 hours, until"])
    await expect(watcher.page.locator(".log:not([hidden]) > li.notice.removed")).to_have_text(
        [re.compile(r"kim was removed"), re.compile(r"ben was banned by watcher \(spam\)$")])
    in_words = rf"for 2 hours, until {LATER_DAY}\d\d:\d\d"
    await expect(watcher.texts("li.system.warn").last).to_have_text(
        re.compile(rf"^ben is banned {in_words} \(spam\); removed: ben$"))
    await watcher.say("/bans")
    await expect(watcher.texts("li.system").last).to_have_text(
        re.compile(rf"^name ben: {in_words}, by watcher \(spam\)$"))
    for chat in (ben, watcher):  # no raw UTC stamps anywhere
        shown = await chat.page.locator("#app").inner_text()
        assert re.search(r"\d{4}-\d\d-\d\dT", shown) is None, shown

    await kim.page.click("#rejoin")  # a kick is not a ban: back in at once
    await expect(kim.page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(kim.page.locator("#banner")).to_be_hidden()
    for chat in (watcher, kim, ben):
        chat.assert_clean()


async def test_an_operator_is_told_a_restart_took_the_status(
    start_web: StartWeb, browser: Browser, cutter_factory: list[Cutter],
) -> None:
    """Operator status lasts as long as the session (15.1): after a restart the page is a
    new session, and the operator is told rather than finding out from not_operator."""
    first = await start_web("--rate", "0", "--oper", "alice:pw")
    cutter = await Cutter(first.web_port).start()
    cutter_factory.append(cutter)
    alice = await ChatPage.open(browser, cutter.url, "alice")
    await alice.say("/oper alice pw")
    await expect(alice.texts("li.notice.oper")).to_have_text(["alice is now an operator"])
    cutter.blocked = True
    await first.stop()
    await expect(alice.page.locator("#status")).to_have_attribute("data-state", "waiting")
    await start_web("--rate", "0", "--oper", "alice:pw", "--web", str(first.web_port))
    cutter.blocked = False
    await expect(alice.texts("li.system.warn")).to_have_text(["server shutting down",
        re.compile(r"^You are no longer an operator: the server restarted\.")])
    # One honest line for the reconnect (not "nothing missed" over "lines you missed follow").
    await expect(alice.lines(".reconnect-divider")).to_have_text(
        "Reconnected as a new session · no room lines missed; private lines sent to you "
        "meanwhile were not kept")
    alice.assert_clean()


async def test_a_reload_keeps_the_session_and_the_name(
    start_web: StartWeb, browser: Browser,
) -> None:
    """The resume token in session storage, the name in local storage: a reload resumes
    (PROTOCOL.txt 10) and nobody sees the page leave and join again."""
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    alice = await ChatPage.open(browser, server.url, "alice", room="dev")
    await carol.send({"type": "join", "room": "dev"})
    await expect(alice.page.locator("#users .name")).to_have_text(["alice", "carol"])
    await alice.say("before the reload")
    await expect(alice.line("before the reload")).to_have_attribute("data-id", re.compile(r"\d"))
    await carol.recv_until(lambda m: m.get("message") == "before the reload")

    await alice.page.reload()
    await expect(alice.page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(alice.page.locator("#me")).to_have_text("alice")
    await expect(alice.page.locator("#room-title")).to_have_text("dev")
    await expect(alice.line("before the reload")).to_have_count(1)  # the room's recent lines
    await alice.say("after the reload")
    got = await carol.recv()  # the line, and no leave or join before it
    assert (got["type"], got["message"]) == ("message", "after the reload"), got
    await server.wait_log(r"alice resumed in dev")

    await alice.say("/quit")  # leaving on purpose forgets the session, not the name
    await carol.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "alice")
    await alice.page.reload()
    await expect(alice.page.locator("#login")).to_be_visible()
    await expect(alice.page.locator("#nick")).to_have_value("alice")
    alice.assert_clean()


async def test_links_are_links_and_nothing_else_is(start_web: StartWeb, browser: Browser) -> None:
    server = await start_web("--rate", "0")
    alice = await ChatPage.open(browser, server.url, "alice")
    mallory = await Client.joined(server.port, "mallory")
    text = ("see https://example.com/a?b=1&c=2. or (http://x.test/wiki/A_(b)) but not "
            "javascript:alert(1) ftp://f.example/x data:text/html,<b>x</b> "
            "<a href=\"https://evil.example/\">y</a> HTTPS://UPPER.example/")
    await mallory.say(text)
    line = alice.line(text)
    await expect(line).to_have_count(1)  # the text is as sent, whole
    links = line.locator("a")
    await expect(links).to_have_text(["https://example.com/a?b=1&c=2", "http://x.test/wiki/A_(b)",
                                      "https://evil.example/", "HTTPS://UPPER.example/"])
    hrefs = [await links.nth(i).get_attribute("href") for i in range(4)]
    assert hrefs == ["https://example.com/a?b=1&c=2", "http://x.test/wiki/A_(b)",
                     "https://evil.example/", "https://upper.example/"]
    for i in range(4):
        await expect(links.nth(i)).to_have_attribute("rel", "noopener noreferrer nofollow")
        await expect(links.nth(i)).to_have_attribute("target", "_blank")
    assert await alice.page.locator("#logs b, #logs script, #logs img").count() == 0
    alice.assert_clean()


async def test_the_same_commands_as_nc_and_chatc(start_web: StartWeb, browser: Browser) -> None:
    """/help lists the one command table (chatd.protocol.spec), the page's own
    included, and /rooms and /history work as they do in nc and chatc."""
    server = await start_web("--rate", "0", "--oper", "alice:pw")
    carol = await Client.joined(server.port, "carol", room="dev")
    await carol.say("first in dev")
    await carol.say("second in dev")
    alice = await ChatPage.open(browser, server.url, "alice")
    help_lines = alice.texts("li.system")
    await alice.say("/help")
    everyone = [f"{usage} — {what}" for usage, what in p.TEXT_COMMANDS.items()]
    await expect(help_lines).to_have_text(everyone)

    await alice.say("/rooms")
    await expect(help_lines.last).to_have_text("Rooms: #dev (1), #lobby (1)")
    await alice.say("/join dev")
    await expect(alice.page.locator("#room-title")).to_have_text("dev")
    await alice.say("/history 2")
    await expect(alice.lines(".recent-divider")).to_have_text("The last 2 lines of #dev")
    await expect(alice.texts("li.recent")).to_have_text(["first in dev", "second in dev"])

    await alice.say("/oper alice pw")
    await expect(alice.texts("li.notice.oper")).to_have_text(["alice is now an operator"])
    await alice.say("/help")
    operators = [f"{usage} — {what}" for usage, what in p.OPER_COMMANDS.items()]
    await expect(help_lines).to_have_text(everyone + operators)  # #dev's log: only these
    alice.assert_clean()


# Whether an element shows all of its text (no ellipsis), and whether an input's
# placeholder fits its box.
NOT_CUT = "(node) => node.scrollWidth <= node.clientWidth"
PLACEHOLDER_FITS = """(input) => {
  const style = getComputedStyle(input);
  const context = document.createElement("canvas").getContext("2d");
  context.font = style.font;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return context.measureText(input.placeholder).width <= room;
}"""


@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
async def test_the_header_and_sidebar_stay_readable(
    start_web: StartWeb, browser: Browser, tmp_path: Path, size: str,
) -> None:
    """With a topic set, the room's name and one's own name are shown whole, the topic
    too on a phone (a row of its own), and the sidebar's join box shows its hint."""
    server = await start_web("--rate", "0", "--oper", "boss:pw")
    boss = await Client.joined(server.port, "boss", room="lounge")
    await boss.send({"type": "oper", "name": "boss", "password": "pw"})
    await boss.send({"type": "topic", "topic": "Be kind to each other; release notes are "
                     "pinned at https://example.com/notes"})
    await boss.recv_until(lambda m: m["type"] == "topic")
    width, height = SIZES[size]
    for scheme in ("light", "dark"):
        wendy = await ChatPage.open(browser, server.url, f"wendy_{scheme[0]}", room="lounge",
                                    width=width, height=height)
        await wendy.page.emulate_media(color_scheme=scheme)
        page = wendy.page
        await expect(page.locator("#topic")).to_be_visible()
        for selector in (".title", "#me"):
            assert await page.locator(selector).evaluate(NOT_CUT), (selector, scheme)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        if size == "phone":
            await page.click("#menu")
            await expect(page.locator("#side")).to_be_in_viewport()
        assert await page.locator("#join-room").evaluate(PLACEHOLDER_FITS)
        await page.screenshot(path=tmp_path / f"header-{size}-{scheme}.png")
        wendy.assert_clean()
        await wendy.close()


async def test_a_duplicated_tab_takes_the_session_without_a_tug_of_war(
    start_web: StartWeb, browser: Browser,
) -> None:
    """A duplicated tab copies session storage, so it resumes the same session (10.3)
    and the server closes the first tab's socket: that tab says so and waits to be asked,
    rather than resuming back (which would close the other, and so on)."""
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    first = await ChatPage.open(browser, server.url, "alice")
    saved = await first.page.evaluate("sessionStorage.getItem('chatd.session')")
    assert saved is not None and '"token"' in saved
    context = await browser.new_context(viewport={"width": 1100, "height": 720})
    await context.add_init_script(f"sessionStorage.setItem('chatd.session', {saved!r});")
    second = ChatPage(await context.new_page())
    await second.page.goto(server.url, timeout=WAIT_MS)
    await expect(second.page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(first.page.locator("#banner-text")).to_have_text(
        "This chat is open in another tab or window now.")
    await expect(first.page.locator("#status")).to_have_attribute("data-state", "offline")
    await second.say("from the second tab")
    got = await carol.recv_until(lambda m: m["type"] == "message")
    assert [m["type"] for m in got] == ["connect", "message"]  # alice joined once, no leave

    await first.page.click("#rejoin")  # "Continue here": the session comes back
    await expect(first.page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(second.page.locator("#status")).to_have_attribute("data-state", "offline")
    await first.say("back in the first")
    got = await carol.recv_until(lambda m: m["type"] == "message")
    assert [m["type"] for m in got] == ["message"]
    assert sum("alice resumed in lobby" in line for line in server.log) == 2
    first.assert_clean()
    second.assert_clean()
