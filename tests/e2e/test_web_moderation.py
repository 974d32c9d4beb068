"""The chat page in Chromium with moderation (PROTOCOL.txt 15): the room's topic in the
header, kept current, and operators marked in the member list as they become one."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.support.harness import Client
from tests.support.web import ChatPage, StartWeb


async def test_topic_in_the_header_and_operators_marked(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
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
    await bob.page.screenshot(path=tmp_path / "moderation-page.png")

    await bob.say("/join dev")
    await expect(bob.page.locator("#room-title")).to_have_text("dev")
    await expect(topic).to_be_hidden()  # dev has none
    await bob.say("/join lobby")
    await expect(bob.page.locator("#room-title")).to_have_text("lobby")
    await expect(topic).to_have_text("new rules")
    await expect(users.filter(has_text="alice").locator(".oper-mark")).to_have_text("@")
    bob.assert_clean()


async def test_an_operator_in_the_page_and_a_kicked_page(
    start_web: StartWeb, browser: Browser,
) -> None:
    """PROTOCOL.txt 15.1-15.5 from the page's composer: /oper, /help for operators,
    /topic, /mute, /kick; a page that is kicked says why and does not come back."""
    server = await start_web("--rate", "0", "--oper", "alice:pw-a")
    alice = await ChatPage.open(browser, server.url, "alice")
    troll = await Client.joined(server.port, "troll")
    await alice.say("/kick troll")
    await expect(alice.texts("li.system").last).to_contain_text("Only operators can do that")
    await alice.say("/oper alice pw-a")
    await expect(alice.texts("li.notice.oper").last).to_have_text("alice is now an operator")
    me = alice.page.locator("#users button.user").filter(has_text="alice")
    await expect(me.locator(".oper-mark")).to_have_text("@")
    await alice.say("/help")  # operators' commands listed too (the last are /account's)
    await expect(alice.texts("li.system").last).to_contain_text("/account")
    await expect(alice.texts("li.system").filter(has_text="/topic TEXT")).to_have_count(1)
    await alice.say("/topic from the page")
    await expect(alice.page.locator("#topic")).to_have_text("from the page")
    got = await troll.recv_until(lambda m: m["type"] == "topic")
    assert got[-1]["name"] == "alice"
    await alice.say("/mute troll shush")
    await troll.recv_until(lambda m: m["type"] == "notice")
    await alice.say("/kick troll spam")
    await expect(alice.texts("li.notice.disconnect").last).to_have_text(
        "troll was removed by alice (spam)")
    assert b'"code":"kicked"' in (await troll.closed())[-1]

    bob = await ChatPage.open(browser, server.url, "bob")
    await expect(alice.page.locator("#users button.user").filter(has_text="bob")).to_have_count(1)
    await alice.say("/kick bob enough")
    await expect(bob.texts("li.system").last).to_contain_text(
        "You were removed from the server by alice (enough).")
    # "waiting" while a reconnect is due; "offline": the page stays out.
    await expect(bob.page.locator("#status")).to_have_attribute("data-state", "offline")
    await expect(alice.page.locator("#users button.user").filter(has_text="bob")).to_have_count(0)
    await server.wait_log("audit: alice kicked bob from the server")
    alice.assert_clean()
    bob.assert_clean()
