"""chatc's session (chatc.session under the chatc.connection shell) against a real
chatd: acks, order, resume.

PROTOCOL.txt 9.3 (acks), 10 (resume), 3.8 (history after an id).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chatc.connection import Client as ChatcClient
from chatc.connection import ConnectFailed, Refused, Target
from chatc.events import (
    CaughtUp,
    Confirmed,
    Failed,
    Gone,
    Lost,
    Reconnected,
    SessionEvent,
    Throttled,
)
from chatc.reconnect import Backoff
from chatd import protocol as p
from tests.support.chatc import Proxy, refused_port
from tests.support.harness import TIMEOUT, Chatd, Client, StartChatd

FAST = Backoff(first=0.05, factor=2.0, cap=0.2)


class Events:
    """A session's events, read with a deadline."""

    def __init__(self, session: ChatcClient) -> None:
        self.session = session
        self._iter: AsyncIterator[SessionEvent] = session.events()
        self.seen: list[SessionEvent] = []

    async def until(self, match: Callable[[SessionEvent], bool],
                    timeout: float = TIMEOUT) -> list[SessionEvent]:
        """Events up to and including the first that matches."""
        got: list[SessionEvent] = []

        async def scan() -> list[SessionEvent]:
            async for event in self._iter:
                got.append(event)
                self.seen.append(event)
                if match(event):
                    return got
            raise AssertionError(f"events ended without a match; got {got}")

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(f"no matching event within {timeout}s; got {got}") from None


def said(text: str) -> Callable[[SessionEvent], bool]:
    return lambda e: isinstance(e, p.Chat) and e.message == text


def texts(events: list[SessionEvent]) -> list[str]:
    return [e.message for e in events if isinstance(e, p.Chat)]


async def once_more(alice: ChatcClient, events: Events, bob: Client) -> None:
    """Alice's next line is the next thing bob gets, and then nothing: no copy of any
    earlier line of hers is still on its way (once "after" is acknowledged, the server
    has handled everything alice sent before it)."""
    alice.say("after")
    await events.until(lambda e: isinstance(e, Confirmed) and e.line.text == "after")
    assert (await bob.recv("message"))["message"] == "after"
    assert await bob.nothing_more()


async def joined(port: int, name: str, **kwargs: Any) -> tuple[ChatcClient, Events]:
    session = ChatcClient(Target("127.0.0.1", port), name, backoff=FAST, **kwargs)
    await session.open()
    events = Events(session)
    await events.until(lambda e: isinstance(e, p.Joined) and e.name == name)
    return session, events


async def test_own_line_is_confirmed_with_the_id_and_time_others_see(chatd: Chatd) -> None:
    bob = await Client.joined(chatd.port, "bob")
    alice, events = await joined(chatd.port, "alice")
    line = alice.say("hi bob")
    assert alice.pending == [line]
    confirmed = (await events.until(lambda e: isinstance(e, Confirmed)))[-1]
    msg = await bob.recv_until(lambda m: m["type"] == "message")
    assert isinstance(confirmed, Confirmed) and confirmed.line == line
    assert (msg[-1]["id"], msg[-1]["time"]) == (confirmed.id, confirmed.time)
    assert alice.pending == []
    await alice.drain()
    await alice.close()
    await events.until(lambda e: isinstance(e, Gone) and e.reason is None)
    await bob.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "alice")


async def test_commands_wait_in_line_behind_earlier_lines(chatd: Chatd) -> None:
    bob = await Client.joined(chatd.port, "bob")
    carol = await Client.joined(chatd.port, "carol", room="dev")
    alice, _ = await joined(chatd.port, "alice")
    alice.say("one")
    alice.say("two")
    alice.command(p.Join("dev"))  # a move: join, then part (PROTOCOL.txt 17.2, 17.3)
    alice.command(p.Part("lobby"))
    alice.say("three")
    await alice.drain()
    # A join makes the joined room current (PROTOCOL.txt 17): "three" is for dev.
    dev = await carol.recv_until(lambda m: m["type"] == "message")
    assert dev[-1]["message"] == "three" and dev[-1]["room"] == "dev"
    lobby = await bob.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == "alice")
    assert [m["message"] for m in lobby if m["type"] == "message"] == ["one", "two"]
    assert lobby[-1].get("part") is True
    assert await bob.nothing_more()
    await alice.close()


async def test_refused_private_line_fails_and_the_next_goes_on(chatd: Chatd) -> None:
    bob = await Client.joined(chatd.port, "bob")
    alice, events = await joined(chatd.port, "alice")
    alice.say("psst", to="nobody")
    alice.say("after")
    got = await events.until(lambda e: isinstance(e, Confirmed))
    failed = [e for e in got if isinstance(e, Failed)]
    assert len(failed) == 1 and failed[0].error.code == "no_such_user"
    assert isinstance(got[-1], Confirmed) and got[-1].line.text == "after"
    assert (await bob.recv_until(lambda m: m["type"] == "message"))[-1]["message"] == "after"
    await alice.close()


