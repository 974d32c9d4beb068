"""The page for everyone (issue 14.7): axe-core (the engine shipped in the
axe-playwright-python package) finds no serious or critical problem on the login screen, a
busy room, a private view and the phone layout, light and dark; the keyboard alone does
everything; screen readers hear new lines, politely, and not the backlog.

The busy-room test also takes the screenshots the notes show (desktop, dark, phone).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, expect

from tests.support.harness import Client, is_join
from tests.support.server_opts import no_limits
from tests.support.web import WAIT_MS, ChatPage, StartWeb, shot

AXE = Axe()
BLOCKING = {"serious", "critical"}


async def assert_accessible(page: Page, where: str) -> None:
    results = await AXE.run(page)
    response: dict[str, Any] = results.response
    bad = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}"
           for v in response["violations"] if v["impact"] in BLOCKING]
    assert not bad, f"{where}: {bad}"
    assert response["testEngine"]["name"] == "axe-core"


async def test_login_screen_is_accessible(start_web: StartWeb, browser: Browser) -> None:
    server = await start_web()
    page = await browser.new_page()
    await page.goto(server.url, timeout=WAIT_MS)
    await expect(page.locator("#nick")).to_be_focused()
    await assert_accessible(page, "login, light")
    await page.emulate_media(color_scheme="dark")
    await assert_accessible(page, "login, dark")
    await page.keyboard.type("kim")  # and it works from the keyboard alone
    await page.keyboard.press("Tab")
    await page.keyboard.type("dev")
    await page.keyboard.press("Enter")
    await expect(page.locator("#me")).to_have_text("kim")
    await expect(page.locator("#room-title")).to_have_text("dev")
    await expect(page.locator("#input")).to_be_focused()


async def test_busy_room_private_view_and_phone_are_accessible(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    server = await start_web(*no_limits())
    alice = await ChatPage.open(browser, server.url, "alice")
    page = alice.page
    minsu = await Client.joined(server.port, "민수")
    jihun = await Client.joined(server.port, "지훈")
    crowd = [await Client.joined(server.port, f"user{n:02}") for n in range(1, 31)]
    await minsu.say("안녕하세요! 다들 모였네요 🙂")
    await minsu.say("회의는 3시에 시작해요")
    await jihun.say("네, 알겠습니다 👍")
    await crowd[0].say("hello from user01")
    await alice.say("hi everyone")
    await minsu.say("잠깐 얘기할 수 있어요?", to="alice")
    await crowd[4].say("ping me when you are free", to="alice")
    await crowd[4].say("it is about the release", to="alice")
    await expect(page.locator("#directs .unread")).to_have_text(["1", "2"])
    await expect(alice.line("hi everyone")).to_have_attribute("data-id", re.compile(r"\d"))
    await expect(alice.lines(".run-toggle .text")).to_have_text(
        ["alice, 민수 and 31 others joined"])

    async def look(mode: str) -> None:
        await page.keyboard.press("Escape")  # back to the room, if in the private view
        await expect(page.locator("#room-title")).to_have_text("lobby")
        await assert_accessible(page, f"busy room, {mode}")
        await shot(page, tmp_path, f"busy-room-{mode}")
        if mode == "phone":
            await page.click("#menu")
            await expect(page.locator("#side")).to_be_in_viewport()
        await page.locator("#user-filter").fill("user1")
        await expect(page.locator("#users .name")).to_have_count(10)
        await assert_accessible(page, f"filtered members, {mode}")
        await shot(page, tmp_path, f"members-filtered-{mode}")
        await page.locator("#user-filter").fill("")
        await page.locator("#directs button", has_text="민수").click()
        await expect(page.locator("#room-title")).to_have_text("민수")
        await expect(page.locator("#directs button", has_text="user05")).to_contain_text("2")
        await assert_accessible(page, f"private view, {mode}")
        await shot(page, tmp_path, f"private-view-{mode}")

    await look("desktop")
    await page.emulate_media(color_scheme="dark")
    await look("dark")
    await page.emulate_media(color_scheme="light")
    await page.set_viewport_size({"width": 390, "height": 844})
    await look("phone")
    alice.assert_clean()
    del crowd


async def test_everything_works_from_the_keyboard(start_web: StartWeb, browser: Browser) -> None:
    """Tab order follows the screen; Enter sends, Shift+Enter breaks the line; Escape
    closes the private view, and on a phone the drawer (focus back on its button)."""
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    alice = await ChatPage.open(browser, server.url, "alice")
    await carol.recv_until(is_join("alice"))
    page = alice.page

    await page.locator("#input").focus()
    await page.keyboard.type("two")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("lines")
    await expect(page.locator("#input")).to_have_value("two\nlines")
    await page.keyboard.press("Enter")
    got = await carol.recv("message")
    assert got["message"] == "two\nlines"
    await expect(page.locator("#input")).to_have_value("")

    # From the top of the page: the room list, the join box, the people, the log, the composer.
    await expect(page.locator("#rooms button")).to_have_text(["#lobby2"])
    await page.click("#room-title")  # Tab goes on from the top bar
    order = []
    for _ in range(8):
        await page.keyboard.press("Tab")
        order.append(await page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.id || e.textContent.trim() || e.tagName; }"))
    assert order == ["#lobby2", "join-room", "Join", "alice (you)", "carol", "logs", "input",
                     "send"], order

    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")  # back on carol in the member list
    await expect(page.locator("#users button", has_text="carol")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#room-title")).to_have_text("carol")
    await expect(page.locator("#input")).to_be_focused()
    await page.keyboard.type("private, by keyboard")
    await page.keyboard.press("Enter")
    got = await carol.recv("message")
    assert (got["message"], got.get("private")) == ("private, by keyboard", True)
    await page.keyboard.press("Escape")
    await expect(page.locator("#room-title")).to_have_text("lobby")

    await page.set_viewport_size({"width": 390, "height": 844})
    await page.locator("#menu").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#side")).to_be_in_viewport()
    await expect(page.locator("#rooms button").first).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#side")).not_to_be_in_viewport()
    await expect(page.locator("#menu")).to_be_focused()
    await page.keyboard.press("Tab")  # the closed drawer takes no focus
    assert await page.evaluate("() => !document.getElementById('side')"
                               ".contains(document.activeElement)")
    alice.assert_clean()


async def test_new_lines_are_announced_and_the_backlog_is_not(
    start_web: StartWeb, browser: Browser,
) -> None:
    server = await start_web("--rate", "0")
    carol = await Client.joined(server.port, "carol")
    for n in range(1, 6):
        await carol.say(f"old line {n}", ref=str(n))
    await carol.recv_until(lambda m: m.get("ref") == "5")
    alice = await ChatPage.open(browser, server.url, "alice")
    page = alice.page
    await expect(alice.texts()).to_have_count(5)
    region = page.locator("#announce")
    await expect(region).to_have_attribute("aria-live", "polite")
    await expect(page.locator("#logs")).to_have_attribute("aria-live", "off")
    await carol.say("something new")
    await expect(region.locator("p").last).to_have_text("carol: something new")
    await carol.say("psst", to="alice")
    await expect(region.locator("p").last).to_have_text("carol, privately: psst")
    announced = await region.inner_text()
    assert "old line" not in announced
    alice.assert_clean()
