"""Hardening of the hub, round 2 (issue 22): bounds in bytes where a line can be 64 KiB,
text mode that does not blow a message up, moderation that follows the person.

Real chatd processes on loopback sockets; small options keep each test fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from typing import Any

from tests.conftest import StartChatd
from tests.harness import TIMEOUT, Client

BIG = 60_000  # characters of a big private line: about 120 KB as history counts it


async def _acked(client: Client, ref: str) -> None:
    await client.recv_until(lambda m: m.get("ref") == ref)


async def _resume(port: int, name: str, token: str) -> list[dict[str, Any]]:
    """Resume a held session; the private lines it was replayed (the replay comes in one
    write right after the welcome, so a ping's pong marks its end)."""
    client = await Client.open(port)
    await client.send({"type": "connect", "name": name, "resume": token})
    welcome = await client.recv("welcome")
    assert welcome["resumed"] is True, welcome
    await client.send({"type": "ping"})
    got = await client.recv_until(lambda m: m["type"] == "pong")
    await client.close()
    return [m for m in got if m["type"] == "message" and m.get("private")]


async def test_private_lines_kept_for_resume_are_bounded_in_bytes(
        start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 8.6: a held session keeps at most 256 KiB of private lines (the
    newest), and all sessions together at most --private-memory: the oldest on the
    server go first. (It kept the last 100 whatever their size: 6.4 MB a session.)"""
    server = await start_chatd("--rate", "0", "--private-memory", "512K")
    sender = await Client.joined(server.port, "sender")
    held: dict[str, str] = {}
    for name in ("alice", "bob", "carol"):
        client = await Client.joined(server.port, name)
        held[name] = client.resume
        client.reset()
        await server.wait_log(f"{name} lost the connection")
    for name in ("alice", "bob", "carol"):  # five each: 600 KB a session, 1.8 MB in all
        for i in range(5):
            await sender.say(f"{name}{i} " + "x" * BIG, to=name, ref=f"{name}{i}")
        await _acked(sender, f"{name}4")

    replayed = {name: [m["message"].split()[0] for m in await _resume(server.port, name, token)]
                for name, token in held.items()}
    # Per session: two such lines fit 256 KiB. In all: 512 KiB holds four, and the
    # sender keeps its own two newest: carol's newest two are what is left.
    assert replayed == {"alice": [], "bob": [], "carol": ["carol3", "carol4"]}, replayed
    await sender.close()


async def _from(port: int, address: str, name: str, **fields: Any) -> Client:
    """A client joined from a loopback address of its own (127.0.0.0/8 is all ours)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, local_addr=(address, 0), limit=16 * 1024 * 1024), TIMEOUT)
    client = Client(reader, writer)
    await client.join(name, **fields)
    return client


async def _heard(speaker: Client, listener: Client, text: str) -> bool:
    """Whether `speaker`'s room line reaches `listener`: either it is refused as muted
    (to the speaker, with its ref) or the listener gets it; nothing else is waited for."""
    await speaker.say(text, ref=text)
    answer = (await speaker.recv_until(lambda m: m.get("ref") == text))[-1]
    if answer["type"] == "error":
        assert answer["code"] == "muted", answer
        return False
    assert answer["type"] == "ack", answer
    await listener.recv_until(lambda m: m.get("message") == text)
    return True


