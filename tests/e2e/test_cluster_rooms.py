"""The cluster's guarantees with several rooms a user (PROTOCOL.txt 14, 17.13): every line
of every room once, in one order on every node; a dead node's users leave each of their
rooms; lines held while Redis is away reach each room late but in order."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

from tests.support.harness import Chatd, Client, RedisServer, StartChatd

FAST = ("--rate", "0", "--max-per-ip", "0")
ROOMS = ("lobby", "dev", "ops")


async def _nodes(start_chatd: StartChatd, redis: RedisServer, n: int, *args: str
                 ) -> list[Chatd]:
    return [await start_chatd(*FAST, "--redis", redis.url, *args) for _ in range(n)]


async def _in_rooms(port: int, name: str, rooms: tuple[str, ...]) -> Client:
    """A client in every room of `rooms` (lobby first), having seen its own joins."""
    client = await Client.joined(port, name)
    for room in rooms[1:]:
        await client.send({"type": "join", "room": room})
        await client.recv_until(_own_join(client.name, room))
    return client


def _own_join(name: str, room: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == "connect" and m["room"] == room and m["name"] == name


async def _seen_in_every_room(client: Client, name: str) -> None:
    waiting = set(ROOMS)

    def seen(m: dict[str, Any]) -> bool:
        if m["type"] == "connect" and m["name"] == name:
            waiting.discard(m["room"])
        return not waiting

    await client.recv_until(seen)


def _by_room(got: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    rooms: dict[str, list[tuple[str, str]]] = {room: [] for room in ROOMS}
    for m in got:
        if m["type"] == "message":
            rooms[m["room"]].append((m["id"], m["message"]))
    return rooms


async def test_three_processes_three_rooms_every_line_once_in_one_order(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    nodes = await _nodes(start_chatd, redis_server, 3)
    talkers = [await _in_rooms(node.port, f"talker{i}", ROOMS) for i, node in enumerate(nodes)]
    watchers = [await _in_rooms(node.port, f"watcher{i}", ROOMS)
                for i, node in enumerate(nodes)]
    last = watchers[-1].name
    for client in talkers + watchers[:-1]:
        await _seen_in_every_room(client, last)

    async def talk(client: Client) -> None:
        for i in range(60):
            await client.say(f"{client.name} {i}", room=ROOMS[i % 3], ref=str(i))
        await client.recv_until(lambda m: m.get("ref") == "59")

    await asyncio.gather(*(talk(c) for c in talkers))
    for c in talkers:
        for room in ROOMS:
            await c.say(f"{c.name} done", room=room)
    seen = []
    for watcher in watchers:
        done: set[tuple[str, str]] = set()

        def all_done(m: dict[str, Any], done: set[tuple[str, str]] = done) -> bool:
            if m.get("message", "").endswith(" done"):
                done.add((m["room"], m["message"]))
            return len(done) == 9

        seen.append(_by_room(await watcher.recv_until(all_done, timeout=30)))
    assert seen[0] == seen[1] == seen[2]  # every room: the same lines in one order
    for k, room in enumerate(ROOMS):
        lines = [text for _, text in seen[0][room]]
        assert len(lines) == len(set(lines)) == 3 * 20 + 3  # each line once, in its room
        for t in talkers:
            mine = [text for text in lines if text.startswith(t.name + " ")]
            assert mine == [f"{t.name} {i}" for i in range(k, 60, 3)] + [f"{t.name} done"]


async def test_a_killed_process_s_users_leave_each_of_their_rooms(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    one, two = await _nodes(start_chatd, redis_server, 2, "--resume-grace", "0")
    doomed = await _in_rooms(one.port, "doomed", ROOMS)
    watcher = await _in_rooms(two.port, "watcher", ROOMS)
    await _seen_in_every_room(doomed, "watcher")
    one.signal(signal.SIGKILL)
    left = [await watcher.recv("disconnect", timeout=15) for _ in ROOMS]
    assert sorted(m["room"] for m in left) == sorted(ROOMS)
    assert {(m["name"], m["reason"]) for m in left} == {("doomed", "server went away")}
    assert not any(m.get("part") for m in left)
    assert await watcher.nothing_more()


async def test_redis_restart_mid_chat_keeps_each_room_s_order(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    one, two = await _nodes(start_chatd, redis_server, 2)
    sender = await _in_rooms(one.port, "sender", ROOMS)
    receiver = await _in_rooms(two.port, "receiver", ROOMS)
    await _seen_in_every_room(sender, "receiver")
    await redis_server.stop()
    for i in range(30):
        await sender.say(f"during {i}", room=ROOMS[i % 3], ref=f"d{i}")
    await one.wait_log("Redis unavailable")
    await redis_server.start(port=redis_server.port)
    await one.wait_log("Redis is back")
    for room in ROOMS:
        await sender.say("after", room=room, ref=f"a-{room}")
    await sender.recv_until(lambda m: m.get("ref") == "a-ops", timeout=30)
    done: set[str] = set()

    def all_after(m: dict[str, Any]) -> bool:
        if m.get("message") == "after":
            done.add(m["room"])
        return len(done) == 3

    got = _by_room(await receiver.recv_until(all_after, timeout=30))
    for k, room in enumerate(ROOMS):
        assert [text for _, text in got[room]] == [
            f"during {i}" for i in range(k, 30, 3)] + ["after"]
