from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Chatd, RedisServer

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


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1, made by openssl: (cert, key)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A real redis-server of this test's own (never a fake)."""
    server = await RedisServer(tmp_path).start()
    yield server
    await server.stop()
