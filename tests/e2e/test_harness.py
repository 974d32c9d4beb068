"""The harness itself (tests/support/harness.py, tests/conftest.py).

It sees what chatd survives: a test whose chatd logged an internal error or exited
unexpectedly goes red, unless it says that this is its point (chatd_health). Inner tests
run in a pytest of their own against real chatd processes, one of them with a fault
planted in a handler (tests/support/faulty_chatd.py). And a restart on a port that is
busy for a moment (another test's client may hold it) waits for it instead of failing.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.support.harness import Chatd, Client

INNER = '''
import os
import signal

import pytest

from tests.support.faulty_chatd import FAULTY_CHATD
from tests.support.harness import Client


async def faulty_rooms_line(start_chatd):
    server = await start_chatd("--rate", "0", program=FAULTY_CHATD)
    client = await Client.joined(server.port, "a")
    await client.send({"type": "rooms"})
    assert (await client.recv("error"))["code"] == "internal_error"
    await client.send({"type": "ping"})
    await client.recv("pong")  # chatd lives on, as it should: only the test sees the bug


async def test_a_fault_in_a_handler(start_chatd):
    await faulty_rooms_line(start_chatd)


@pytest.mark.allow_chatd_faults
async def test_a_fault_provoked_on_purpose(start_chatd):
    await faulty_rooms_line(start_chatd)


async def test_a_chatd_that_died(start_chatd):
    server = await start_chatd()
    os.kill(server.pid, signal.SIGKILL)
    await server.wait()


async def test_a_chatd_killed_on_purpose(start_chatd):
    server = await start_chatd()
    server.signal(signal.SIGKILL)
    assert await server.wait() == -signal.SIGKILL


async def test_a_healthy_chatd(chatd):
    client = await Client.joined(chatd.port, "a")
    await client.send({"type": "rooms"})
    await client.recv("rooms")
'''


def test_a_faulty_or_dead_chatd_fails_the_test_that_started_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2]))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)  # the inner run's options are below
    pytester.makeconftest("pytest_plugins = ['tests.conftest']\n")
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:xdist", "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function", "-rE")
    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines([
        "ERROR*test_a_fault_in_a_handler*",
        "ERROR*test_a_chatd_that_died*",
    ])
    result.stdout.fnmatch_lines(["*internal error on Rooms*planted fault*"])
    result.stdout.fnmatch_lines(["*exit status -9, expected 0*"])


async def test_a_restart_on_a_busy_port_waits_for_it() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    server = Chatd("--port", str(port))
    starting = asyncio.create_task(server.start())
    try:
        await server.wait_log("address already in use")  # the first try failed
        holder.close()
        await asyncio.wait_for(starting, 30)
        assert server.port == port
        await Client.joined(port, "alice")
    finally:
        holder.close()
        await server.stop()
