"""The page as a conversation (issue 14): private threads with unread counts, quiet join
storms, grouped lines, a sorted and filterable member list, older history on demand.
Real chatd, TCP users and Chromium; every wait is a bounded wait on the DOM or a socket.
"""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.support.harness import Client, is_join
from tests.support.server_opts import no_limits
from tests.support.web import ChatPage, Cutter, StartWeb


async def crowd(port: int, names: list[str], room: str = "lobby") -> list[Client]:
    """TCP users joined one after the other (each waits for its own join)."""
    return [await Client.joined(port, name, room=room) for name in names]


async def test_private_lines_have_their_own_view_with_unread_counts(
    start_web: StartWeb, browser: Browser, cutter_factory: list[Cutter],
) -> None:
    """14.1: a Direct list, one view per partner, unread counts that outlive a room switch
    and a dropped connection (the resume replays the private line missed meanwhile)."""
    server = await start_web("--rate", "0")
    cutter = await Cutter(server.web_port).start()
    cutter_factory.append(cutter)
    carol = await Client.joined(server.port, "carol", room="dev")
    alice = await ChatPage.open(browser, cutter.url, "alice", room="dev")
    await carol.recv_until(is_join("alice"))
    page = alice.page
    directs = page.locator("#directs button")

    await carol.say("psst 1", to="alice")
    await carol.say("psst 2", to="alice")
    await carol.say("room line")
    await expect(alice.line("room line")).to_be_visible()
    await expect(directs).to_have_text(["carol2"])
    await expect(directs.locator(".unread")).to_have_attribute("aria-label", "2 unread")
    await expect(alice.lines(".private")).to_have_count(0)  # not in the room's log
    await expect(page.locator("#menu")).to_have_attribute("data-unread", "yes")

    await alice.say("/join lobby")
    await expect(page.locator("#room-title")).to_have_text("lobby")
    await expect(directs).to_have_text(["carol2"])  # kept across the room switch

    cutter.blocked = True
    cutter.cut()
    await server.wait_log(r"alice lost the connection")
    await carol.say("psst 3, while you were away", to="alice")
    cutter.blocked = False
    await expect(alice.lines(".reconnect-divider")).to_contain_text("Reconnected")
    await expect(directs).to_have_text(["carol3"])

    await directs.click()
    await expect(page.locator("#room-title")).to_have_text("carol")
    await expect(page.locator("#title-prefix")).to_have_text("@")
    await expect(alice.texts()).to_have_text(["psst 1", "psst 2", "psst 3, while you were away"])
    await expect(directs.locator(".unread")).to_have_count(0)  # read now
    await expect(page.locator("#menu")).to_have_attribute("data-unread", "")
    await alice.say("hi carol")  # the composer talks to the partner on screen
    got = await carol.recv_until(lambda m: m.get("message") == "hi carol")
    assert got[-1].get("to") == "carol" and got[-1].get("private") is True

    await carol.send({"type": "join", "room": "lobby"})
    await carol.recv_until(is_join("carol"))
    await carol.say("back in the room")
    lobby = page.locator("#rooms button", has_text="#lobby")
    await expect(lobby.locator(".unread")).to_have_text("1")
    await page.keyboard.press("Escape")
    await expect(page.locator("#room-title")).to_have_text("lobby")
    await expect(alice.line("back in the room")).to_be_visible()
    await expect(alice.line("hi carol")).to_have_count(0)
    alice.assert_clean()


