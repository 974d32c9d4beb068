"""The page with accounts (issue 26, items 2, 4, 5; PROTOCOL.txt 18), in Chromium: a login
with a password keeps the welcome's login token (never the password) for later visits and
asks again when the token is refused; /register and /logout from the composer; unread
counts from the account's read markers, which the page moves when the user has seen a
room's lines; lines naming the user (18.6, --mentions) highlighted, counted "@" apart,
and a browser notification, if the user allowed it, while the tab is hidden.

Every wait is a bounded Playwright wait on the page, or a bounded read of a TCP client.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.e2e.test_web_rooms import join_room, room_button
from tests.support.harness import TIMEOUT, Client, is_join
from tests.support.web import ChatPage, StartWeb, WebChatd

PASSWORD = "correct horse"


async def accounts_server(start_web: StartWeb, tmp_path: Path) -> WebChatd:
    return await start_web("--db", str(tmp_path / "chat.db"), "--mentions", "--rate", "0")


async def register(server: WebChatd, name: str, password: str = PASSWORD) -> None:
    """Registers `name` without joining (18.2), as a client of the TCP port."""
    client = await Client.open(server.port)
    await client.send({"type": "register", "name": name, "password": password})
    answer = await client.recv("account")
    assert answer["event"] == "registered", answer
    await client.send({"type": "disconnect"})


async def storage(page: Page) -> dict[str, str]:
    got: dict[str, str] = json.loads(await page.evaluate("JSON.stringify(localStorage)"))
    return got


def login_tokens(stored: dict[str, str]) -> list[str]:
    return [json.loads(v)["token"] for k, v in stored.items() if k.startswith("chatd.login")]


class SentReads:
    """The read lines the page sends on the sockets it opens from now on."""

    def __init__(self, page: Page) -> None:
        self.lines: list[dict[str, Any]] = []
        self.came = asyncio.Event()
        page.on("websocket", lambda ws: ws.on("framesent", self.frame))

    def frame(self, payload: str | bytes) -> None:
        line = json.loads(payload)
        if line.get("type") == "read":
            self.lines.append(line)
            self.came.set()

    def of(self, room: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["room"] == room]

    async def wait_for(self, room: str) -> list[dict[str, Any]]:
        async with asyncio.timeout(TIMEOUT):
            while not self.of(room):
                self.came.clear()
                await self.came.wait()
        return self.of(room)


async def test_a_login_keeps_its_token_never_the_password(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    """18.3: the password goes once, in the connect; the welcome's login token is kept in
    the browser's storage, and a later visit (another tab, the password field empty) logs
    in with it. A token the server refuses is forgotten and the password asked for
    again. A registered name without its password joins under a variant, said so."""
    server = await accounts_server(start_web, tmp_path)
    await register(server, "alice")
    carol = await Client.joined(server.port, "carol")

    alice = await ChatPage.open(browser, server.url, "alice", login=PASSWORD)
    page = alice.page
    await expect(page.locator("#me")).to_have_text("alice")
    await carol.recv_until(is_join("alice"))
    stored = await storage(page)
    tokens = login_tokens(stored)
    assert len(tokens) == 1 and len(tokens[0]) == 43, stored
    assert PASSWORD not in json.dumps(stored)
    assert PASSWORD not in await page.evaluate("JSON.stringify(sessionStorage)")
    await expect(page.locator("#login-password")).to_have_value("")

    # A later visit: a new tab of the same browser, no password typed.
    context = page.context
    await page.close()
    again = await ChatPage.open(browser, server.url, "alice", context=context)
    await expect(again.page.locator("#me")).to_have_text("alice")
    assert login_tokens(await storage(again.page)) == tokens

    # /logout revokes the token; put back, it is refused: the password is asked for.
    await again.say("/logout")
    await expect(again.page.locator("#status")).to_have_attribute("data-state", "offline")
    assert login_tokens(await storage(again.page)) == []
    await again.page.evaluate(
        "([k, v]) => localStorage.setItem(k, v)",
        [next(k for k in stored if k.startswith("chatd.login")),
         stored[next(k for k in stored if k.startswith("chatd.login"))]])
    await again.page.close()
    third = ChatPage(await context.new_page())
    await third.page.goto(server.url)
    await expect(third.page.locator("#nick")).to_have_value("alice")  # remembered
    await third.page.click("#login-form button[type=submit]")
    await expect(third.page.locator("#login-error")).to_contain_text("password")
    await expect(third.page.locator("#app")).to_have_attribute("data-screen", "login")
    await expect(third.page.locator("#login-password")).to_be_focused()
    assert login_tokens(await storage(third.page)) == []
    await third.page.fill("#login-password", PASSWORD)
    await third.page.click("#login-form button[type=submit]")
    await expect(third.page.locator("#me")).to_have_text("alice")
    assert len(login_tokens(await storage(third.page))) == 1

    # Without the password, in a browser that has no token: a variant, and why.
    other = await ChatPage.open(browser, server.url, "alice")
    await expect(other.page.locator("#me")).to_have_text("alice2")
    await expect(other.page.locator("#logs")).to_contain_text(
        re.compile("alice is a registered name, so you are alice2", re.IGNORECASE))
    third.assert_clean()
    other.assert_clean()


async def test_register_and_logout_from_the_composer(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    """/register PASSWORD registers one's name (18.2, the answer shown); /logout leaves;
    the password then logs in to the account."""
    server = await accounts_server(start_web, tmp_path)
    bob = await ChatPage.open(browser, server.url, "bob")
    await bob.say("/register sesame 123")
    await expect(bob.page.locator("#logs")).to_contain_text("bob is registered")
    await bob.say("/logout")
    await expect(bob.page.locator("#status")).to_have_attribute("data-state", "offline")

    client = await Client.open(server.port)
    await client.send({"type": "connect", "name": "bob", "login": "sesame 123"})
    welcome = await client.recv("welcome")
    assert (welcome["name"], welcome.get("account")) == ("bob", "bob"), welcome
    bob.assert_clean()


async def test_unread_counts_follow_the_read_markers(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    """18.5: after a reload the sidebar's counts are the welcome's (not counted again from
    zero); the page sends a read line when the user sees a room's new lines (the room on
    screen, the tab visible, at the bottom), never while the tab is hidden; the server's
    marker is then where the page's user read."""
    server = await accounts_server(start_web, tmp_path)
    await register(server, "alice")
    carol = await Client.joined(server.port, "carol", room="dev")
    # A room's marker starts at its newest line when the account joins it (18.5).
    await carol.say("before alice", ref="b")
    await carol.recv("ack")
    alice = await ChatPage.open(browser, server.url, "alice", login=PASSWORD)
    page = alice.page
    await join_room(alice, "dev")
    await carol.recv_until(is_join("alice"))
    await room_button(alice, "lobby").click()
    await expect(page.locator("#room-title")).to_have_text("lobby")

    ids = []
    for n in range(3):
        await carol.say(f"dev line {n}", ref=f"c{n}")
        ids.append((await carol.recv_until(lambda m: m["type"] == "ack"))[-1]["id"])
    dev = room_button(alice, "dev").locator(".unread")
    await expect(dev).to_have_text("3")

    reads = SentReads(page)
    await page.reload()
    await expect(page.locator("#status")).to_have_attribute("data-state", "online")
    await expect(dev).to_have_text("3")  # the welcome's "read", not a count from zero

    # Hidden, the room on screen is not read; seen, it is (once, up to its newest line).
    await page.evaluate("""() => {
        Object.defineProperty(document, "visibilityState", {value: "hidden",
                                                           configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    await room_button(alice, "dev").click()
    await expect(page.locator("#room-title")).to_have_text("dev")
    await carol.say("while hidden", ref="h")
    await expect(alice.line("while hidden")).to_be_visible()
    ids.append((await carol.recv_until(lambda m: m["type"] == "ack"))[-1]["id"])
    assert reads.of("dev") == []
    await page.evaluate("""() => {
        delete document.visibilityState;
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    assert await reads.wait_for("dev") == [{"type": "read", "room": "dev", "id": ids[-1]}]

    # The server's marker: a login elsewhere (this page's held session gives way) sees it.
    await page.context.close()
    client = await Client.open(server.port)
    await client.send({"type": "connect", "name": "alice", "login": PASSWORD, "room": "dev"})
    got = await client.recv_until(lambda m: (m["type"] == "read" and m.get("room") == "dev")
                                  or (m["type"] == "welcome" and any(
                                      r["room"] == "dev" for r in m.get("read", []))))
    marker = got[-1] if got[-1]["type"] == "read" else next(
        r for r in got[-1]["read"] if r["room"] == "dev")
    assert (marker["id"], marker["unread"]) == (ids[-1], 0), marker


async def test_mentions_are_marked_counted_and_notified(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    """18.6: a line the server marks "mention" (here alice written with a Cyrillic a, which
    no word test of the page's own finds) is highlighted and counted "@"; the page asks
    for notifications only when its button is pressed, and then shows one for a line
    naming the user while the tab is hidden, none while it is looked at."""
    server = await accounts_server(start_web, tmp_path)
    context = await browser.new_context(viewport={"width": 1100, "height": 720},
                                        reduced_motion="reduce")
    # The browser's prompt is not there headless: the page's calls are recorded, and the
    # user's answer is "allow".
    await context.add_init_script("""(() => {
        const asked = [];
        const shown = [];
        let permission = "default";
        class Recorded {
            constructor(title, options = {}) { shown.push({title, body: options.body}); }
            static get permission() { return permission; }
            static async requestPermission() {
                asked.push(1);
                permission = "granted";
                return permission;
            }
        }
        window.Notification = Recorded;
        window.notifications = {asked, shown};
    })()""")
    carol = await Client.joined(server.port, "carol")
    alice = await ChatPage.open(browser, server.url, "alice", context=context)
    page = alice.page
    await join_room(alice, "dev")
    await carol.recv_until(is_join("alice"))

    await carol.say("hi @\u0430lice, look")  # Cyrillic а
    lobby = room_button(alice, "lobby").locator(".unread.mention")
    await expect(lobby).to_have_text("@1")
    await expect(lobby).to_have_attribute("aria-label", "1 unread, 1 mentioning you")
    await room_button(alice, "lobby").click()
    await expect(alice.line("hi @\u0430lice, look")).to_have_class(re.compile(r"\bmention\b"))
    await carol.say("nobody named")
    await expect(alice.line("nobody named")).not_to_have_class(re.compile(r"\bmention\b"))

    assert await page.evaluate("notifications.asked.length") == 0  # never unprompted
    await page.click("#notify")
    await expect(page.locator("#notify")).to_be_hidden()
    assert await page.evaluate("notifications.asked.length") == 1

    await carol.say("alice, while you look")  # on screen: no notification
    await expect(alice.line("alice, while you look")).to_be_visible()
    await page.evaluate("""() => {
        Object.defineProperty(document, "visibilityState", {value: "hidden",
                                                           configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    await carol.say("not for her")
    await carol.say("\u0430lice, while away")
    await expect(alice.line("\u0430lice, while away")).to_be_attached()
    assert await page.evaluate("notifications.shown") == [
        {"title": "carol in #lobby", "body": "\u0430lice, while away"}]
    alice.assert_clean()


async def test_a_real_notification_once_the_browser_allows_them(
    start_web: StartWeb, browser: Browser, tmp_path: Path,
) -> None:
    """With the permission granted to the browser profile, the page has no button to ask,
    and a line naming the user while the tab is hidden makes a real Notification (the
    browser's own, watched from a subclass)."""
    server = await accounts_server(start_web, tmp_path)
    context = await browser.new_context(permissions=["notifications"])
    await context.add_init_script("""(() => {
        const shown = [];
        class Watched extends window.Notification {
            constructor(title, options) {
                super(title, options);
                shown.push(title);
            }
        }
        window.Notification = Watched;
        window.shownNotifications = shown;
    })()""")
    carol = await Client.joined(server.port, "carol")
    alice = await ChatPage.open(browser, server.url, "alice", context=context)
    page = alice.page
    await carol.recv_until(is_join("alice"))
    assert await page.evaluate("Notification.permission") == "granted"
    await expect(page.locator("#notify")).to_be_hidden()
    await page.evaluate("""() => {
        Object.defineProperty(document, "visibilityState", {value: "hidden",
                                                           configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    await carol.say("alice: are you there?")
    await expect(alice.line("alice: are you there?")).to_be_attached()
    assert await page.evaluate("shownNotifications") == ["carol in #lobby"]
    alice.assert_clean()
