"""Fixtures of the end-to-end tests that live in tests/support (the web page, nc, chatc)."""

from tests.support.chatc import screens
from tests.support.nc import open_nc
from tests.support.web import browser, cutter_factory, shared_chromium, start_web

__all__ = ["browser", "cutter_factory", "open_nc", "screens", "shared_chromium", "start_web"]
