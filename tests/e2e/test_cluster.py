"""Several chatd processes over one real redis-server act as one chat (PROTOCOL.txt 14)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.harness import Chatd, Client, RedisServer, StartChatd

FAST = ("--rate", "0", "--max-per-ip", "0")


async def _nodes(start_chatd: StartChatd, redis: RedisServer, n: int, *args: str
                 ) -> list[Chatd]:
    return [await start_chatd(*FAST, "--redis", redis.url, *args) for _ in range(n)]


async def _settle(client: Client, *names: str) -> None:
    """Wait until the client has seen every one of `names` join."""
    waiting = set(names) - {client.name}

    def all_seen(msg: dict[str, Any]) -> bool:
        if msg["type"] == "connect":
            waiting.discard(msg["name"])
        return not waiting

    if waiting:
        await client.recv_until(all_seen)


def _lines(got: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["id"], m["message"]) for m in got if m["type"] == "message"]


async def test_three_processes_one_room_every_line_once_in_one_order(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    nodes = await _nodes(start_chatd, redis_server, 3)
    talkers = [await Client.joined(node.port, f"talker{i}") for i, node in enumerate(nodes)]
    watchers = [await Client.joined(node.port, f"watcher{i}") for i, node in enumerate(nodes)]
    names = [c.name for c in talkers + watchers]
    for client in talkers + watchers:
        if client.name != names[-1]:
            await _settle(client, names[-1])

    async def talk(client: Client) -> None:
        for i in range(100):
            await client.say(f"{client.name} {i}", ref=str(i))
        await client.recv_until(lambda m: m.get("ref") == "99")

    await asyncio.gather(*(talk(c) for c in talkers))
    for c in talkers:
        await c.say(f"{c.name} done")
    seen = []
    for watcher in watchers:
        done: set[str] = set()

        def all_done(m: dict[str, Any], done: set[str] = done) -> bool:
            if m.get("message", "").endswith(" done"):
                done.add(m["message"])
            return len(done) == 3

        seen.append(_lines(await watcher.recv_until(all_done, timeout=30)))
    assert seen[0] == seen[1] == seen[2]  # the same lines in the same order everywhere
    assert len(seen[0]) == len(set(seen[0])) == 303  # each exactly once
    for t in talkers:
        mine = [text for _, text in seen[0] if text.startswith(t.name + " ")]
        assert mine == [f"{t.name} {i}" for i in range(100)] + [f"{t.name} done"]


async def test_private_lines_and_names_across_processes(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    one, two = await _nodes(start_chatd, redis_server, 2)
    alice = await Client.joined(one.port, "alice")
    bob = await Client.joined(two.port, "bob")
    await _settle(alice, "bob")
    copy = await Client.joined(two.port, "ALICE")
    assert copy.name == "ALICE2"  # unique across the cluster, ignoring case
    await bob.say("psst", to="alice", ref="p")
    private = await alice.recv_until(lambda m: m["type"] == "message")
    assert (private[-1]["message"], private[-1]["to"]) == ("psst", "alice")
    await bob.recv_until(lambda m: m["type"] == "ack")
    await copy.send({"type": "nick", "name": "Bob"})
    assert (await copy.recv_until(lambda m: m["type"] == "error"))[-1]["code"] == "name_taken"
    await bob.send({"type": "who"})
    who = await bob.recv_until(lambda m: m["type"] == "who")
    assert who[-1]["users"] == ["alice", "bob", "ALICE2"]
    await alice.send({"type": "join", "room": "dev"})
    await alice.recv_until(lambda m: m["type"] == "connect" and m["room"] == "dev")
    await bob.send({"type": "rooms"})
    rooms = await bob.recv_until(lambda m: m["type"] == "rooms")
    # a join adds a room (17.2): alice is in both
    assert rooms[-1]["rooms"] == [{"room": "dev", "users": 1}, {"room": "lobby", "users": 3}]


async def test_history_paging_and_a_late_node_across_processes(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    [one] = await _nodes(start_chatd, redis_server, 1)
    alice = await Client.joined(one.port, "alice")
    for i in range(30):
        await alice.say(f"line {i}", ref=str(i))
    await alice.recv_until(lambda m: m.get("ref") == "29")
    [late] = await _nodes(start_chatd, redis_server, 1, "--history-on-join", "10")
    bob = await Client.open(late.port)
    await bob.send({"type": "connect", "name": "bob"})
    got = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert got[0]["users"] == ["alice", "bob"]  # the late node knows the cluster's users
    assert [m["message"] for m in got if m["type"] == "message"] == [
        f"line {i}" for i in range(20, 30)]
    first = next(m for m in got if m["type"] == "message")
    await bob.send({"type": "history", "before": first["id"], "limit": 100})
    page = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert [m["message"] for m in page if m["type"] == "message"] == [
        f"line {i}" for i in range(20)]


async def test_a_node_starting_from_a_snapshot_knows_users_history_and_ids(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """The late node takes the state from the snapshot, the older lines from the room
    stream and the rest from the log after the snapshot."""
    [one] = await _nodes(start_chatd, redis_server, 1, "--snapshot-every", "0.2",
                         "--log-level", "debug")
    alice = await Client.joined(one.port, "alice")
    for i in range(10):
        await alice.say(f"old {i}", ref=str(i))
    acks = await alice.recv_until(lambda m: m.get("ref") == "9")
    entry = acks[-1]["id"].partition(".")[0]  # lines in one log entry: E, E.1, E.2, ...
    await one.wait_log(f"snapshot written at {entry}")
    await alice.say("after the snapshot", ref="x")
    await alice.recv_until(lambda m: m.get("ref") == "x")
    [late] = await _nodes(start_chatd, redis_server, 1)
    bob = await Client.open(late.port)
    await bob.send({"type": "connect", "name": "alice"})
    got = await bob.recv_until(lambda m: m["type"] == "history_end")
    assert got[0]["name"] == "alice2" and got[0]["users"] == ["alice", "alice2"]
    lines = [m for m in got if m["type"] == "message"]
    assert [m["message"] for m in lines] == [f"old {i}" for i in range(10)] + [
        "after the snapshot"]
    assert [m["id"] for m in lines][:10] == [a["id"] for a in acks if a["type"] == "ack"]


async def test_a_killed_process_loses_its_users_within_the_bound(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    one, two = await _nodes(start_chatd, redis_server, 2, "--resume-grace", "0")
    doomed = await Client.joined(one.port, "doomed")
    watcher = await Client.joined(two.port, "watcher")
    await doomed.recv_until(lambda m: m["type"] == "connect" and m["name"] == "watcher")
    one.signal(signal.SIGKILL)
    left = await watcher.recv("disconnect", timeout=15)  # node timeout 5 s + a beat
    assert (left["name"], left["reason"]) == ("doomed", "server went away")
    await two.wait_log(r"node \w+ is gone")
    again = await Client.joined(two.port, "doomed")
    assert again.name == "doomed"  # the name is free again


async def test_redis_restart_mid_chat_loses_nothing_acknowledged(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """PROTOCOL.txt 14.4: lines sent while Redis is away are held, then delivered."""
    one, two = await _nodes(start_chatd, redis_server, 2)
    sender = await Client.joined(one.port, "sender")
    receiver = await Client.joined(two.port, "receiver")
    await _settle(sender, "receiver")
    for i in range(20):
        await sender.say(f"before {i}", ref=f"b{i}")
    await receiver.recv_until(lambda m: m.get("message") == "before 19")

    await redis_server.stop()
    for i in range(20):
        await sender.say(f"during {i}", ref=f"d{i}")
    await one.wait_log("Redis unavailable")
    await redis_server.start(port=redis_server.port)
    await one.wait_log("Redis is back")
    for i in range(20):
        await sender.say(f"after {i}", ref=f"a{i}")
    acks = await sender.recv_until(lambda m: m.get("ref") == "a19", timeout=30)
    acked = [m["ref"] for m in acks if m["type"] == "ack"]
    got = await receiver.recv_until(lambda m: m.get("message") == "after 19", timeout=30)
    texts = [m["message"] for m in got if m["type"] == "message"]
    assert texts == [f"during {i}" for i in range(20)] + [f"after {i}" for i in range(20)]
    assert set(acked) >= {f"d{i}" for i in range(20)} | {f"a{i}" for i in range(20)}


async def test_lines_held_while_redis_is_away_are_bounded_in_bytes(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """PROTOCOL.txt 14.4: past --redis-hold-bytes a line is refused with unavailable (and
    its ref); the lines held before it are delivered, in order, once Redis is back."""
    [node] = await _nodes(start_chatd, redis_server, 1, "--redis-hold-bytes", "65536")
    sender = await Client.joined(node.port, "sender")
    receiver = await Client.joined(node.port, "receiver")
    await _settle(sender, "receiver")
    await redis_server.stop()
    text = "x" * 4_000  # 16 such lines pass 64 KiB with their overhead
    for i in range(30):
        await sender.say(f"{i} {text}", ref=f"r{i}")
    refused = await sender.recv_until(lambda m: m.get("ref") == "r29")
    codes = {m["ref"]: m["code"] for m in refused if m["type"] == "error"}
    held = [i for i in range(30) if f"r{i}" not in codes]
    assert set(codes.values()) == {"unavailable"}
    # Held lines come first, then every later one is refused (nothing drains meanwhile).
    assert held == list(range(len(held))) and 10 <= len(held) < 16
    await redis_server.start(port=redis_server.port)
    await node.wait_log("Redis is back")
    acks = await sender.recv_until(lambda m: m.get("ref") == f"r{held[-1]}", timeout=30)
    assert [m["ref"] for m in acks if m["type"] == "ack"] == [f"r{i}" for i in held]
    got = await receiver.recv_until(
        lambda m: m.get("message", "").startswith(f"{held[-1]} "), timeout=30)
    assert [m["message"].split()[0] for m in got if m["type"] == "message"] == \
        [str(i) for i in held]
    assert await receiver.nothing_more()


async def test_resume_onto_another_process(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    one, two = await _nodes(start_chatd, redis_server, 2)
    rita = await Client.joined(one.port, "rita")
    sam = await Client.joined(two.port, "sam")
    await _settle(rita, "sam")
    await sam.say("seen", ref="s")
    last = (await rita.recv("message"))["id"]
    rita.reset()
    await one.wait_log("rita lost the connection")
    for i in range(5):
        await sam.say(f"missed {i}", ref=f"m{i}")
    await sam.recv_until(lambda m: m.get("ref") == "m4")
    back = await Client.open(two.port)
    welcome = await back.join("rita", resume=rita.resume, last_id=last)
    assert (welcome["resumed"], welcome["name"]) == (True, "rita")
    got = await back.recv_until(lambda m: m.get("message") == "missed 4")
    assert [m["message"] for m in got] == [f"missed {i}" for i in range(5)]


async def test_redis_password_and_tls_urls(
    start_chatd: StartChatd, tmp_path: Path, certificate: tuple[Path, Path],
) -> None:
    """A Redis URL carries a password (redis://:PW@...) and TLS (rediss://)."""
    cert, key = certificate
    (tmp_path / "plain").mkdir()
    (tmp_path / "tls").mkdir()
    redis = await RedisServer(tmp_path / "plain", "--requirepass", "hunter2").start()
    tls_redis = await RedisServer(
        tmp_path / "tls", "--requirepass", "hunter2", "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
        "--tls-auth-clients", "no", tls=True).start()
    try:
        plain = await start_chatd(*FAST, "--redis", f"redis://:hunter2@127.0.0.1:{redis.port}/0")
        secure = await start_chatd(
            *FAST, "--redis",
            f"rediss://:hunter2@127.0.0.1:{tls_redis.port}/0?ssl_ca_certs={cert}")
        for node in (plain, secure):
            a = await Client.joined(node.port, "a")
            b = await Client.joined(node.port, "b")
            await a.say("over redis")
            await b.recv_until(lambda m: m.get("message") == "over redis")
            await node.stop()
            assert not any("hunter2" in line for line in node.log)
    finally:
        await redis.stop()
        await tls_redis.stop()



async def test_a_node_stops_cleanly_while_redis_is_away(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """SIGTERM with Redis gone: clients are told, the process exits 0 within bounds."""
    [node] = await _nodes(start_chatd, redis_server, 1)
    alice = await Client.joined(node.port, "alice")
    await redis_server.stop()
    await alice.say("held, never published")
    await node.wait_log("Redis unavailable")
    node.signal(signal.SIGTERM)
    lines = await alice.closed()
    assert b'"type":"shutdown"' in lines[-1]
    assert await node.wait() == 0
    await node.wait_log("held command\\(s\\) not published")


def _ref(ref: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("ref") == ref


def _log_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(".")[0].partition("-")
    return int(ms), int(seq)


async def _snapshot_at_or_after(node: Chatd, entry_id: str) -> None:
    """Wait until the node has written a snapshot that holds the log up to entry_id."""
    start = 0
    while True:
        line = await node.wait_log(r"snapshot written at \S+", start=start)
        start = node.log.index(line) + 1
        written = line.partition("snapshot written at ")[2].split()[0]
        if _log_key(written) >= _log_key(entry_id):
            return


async def test_the_room_streams_outlive_the_node_that_wrote_them(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """PROTOCOL.txt 14.2: one node writes every node's room lines just before its
    snapshot; when it stops, another takes over and writes the lines since the last
    snapshot, so a node that starts later has the whole history, ids and all."""
    fast = ("--snapshot-every", "0.2", "--log-level", "debug")
    nodes = await _nodes(start_chatd, redis_server, 2, *fast)
    ann = await Client.joined(nodes[0].port, "ann")
    ben = await Client.joined(nodes[1].port, "ben")
    await _settle(ann, "ben")
    acks: list[dict[str, Any]] = []
    for i in range(6):  # from both nodes, so the writer writes the other's lines too
        talker = (ann, ben)[i % 2]
        await talker.say(f"old {i}", ref=f"o{i}")
        acks += [m for m in await talker.recv_until(_ref(f"o{i}")) if m["type"] == "ack"]
    waits = {asyncio.create_task(_snapshot_at_or_after(node, acks[-1]["id"])): node
             for node in nodes}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    writer = waits[done.pop()]
    other = nodes[1 - nodes.index(writer)]
    talker = (ann, ben)[nodes.index(other)]
    # The writer freezes: it neither beats nor writes; the lines from here on are
    # written to the room stream by the node that takes over, or by nobody.
    writer.signal(signal.SIGSTOP)
    for i in range(3):
        await talker.say(f"new {i}", ref=f"n{i}")
        acks += [m for m in await talker.recv_until(_ref(f"n{i}")) if m["type"] == "ack"]
    await other.wait_log(r"node \w+ is gone", timeout=15)
    await _snapshot_at_or_after(other, acks[-1]["id"])
    writer.signal(signal.SIGKILL)
    [late] = await _nodes(start_chatd, redis_server, 1)
    cid = await Client.open(late.port)
    await cid.send({"type": "connect", "name": "cid"})
    got = await cid.recv_until(lambda m: m["type"] == "history_end")
    lines = [(m["id"], m["message"]) for m in got if m["type"] == "message"]
    assert lines == list(zip([a["id"] for a in acks],
                             [f"old {i}" for i in range(6)] + [f"new {i}" for i in range(3)],
                             strict=True))