async def test_a_join_storm_collapses_into_one_expandable_row(
    start_web: StartWeb, browser: Browser,
) -> None:
    """14.2: 30 joins in a row are one row; two in a row and single ones stay as they are."""
    server = await start_web(*no_limits())
    alice = await ChatPage.open(browser, server.url, "alice")
    names = [f"user{n:02}" for n in range(1, 31)]
    users = await crowd(server.port, names)
    run = alice.lines("li.run").last
    toggle = run.locator(".run-toggle")
    await expect(toggle.locator(".text")).to_have_text("alice, user01 and 29 others joined")
    await expect(run.locator("li.notice")).to_have_count(31)
    await expect(run.locator(".run-items")).to_be_hidden()
    await expect(toggle).to_have_attribute("aria-expanded", "false")

    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(run.locator("li.notice").nth(30)).to_be_visible()
    await expect(run.locator("li.notice .text").nth(30)).to_have_text("user30 joined")

    await users[0].say("hello all")
    await expect(alice.line("hello all")).to_be_visible()
    # Each leaves with a disconnect line and reads to the server's close before closing
    # its end: a bare close with a line unread (the other's leave notice, just sent)
    # goes out as a reset, which holds the session for a resume (2.4): no leave notice.
    for user in users[1:3]:
        await user.send({"type": "disconnect"})
        await user.closed()
        await user.close()
    pair = alice.lines("li.run").last
    await expect(pair.locator("li.notice .text")).to_have_text(
        [re.compile("^user02 left"), re.compile("^user03 left")])
    await expect(pair.locator(".run-toggle")).to_be_hidden()  # two stay as two rows
    await expect(pair.locator("li.notice").first).to_be_visible()
    await users[0].say("and now")
    await expect(alice.line("and now")).to_be_visible()
    users += await crowd(server.port, ["dave"])
    await expect(alice.lines("li.run").last.locator("li.notice .text")).to_have_text(
        ["dave joined"])
    await expect(alice.lines("li.run").last.locator(".run-toggle")).to_be_hidden()
    alice.assert_clean()


async def test_consecutive_lines_of_one_person_are_grouped(
    start_web: StartWeb, browser: Browser,
) -> None:
    """14.3: the name once per block; the time of later lines on hover; another speaker,
    or a notice, starts a new block. Screen readers still get every name."""
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    alice = await ChatPage.open(browser, server.url, "alice")
    await carol.recv_until(is_join("alice"))
    for text in ("one", "two", "three"):
        await carol.say(text)
    await alice.say("mine")
    await alice.say("mine too")
    await carol.say("four")
    await expect(alice.line("four")).to_be_visible()
    await expect(alice.line("mine too")).to_have_attribute("data-id", re.compile(r"\d"))

    lines = alice.lines()
    await expect(lines).to_have_count(6)
    cont = [bool(re.search(r"\bcont\b", c or "")) for c in
            await lines.evaluate_all("rows => rows.map(r => r.className)")]
    assert cont == [False, True, True, False, True, False]
    two = alice.line("two")
    await expect(two.locator(".name")).to_have_text("carol")  # for screen readers
    box = await two.locator(".name").bounding_box()
    assert box is not None and box["width"] <= 1 and box["height"] <= 1  # not drawn
    await expect(two.locator("time")).to_have_css("opacity", "0")
    await two.hover()
    await expect(two.locator("time")).to_have_css("opacity", "1")
    first = await alice.line("one").locator(".text").bounding_box()
    second = await alice.line("two").locator(".text").bounding_box()
    assert first is not None and second is not None and first["x"] == second["x"]
    alice.assert_clean()


async def test_member_list_is_sorted_and_filterable(
    start_web: StartWeb, browser: Browser,
) -> None:
    """14.4: you first, then by name regardless of case (user2 before user10); a filter box
    once the room has more than 20 people."""
    server = await start_web(*no_limits())
    alice = await ChatPage.open(browser, server.url, "alice")
    users = await crowd(server.port, ["Zed", "bob", "민수", "Carol", "amy", "user10", "user2"])
    page = alice.page
    names = page.locator("#users .name")
    await expect(names).to_have_text(
        ["alice", "amy", "bob", "Carol", "user2", "user10", "Zed", "민수"])
    await expect(page.locator("#user-filter")).to_be_hidden()

    users += await crowd(server.port, [f"guest{n}" for n in range(1, 14)])
    await expect(page.locator("#user-count")).to_have_text("21")
    await expect(page.locator("#user-filter")).to_be_visible()
    await page.fill("#user-filter", "GUEST1")
    await expect(names).to_have_text(["guest1", "guest10", "guest11", "guest12", "guest13"])
    await expect(page.locator("#user-count")).to_have_text("5 of 21")
    users += await crowd(server.port, ["guest14"])  # the filter holds as people come
    await expect(names).to_have_text(
        ["guest1", "guest10", "guest11", "guest12", "guest13", "guest14"])
    await page.fill("#user-filter", "")
    await expect(names).to_have_count(22)
    alice.assert_clean()


