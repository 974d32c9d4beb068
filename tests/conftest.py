from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.harness import Chatd

StartChatd = Callable[..., Awaitable[Chatd]]


@pytest.fixture
async def start_chatd() -> AsyncIterator[StartChatd]:
    """Start real chatd processes; all are stopped (SIGTERM, then SIGKILL) after the test."""
    servers: list[Chatd] = []

    async def start(*args: str, **kwargs: Any) -> Chatd:
        server = await Chatd(*args, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def chatd(start_chatd: StartChatd) -> Chatd:
    """One chatd with flood control off (tests send at full speed on purpose)."""
    return await start_chatd("--rate", "0")
