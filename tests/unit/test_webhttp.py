"""The web port's plain HTTP side (chatd.webhttp; PROTOCOL.txt 13): who may open the
WebSocket, and the page's files; on a real socket in tests/e2e/test_web_in_process.py.
"""

from __future__ import annotations

import json
import re

import pytest

from chatd.palette import PALETTE
from chatd.webhttp import host_allowed, load_pages, origin_allowed, palette_module


@pytest.mark.parametrize(("origin", "host", "allowed", "ok"), [
    ("http://127.0.0.1:8080", "127.0.0.1:8080", (), True),  # the page's own origin
    ("https://chat.example.org", "chat.example.org", (), True),
    ("http://CHAT.example.org", "chat.example.org", (), True),
    ("http://127.0.0.1:8081", "127.0.0.1:8080", (), False),  # another port is another site
    ("http://evil.example", "127.0.0.1:8080", (), False),
    ("null", "127.0.0.1:8080", (), False),  # file: pages, sandboxed frames
    ("ftp://127.0.0.1:8080", "127.0.0.1:8080", (), False),
    ("http://evil.example", None, (), False),
    ("https://app.example.org/", "127.0.0.1:8080", ("https://app.example.org",), True),
    (None, "127.0.0.1:8080", (), True),  # no Origin: not a browser
])
def test_origin_rules(origin: str | None, host: str | None, allowed: tuple[str, ...],
                      ok: bool) -> None:
    assert origin_allowed(origin, host, frozenset(allowed)) is ok


@pytest.mark.parametrize(("host", "ok"), [
    ("127.0.0.1:8080", True),
    ("10.1.2.3", True),  # any IP literal: an address cannot be rebound
    ("[::1]:8080", True),
    ("[2001:db8::7]", True),
    ("localhost:8080", True),
    ("LocalHost", True),
    ("app.localhost:8080", True),
    ("chat.example.org:443", True),  # given with --web-host
    ("Chat.Example.Org.", True),
    ("rebind.attacker.example:8080", False),
    ("localhost.attacker.example", False),
    ("example.org", False),
    ("127.0.0.1.attacker.example", False),
    ("::1", False),  # an IPv6 literal without brackets is not a Host
    ("", False),
    (None, False),
])
def test_host_rules(host: str | None, ok: bool) -> None:
    assert host_allowed(host, frozenset({"chat.example.org"})) is ok


def test_pages_hold_the_page_its_modules_and_the_palette() -> None:
    pages = load_pages()
    assert pages["/"] == pages["/index.html"]
    assert pages["/"][0] == "text/html; charset=utf-8"
    for module in ("/app.js", "/session.js", "/view.js", "/colour.js", "/palette.js"):
        assert pages[module][0] == "text/javascript; charset=utf-8"
    assert pages["/style.css"][0] == "text/css; charset=utf-8"
    html = pages["/"][1].decode()
    assert 'src="/app.js"' in html and 'href="/style.css"' in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere


def test_no_page_module_uses_html_sinks() -> None:
    """Network text goes in as text: no innerHTML and friends anywhere in the page."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    for path, (_, body) in load_pages().items():
        assert not sinks.search(body.decode()), path


def test_palette_module_is_chatcs_palette() -> None:
    text = palette_module().decode()
    match = re.fullmatch(r"export const PALETTE = Object\.freeze\((.*)\);\n", text)
    assert match is not None and json.loads(match.group(1)) == list(PALETTE)