async def test_connect_failures_read_as_one_line(chatd: Chatd) -> None:
    sock, port = refused_port()
    with sock, pytest.raises(ConnectFailed) as refused:
        await ChatcClient(Target("127.0.0.1", port), "alice").open()
    assert str(refused.value) == (f"connection to 127.0.0.1:{port} refused "
                                  "(is chatd running there?)")
    with pytest.raises(Refused) as bad:
        await ChatcClient(Target("127.0.0.1", chatd.port), "two words").open()
    assert bad.value.error.code == "bad_name"


async def test_blank_name_is_sent_blank_and_the_server_names_the_user(chatd: Chatd) -> None:
    session = ChatcClient(Target("127.0.0.1", chatd.port), "")
    welcome = await session.open()
    assert welcome.name == p.DEFAULT_NAME == session.name
    await session.close()


async def test_resume_after_a_network_drop_shows_missed_lines_once(
        chatd: Chatd) -> None:
    proxy = await Proxy(chatd.port).start()
    bob = await Client.joined(chatd.port, "bob")
    alice, events = await joined(proxy.port, "alice", reconnect=True)
    await bob.say("before")
    await events.until(said("before"))
    proxy.cut()
    await events.until(lambda e: isinstance(e, Lost))
    for n in range(3):
        await bob.say(f"missed {n}")
    alice.say("typed while away")
    assert [line.text for line in alice.pending] == ["typed while away"]
    proxy.restore()
    got = await events.until(lambda e: isinstance(e, Confirmed))
    after = got[next(i for i, e in enumerate(got) if isinstance(e, Reconnected)):]
    assert isinstance(after[0], Reconnected) and after[0].welcome.resumed
    assert texts(after) == ["missed 0", "missed 1", "missed 2"]
    assert texts(events.seen).count("before") == 1
    mine = await bob.recv_until(lambda m: m.get("message") == "typed while away")
    assert not any(m["type"] == "disconnect" for m in mine)  # the room never saw alice go
    assert texts(events.seen).count("typed while away") == 0  # own lines are not echoed
    await once_more(alice, events, bob)  # and bob got alice's line exactly once
    await alice.close()
    await proxy.close()


async def test_line_whose_ack_was_lost_is_not_sent_twice(chatd: Chatd) -> None:
    proxy = await Proxy(chatd.port).start()
    bob = await Client.joined(chatd.port, "bob")
    alice, events = await joined(proxy.port, "alice", reconnect=True)
    proxy.to_client.clear()  # the server gets the line, alice never gets the ack
    alice.say("once")
    await bob.recv_until(lambda m: m.get("message") == "once")
    proxy.cut()
    proxy.restore()
    confirmed = (await events.until(lambda e: isinstance(e, Confirmed)))[-1]
    assert isinstance(confirmed, Confirmed) and confirmed.line.text == "once"
    await alice.drain()
    await once_more(alice, events, bob)
    await alice.close()
    await proxy.close()


async def test_line_lost_on_the_way_is_sent_again_after_resume(chatd: Chatd) -> None:
    proxy = await Proxy(chatd.port).start()
    bob = await Client.joined(chatd.port, "bob")
    alice, events = await joined(proxy.port, "alice", reconnect=True)
    proxy.to_server.clear()  # the line never reaches the server
    alice.say("again")
    proxy.cut()
    proxy.restore()
    await events.until(lambda e: isinstance(e, Confirmed))
    got = await bob.recv_until(lambda m: m.get("message") == "again")
    assert [m["message"] for m in got if m["type"] == "message"] == ["again"]
    await once_more(alice, events, bob)
    await alice.close()
    await proxy.close()


async def test_server_restart_reconnects_without_resume_and_keeps_chatting(
        start_chatd: StartChatd) -> None:
    first = await start_chatd()
    alice, events = await joined(first.port, "alice", reconnect=True)
    await first.stop()
    await events.until(lambda e: isinstance(e, p.Shutdown))
    await events.until(lambda e: isinstance(e, Lost))
    second = await start_chatd("--port", str(first.port))
    bob = await Client.joined(second.port, "bob")
    await bob.say("after restart")
    got = await events.until(lambda e: isinstance(e, Reconnected))
    welcome = got[-1]
    assert isinstance(welcome, Reconnected) and not welcome.welcome.resumed
    assert welcome.welcome.name == "alice" and welcome.welcome.notice
    await bob.say("marker")
    await events.until(said("marker"))
    if not any(isinstance(e, CaughtUp) for e in events.seen):
        await events.until(lambda e: isinstance(e, CaughtUp))
    # "after restart" came with the catch-up or live, depending on who was first.
    assert texts(events.seen).count("after restart") == 1
    assert texts(events.seen).count("marker") == 1
    alice.say("hello again")
    assert (await bob.recv_until(lambda m: m.get("message") == "hello again"))
    await alice.close()


async def test_without_reconnect_losing_the_server_ends_the_session(
        start_chatd: StartChatd) -> None:
    server = await start_chatd()
    _, events = await joined(server.port, "alice")
    await server.stop()
    gone = (await events.until(lambda e: isinstance(e, Gone)))[-1]
    assert isinstance(gone, Gone) and gone.reason == "the server shut down"


