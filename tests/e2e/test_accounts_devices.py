"""Several devices, one user, end to end (PROTOCOL.txt 18.4, 8.12): real chatd processes,
JSON clients and nc logged in to one account, and two cluster nodes over a real
redis-server."""

from __future__ import annotations

from typing import Any

from tests.support.harness import Client, RedisServer, StartChatd, register
from tests.support.nc import Nc

FAST = ("--rate", "0", "--max-per-ip", "0")
PASSWORD = "correct horse"


async def _device(port: int, name: str = "alice", **fields: Any
                  ) -> tuple[Client, dict[str, Any]]:
    """One more device of the account, and its welcome. Nobody else is told, but the
    device gets its own connect notice last, as a join ends (18.4): Client.join waits
    for it."""
    client = await Client.open(port)
    welcome = await client.join(name, login=PASSWORD, **fields)
    assert welcome["account"] == name, welcome
    return client, welcome


async def _first(port: int, name: str = "alice") -> Client:
    client = await Client.open(port)
    welcome = await client.join(name, login=PASSWORD)
    assert welcome["account"] == name
    return client


async def _message(client: Client) -> dict[str, Any]:
    return (await client.recv_until(lambda m: m["type"] == "message"))[-1]


async def test_two_devices_are_one_user_to_the_others(start_chatd: StartChatd) -> None:
    """18.4: one join notice, who lists the user once, a line from one device reaches
    the other with the same id and "own", private lines reach both devices (and what
    one sends, the other), and the leave comes when the last device goes."""
    server = await start_chatd(*FAST)
    await register(server.port, "alice", PASSWORD)
    carol = await Client.joined(server.port, "carol")
    a1 = await _first(server.port)
    await carol.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    await a1.send({"type": "join", "room": "dev"})
    await a1.recv_until(lambda m: m["type"] == "connect" and m["room"] == "dev")
    a2, welcome = await _device(server.port)
    assert welcome["rooms"] == ["lobby", "dev"] and welcome["users"] == ["carol", "alice"]
    assert await carol.nothing_more() and await a1.nothing_more()  # nobody was told
    await carol.send({"type": "who"})
    assert (await carol.recv("who"))["users"] == ["carol", "alice"]

    await a1.say("hello from one", room="lobby", ref="r1")
    ack = await a1.recv("ack")
    mine = await _message(a2)
    seen = await _message(carol)
    assert (mine["message"], mine["own"], mine["id"]) == ("hello from one", True, ack["id"])
    assert seen["id"] == ack["id"] and "own" not in seen
    assert await a1.nothing_more()  # the sender: its ack only

    await carol.say("psst", to="alice")
    for device in (a1, a2):
        line = await _message(device)
        assert (line["message"], line["to"], line.get("own")) == ("psst", "alice", None)
    await a2.say("back to you", to="carol", ref="p2")
    assert (await _message(carol))["message"] == "back to you"
    copy = await _message(a1)
    assert (copy["to"], copy["own"], copy["message"]) == ("carol", True, "back to you")

    await a1.send({"type": "disconnect"})
    await a1.closed()
    await a2.say("still here", ref="s")
    assert (await _message(carol))["message"] == "still here"  # no leave before it
    await a2.send({"type": "disconnect"})
    left = await carol.recv("disconnect")
    assert left["name"] == "alice"


async def test_kick_removes_every_device(start_chatd: StartChatd) -> None:
    """18.4: a kick from the server removes each device; the room sees one leave."""
    server = await start_chatd(*FAST, env={"CHATD_OPERS": "root:oper secret"})
    await register(server.port, "alice", PASSWORD)
    carol = await Client.joined(server.port, "carol")
    await carol.send({"type": "oper", "name": "root", "password": "oper secret"})
    await carol.recv_until(lambda m: m["type"] == "oper")
    a1 = await _first(server.port)
    a2, _ = await _device(server.port)
    await carol.send({"type": "kick", "name": "alice", "reason": "spam"})
    for device in (a1, a2):
        got = await device.recv_until(lambda m: m["type"] == "error")
        assert got[-1]["code"] == "kicked"
        await device.closed()
    lines = await carol.recv_until(lambda m: m["type"] == "notice")
    assert [m["name"] for m in lines if m["type"] == "disconnect"] == ["alice"]
    assert await carol.nothing_more()


async def test_a_device_resumes_on_its_own_unannounced(start_chatd: StartChatd) -> None:
    """18.4, 10.2: a device whose connection broke resumes with its own token and gets
    what it missed, the other device's lines marked own; nobody sees it go or come."""
    server = await start_chatd(*FAST)
    await register(server.port, "alice", PASSWORD)
    carol = await Client.joined(server.port, "carol")
    a1 = await _first(server.port)
    token = a1.resume
    a2, _ = await _device(server.port)
    await a2.say("first", ref="f")
    last = (await _message(a1))["id"]
    a1.reset()
    await a2.say("while you were away", ref="w")
    await carol.recv_until(lambda m: m.get("message") == "while you were away")
    back = await Client.open(server.port)
    await back.send({"type": "connect", "name": "alice", "resume": token, "last_id": last})
    assert (await back.recv("welcome"))["resumed"] is True
    missed = await _message(back)
    assert (missed["message"], missed["own"]) == ("while you were away", True)
    assert await carol.nothing_more()  # no leave, no join


