"""Flood control, connection limits, timeouts, password and log hygiene (PROTOCOL.txt 8, 11)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys

import pytest

from tests.support.harness import Client, StartChatd

NO_LIMITS = ("--max-per-ip", "0", "--max-clients", "0")


async def test_flooder_is_limited_then_cut_off_while_a_normal_sender_is_unaffected(
    start_chatd: StartChatd,
) -> None:
    """PROTOCOL.txt 8.3: rate_limited per dropped line, excess_flood and close at 2x burst.
    The bucket refills so slowly (a line in 1000 s) that the counts are exact on any
    machine; the refill itself is unit-tested with a clock (tests/unit/test_link.py)."""
    server = await start_chatd("--rate", "0.001")  # the default burst of 10
    reader = await Client.joined(server.port, "reader")
    flooder = await Client.joined(server.port, "flooder")
    normal = await Client.joined(server.port, "normal")
    await reader.recv_until(lambda m: m["type"] == "connect" and m["name"] == "normal")

    await flooder.send(b"".join(
        json.dumps({"type": "message", "message": f"flood {i}"}).encode() + b"\n"
        for i in range(100)))
    answers = [json.loads(line) for line in await flooder.closed()]
    codes = [a["code"] for a in answers if a["type"] == "error"]
    assert codes[-1] == "excess_flood"
    # The connect took a token: 9 lines pass; the excess closes it at 2 x burst, 20 lines
    # (21 once the slow refill has drained a hair of the excess, which it always has).
    assert codes.count("rate_limited") in (19, 20)

    for i in range(5):
        await normal.say(f"normal {i}")
    got = await reader.recv_until(lambda m: m.get("message") == "normal 4")
    normal_lines = [m["message"] for m in got if m.get("name") == "normal"]
    flood_lines = [m for m in got if m.get("name") == "flooder" and m["type"] == "message"]
    assert normal_lines == [f"normal {i}" for i in range(5)]
    assert [m["message"] for m in flood_lines] == [f"flood {i}" for i in range(9)]
    await server.wait_log(r"flooder left lobby \(excess flood\)")


async def test_rate_zero_turns_flood_control_off(start_chatd: StartChatd) -> None:
    server = await start_chatd("--rate", "0")
    a = await Client.joined(server.port, "a")
    b = await Client.joined(server.port, "b")
    await a.send(b"".join(b'{"type":"message","message":"%d"}\n' % i for i in range(300)))
    got = await b.recv_until(lambda m: m.get("message") == "299")
    assert [m["message"] for m in got if m["type"] == "message"] == [str(i) for i in range(300)]


async def test_max_clients(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 8.4: one error line, then close."""
    server = await start_chatd("--max-clients", "2", "--max-per-ip", "0")
    first = await Client.joined(server.port, "one")
    second = await Client.joined(server.port, "two")  # kept: a dropped client would close
    third = await Client.open(server.port)
    [line] = await third.closed()
    assert json.loads(line)["code"] == "server_full"
    await server.wait_log("refused: the server has its maximum of 2 connections")
    await first.send({"type": "disconnect"})
    await first.closed()
    await server.wait_log("one left lobby")
    await Client.joined(server.port, "three")  # a place is free again
    await second.close()


async def test_max_per_ip(start_chatd: StartChatd) -> None:
    server = await start_chatd("--max-per-ip", "2")
    clients = [await Client.joined(server.port, f"u{i}") for i in range(2)]
    extra = await Client.open(server.port)
    [line] = await extra.closed()
    assert json.loads(line)["code"] == "too_many_connections"
    await server.wait_log(r"refused: 127\.0\.0\.1 has its maximum of 2 connections")
    clients[0].reset()
    await server.wait_log("u0 lost the connection")
    await Client.joined(server.port, "again")


async def test_registration_timeout_closes_a_connection_that_sits(
    start_chatd: StartChatd,
) -> None:
    server = await start_chatd("--registration-timeout", "1")
    sitter = await Client.open(server.port)
    [line] = await sitter.closed()
    assert json.loads(line)["code"] == "registration_timeout"
    await server.wait_log("closing: registration timeout")
    await server.wait_log(r"#1 127\.0\.0\.1:\d+ connected")


@pytest.mark.skipif(sys.platform != "linux" or shutil.which("ss") is None,
                    reason="reads the kernel's socket timers with ss (Linux)")