async def test_lines_held_by_flood_control_go_again_in_order(start_chatd: StartChatd) -> None:
    server = await start_chatd("--rate", "4", "--burst", "4")
    bob = await Client.joined(server.port, "bob")
    alice, events = await joined(server.port, "alice")
    for n in range(6):
        alice.say(f"line {n}")
    await events.until(lambda e: isinstance(e, Confirmed) and e.line.text == "line 5")
    assert any(isinstance(e, Throttled) for e in events.seen)
    assert [e.line.text for e in events.seen if isinstance(e, Confirmed)] == [
        f"line {n}" for n in range(6)]
    got = await bob.recv_until(lambda m: m.get("message") == "line 5")
    assert [m["message"] for m in got if m["type"] == "message"] == [
        f"line {n}" for n in range(6)]
    await alice.close()


async def test_server_pings_are_answered(start_chatd: StartChatd) -> None:
    # chatc has 5 s to answer each ping (a loaded machine is slow), mute is cut after that;
    # a ping a second: its pongs fit flood control's 2 lines a second with room to talk
    server = await start_chatd("--ping-interval", "1", "--ping-timeout", "5")
    alice, events = await joined(server.port, "alice")
    mute = await Client.joined(server.port, "mute")  # never answers a ping
    lines = await mute.closed()
    assert b'"code":"ping_timeout"' in lines[-1]
    # alice has been pinged at least as long as mute, answered, and is still there:
    alice.say("still here")
    await events.until(lambda e: isinstance(e, Confirmed))
    assert not any(isinstance(e, (Lost, Gone)) for e in events.seen)
    await alice.close()


async def test_restart_with_history_db_fetches_every_missed_line_in_pages(
        start_chatd: StartChatd, tmp_path: Path) -> None:
    db = str(tmp_path / "history.db")
    opts = ("--history-db", db, "--history-on-join", "3", "--rate", "0")
    first = await start_chatd(*opts)
    proxy = await Proxy(first.port).start()
    alice, events = await joined(proxy.port, "alice", reconnect=True)
    bob = await Client.joined(first.port, "bob")
    await bob.say("seen before")
    await events.until(said("seen before"))
    proxy.cut()  # alice is away before, during and after the restart
    await bob.say("missed before the restart")
    await bob.send({"type": "ping"})  # its pong means the line before it was taken
    await bob.recv_until(lambda m: m["type"] == "pong")
    await first.stop()  # a clean shutdown keeps every line in the database
    second = await start_chatd("--port", str(first.port), *opts)
    carol = await Client.joined(second.port, "carol")
    for n in range(120):  # more than one history page (100)
        await carol.say(f"missed {n}")
    await carol.send({"type": "ping"})  # answered after all 120 lines were taken
    await carol.recv_until(lambda m: m["type"] == "pong")
    proxy.restore()
    got = await events.until(lambda e: isinstance(e, CaughtUp))
    assert isinstance(got[-1], CaughtUp) and got[-1].count == 121
    assert texts(got) == ["missed before the restart", *(f"missed {n}" for n in range(120))]
    await carol.say("live again")
    await events.until(said("live again"))
    assert texts(events.seen).count("seen before") == 1
    await alice.close()
    await proxy.close()


async def test_line_whose_ack_was_lost_in_a_restart_is_not_sent_twice(
        start_chatd: StartChatd, tmp_path: Path) -> None:
    opts = ("--history-db", str(tmp_path / "history.db"))
    first = await start_chatd(*opts)
    proxy = await Proxy(first.port).start()
    alice, events = await joined(proxy.port, "alice", reconnect=True)
    bob = await Client.joined(first.port, "bob")
    proxy.to_client.clear()  # the line gets in, its ack never comes back
    alice.say("maybe")
    await bob.recv_until(lambda m: m.get("message") == "maybe")
    proxy.cut()
    await first.stop()
    second = await start_chatd("--port", str(first.port), *opts)
    proxy.restore()
    confirmed = (await events.until(lambda e: isinstance(e, Confirmed)))[-1]
    assert isinstance(confirmed, Confirmed) and confirmed.line.text == "maybe"
    await alice.drain()
    late = await Client.open(second.port)
    await late.send({"type": "connect", "name": "late"})
    history = await late.recv_until(lambda m: m["type"] == "history_end")
    assert [m["message"] for m in history if m["type"] == "message"] == ["maybe"]
    await alice.close()
    await proxy.close()


async def test_a_server_that_stops_answering_is_left_after_a_ping(chatd: Chatd) -> None:
    """The session's keepalive (chatc.session's clock) through the shell: a silent
    connection is pinged, then dropped, and the session says why."""
    proxy = await Proxy(chatd.port).start()
    alice, events = await joined(proxy.port, "alice", keepalive=0.2, keepalive_timeout=0.2)
    proxy.to_client.clear()  # the server's lines, its pong included, never arrive
    gone = (await events.until(lambda e: isinstance(e, Gone)))[-1]
    assert gone == Gone("the server stopped answering") and gone.status == 1
    await alice.close()
    await proxy.close()
