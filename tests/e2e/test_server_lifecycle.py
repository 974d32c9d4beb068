"""End to end: how connections end (PROTOCOL.txt 2.4), resume after a reset (section 10)
and shutdown on a signal (2.5), with the real `chatd` and real sockets.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import struct

import pytest

from tests.support.harness import CHATD, TIMEOUT, Chatd, Client, StartChatd, is_join, trio
from tests.support.server_opts import start


async def assert_left(client: Client, name: str, reason: str | None) -> None:
    """The next line `client` gets is `name`'s leave notice (with `reason`, if any)."""
    left = await client.recv()
    assert left["type"] == "disconnect", left
    assert (left["name"], left["message"], left["room"]) == (name, f"{name} left", "lobby")
    assert left["id"] and left["time"]
    assert left.get("reason") == reason


async def test_polite_leave_is_announced_at_once(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.4, 3.3 (ORIGIN.md point 6): {"type":"disconnect"}: the rest get the
    leave notice without a reason, and the server closes the connection."""
    chatd = await start(start_chatd)
    a, b, c = await trio(chatd)
    await a.send({"type": "disconnect"})
    for other in (b, c):
        await assert_left(other, "A", None)
    assert await a.closed() == []
    await b.send({"type": "who"})
    assert (await b.recv("who"))["users"] == ["B", "C"]


async def test_closed_socket_is_announced_at_once(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.4 (ORIGIN.md point 6): closing the socket is a leave at once."""
    chatd = await start(start_chatd)
    a, b, c = await trio(chatd)
    await a.close()
    for other in (b, c):
        await assert_left(other, "A", None)


async def test_reset_without_grace_is_announced_at_once(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.4, 8.6: with --resume-grace 0 a TCP reset is a leave at once, and the
    notice carries the reason."""
    chatd = await start(start_chatd, "--resume-grace", "0")
    a, b, c = await trio(chatd)
    a.reset()
    for other in (b, c):
        await assert_left(other, "A", "connection reset")
    newcomer = await Client.joined(chatd.port, "A")
    assert newcomer.name == "A"  # the name was freed


async def test_reset_is_held_for_resume_then_resumed(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.4, 10.1-10.3: with a grace period a reset JSON session is held,
    unannounced, keeping its name; a resume replays what it missed, unannounced too."""
    chatd = await start(start_chatd)
    a, b, c = await trio(chatd)
    await c.say("before the drop")
    last = (await a.recv("message"))["id"]
    await b.recv("message")
    token = a.resume
    a.reset()
    await chatd.wait_log(r"A lost the connection \(connection reset\)")
    await b.send({"type": "who"})
    who = await b.recv()
    assert who == {"type": "who", "room": "lobby", "users": ["A", "B", "C"]}
    taker = await Client.joined(chatd.port, "A")
    assert taker.name == "A2"  # the held session keeps its name
    await b.recv_until(is_join("A2"))
    await c.recv_until(is_join("A2"))
    await c.say("while A was away")
    await c.say("psst", to="A")
    await b.recv("message")

    back = await Client.open(chatd.port)
    await back.send({"type": "connect", "name": "A", "resume": token, "last_id": last})
    welcome = await back.recv("welcome")
    assert welcome["resumed"] is True and welcome["name"] == "A" and welcome["resume"] == ""
    assert welcome["users"] == ["A", "B", "C", "A2"]
    replay = [await back.recv("message"), await back.recv("message")]
    assert [m["message"] for m in replay] == ["while A was away", "psst"]
    assert replay[1]["private"] is True
    # nothing was announced: the next thing B sees is C's next line
    await c.say("sync")
    assert (await b.recv())["message"] == "sync"
    assert (await back.recv())["message"] == "sync"


async def test_text_mode_reset_is_announced_at_once(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 2.4: a text-mode user cannot resume, so a reset is a leave at once, even
    with the default grace period."""
    chatd = await start(start_chatd)
    b = await Client.joined(chatd.port, "B")
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", chatd.port),
                                            TIMEOUT)
    writer.write(b"tina\n")
    await b.recv_until(is_join("tina"))
    assert (await asyncio.wait_for(reader.readline(), TIMEOUT)).startswith(b"* welcome, tina")
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
    left = await b.recv("disconnect")
    assert (left["name"], left["reason"]) == ("tina", "connection reset")


async def test_resume_with_an_unknown_token_is_a_fresh_join(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 10.4: unknown token: a fresh join with the name and room of the line,
    and the welcome's notice says why."""
    chatd = await start(start_chatd)
    a = await Client.open(chatd.port)
    welcome = await a.join("A", resume="nope.nope", last_id="5", room="dev")
    assert welcome["resumed"] is False and welcome["name"] == "A" and welcome["room"] == "dev"
    assert "resume" in welcome["notice"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_shutdown_on_signal(start_chatd: StartChatd, sig: int) -> None:
    """PROTOCOL.txt 2.5: every connection gets the shutdown line (text mode: readable), the
    connections close and the process exits 0."""
    chatd = await start(start_chatd)
    a, b, _ = await trio(chatd)
    idle = await Client.open(chatd.port)  # connected, never joined
    await idle.send({"type": "ping"})
    assert await idle.recv() == {"type": "pong"}
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", chatd.port),
                                            TIMEOUT)
    writer.write(b"tina\n")
    await a.recv_until(is_join("tina"))
    await b.recv_until(is_join("tina"))
    chatd.signal(sig)
    for client in (a, b, idle):
        lines = await client.closed()
        assert lines[-1] == b'{"type":"shutdown","message":"server shutting down"}\n', lines
    text = await asyncio.wait_for(reader.read(), TIMEOUT)
    assert text.endswith(b"* server shutting down\n")
    assert await chatd.wait() == 0
    writer.close()


async def _run_chatd(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        CHATD, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


async def test_port_in_use_and_bad_options_exit_2_with_one_line(chatd: Chatd) -> None:
    """Issue 2: one clear line, exit status 2, no traceback."""
    for args, says in (
        (("--host", "127.0.0.1", "--port", str(chatd.port)), "address already in use"),
        (("--port", "seventy"), "is not a port number"),
        (("--no-such-option",), "unrecognized arguments"),
        (("--tls-cert", "cert.pem"), "--tls-cert and --tls-key go together"),
    ):
        code, output = await _run_chatd(*args)
        lines = output.strip().splitlines()
        assert code == 2, (args, output)
        assert len(lines) == 1 and says in lines[0] and "Traceback" not in output, output