async def test_a_mute_follows_the_person_not_the_name(start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 15.4: muted bob types /nick bob_ and is still muted; the next user to
    take the free name "bob" (another address) talks; bob's resume keeps the mute, and
    so does his coming back under his name from his address after quitting; a stranger
    who takes that name after him does not get it."""
    server = await start_chatd("--rate", "0", "--oper", "alice:pw")
    alice = await Client.joined(server.port, "alice")
    await alice.send({"type": "oper", "name": "alice", "password": "pw"})
    await alice.recv_until(lambda m: m["type"] == "oper")
    bob = await _from(server.port, "127.0.0.2", "bob")
    await alice.send({"type": "mute", "name": "bob", "reason": "shh"})
    await alice.recv_until(lambda m: m["type"] == "notice")
    await bob.send({"type": "nick", "name": "bob_"})
    await bob.recv_until(lambda m: m["type"] == "nick")
    assert not await _heard(bob, alice, "renamed and talking")

    newcomer = await _from(server.port, "127.0.0.3", "bob")
    assert newcomer.name == "bob"
    assert await _heard(newcomer, alice, "I am another bob")

    token = bob.resume
    bob.reset()
    await server.wait_log("bob_ lost the connection")
    bob = Client(*await asyncio.open_connection("127.0.0.1", server.port,
                                                local_addr=("127.0.0.2", 0)))
    assert (await bob.join("bob_", resume=token))["resumed"] is True
    assert not await _heard(bob, alice, "resumed and talking")

    await bob.send({"type": "disconnect"})
    await bob.closed()
    await alice.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "bob_")
    stranger = await _from(server.port, "127.0.0.4", "bob_")
    assert await _heard(stranger, alice, "a stranger under a free name")
    await stranger.send({"type": "disconnect"})
    await stranger.closed()
    await alice.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "bob_")
    bob = await _from(server.port, "127.0.0.2", "bob_")
    assert not await _heard(bob, alice, "back from my own address")
    for client in (alice, bob, newcomer):
        await client.close()


class _Nc:
    """A real `nc` (netcat-openbsd) reading a text-mode connection, line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def joined(cls, port: int, name: str) -> _Nc:
        proc = await asyncio.create_subprocess_exec(
            shutil.which("nc") or "/usr/bin/nc", "-N", "127.0.0.1", str(port),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=1024 * 1024)
        nc = cls(proc)
        await nc.send(name)
        return nc

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await asyncio.wait_for(self.proc.stdin.drain(), TIMEOUT)

    async def until(self, wanted: str, end: bool = False) -> int:
        """Read up to a line equal to `wanted` (with `end`: ending with it); how many
        bytes came before it. A reader cut off (its output ended first) fails here."""
        assert self.proc.stdout is not None
        seen = 0

        async def scan() -> int:
            nonlocal seen
            while True:
                line = await self.proc.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    raise AssertionError(f"nc was cut off after {seen} bytes")
                text = line.decode().rstrip("\n")
                if text == wanted or (end and text.endswith(wanted)):
                    return seen
                seen += len(line)

        return await asyncio.wait_for(scan(), 30)

    async def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await asyncio.wait_for(self.proc.communicate(), TIMEOUT)  # its output to the end


async def test_a_message_of_blank_lines_cuts_no_text_reader_off(
        start_chatd: StartChatd) -> None:
    """PROTOCOL.txt 6.1, 3.8, 8.2: with the default limits, 4 messages of 32,700 "\\n"
    (65 KB of JSON each) from a 32-character Hangul name reach 10 nc readers and 2 JSON
    readers whole, and a reader who joins later gets them in its join replay: nobody is
    cut off. (Each was 3.3 MB of "<name> " lines in text mode: 8 of 10 nc readers, and
    the late joiner, were cut off.)"""
    # A public server's limits, but for the byte budget of flood control (8.3), which
    # would refuse the sender's second 65 KB line: this is about what readers get.
    server = await start_chatd("--max-per-ip", "20", "--byte-rate", "0")
    name = "가나다라마바사아자차카타파하" * 2 + "가나다라"
    assert len(name) == 32
    ncs: list[_Nc] = []
    try:
        for i in range(10):
            ncs.append(await _Nc.joined(server.port, f"nc{i}"))
            await ncs[-1].until(f"* nc{i} joined")
        readers = [await Client.joined(server.port, f"json{i}") for i in range(2)]
        sender = await Client.joined(server.port, name)
        for i in range(4):
            await sender.say("x" + "\n" * 32_700 + f"end{i}", ref=f"m{i}")
        await _acked(sender, "m3")
        for nc in ncs:
            assert await nc.until("end3", end=True) < 1000  # four messages, a few lines each
        for reader in readers:
            await reader.recv_until(lambda m: m.get("message", "").endswith("end3"))
        ncs.append(await _Nc.joined(server.port, "late"))
        assert await ncs[-1].until("end3", end=True) < 2000
        await ncs[-1].until("* late joined")
        everyone = [*(f"nc{i}" for i in range(10)), "json0", "json1", name, "late"]
        for nc in ncs:  # all still connected: each answers /who
            await nc.send("/who")
            await nc.until(f"* lobby: {', '.join(everyone)}")
        for client in (*readers, sender):
            await client.close()
    finally:
        for nc in ncs:
            await nc.close()
