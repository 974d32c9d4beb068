"""The page as one of several devices of an account (PROTOCOL.txt 18.4), in Chromium; a
JSON client on the TCP port is the user's other device."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, Locator, expect

from tests.support.harness import Client, is_join
from tests.support.web import ChatPage, StartWeb

PASSWORD = "correct horse"


def _room_button(chat: ChatPage, room: str) -> Locator:
    name = chat.page.locator(".room-name", has_text=re.compile(f"^#{re.escape(room)}$"))
    return chat.page.locator("#rooms button.room").filter(has=name)


async def test_a_line_from_another_device_shows_as_the_users_own(
    start_web: StartWeb, browser: Browser,
) -> None:
    """A line sent from the user's other device ("own": true) shows in its room as the
    page's own lines do, is not counted unread, and a private one it sent opens the
    partner's conversation, not one with the user."""
    server = await start_web("--rate", "0")
    client = await Client.open(server.port)
    await client.send({"type": "register", "name": "alice", "password": PASSWORD})
    assert (await client.recv("account"))["event"] == "registered"
    carol = await Client.joined(server.port, "carol", room="dev")
    alice = await ChatPage.open(browser, server.url, "alice", login=PASSWORD)
    page = alice.page
    await page.fill("#join-room", "dev")
    await page.press("#join-room", "Enter")
    await expect(page.locator("#room-title")).to_have_text("dev")
    await carol.recv_until(is_join("alice"))

    phone = await Client.open(server.port)
    await phone.send({"type": "connect", "name": "alice", "login": PASSWORD})
    welcome: dict[str, Any] = await phone.recv("welcome")
    assert welcome["rooms"] == ["lobby", "dev"]
    await phone.say("from my phone in lobby", room="lobby", ref="p1")
    await phone.say("psst carol", to="carol", ref="p2")
    await phone.say("from my phone in dev", room="dev", ref="p3")
    line = alice.line("from my phone in dev")
    await expect(line).to_be_visible()
    await expect(line).to_have_class(re.compile(r"\bown\b"))
    await expect(_room_button(alice, "lobby").locator(".unread")).to_have_count(0)
    directs = page.locator("#directs button")
    await expect(directs).to_have_text(["carol"])
    await expect(directs.locator(".unread")).to_have_count(0)
    await _room_button(alice, "lobby").click()
    await expect(alice.line("from my phone in lobby")).to_have_class(re.compile(r"\bown\b"))
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    assert alice.problems == []


async def test_the_page_as_a_further_device_opens_in_the_users_rooms(
    start_web: StartWeb, browser: Browser,
) -> None:
    """18.4: the page logging in while the user is online elsewhere opens with the
    user's rooms and their last lines, and nobody sees it arrive."""
    server = await start_web("--rate", "0")
    phone = await Client.open(server.port)
    await phone.send({"type": "register", "name": "alice", "password": PASSWORD})
    assert (await phone.recv("account"))["event"] == "registered"
    await phone.join("alice", login=PASSWORD)
    carol = await Client.joined(server.port, "carol", room="dev")
    await phone.send({"type": "join", "room": "dev"})
    await carol.recv_until(is_join("alice"))
    await carol.say("before the page", ref="c1")
    await carol.recv("ack")
    alice = await ChatPage.open(browser, server.url, "alice", login=PASSWORD)
    page = alice.page
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(_room_button(alice, "dev")).to_be_visible()
    await _room_button(alice, "dev").click()
    await expect(alice.line("before the page")).to_be_visible()
    await phone.say("typed on the phone", room="dev", ref="p1")
    await expect(alice.line("typed on the phone")).to_have_class(re.compile(r"\bown\b"))
    seen = await carol.recv_until(lambda m: m.get("message") == "typed on the phone")
    assert [m["type"] for m in seen] == ["message"]  # no join of the page's
    assert await carol.nothing_more()
    assert alice.problems == []


async def test_a_room_joined_on_another_device_joins_the_sidebar_not_the_screen(
    start_web: StartWeb, browser: Browser,
) -> None:
    """18.4: the user joins a room on another device: the page lists it among the
    user's rooms and keeps showing (and talking in) its own room."""
    server = await start_web("--rate", "0")
    client = await Client.open(server.port)
    await client.send({"type": "register", "name": "alice", "password": PASSWORD})
    assert (await client.recv("account"))["event"] == "registered"
    carol = await Client.joined(server.port, "carol", room="ops")
    alice = await ChatPage.open(browser, server.url, "alice", login=PASSWORD)
    page = alice.page
    await expect(page.locator("#room-title")).to_have_text("lobby")
    phone = await Client.open(server.port)
    await phone.join("alice", login=PASSWORD)
    await phone.send({"type": "join", "room": "ops"})
    await carol.recv_until(is_join("alice"))
    await expect(_room_button(alice, "ops")).to_be_visible()
    await expect(page.locator("#room-title")).to_have_text("lobby")
    await page.fill("#input", "said on the page")
    await page.press("#input", "Enter")
    got = await phone.recv_until(lambda m: m.get("message") == "said on the page")
    assert got[-1]["room"] == "lobby" and got[-1]["own"] is True
    await phone.send({"type": "part", "room": "ops"})
    await expect(_room_button(alice, "ops")).to_have_count(0)
    await expect(page.locator("#room-title")).to_have_text("lobby")
    assert alice.problems == []
