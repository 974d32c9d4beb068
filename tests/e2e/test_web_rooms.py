"""The page in several rooms at once (issue 25, item 11; PROTOCOL.txt 17), in Chromium: a
sidebar of one's rooms and Direct partners with unread counts (marked "@" when a line
names you), other rooms to join, leaving a room, and per room its own scroll position,
members, topic and unsent draft; after a resume or a reload the sidebar is right again.

Every wait is a bounded Playwright wait on the page, or a bounded read of a TCP client.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Browser, Locator, expect

from tests.e2e.test_web_a11y import assert_accessible
from tests.support.harness import Client, is_join
from tests.support.web import ChatPage, Cutter, StartWeb, shot


def mine(chat: ChatPage) -> Locator:
    """The names of one's rooms in the sidebar, in joining order."""
    return chat.page.locator("#rooms .room-name")


def room_button(chat: ChatPage, room: str) -> Locator:
    name = chat.page.locator(".room-name", has_text=re.compile(f"^#{re.escape(room)}$"))
    return chat.page.locator("#rooms button.room").filter(has=name)


async def join_room(chat: ChatPage, room: str) -> None:
    """The page joins `room` (typed in the sidebar's box) and shows it, last of its rooms."""
    await chat.page.fill("#join-room", room)
    await chat.page.press("#join-room", "Enter")
    await expect(chat.page.locator("#room-title")).to_have_text(room)
    await expect(mine(chat).last).to_have_text(f"#{room}")
    await expect(chat.page.locator("#input")).to_be_focused()


async def in_two_rooms(chat: ChatPage, room: str = "dev") -> None:
    """The page in lobby joins `room` too."""
    await join_room(chat, room)
    await expect(mine(chat)).to_have_text(["#lobby", f"#{room}"])


