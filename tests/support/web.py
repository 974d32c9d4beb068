"""The web side of the end-to-end tests: a chatd with --web, WebSocket clients, and
the page in Debian's Chromium driven by Playwright (one Chromium per test process, a
fresh context per user).

Fixtures here (`start_web`, `browser`, `cutter_factory`) are registered by tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Error,
    Locator,
    Page,
    async_playwright,
    expect,
)
from websockets.asyncio.client import ClientConnection, connect

from tests.support.harness import TIMEOUT, Chatd, stop_servers


class WebChatd(Chatd):
    """A chatd with --web (the harness reads both ports from its "listening on" line)."""

    async def start(self) -> WebChatd:
        await super().start()
        assert self.web_port, self.log[-5:]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}/ws"


StartWeb = Callable[..., Awaitable[WebChatd]]


@pytest.fixture
async def start_web() -> AsyncIterator[StartWeb]:
    """`start_web(*args)`: a chatd with `--web 0` unless args name a --web port."""
    servers: list[WebChatd] = []

    async def start(*args: str) -> WebChatd:
        web = () if "--web" in args else ("--web", "0")
        server = WebChatd(*web, *args)
        servers.append(server)  # stopped even if it fails to start
        return await server.start()

    yield start
    await stop_servers(servers)


async def ws_open(server: WebChatd, origin: str | None = None) -> ClientConnection:
    headers = {"Origin": origin} if origin else None
    return await connect(server.ws_url, additional_headers=headers, open_timeout=TIMEOUT)


async def ws_recv(ws: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert isinstance(message, str)
    parsed: dict[str, Any] = json.loads(message)
    return parsed


async def ws_until(ws: ClientConnection, match: Callable[[dict[str, Any]], bool]
                   ) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while not got or not match(got[-1]):
        got.append(await ws_recv(ws))
    return got


async def ws_join(server: WebChatd, name: str, **fields: Any) -> ClientConnection:
    ws = await ws_open(server)
    await ws.send(json.dumps({"type": "connect", "name": name, **fields}))
    await ws_until(ws, lambda m: m["type"] == "connect" and m["name"] == name)
    return ws


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 10_000

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
async def shared_chromium() -> AsyncIterator[Browser]:
    """Debian's chromium (never a browser Playwright would download), started once per
    pytest-xdist worker (tests run in one event loop per process, pyproject.toml): a
    launch costs more than most of the tests that use it. Tests stay apart through a
    fresh context each (`browser`)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("these tests need Debian's chromium: run `make system-deps` "
                    "(or `apt-get install chromium`)")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                            timeout=30_000)
        yield chromium
        await chromium.close()


@pytest.fixture
async def browser(shared_chromium: Browser) -> AsyncIterator[Browser]:
    """The worker's chromium; every context (a fresh profile: cookies, storage, cache) or
    page a test opens is closed after it, so no page of one test lives on into the next
    (its reconnecting script could find a later test's chatd on a reused port)."""
    assert not shared_chromium.contexts, "a context of an earlier test is still open"
    yield shared_chromium
    for context in shared_chromium.contexts:
        await context.close()


class ChatPage:
    """One browser user: its own context (cookies, storage), the page, what went wrong."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []  # script errors, console errors (CSP violations too)
        self.dialogs: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("console", self._console)
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "WebSocket" not in message.text:
            self.problems.append(f"console: {message.text}")  # a dropped socket is expected

    async def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        with contextlib.suppress(Error):
            await dialog.dismiss()

    @classmethod
    async def open(cls, browser: Browser, url: str, name: str = "", *, room: str = "",
                   width: int = 1100, height: int = 720, login: str = "",
                   context: BrowserContext | None = None) -> ChatPage:
        """`login`: the account's password (PROTOCOL.txt 18.3); `context`: another tab of
        that browser profile (its storage shared) instead of a fresh profile."""
        if context is None:
            context = await browser.new_context(viewport={"width": width, "height": height},
                                                reduced_motion="reduce")  # no drawer animation
        chat = cls(await context.new_page())
        await chat.page.goto(url, timeout=WAIT_MS)
        await chat.page.fill("#nick", name)
        await chat.page.fill("#start-room", room)
        if login:
            await chat.page.fill("#login-password", login)
        await chat.page.click("#login-form button[type=submit]")
        await expect(chat.page.locator("#status")).to_have_attribute("data-state", "online")
        return chat

    async def say(self, text: str) -> None:
        await self.page.fill("#input", text)
        await self.page.press("#input", "Enter")

    def lines(self, selector: str = "li.message") -> Locator:
        """The shown room's lines of a kind (a Playwright locator)."""
        return self.page.locator(f".log:not([hidden]) {selector}")

    def texts(self, selector: str = "li.message") -> Locator:
        return self.page.locator(f".log:not([hidden]) {selector} .text")

    def line(self, text: str) -> Locator:
        return self.page.locator(".log:not([hidden]) li.message").filter(
            has=self.page.locator(".text", has_text=re.compile(f"^{re.escape(text)}$")))

    async def close(self) -> None:
        await self.page.context.close()

    def assert_clean(self) -> None:
        assert not self.problems, self.problems
        assert not self.dialogs, self.dialogs


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


class Cutter:
    """A TCP forwarder in front of chatd's web port that can cut every connection, and turn
    new ones away, as a network outage would (no WebSocket close frame)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.blocked = False
        self.transports: set[asyncio.WriteTransport] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> Cutter:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.transports |= {writer.transport, up_writer.transport}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self.transports.discard(writer.transport)

    def cut(self) -> None:
        for transport in list(self.transports):
            transport.abort()
        self.transports.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def cutter_factory() -> AsyncIterator[list[Cutter]]:
    cutters: list[Cutter] = []
    yield cutters
    for cutter in cutters:
        await cutter.stop()


async def shot(page: Page, tmp_path: Path, name: str) -> None:
    """A screenshot for the notes: always in tmp_path, copied where $CHATD_WEB_SHOTS says."""
    await page.screenshot(path=tmp_path / f"{name}.png")
    if target := os.environ.get("CHATD_WEB_SHOTS"):
        await page.screenshot(path=Path(target) / f"{name}.png")  # Playwright makes the folder
