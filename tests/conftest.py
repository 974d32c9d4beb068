"""Fixtures every test may use: real chatd and redis-server processes, a certificate, and
the check that every chatd a test started stayed healthy (tests.support.harness.Chatd)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.support.harness import Chatd, RedisServer, StartChatd, stop_servers

__all__ = ["StartChatd"]  # its old import path

pytest_plugins = ("pytester",)  # tests of the harness run pytest inside pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_chatd_faults: a chatd of this test logs an internal error or exits "
        "unusually on purpose (the chatd_health check is off)")

# CI (which sets CI=true) runs every Hypothesis test on the same examples, so a red run
# can be replayed; elsewhere each run explores new ones.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def chatd_health(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test if a chatd it started logged an internal error or a traceback, or
    exited with an unexpected status (Chatd.faults); `allow_chatd_faults` opts out."""
    before = len(Chatd.started)
    yield
    started = Chatd.started[before:]
    del Chatd.started[before:]
    if request.node.get_closest_marker("allow_chatd_faults"):
        return
    report = []
    for server in started:
        if server.faults_expected:
            continue
        if faults := server.faults():
            report.append(f"chatd {' '.join(server.args)}:\n  " + "\n  ".join(faults))
            if server.proc is not None and server.proc.returncode is None:
                server.proc.kill()
    if report:
        pytest.fail("unhealthy chatd (mark the test allow_chatd_faults if that is "
                    "its point):\n" + "\n".join(report), pytrace=False)


@pytest.fixture
async def start_chatd() -> AsyncIterator[StartChatd]:
    """Start real chatd processes; all are stopped (SIGTERM, then SIGKILL) after the test
    (tests.support.harness.stop_servers)."""
    servers: list[Chatd] = []

    async def start(*args: str, **kwargs: Any) -> Chatd:
        server = Chatd(*args, **kwargs)
        servers.append(server)
        return await server.start()

    yield start
    await stop_servers(servers)


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
