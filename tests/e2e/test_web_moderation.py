"""The chat page in Chromium with moderation (PROTOCOL.txt 15): the room's topic in the
header, kept current, and operators marked in the member list as they become one."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.e2e.test_web_browser import ChatPage, browser
from tests.e2e.test_web_socket import StartWeb, start_web
from tests.harness import Client

__all__ = ["browser", "start_web"]  # the fixtures

SHOT = Path(os.environ.get("CHATD_SHOTS", "/tmp")) / "moderation-page.png"


async def test_topic_in_the_header_and_operators_marked(
    start_web: StartWeb, browser: Browser,
) -> None:
    server = await start_web("--rate", "0", "--oper", "alice:pw-a", "--oper", "dora:pw-d")
    alice = await Client.joined(server.port, "alice")
    await alice.send({"type": "oper", "name": "alice", "password": "pw-a"})
    await alice.send({"type": "topic", "topic": "be nice <b>here</b>"})
    await alice.recv_until(lambda m: m["type"] == "topic")

    bob = await ChatPage.open(browser, server.url, "bob")
    topic = bob.page.locator("#topic")
    await expect(topic).to_have_text("be nice <b>here</b>")  # text, not markup
    await expect(topic).to_be_visible()
    users = bob.page.locator("#users button.user")
    await expect(users.filter(has_text="alice").locator(".oper-mark")).to_have_text("@")
    await expect(users.filter(has_text="bob").locator(".oper-mark")).to_have_count(0)

    dora = await Client.joined(server.port, "dora")
    await expect(users.filter(has_text="dora")).to_have_count(1)
    await dora.send({"type": "oper", "name": "dora", "password": "pw-d"})
    await expect(users.filter(has_text="dora").locator(".oper-mark")).to_have_text("@")
    await expect(bob.texts("li.notice.oper").last).to_have_text("dora is now an operator")

    await dora.send({"type": "topic", "topic": "new rules"})
    await expect(topic).to_have_text("new rules")
    await expect(bob.texts("li.notice.topic").last).to_have_text("dora set the topic: new rules")
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    await bob.page.screenshot(path=str(SHOT))

    await bob.say("/join dev")
    await expect(bob.page.locator("#room-title")).to_have_text("dev")
    await expect(topic).to_be_hidden()  # dev has none
    await bob.say("/join lobby")
    await expect(bob.page.locator("#room-title")).to_have_text("lobby")
    await expect(topic).to_have_text("new rules")
    await expect(users.filter(has_text="alice").locator(".oper-mark")).to_have_text("@")
    bob.assert_clean()