async def test_every_connection_has_tcp_keepalive(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 8.5: TCP keepalive on every connection (chatd sets it on the
    listening socket: Linux gives the sockets it accepts its options)."""
    server = await start_chatd()
    clients = [await Client.joined(server.port, name) for name in ("alice", "bob")]
    proc = await asyncio.create_subprocess_exec(
        "ss", "-tnoH", "state", "established", f"( sport = :{server.port} )",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    timers = re.findall(r"timer:\((\w+),", out.decode())
    assert timers == ["keepalive", "keepalive"], out.decode()
    for client in clients:
        await client.close()


async def test_keepalive_closes_a_silent_peer_and_the_room_sees_it_leave(
    start_chatd: StartChatd,
) -> None:
    """PROTOCOL.txt 8.5: ping, then ping_timeout; a client answering pongs stays."""
    # The watcher has 4 s to answer each ping, however loaded this machine is.
    server = await start_chatd("--ping-interval", "0.5", "--ping-timeout", "4",
                               "--resume-grace", "0")
    watcher = await Client.joined(server.port, "watcher")

    async def answer_pings_until_dead_leaves() -> None:
        while True:
            msg = await watcher.recv()
            if msg["type"] == "ping":
                await watcher.send({"type": "pong"})
            if msg["type"] == "disconnect":
                assert (msg["name"], msg["reason"]) == ("dead", "ping timeout")
                return

    watching = asyncio.create_task(answer_pings_until_dead_leaves())
    dead = await Client.joined(server.port, "dead")
    lines = [json.loads(line) for line in await dead.closed(timeout=30)]
    assert [m["type"] for m in lines][-2:] == ["ping", "error"]
    assert lines[-1]["code"] == "ping_timeout"
    await asyncio.wait_for(watching, 10)
    await watcher.send({"type": "who"})
    who = await watcher.recv_until(lambda m: m["type"] == "who")
    assert who[-1]["users"] == ["watcher"]


async def test_password_right_wrong_missing_and_never_logged(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 11.2, with the password from CHATD_PASSWORD."""
    secret = "s3cret-Zebra"
    server = await start_chatd(env={"CHATD_PASSWORD": secret})
    good = await Client.open(server.port)
    welcome = await good.join("alice", password=secret)
    assert welcome["name"] == "alice"
    for fields in ({"password": "wrong"}, {}):
        bad = await Client.open(server.port)
        await bad.send({"type": "connect", "name": "mallory", **fields})
        [line] = await bad.closed()
        assert json.loads(line)["code"] == "auth_failed"
    await server.wait_log("auth failed: no password")
    await server.stop()
    assert not any(secret in line for line in server.log)
    assert sum("auth failed" in line for line in server.log) == 2


async def test_password_in_text_mode(start_chatd: StartChatd) -> None:
    server = await start_chatd("--password", "pw")
    good = await Client.open(server.port)
    await good.send(b"carol\n")
    assert await good.read_line() == b"* password:\n"
    await good.send(b"pw\n")
    assert (await good.read_line()).startswith(b"* welcome, carol")
    bad = await Client.open(server.port)
    await bad.send(b"dave\nnope\n")
    assert await bad.closed() == [b"* password:\n", b"! auth_failed: wrong or missing password\n"]


async def test_log_stays_readable_and_error_floods_are_summarised(
    start_chatd: StartChatd,
) -> None:
    """Nothing a client sends can forge or garble a log line; error floods are counted."""
    server = await start_chatd("--rate", "0")
    a = await Client.joined(server.port, "a")
    await a.say("line one\nFAKE 2026 INFO forged\x1b[31m red \x07")
    await a.send(b'{"type":"\x1b[2J"}\n')
    await a.send(b"not json\n" * 100)
    await a.send({"type": "who"})
    await a.recv_until(lambda m: m["type"] == "who")
    await a.close()
    await server.wait_log("more errors not logged")
    await server.stop()
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARN|ERROR) ")
    assert all(stamp.match(line) for line in server.log), server.log
    assert not any("\x1b" in line or "\x07" in line for line in server.log)
    assert any("line one^JFAKE 2026 INFO forged" in line for line in server.log)
    errors = [line for line in server.log if " error " in line]
    assert len(errors) == 5  # the rest are counted, not logged one by one
    assert any("96 more errors not logged" in line for line in server.log)


async def test_many_clients_need_the_limits_raised(start_chatd: StartChatd) -> None:
    """The defaults protect a public port; NO_LIMITS is what load tests use."""
    server = await start_chatd(*NO_LIMITS)
    clients = await asyncio.gather(*(Client.joined(server.port, f"c{i}") for i in range(30)))
    assert len({c.name for c in clients}) == 30


async def test_rate_limited_errors_carry_the_dropped_lines_ref(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 4.10: the client learns which of its lines was dropped."""
    server = await start_chatd("--rate", "0.001", "--burst", "3")  # no refill to speak of
    a = await Client.joined(server.port, "a")  # the connect line takes a token too
    await a.send(b"".join(
        json.dumps({"type": "message", "message": f"m{i}", "ref": f"r{i}"}).encode() + b"\n"
        for i in range(5)))
    got = await a.recv_until(lambda m: m.get("ref") == "r4")
    acked = [m["ref"] for m in got if m["type"] == "ack"]
    dropped = [m["ref"] for m in got if m.get("code") == "rate_limited"]
    assert acked == ["r0", "r1"] and dropped == ["r2", "r3", "r4"]
