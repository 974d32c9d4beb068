"""--metrics: Prometheus metrics, /healthz and /readyz on an address of their own
(docs/operations.md). Every scrape is parsed by prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from websockets.asyncio.client import connect

from tests.conftest import StartChatd
from tests.e2e.ops_support import http_get, metrics_port, scrape, value
from tests.harness import Client, RedisServer, is_join

METRICS = ("--metrics", "127.0.0.1:0")


async def test_counters_move_by_exactly_what_a_session_did(start_chatd: StartChatd) -> None:
    chatd = await start_chatd(*METRICS, "--rate", "0", "--ping-interval", "0",
                              "--max-clients", "3")
    port = metrics_port(chatd)
    # carol at nc (text mode), alice and bob in JSON; each has read every line so far.
    reader, writer = await asyncio.open_connection("127.0.0.1", chatd.port)
    writer.write(b"carol\n")
    while b"welcome, carol" not in await asyncio.wait_for(reader.readline(), 10):
        pass
    alice = await Client.joined(chatd.port, "alice")
    bob = await Client.joined(chatd.port, "bob")
    await alice.recv_until(is_join("bob"))
    for name in ("alice", "bob"):
        while f"{name} joined".encode() not in await asyncio.wait_for(reader.readline(), 10):
            pass
    before = await scrape(port)
    assert value(before, "chatd_connections", transport="tcp", mode="json") == 2
    assert value(before, "chatd_connections", transport="tcp", mode="text") == 1
    assert value(before, "chatd_users") == 3
    assert value(before, "chatd_rooms") == 1

    sent = b""
    for n in range(3):
        line = json.dumps({"type": "message", "message": f"line {n}", "ref": str(n)})
        sent += (line + "\n").encode()
    alice.writer.write(sent)
    received = b""
    for _ in range(3):
        received += await alice.read_line()  # the acks
        received += await bob.read_line()  # the lines
        received += await asyncio.wait_for(reader.readline(), 10)  # carol's, as text
    await bob.send(b"{not json\n")
    received += await bob.read_line()
    refused = await Client.open(chatd.port)  # a fourth connection: over --max-clients
    assert b"server_full" in await refused.read_line()
    after = await scrape(port)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # The bad line is an error, not a line taken; the refusal goes out before the
    # connection is one (PROTOCOL.txt 8.4), past the writer that counts deliveries.
    assert moved("chatd_lines_received_total") == 3
    assert moved("chatd_lines_delivered_total") == 3 * 3 + 1
    assert moved("chatd_received_bytes_total") == len(sent) + len(b"{not json\n")
    assert moved("chatd_sent_bytes_total") == len(received)
    assert moved("chatd_errors_total", code="bad_json") == 1
    assert moved("chatd_errors_total", code="server_full") == 1
    assert moved("chatd_refusals_total", code="server_full") == 1
    assert value(after, "chatd_history_memory_bytes", part="rooms") > 0
    assert value(after, "chatd_history_memory_limit_bytes", part="rooms") == 64 * 1024 * 1024
    assert value(after, "process_resident_memory_bytes") > 0
    assert ("chatd_event_loop_lag_seconds_bucket", (("le", "+Inf"),)) in after
    for client in (alice, bob, refused):
        await client.close()
    writer.close()


async def test_resumes_are_counted(start_chatd: StartChatd) -> None:
    chatd = await start_chatd(*METRICS, "--rate", "0")
    port = metrics_port(chatd)
    alice = await Client.joined(chatd.port, "alice")
    alice.reset()
    await chatd.wait_log("alice lost the connection")
    back = await Client.open(chatd.port)
    welcome = await back.join("alice", resume=alice.resume)
    assert welcome["resumed"]
    samples = await scrape(port)
    assert value(samples, "chatd_resumes_total") == 1
    await back.close()


async def test_health_and_readiness_follow_the_history_database(
        start_chatd: StartChatd, tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    chatd = await start_chatd(*METRICS, "--rate", "0", "--history-db", str(db))
    port = metrics_port(chatd)
    assert await http_get(port, "/healthz") == (200, "ok\n")
    assert await http_get(port, "/readyz") == (200, "ready\n")
    alice = await Client.joined(chatd.port, "alice")
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        await alice.say("kept in memory while the database is locked")
        await chatd.wait_log("history database: cannot write")
        status, body = await http_get(port, "/readyz")
        assert (status, body) == (503, "history database: writes failing\n")
        assert await http_get(port, "/healthz") == (200, "ok\n")  # the loop still serves
        samples = await scrape(port)
        assert value(samples, "chatd_db_write_failures_total") >= 1
        assert value(samples, "chatd_db_backlog_lines") == 1
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    await chatd.wait_log("history database: writing again")
    assert await http_get(port, "/readyz") == (200, "ready\n")
    assert value(await scrape(port), "chatd_db_backlog_lines") == 0
    await alice.close()


async def test_readiness_follows_redis(start_chatd: StartChatd,
                                       redis_server: RedisServer) -> None:
    chatd = await start_chatd(*METRICS, "--redis", redis_server.url)
    port = metrics_port(chatd)
    alice = await Client.joined(chatd.port, "alice")  # through the log: caught up
    assert await http_get(port, "/readyz") == (200, "ready\n")
    samples = await scrape(port)
    assert value(samples, "chatd_cluster_up") == 1
    assert value(samples, "chatd_cluster_nodes") == 1
    assert value(samples, "chatd_cluster_log_lag_seconds") < 5
    await redis_server.stop()
    await chatd.wait_log("Redis unavailable")
    assert await http_get(port, "/readyz") == (503, "cluster: Redis unavailable\n")
    assert await http_get(port, "/healthz") == (200, "ok\n")
    assert value(await scrape(port), "chatd_cluster_up") == 0
    await alice.close()


async def test_the_metrics_address_answers_nothing_else(start_chatd: StartChatd) -> None:
    chatd = await start_chatd(*METRICS)
    status, _ = await http_get(metrics_port(chatd), "/")
    assert status == 404


async def test_web_connections_are_counted_as_web(start_chatd: StartChatd) -> None:
    chatd = await start_chatd(*METRICS, "--web", "0")
    async with connect(f"ws://127.0.0.1:{chatd.web_port}/ws", open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "connect", "name": "alice"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
        samples = await scrape(metrics_port(chatd))
        assert value(samples, "chatd_connections", transport="web", mode="json") == 1
        assert value(samples, "chatd_users") == 1
