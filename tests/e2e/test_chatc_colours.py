"""Names told apart by colour (issue 23 item 16), the same way in chatc and on the page:
a name keeps its own colour unless a name present before it holds it, then takes the
nearest free one (chatd/palette.py, chatd/static/colour.js)."""

from __future__ import annotations

import re

from playwright.async_api import Browser

from chatd.palette import PALETTE
from tests.support.chatc import STAMP, Screens
from tests.support.harness import Client, StartChatd
from tests.support.name_colours import STEPS, assignments
from tests.support.web import WAIT_MS, StartWeb


def name_colours(text: str) -> dict[str, str]:
    """The colour (SGR 38;...) each `<name>` of a chat line is drawn in (capture-pane -e)."""
    found = {}
    for sgr, name in re.findall(r"<((?:\x1b\[[0-9;]*m)+)([^\x1b<>]+)(?:\x1b\[[0-9;]*m)+>",
                                text):
        colour = re.search(r"38;[25](?:;\d+)+", sgr)
        if colour:
            found[name] = colour.group()
    return found


async def test_a_room_of_twelve_in_chatc_shows_twelve_colours(
        start_chatd: StartChatd, screens: Screens) -> None:
    chatd = await start_chatd("--max-per-ip", "0", "--rate", "0")
    # carol, dave, hana and bot were all one orange with seven colours.
    names = ["carol", "dave", "hana", "bot", "eve", "frank", "gus", "ivy", "jo", "kim", "lee"]
    others = [await Client.joined(chatd.port, name) for name in names]
    alice = await screens.chatc("alice", chatd.port, "--name", "alice")
    await alice.wait_for(r"alice in lobby · 12 here")
    for client in others:
        await client.say(f"hello from {client.name}")
    await alice.enter("and me")
    await alice.wait_for(rf"{STAMP} <alice> and me")
    text = await alice.wait_for(r"hello from lee")
    coloured = name_colours(await alice.text(colours=True))
    assert set(coloured) == {*names, "alice"}, text
    assert len(set(coloured.values())) == 12, coloured
    await alice.enter("/quit")
    assert await alice.exit_status() == 0


async def test_the_page_assigns_colours_as_chatc_does(start_web: StartWeb, browser: Browser
                                                      ) -> None:
    server = await start_web()
    page = await browser.new_page()
    await page.goto(server.url, timeout=WAIT_MS)
    on_page = await page.evaluate(
        """async (steps) => {
             const m = await import('/colour.js');
             return steps.map((names) => { m.present(names); return names.map(m.nameColour); });
           }""", STEPS)
    assert on_page == assignments(STEPS)
    assert await page.evaluate("async () => (await import('/palette.js')).PALETTE"
                               ) == list(PALETTE)