async def test_earlier_lines_load_above_and_the_view_stays_put(
    start_web: StartWeb, browser: Browser,
) -> None:
    """14.5: "Load earlier lines" asks history "before" (PROTOCOL.txt 3.8), page by page,
    puts the lines above, keeps what was on screen where it was, and goes once none are left."""
    server = await start_web("--rate", "0", "--history-on-join", "10")
    carol = await Client.joined(server.port, "carol")
    for n in range(1, 71):
        await carol.say(f"line {n:02}", ref=str(n))
    await carol.recv_until(lambda m: m.get("ref") == "70")
    alice = await ChatPage.open(browser, server.url, "alice", height=500)
    page = alice.page
    await expect(alice.texts()).to_have_text([f"line {n:02}" for n in range(61, 71)])
    earlier = alice.lines(".earlier button")
    await expect(earlier).to_be_visible()

    await page.locator("#logs").evaluate("box => { box.scrollTop = 0; }")
    before = await alice.line("line 61").locator(".text").bounding_box()
    await earlier.click()
    await expect(alice.texts()).to_have_count(60)
    after = await alice.line("line 61").locator(".text").bounding_box()
    assert before is not None and after is not None
    assert abs(after["y"] - before["y"]) <= 1, (before, after)  # what was read stays put
    await expect(earlier).to_be_visible()  # the server has more

    await page.locator("#logs").evaluate("box => { box.scrollTop = 0; }")
    await earlier.click()
    await expect(alice.texts()).to_have_text([f"line {n:02}" for n in range(1, 71)])
    await expect(earlier).to_be_hidden()  # the start of the room's history
    await expect(alice.lines(".history-divider")).to_have_count(1)
    alice.assert_clean()


def long_name(n: int) -> str:
    """32 letters of 4 UTF-8 bytes each (CJK Extension B), the n-th of its kind: about
    250 of them fill the 32 KiB of names a welcome lists (PROTOCOL.txt 8.13)."""
    return "".join(chr(0x20000 + n * 32 + i) for i in range(32))


async def test_a_crowd_past_the_names_listed_is_counted_in_full(
    start_web: StartWeb, browser: Browser,
) -> None:
    """4.1, 4.7, 8.13: the welcome lists names as far as 32 KiB go and counts the others
    in "more"; the page's member count and its room's count in the sidebar include them,
    the list ends with "and N more", the newcomer is listed (as "you") though the server
    counted it among the others, and one of the unlisted leaving lowers the count."""
    server = await start_web(*no_limits(), "--connect-throttle", "0")
    people = 260
    users = await crowd(server.port, [long_name(n) for n in range(people)])
    alice = await ChatPage.open(browser, server.url, "alice")
    page = alice.page
    await expect(page.locator("#user-count")).to_have_text(str(people + 1))
    await expect(page.locator("#rooms .count")).to_have_text(str(people + 1))
    await expect(page.locator("#users .you")).to_have_count(1)
    unlisted = page.locator("#users .unlisted")
    await expect(unlisted).to_have_text(re.compile(r"^and \d+ more$"))
    more = int((await unlisted.inner_text()).split()[1])
    await expect(page.locator("#users .name")).to_have_count(people + 1 - more)
    await users[-1].send({"type": "disconnect"})  # joined last: not listed
    await expect(page.locator("#user-count")).to_have_text(str(people))
    await expect(unlisted).to_have_text(f"and {more - 1} more")
    alice.assert_clean()