async def test_the_bound_of_devices(start_chatd: StartChatd) -> None:
    """8.12: one login past --max-devices gets too_many_devices and stays unjoined; a
    logout makes room."""
    server = await start_chatd(*FAST, "--max-devices", "2")
    await register(server.port, "alice", PASSWORD)
    a1 = await _first(server.port)
    a2, _ = await _device(server.port)
    third = await Client.open(server.port)
    await third.send({"type": "connect", "name": "alice", "login": PASSWORD})
    error = await third.recv("error")
    assert error["code"] == "too_many_devices" and "2 device(s)" in error["message"]
    await a1.send({"type": "logout"})
    await a1.closed()
    await third.send({"type": "connect", "name": "alice", "login": PASSWORD})
    assert (await third.recv("welcome"))["account"] == "alice"
    assert await a2.nothing_more()


async def test_nc_is_one_device_among_others(start_chatd: StartChatd) -> None:
    """18.4 in text mode: nc logs in to the account beside a JSON device; each sees the
    other's lines (nc plainly, JSON marked own), and nc sees its private lines sent
    elsewhere as "-> *bob*"."""
    server = await start_chatd(*FAST)
    await register(server.port, "alice", PASSWORD)
    bob = await Client.joined(server.port, "bob")
    a1 = await _first(server.port)
    nc = await Nc.open(server.port)
    await nc.send("alice")
    await nc.until(lambda line: line.startswith("* alice is a registered name"))
    await nc.send(PASSWORD)
    await nc.until(lambda line: line.startswith("* welcome, alice:"))
    await a1.nothing_more()
    await a1.say("from json", ref="j")
    await nc.until("<alice> from json")
    await nc.send("from nc")
    line = await _message(a1)
    assert (line["message"], line["own"]) == ("from nc", True)
    await a1.say("just us", to="bob", ref="b")
    await nc.until("-> *bob* just us")
    got = await bob.recv_until(lambda m: m["type"] == "message" and "to" in m)
    assert got[-1]["message"] == "just us"
    await nc.send("/quit")
    await nc.eof()


async def test_devices_of_one_user_on_two_nodes_of_a_cluster(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """18.4 in a cluster: a device on each node is one user to the others; a line from
    one reaches the other marked own; the leave comes when the last goes."""
    one = await start_chatd(*FAST, "--redis", redis_server.url)
    two = await start_chatd(*FAST, "--redis", redis_server.url)
    await register(one.port, "alice", PASSWORD)
    carol = await Client.joined(one.port, "carol")
    a1 = await _first(one.port)
    await carol.recv_until(lambda m: m["type"] == "connect" and m["name"] == "alice")
    a2, welcome = await _device(two.port)
    assert welcome["users"] == ["carol", "alice"]
    await a2.say("from node two", ref="t")
    ack = await a2.recv("ack")
    mine = await _message(a1)
    assert (mine["message"], mine["own"], mine["id"]) == ("from node two", True, ack["id"])
    seen = await _message(carol)
    assert "own" not in seen
    await carol.say("psst", to="alice")
    assert (await _message(a2))["message"] == "psst"
    assert (await _message(a1))["message"] == "psst"
    await a1.send({"type": "disconnect"})
    await a1.closed()
    await a2.say("still here", ref="s")
    assert (await _message(carol))["message"] == "still here"  # no leave before it
    await a2.send({"type": "disconnect"})
    assert (await carol.recv("disconnect"))["name"] == "alice"


async def test_a_read_marker_moved_on_one_device_reaches_every_device(
    start_chatd: StartChatd,
) -> None:
    """18.5 with 18.4: a read line from one device is answered on every device, with the
    room's unread count after the marker."""
    server = await start_chatd(*FAST)
    await register(server.port, "alice", PASSWORD)
    bob = await Client.joined(server.port, "bob")
    a1 = await _first(server.port)
    a2, _ = await _device(server.port)
    ids = []
    for text in ("one", "two"):
        await bob.say(text, ref=text)
        ids.append((await bob.recv_until(lambda m: m["type"] == "ack"))[-1]["id"])
    await a2.recv_until(lambda m: m.get("message") == "two")
    await a2.send({"type": "read", "room": "lobby", "id": ids[0]})
    for device in (a2, a1):
        read = (await device.recv_until(lambda m: m["type"] == "read"))[-1]
        assert (read["room"], read["id"], read["unread"]) == ("lobby", ids[0], 1), read


async def test_each_device_has_its_own_flood_control(start_chatd: StartChatd) -> None:
    """18.4, 8.3: one device that floods is refused (rate_limited); the user's other
    device still talks."""
    server = await start_chatd("--rate", "0.01", "--burst", "3", "--max-per-ip", "0")
    await register(server.port, "alice", PASSWORD)
    bob = await Client.joined(server.port, "bob")
    a1 = await _first(server.port)
    a2, _ = await _device(server.port)
    refused = []
    for n in range(5):
        await a1.say(f"flood {n}", ref=f"f{n}")
        answer = (await a1.recv_until(lambda m: m["type"] in ("ack", "error")))[-1]
        if answer["type"] == "error":
            refused.append(answer["code"])
    assert refused and set(refused) == {"rate_limited"}, refused
    await a2.say("from the other device", ref="o")
    assert (await a2.recv_until(lambda m: m["type"] in ("ack", "error")))[-1]["type"] == "ack"
    await bob.recv_until(lambda m: m.get("message") == "from the other device")