async def test_join_a_second_room_from_the_browser(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    """The rooms list offers the rooms one is not in, with their member counts; picking
    one adds it to one's rooms and shows it, lobby kept (nobody there sees a leave); a
    line typed in a room's view goes to that room; a new name typed creates a room."""
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    dave = await Client.joined(server.port, "dave", room="dev")
    await dave.say("earlier in dev", ref="d")
    await dave.recv("ack")
    alice = await ChatPage.open(browser, server.url, "alice")
    page = alice.page
    await carol.recv_until(is_join("alice"))

    other = page.locator("#browse button", has_text="#dev")
    await expect(other).to_have_text("#dev1")  # dave
    await expect(other.locator(".count")).to_have_attribute("aria-label", "1 people")
    await expect(mine(alice)).to_have_text(["#lobby"])
    await expect(page.locator("#rooms .part")).to_have_count(0)  # one's only room stays
    await other.click()

    await expect(page.locator("#room-title")).to_have_text("dev")
    await expect(mine(alice)).to_have_text(["#lobby", "#dev"])
    await expect(page.locator("#rooms button[aria-current=true]")).to_contain_text("#dev")
    await expect(alice.line("earlier in dev")).to_have_class(re.compile(r"\bhistory\b"))
    await expect(page.locator("#users .name")).to_have_text(["alice", "dave"])
    await expect(page.locator("#members-title")).to_have_text("In #dev")
    await expect(page.locator("#browse button", has_text="#dev")).to_have_count(0)
    await dave.recv_until(is_join("alice"))

    await alice.say("hi dev")
    got = await dave.recv("message")
    assert (got["name"], got["message"], got["room"]) == ("alice", "hi dev", "dev")
    await carol.say("hi lobby")  # alice is still in lobby: she gets it, unread
    await expect(room_button(alice, "lobby").locator(".unread")).to_have_text("1")
    await carol.nothing_more()  # and carol saw no leave of alice's

    await room_button(alice, "lobby").click()
    await expect(page.locator("#room-title")).to_have_text("lobby")
    await expect(alice.line("hi lobby")).to_be_visible()
    await expect(alice.line("hi dev")).to_have_count(0)  # each room its own log
    await expect(page.locator("#users .name")).to_have_text(["alice", "carol"])
    await alice.say("back in lobby")
    got = await carol.recv("message")
    assert (got["message"], got["room"]) == ("back in lobby", "lobby")
    await dave.nothing_more()  # not sent to dev

    await join_room(alice, "brandnew")  # a name no room has yet: a new room
    await expect(mine(alice)).to_have_text(["#lobby", "#dev", "#brandnew"])
    await expect(page.locator("#users .name")).to_have_text(["alice"])
    await shot(page, tmp_path, "rooms-three")
    alice.assert_clean()


async def test_unread_counts_and_a_mention_badge(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    """A line in a room not on screen raises its count; a line naming you (your name as
    a word, any case) makes the badge the strong one, "@" and red; the title and the
    phone's menu button carry the total; showing the room reads them all."""
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    alice = await ChatPage.open(browser, server.url, "alice")
    page = alice.page
    await carol.recv_until(is_join("alice"))
    await in_two_rooms(alice)

    lobby = room_button(alice, "lobby").locator(".unread")
    await carol.say("just chatting")
    await expect(lobby).to_have_text("1")
    await expect(lobby).not_to_have_class(re.compile(r"\bmention\b"))
    await expect(lobby).to_have_attribute("aria-label", "1 unread")
    await carol.say("malice and alicent are not her")  # not her name as a word
    await expect(lobby).to_have_text("2")
    await expect(lobby).not_to_have_class(re.compile(r"\bmention\b"))
    await carol.say("ALICE, look at this")
    await expect(lobby).to_have_text("@3")
    await expect(lobby).to_have_class(re.compile(r"\bmention\b"))
    await expect(lobby).to_have_attribute("aria-label", "3 unread, 1 mentioning you")
    await expect(page).to_have_title("(3) #dev · chatd")
    assert await lobby.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(192, 38, 45)"
    await expect(room_button(alice, "dev").locator(".unread")).to_have_count(0)  # on screen
    await expect(page.locator("#announce p").last).to_have_text(
        "In #lobby, carol: ALICE, look at this")

    await page.set_viewport_size({"width": 390, "height": 844})  # the sidebar collapses
    await expect(page.locator("#side")).not_to_be_in_viewport()
    await expect(page.locator("#menu")).to_have_attribute("data-unread", "yes")
    await expect(page.locator("#menu")).to_have_attribute("aria-label",
                                                          "Rooms and people, 3 unread")
    await page.click("#menu")
    await expect(page.locator("#side")).to_be_in_viewport()
    await shot(page, tmp_path, "rooms-drawer-mention")
    await room_button(alice, "lobby").click()
    await expect(page.locator("#side")).not_to_be_in_viewport()  # picking closes the drawer
    await expect(page.locator("#room-title")).to_have_text("lobby")
    await expect(alice.texts()).to_have_text(
        ["just chatting", "malice and alicent are not her", "ALICE, look at this"])
    await expect(lobby).to_have_count(0)
    await expect(page.locator("#menu")).to_have_attribute("data-unread", "")
    await expect(page).to_have_title("#lobby · chatd")
    alice.assert_clean()


async def test_each_room_keeps_its_draft_scroll_members_and_topic(
    start_web: StartWeb, browser: Browser,
) -> None:
    server = await start_web("--rate", "0", "--oper", "dave:pw")
    carol = await Client.joined(server.port, "carol")
    dave = await Client.joined(server.port, "dave", room="dev")
    await dave.send({"type": "oper", "name": "dave", "password": "pw"})
    await dave.send({"type": "topic", "topic": "dev things only"})
    await dave.recv_until(lambda m: m["type"] == "topic")
    for n in range(40):  # more than a screen in lobby (and within the join's history)
        await carol.say(f"lobby line {n}")
    alice = await ChatPage.open(browser, server.url, "alice")
    page = alice.page
    await expect(alice.line("lobby line 39")).to_be_visible()
    await expect(page.locator("#topic")).to_be_hidden()  # lobby has none

    logs = page.locator("#logs")
    await logs.evaluate("e => { e.scrollTop = 0; e.dispatchEvent(new Event('scroll')); }")
    await expect(alice.line("lobby line 39")).not_to_be_in_viewport()
    await page.fill("#input", "half a thought for lobby")

    await in_two_rooms(alice)
    await expect(page.locator("#input")).to_have_value("")
    await expect(page.locator("#topic")).to_have_text("dev things only")
    await expect(page.locator("#users .name")).to_have_text(["alice", "dave"])
    await expect(page.locator("#users button", has_text="dave").locator(".oper-mark")
                 ).to_have_text("@")
    await page.fill("#input", "a dev draft")

    await room_button(alice, "lobby").click()
    await expect(page.locator("#input")).to_have_value("half a thought for lobby")
    await expect(page.locator("#topic")).to_be_hidden()
    await expect(page.locator("#users .name")).to_have_text(["alice", "carol"])
    await expect(alice.line("lobby line 0")).to_be_in_viewport()  # still scrolled up
    await expect(alice.line("lobby line 39")).not_to_be_in_viewport()

    await page.keyboard.press("Alt+ArrowDown")  # the next room in the sidebar, by keyboard
    await expect(page.locator("#room-title")).to_have_text("dev")
    await expect(page.locator("#input")).to_have_value("a dev draft")
    await expect(page.locator("#topic")).to_have_text("dev things only")
    await page.press("#input", "Enter")
    got = await dave.recv_until(lambda m: m["type"] == "message")
    assert (got[-1]["message"], got[-1]["room"]) == ("a dev draft", "dev")
    await expect(page.locator("#input")).to_have_value("")

    await page.keyboard.press("Alt+ArrowUp")
    await expect(page.locator("#room-title")).to_have_text("lobby")
    await expect(page.locator("#input")).to_have_value("half a thought for lobby")
    await expect(alice.line("lobby line 0")).to_be_in_viewport()
    alice.assert_clean()


async def test_leave_a_room(start_web: StartWeb, browser: Browser) -> None:
    """The sidebar's leave button (by keyboard here): the room's members see the part
    notice with the room named, the page goes to the room joined last, the room left is
    offered again among the others; with one room left there is nothing to leave."""
    server = await start_web("--rate", "0")
    dave = await Client.joined(server.port, "dave", room="dev")
    alice = await ChatPage.open(browser, server.url, "alice")
    page = alice.page
    await in_two_rooms(alice)
    await dave.recv_until(is_join("alice"))
    await expect(page.locator("#rooms .part")).to_have_count(2)

    leave = page.get_by_role("button", name="Leave #dev")
    await leave.focus()
    await page.keyboard.press("Enter")
    got = await dave.recv_until(lambda m: m["type"] == "disconnect")
    notice = got[-1]
    assert (notice["name"], notice["room"], notice.get("part")) == ("alice", "dev", True), notice
    await expect(page.locator("#room-title")).to_have_text("lobby")
    await expect(mine(alice)).to_have_text(["#lobby"])
    await expect(page.locator("#rooms .part")).to_have_count(0)
    await expect(alice.texts("li.parted")).to_have_text([re.compile(r"alice left")])
    await expect(page.locator("#input")).to_be_focused()  # not lost with the button
    await expect(page.locator("#browse button", has_text="#dev")).to_have_text("#dev1")

    await dave.say("alice will not see this")
    await dave.nothing_more()  # handled: had it gone to alice, it would come before her ack
    await alice.say("still in lobby")
    await expect(alice.line("still in lobby")).to_have_attribute("data-id", re.compile(r"\d"))
    await expect(page.locator(".log", has_text="alice will not see this")).to_have_count(0)

    await alice.say("/part")  # the last room too (17.3): private lines still come
    await expect(mine(alice)).to_have_count(0)
    await expect(page.locator("#room-title")).to_have_text("no room")
    await expect(page.locator("#input")).to_have_attribute(
        "placeholder", "Join a room to talk (/join ROOM)")
    await dave.say("still there?", to="alice")
    await expect(page.locator("#directs button")).to_have_text("dave1")
    await join_room(alice, "lobby")
    await expect(mine(alice)).to_have_text(["#lobby"])
    alice.assert_clean()


async def test_a_direct_partner_entry(
    start_web: StartWeb, browser: Browser, cutter_factory: list[Cutter],
) -> None:
    """A private line makes an entry under Direct, with its count, next to the rooms; its
    view sends with "to", stays on screen through a reconnect, and leaves the rooms'
    counts and logs alone."""
    server = await start_web("--rate", "0")
    cutter = await Cutter(server.web_port).start()
    cutter_factory.append(cutter)
    dave = await Client.joined(server.port, "dave", room="dev")
    alice = await ChatPage.open(browser, cutter.url, "alice")
    page = alice.page
    await in_two_rooms(alice)
    await dave.recv_until(is_join("alice"))

    await dave.say("psst, alice", to="alice")
    direct = page.locator("#directs button", has_text="dave")
    await expect(direct).to_have_text("dave1")
    await expect(page.locator("#direct-section h2")).to_have_text("Direct")
    await expect(alice.line("psst, alice")).to_have_count(0)  # not in dev's log
    await page.keyboard.press("Alt+ArrowDown")  # after the rooms: the Direct entry
    await expect(page.locator("#room-title")).to_have_text("dave")
    await expect(page.locator("#title-prefix")).to_have_text("@")
    await expect(alice.line("psst, alice")).to_have_class(re.compile(r"\bprivate\b"))
    await expect(direct.locator(".unread")).to_have_count(0)
    await alice.say("psst back")
    got = await dave.recv_until(lambda m: m["type"] == "message")
    assert (got[-1]["message"], got[-1].get("to"), got[-1].get("private")) == (
        "psst back", "dave", True)

    cutter.cut()  # a drop: the page resumes and stays in the private view
    await server.wait_log(r"alice lost the connection")
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(page.locator("#room-title")).to_have_text("dave")
    await dave.say("in the room")  # dev is not on screen now: counted
    await expect(room_button(alice, "dev").locator(".unread")).to_have_text("1")
    await page.keyboard.press("Escape")  # back to the room last shown
    await expect(page.locator("#room-title")).to_have_text("dev")
    await expect(alice.line("in the room")).to_be_visible()
    await expect(alice.line("psst back")).to_have_count(0)
    alice.assert_clean()


async def test_after_a_resume_and_a_reload_the_sidebar_is_right(
    start_web: StartWeb, browser: Browser, cutter_factory: list[Cutter],
) -> None:
    """A drop: the resumed welcome lists both rooms and the merged replay brings what each
    missed, counted as unread where it is not on screen. A reload: both rooms again, each
    with its recent lines, and nobody sees alice leave or join."""
    server = await start_web("--rate", "0")
    cutter = await Cutter(server.web_port).start()
    cutter_factory.append(cutter)
    carol = await Client.joined(server.port, "carol")
    dave = await Client.joined(server.port, "dave", room="dev")
    alice = await ChatPage.open(browser, cutter.url, "alice")
    page = alice.page
    await carol.recv_until(is_join("alice"))
    await in_two_rooms(alice)
    await dave.recv_until(is_join("alice"))
    await dave.say("dev before")
    await expect(alice.line("dev before")).to_be_visible()

    cutter.blocked = True
    cutter.cut()
    await server.wait_log(r"alice lost the connection")
    await carol.say("lobby while away")
    await dave.say("dev while away")
    cutter.blocked = False
    await expect(alice.lines(".reconnect-divider")).to_have_text(
        re.compile(r"^Reconnected · 2 missed lines below"))  # both rooms' lines counted
    await expect(mine(alice)).to_have_text(["#lobby", "#dev"])
    await expect(page.locator("#room-title")).to_have_text("dev")
    await expect(alice.texts(".missed")).to_have_text(["dev while away"])
    await expect(room_button(alice, "lobby").locator(".unread")).to_have_text("1")
    await expect(page.locator("#users .name")).to_have_text(["alice", "dave"])

    await page.reload()
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(mine(alice)).to_have_text(["#lobby", "#dev"])
    await expect(page.locator("#room-title")).to_have_text("dev")
    await expect(alice.line("dev while away")).to_have_count(1)
    await expect(page.locator("#users .name")).to_have_text(["alice", "dave"])
    await room_button(alice, "lobby").click()
    await expect(alice.line("lobby while away")).to_have_count(1)
    await expect(page.locator("#users .name")).to_have_text(["alice", "carol"])
    await alice.say("back after the reload")
    got = await carol.recv_until(lambda m: m["type"] != "message" or
                                 m["message"] == "back after the reload")
    assert [m["type"] for m in got] == ["message"] * len(got), got  # no leave, no join
    assert got[-1]["room"] == "lobby"
    alice.assert_clean()


async def test_several_rooms_are_accessible(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    """axe-core finds nothing serious with two rooms, a mention badge, a Direct entry and
    other rooms to join, on a desktop and in the phone's drawer, light and dark."""
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    erin = await Client.joined(server.port, "erin", room="music")  # kept open till the end
    alice = await ChatPage.open(browser, server.url, "alice")
    page = alice.page
    await carol.recv_until(is_join("alice"))
    await in_two_rooms(alice)
    await carol.say("alice: a word?")
    await carol.say("psst", to="alice")
    await expect(room_button(alice, "lobby").locator(".unread.mention")).to_have_text("@1")
    await expect(page.locator("#directs button")).to_have_text("carol1")
    await expect(page.locator("#browse button", has_text="#music")).to_have_text("#music1")
    await assert_accessible(page, "two rooms, light")
    await shot(page, tmp_path, "rooms-light")
    await page.emulate_media(color_scheme="dark")
    await assert_accessible(page, "two rooms, dark")
    await shot(page, tmp_path, "rooms-dark")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.click("#menu")
    await expect(page.locator("#side")).to_be_in_viewport()
    await assert_accessible(page, "two rooms, phone drawer")
    await shot(page, tmp_path, "rooms-phone")
    alice.assert_clean()
    await erin.close()


async def test_the_rooms_limit_in_words_and_part_typed(
    start_web: StartWeb, browser: Browser,
) -> None:
    """Past --max-rooms the join is refused in words (too_many_rooms) and nothing changes;
    /part makes room, and the join goes through."""
    server = await start_web("--rate", "0", "--max-rooms", "2")
    erin = await Client.joined(server.port, "erin", room="music")  # kept open till the end
    alice = await ChatPage.open(browser, server.url, "alice")
    page = alice.page
    await in_two_rooms(alice)
    await page.locator("#browse button", has_text="#music").click()
    await expect(alice.texts("li.system.error")).to_have_text(
        "You are in as many rooms as this server allows; leave one before joining #music. "
        "too_many_rooms")
    await expect(mine(alice)).to_have_text(["#lobby", "#dev"])
    await expect(page.locator("#room-title")).to_have_text("dev")

    await alice.say("/part")  # the room on screen
    await expect(mine(alice)).to_have_text(["#lobby"])
    await expect(page.locator("#room-title")).to_have_text("lobby")
    await page.locator("#browse button", has_text="#music").click()
    await expect(page.locator("#room-title")).to_have_text("music")
    await expect(mine(alice)).to_have_text(["#lobby", "#music"])
    await expect(page.locator("#users .name")).to_have_text(["alice", "erin"])
    alice.assert_clean()
    await erin.close()


async def test_a_room_kick_takes_one_room_from_the_sidebar(
    start_web: StartWeb, browser: Browser,
) -> None:
    """15.2, 17.12: kicked out of one room, the page keeps the others and says who did it;
    kicked out of one's only room, the page follows the server into lobby."""
    server = await start_web("--rate", "0", "--oper", "boss:pw")
    boss = await Client.joined(server.port, "boss", room="dev")
    await boss.send({"type": "oper", "name": "boss", "password": "pw"})
    await boss.recv_until(lambda m: m["type"] == "oper")
    alice = await ChatPage.open(browser, server.url, "alice")
    await in_two_rooms(alice)
    await boss.recv_until(is_join("alice"))

    await boss.send({"type": "kick", "name": "alice", "from": "room", "room": "dev",
                     "reason": "off topic"})
    await expect(mine(alice)).to_have_text(["#lobby"])
    await expect(alice.page.locator("#room-title")).to_have_text("lobby")
    await expect(alice.texts("li.parted")).to_have_text(
        [re.compile(r"alice was removed from dev by boss \(off topic\)")])
    await expect(alice.page.locator("#users .name")).to_have_text(["alice"])

    bob = await ChatPage.open(browser, server.url, "bob", room="dev")
    await boss.recv_until(is_join("bob"))
    await boss.send({"type": "kick", "name": "bob", "from": "room", "room": "dev"})
    await expect(bob.page.locator("#room-title")).to_have_text("lobby")
    await expect(mine(bob)).to_have_text(["#lobby"])
    await expect(bob.page.locator("#users .name")).to_have_text(["bob", "alice"])
    await expect(bob.page.locator("#status")).to_have_attribute("data-state", "online")
    await bob.say("hello lobby")
    await expect(alice.line("hello lobby")).to_be_visible()
    alice.assert_clean()
    bob.assert_clean()


async def test_after_a_restart_the_page_joins_its_rooms_again(
    start_web: StartWeb, browser: Browser, cutter_factory: list[Cutter],
) -> None:
    """10.4: the new process has no session for the page, so it connects afresh to the
    room on screen and joins its other rooms again by itself, staying where it was."""
    first = await start_web("--rate", "0")
    cutter = await Cutter(first.web_port).start()
    cutter_factory.append(cutter)
    alice = await ChatPage.open(browser, cutter.url, "alice")
    await in_two_rooms(alice)

    cutter.blocked = True
    await first.stop()
    await expect(alice.page.locator("#status")).to_have_attribute("data-state", "waiting")
    second = await start_web("--rate", "0", "--web", str(first.web_port))
    carol = await Client.joined(second.port, "carol")
    cutter.blocked = False

    await expect(alice.lines(".reconnect-divider")).to_contain_text(
        "Reconnected as a new session")
    await carol.recv_until(is_join("alice"))  # lobby joined again
    await expect(mine(alice)).to_have_text(["#dev", "#lobby"])  # the server's order now
    await expect(alice.page.locator("#room-title")).to_have_text("dev")
    await carol.say("lobby after the restart")
    await expect(room_button(alice, "lobby").locator(".unread")).to_have_text("1")
    await alice.say("dev after the restart")  # goes to dev, the room on screen: not lobby
    await expect(alice.line("dev after the restart")).to_have_attribute(
        "data-id", re.compile(r"\d"))
    await carol.nothing_more()
    alice.assert_clean()


async def test_the_room_on_screen_is_the_servers_current_room(
    start_web: StartWeb, browser: Browser,
) -> None:
    """Showing a room sends switch (17.4): an operator's command without a room, here a
    room kick, acts on the room on screen, not on the room joined last."""
    server = await start_web("--rate", "0", "--oper", "alice:pw")
    carol = await Client.joined(server.port, "carol")
    await carol.send({"type": "join", "room": "dev"})
    await carol.recv_until(lambda m: m["type"] == "connect" and m["room"] == "dev")
    alice = await ChatPage.open(browser, server.url, "alice")
    await alice.say("/oper alice pw")
    await expect(alice.texts("li.notice.oper")).to_have_text(["alice is now an operator"])
    await in_two_rooms(alice)  # dev is the current room now, on the server too
    await room_button(alice, "lobby").click()
    await expect(alice.page.locator("#room-title")).to_have_text("lobby")

    await alice.say("/roomkick carol")
    got = await carol.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "carol")
    assert (got[-1]["room"], got[-1].get("part")) == ("lobby", True), got[-1]
    await expect(alice.page.locator("#users .name")).to_have_text(["alice"])
    await room_button(alice, "dev").click()
    await expect(alice.page.locator("#users .name")).to_have_text(["alice", "carol"])
    alice.assert_clean()
