"""Accounts served end to end (PROTOCOL.txt 18.1-18.3, 18.7-18.9, 18.11): real chatd
processes, JSON clients, nc, an SQLite database across a restart, and two cluster nodes
over a real redis-server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.harness import Chatd, Client, RedisServer, StartChatd, register
from tests.support.nc import Nc

FAST = ("--rate", "0", "--max-per-ip", "0")
PASSWORD = "correct horse"


async def _login(port: int, name: str, password: str = PASSWORD) -> tuple[Client, dict[str, Any]]:
    client = await Client.open(port)
    welcome = await client.join(name, login=password)
    return client, welcome


async def test_a_registered_name_is_its_owners_on_login_and_look_alikes_get_a_variant(
    start_chatd: StartChatd,
) -> None:
    """18.1-18.3: register, then a connect with the password is the account (any
    look-alike of the name); without it, a variant and a notice; a wrong password or a
    login to a name that is no account: login_failed, and the connection may try again."""
    server = await start_chatd(*FAST)
    await register(server.port, "alice", PASSWORD)
    for spelling in ("Alice", "\u0430lice"):  # a capital; a Cyrillic а
        guest = await Client.open(server.port)
        welcome = await guest.join(spelling)
        assert welcome["name"] == spelling + "2" and "account" not in welcome, welcome
        assert welcome["notice"] == f"alice is a registered name, so you are {spelling}2"
        await guest.close()
    nick = await Client.joined(server.port, "carol")
    await nick.send({"type": "nick", "name": "Alice"})
    assert (await nick.recv("error"))["code"] == "name_registered"
    client = await Client.open(server.port)
    await client.send({"type": "connect", "name": "alice", "login": "wrong one"})
    error = await client.recv("error")
    assert (error["code"], error["message"]) == ("login_failed", "wrong password for alice")
    await client.send({"type": "connect", "name": "bob", "login": PASSWORD})
    error = await client.recv("error")
    assert (error["code"], error["message"]) == ("login_failed", "bob is not a registered name")
    welcome = await client.join("ALICE", login=PASSWORD)  # the same connection, again
    assert (welcome["name"], welcome["account"]) == ("alice", "alice"), welcome
    other = await Client.open(server.port)  # a second device of the user (18.4)
    await other.send({"type": "connect", "name": "alice", "login": PASSWORD})
    assert (await other.recv("welcome"))["account"] == "alice"
    await client.send({"type": "nick", "name": "alicia"})
    assert (await client.recv("error"))["code"] == "account_name"
    await server.wait_log(r"audit: wrong password for account alice from 127\.0\.0\.1")
    assert not any(PASSWORD in line or "wrong one" in line for line in server.log)


async def test_register_before_joining_and_the_refusals(start_chatd: StartChatd) -> None:
    """18.2: a name registered before joining; name_registered (a look-alike, 익명),
    name_taken (someone online), bad_field (a short password), already_registered."""
    server = await start_chatd(*FAST)
    online = await Client.joined(server.port, "bob")
    client = await Client.open(server.port)
    for name, password, code in (("bob", PASSWORD, "name_taken"),
                                 ("\uc775\uba85", PASSWORD, "name_registered"),
                                 ("dave", "short", "bad_field")):
        await client.send({"type": "register", "name": name, "password": password})
        assert (await client.recv("error"))["code"] == code, name
    await client.send({"type": "register", "name": "dave", "password": PASSWORD})
    note = await client.recv("account")
    assert (note["event"], note["account"]) == ("registered", "dave")
    await client.send({"type": "register", "name": "DAVE", "password": PASSWORD})
    assert (await client.recv("error"))["code"] == "name_registered"
    welcome = await client.join("dave", login=PASSWORD)
    assert welcome["account"] == "dave"
    await client.send({"type": "register", "password": PASSWORD})
    assert (await client.recv("error"))["code"] == "already_registered"
    await online.send({"type": "password", "password": PASSWORD, "new": "another one"})
    got = await online.recv_until(lambda m: m["type"] == "error")
    assert got[-1]["code"] == "not_logged_in"


async def test_password_change_and_unregister(start_chatd: StartChatd) -> None:
    """18.7: a change needs the current password; after it only the new one logs in;
    unregister leaves the user on as a guest and frees the name."""
    server = await start_chatd(*FAST)
    await register(server.port, "erin", PASSWORD)
    client, _ = await _login(server.port, "erin")
    await client.send({"type": "password", "password": "not it", "new": "brand new pw"})
    assert (await client.recv("error"))["code"] == "login_failed"
    await client.send({"type": "password", "password": PASSWORD, "new": "brand new pw"})
    note = await client.recv("account")
    assert (note["event"], note["account"]) == ("password", "erin")
    await client.send({"type": "disconnect"})
    await client.closed()
    old = await Client.open(server.port)
    await old.send({"type": "connect", "name": "erin", "login": PASSWORD})
    assert (await old.recv("error"))["code"] == "login_failed"
    client, welcome = await _login(server.port, "erin", "brand new pw")
    assert welcome["account"] == "erin"
    await client.send({"type": "unregister", "password": "brand new pw"})
    note = await client.recv("account")
    assert note["event"] == "unregistered"
    await client.send({"type": "nick", "name": "erin2"})  # a guest again: nick works
    await client.recv_until(lambda m: m["type"] == "nick" and m["name"] == "erin2")
    guest = await Client.joined(server.port, "erin")  # the name is free: no variant
    assert guest.name == "erin"


async def test_accounts_required_and_registration_closed(start_chatd: StartChatd) -> None:
    """18.9: --accounts required lets only logged-in accounts join; --registration
    closed refuses new accounts."""
    server = await start_chatd(*FAST, "--accounts", "required")
    client = await Client.open(server.port)
    await client.send({"type": "connect", "name": "frank"})
    assert (await client.recv("error"))["code"] == "account_required"
    await client.send({"type": "register", "name": "frank", "password": PASSWORD})
    assert (await client.recv("account"))["event"] == "registered"
    welcome = await client.join("frank", login=PASSWORD)
    assert welcome["account"] == "frank"
    closed = await start_chatd(*FAST, "--registration", "closed")
    user = await Client.joined(closed.port, "gina")
    await user.send({"type": "register", "password": PASSWORD})
    assert (await user.recv("error"))["code"] == "registration_closed"
    off = await start_chatd(*FAST, "--accounts", "off")
    user = await Client.joined(off.port, "hal")
    await user.send({"type": "register", "password": PASSWORD})
    assert (await user.recv("error"))["code"] == "accounts_off"


async def _nc_join(port: int, name: str) -> Nc:
    nc = await Nc.open(port)
    await nc.send(name)
    await nc.until(lambda line: line.startswith(f"* {name} joined"))
    return nc


async def test_nc_registers_and_is_asked_for_the_password(start_chatd: StartChatd) -> None:
    """18.2-18.3 in text mode: /register PASSWORD; a name line naming an account is
    answered with a prompt, the next line is the password; a blank line joins as the
    variant; a wrong password: login_failed, and the next line is a name again."""
    server = await start_chatd(*FAST)
    nc = await _nc_join(server.port, "ivy")
    await nc.send(f"/register {PASSWORD}")
    await nc.until("* ivy is registered: connect with its password to be ivy on any device")
    await nc.send("/quit")
    await nc.eof()
    nc = await Nc.open(server.port)
    await nc.send("ivy")
    await nc.until("* ivy is a registered name: type its password (a blank line: join as "
                   "ivy2)")
    await nc.send("wrong password")
    await nc.until("! login_failed: wrong password for ivy")
    await nc.send("Ivy")
    await nc.until(lambda line: line.startswith("* Ivy is a registered name")
                   or line.startswith("* ivy is a registered name"))
    await nc.send(PASSWORD)
    await nc.until(lambda line: line.startswith("* welcome, ivy:"))
    await nc.until("* logged in to your account ivy")
    other = await Nc.open(server.port)
    await other.send("ivy")
    await other.until(lambda line: line.startswith("* ivy is a registered name"))
    await other.send("")
    await other.until(lambda line: line.startswith("* welcome, ivy2:"))
    assert not any(PASSWORD in line for line in server.log)


async def test_accounts_survive_a_restart_in_the_database(start_chatd: StartChatd,
                                                          tmp_path: Path) -> None:
    """18.11: with --db the accounts are in the SQLite file, so a registration outlives
    a restart; without one the log says they will not."""
    db = str(tmp_path / "chat.db")
    server = await start_chatd(*FAST, "--db", db)
    await register(server.port, "jack", PASSWORD)
    await server.stop()
    again = await start_chatd(*FAST, "--db", db)
    guest = await Client.joined(again.port, "jack")
    assert guest.name == "jack2"
    _client, welcome = await _login(again.port, "jack")
    assert welcome["account"] == "jack"
    assert not any("will not survive a restart" in line for line in again.log)
    memory = await start_chatd(*FAST)
    await memory.wait_log("accounts: no --db, so accounts and read markers will not survive "
                          "a restart")


async def test_the_registering_device_gets_its_login_token(start_chatd: StartChatd,
                                                           tmp_path: Path) -> None:
    """18.2, 18.3: the register answer of a joined user carries its device's login
    token, which logs in as the account after a restart (no password kept); a name
    registered before joining gets none (the connect with "login" gives one)."""
    db = str(tmp_path / "chat.db")
    server = await start_chatd(*FAST, "--db", db)
    kim = await Client.joined(server.port, "kim")
    await kim.send({"type": "register", "password": PASSWORD})
    note = await kim.recv("account")
    assert note["event"] == "registered" and len(note["login_token"]) == 43, note
    early = await Client.open(server.port)
    await early.send({"type": "register", "name": "lee", "password": PASSWORD})
    assert "login_token" not in await early.recv("account")
    await server.stop()
    again = await start_chatd(*FAST, "--db", db)
    client = await Client.open(again.port)
    welcome = await client.join("kim", login_token=note["login_token"])
    assert (welcome["name"], welcome["account"]) == ("kim", "kim")
    assert not any(note["login_token"] in line for line in server.log + again.log)


async def test_a_registration_is_known_on_every_node_of_a_cluster(
    start_chatd: StartChatd, redis_server: RedisServer,
) -> None:
    """18.11: a registration is a command of the log, so the other node knows it at once,
    and a node started later too (from the snapshot and the log after it); so is a
    login token issued on another node."""
    one = await start_chatd(*FAST, "--redis", redis_server.url)
    two = await start_chatd(*FAST, "--redis", redis_server.url)
    await register(one.port, "kate", PASSWORD)
    client, welcome = await _login(two.port, "kate")
    assert welcome["account"] == "kate"
    guest = await Client.joined(one.port, "kate")
    assert guest.name == "kate2"
    late = await start_chatd(*FAST, "--redis", redis_server.url)
    await client.send({"type": "disconnect"})
    await client.closed()
    await _wait_gone(late, "kate")
    again = await Client.open(late.port)  # the token issued on two, known on late
    welcome = await again.join("kate", login_token=welcome["login_token"])
    assert welcome["account"] == "kate"


async def _wait_gone(server: Chatd, name: str) -> None:
    """Until `name` is free on `server` (its session's leave applied there)."""
    watcher = await Client.joined(server.port, "watcher")
    await watcher.send({"type": "who"})
    # The leave may come before the answer (it was on its way when the watcher joined).
    seen = await watcher.recv_until(lambda m: m["type"] == "who")
    left = any(m["type"] == "disconnect" and m["name"] == name for m in seen)
    if not left and name in seen[-1]["users"]:
        await watcher.recv_until(lambda m: m["type"] == "disconnect" and m["name"] == name)
    await watcher.close()


async def test_an_oper_account_is_an_operator_whenever_it_logs_in(
    start_chatd: StartChatd,
) -> None:
    """18.8: an account named by --oper is an operator on login, without /oper."""
    server = await start_chatd(*FAST, env={"CHATD_OPERS": "lee:oper secret"})
    await register(server.port, "lee", PASSWORD)
    client, welcome = await _login(server.port, "lee")
    assert welcome["opers"] == ["lee"], welcome
    await client.send({"type": "kick", "name": "nobody"})
    assert (await client.recv("error"))["code"] == "no_such_user"  # not not_operator


async def test_operators_look_at_flag_rename_and_drop_accounts(start_chatd: StartChatd,
                                                               tmp_path: Path) -> None:
    """18.8: an operator's account lines: info, operator (kept across a restart with
    --db), rename (the online user takes the name), drop (the user stays as a guest);
    not_operator for others, no_such_account for a name that is none."""
    db = str(tmp_path / "chat.db")
    opers = {"CHATD_OPERS": "lee:oper secret"}
    server = await start_chatd(*FAST, "--db", db, env=opers)
    await register(server.port, "lee", PASSWORD)
    await register(server.port, "mia", PASSWORD)
    mia, _ = await _login(server.port, "mia")
    await mia.send({"type": "account", "name": "lee"})
    assert (await mia.recv("error"))["code"] == "not_operator"
    lee, _ = await _login(server.port, "lee")
    await lee.send({"type": "account", "name": "nobody"})
    assert (await lee.recv_until(lambda m: m["type"] == "error"))[-1]["code"] == (
        "no_such_account")
    await lee.send({"type": "account", "name": "MIA"})
    info = (await lee.recv_until(lambda m: m["type"] == "account"))[-1]
    assert (info["event"], info["account"], info["devices"]) == ("info", "mia", 1), info
    assert "operator" not in info
    await lee.send({"type": "account", "name": "mia", "operator": True})
    note = (await lee.recv_until(lambda m: m["type"] == "account"))[-1]
    assert (note["event"], note["operator"]) == ("operator", True), note
    await server.wait_log(r"audit: lee made the account mia an operator")
    await mia.send({"type": "kick", "name": "nobody"})
    assert (await mia.recv_until(lambda m: m["type"] == "error"))[-1]["code"] == (
        "no_such_user")  # an operator now: not not_operator
    await lee.send({"type": "account", "name": "mia", "rename": "mira"})
    note = (await lee.recv_until(lambda m: m["type"] == "account"))[-1]
    assert (note["event"], note["account"]) == ("renamed", "mira")
    renamed = (await mia.recv_until(lambda m: m["type"] == "nick"))[-1]
    assert (renamed["old"], renamed["name"]) == ("mia", "mira")
    await mia.send({"type": "disconnect"})
    await mia.closed()
    await server.stop()
    again = await start_chatd(*FAST, "--db", db, env=opers)
    mira, welcome = await _login(again.port, "mira")
    assert welcome["account"] == "mira" and welcome["opers"] == ["mira"], welcome
    lee, _ = await _login(again.port, "lee")
    await lee.send({"type": "account", "name": "mira", "drop": True})
    note = (await lee.recv_until(lambda m: m["type"] == "account"))[-1]
    assert (note["event"], note["account"]) == ("dropped", "mira")
    note = (await mira.recv_until(lambda m: m["type"] == "account"))[-1]
    assert note["event"] == "dropped"
    await mira.send({"type": "nick", "name": "mira_"})  # a guest now: nick works
    await mira.recv_until(lambda m: m["type"] == "nick" and m["name"] == "mira_")


async def _said(client: Client, text: str) -> str:
    """Say a line; its id, from the ack."""
    await client.say(text, ref=text[:60])
    ack = (await client.recv_until(lambda m: m["type"] == "ack"))[-1]
    return str(ack["id"])


async def test_read_markers_move_forward_and_count_what_is_unread(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """18.5: read moves the marker forward only and answers with what is unread (lines
    of others, those naming the reader counted apart, 18.6); one's own line moves it
    too; the welcome of a login gives each room's marker, also after a restart."""
    db = str(tmp_path / "chat.db")
    server = await start_chatd(*FAST, "--db", db)
    await register(server.port, "nora", PASSWORD)
    nora, welcome = await _login(server.port, "nora")
    assert "read" not in welcome  # no line in lobby yet: no marker
    bob = await Client.joined(server.port, "bob")
    first = await _said(bob, "one")
    await _said(bob, "hello @Nora!")
    third = await _said(bob, "three")
    await nora.send({"type": "read", "id": first})
    mark = (await nora.recv_until(lambda m: m["type"] == "read"))[-1]
    assert (mark["room"], mark["id"], mark["unread"], mark["mentions"]) == (
        "lobby", first, 2, 1), mark
    await nora.send({"type": "read", "id": first})  # not forward: no answer
    await nora.send({"type": "read", "room": "dev", "id": first})
    assert (await nora.recv_until(lambda m: m["type"] == "error"))[-1]["code"] == (
        "not_in_room")
    await nora.send({"type": "read", "id": "x1"})
    assert (await nora.recv("error"))["code"] == "bad_id"
    await bob.send({"type": "read", "id": first})
    assert (await bob.recv_until(lambda m: m["type"] == "error"))[-1]["code"] == (
        "not_logged_in")
    await nora.send({"type": "disconnect"})
    await nora.closed()
    await _said(bob, "four, while she is away")
    nora, welcome = await _login(server.port, "nora")
    assert welcome["read"] == [{"room": "lobby", "id": first, "unread": 3, "mentions": 1}]
    await nora.send({"type": "read", "id": third})
    mark = (await nora.recv_until(lambda m: m["type"] == "read"))[-1]
    assert (mark["id"], mark["unread"], mark["mentions"]) == (third, 1, 0)
    own = await _said(nora, "my own line")
    await nora.send({"type": "disconnect"})
    await nora.closed()
    await server.stop()
    again = await start_chatd(*FAST, "--db", db)
    _nora, welcome = await _login(again.port, "nora")
    assert welcome["read"] == [{"room": "lobby", "id": own, "unread": 0, "mentions": 0}]


async def test_a_line_naming_its_reader_is_marked_for_that_reader_only(
    start_chatd: StartChatd,
) -> None:
    """18.6 (on by default): the copy of a room line that names its JSON reader, by
    any look-alike, carries "mention": true, in its place among the others; other
    readers' copies, the sender's and text mode's do not change."""
    server = await start_chatd(*FAST)
    alice = await Client.joined(server.port, "alice")
    bob = await Client.joined(server.port, "bob")
    carol = await _nc_join(server.port, "carol")
    dave = await Client.joined(server.port, "dave")
    lines = ("one", "hi @Alice:", "malice is no mention", "\u0430lice's turn", "ALICE2 no")
    for line in lines:
        await dave.say(line)
    got = [m for m in await alice.recv_until(
        lambda m: m["type"] == "message" and m["message"] == lines[-1])
        if m["type"] == "message"]
    assert [(m["message"], m.get("mention", False)) for m in got] == [
        ("one", False), ("hi @Alice:", True), ("malice is no mention", False),
        ("\u0430lice's turn", True), ("ALICE2 no", False)]
    got = [m for m in await bob.recv_until(
        lambda m: m["type"] == "message" and m["message"] == lines[-1])
        if m["type"] == "message"]
    assert [m["message"] for m in got] == list(lines)
    assert not any("mention" in m for m in got)
    await carol.until("<dave> ALICE2 no")
    await dave.say("carol, and alice too", ref="r")
    await dave.recv("ack")
    mark = await alice.recv("message")
    assert mark["mention"] is True
    await alice.send({"type": "history", "limit": 3})  # history lines are marked too
    page = [m for m in await alice.recv_until(lambda m: m["type"] == "history_end")
            if m["type"] == "message"]
    assert [(m["message"], m.get("mention", False)) for m in page] == [
        ("\u0430lice's turn", True), ("ALICE2 no", False), ("carol, and alice too", True)]
    await bob.send({"type": "history", "limit": 3})
    page = [m for m in await bob.recv_until(lambda m: m["type"] == "history_end")
            if m["type"] == "message" and m.get("history")]
    assert len(page) == 3 and not any("mention" in m for m in page)


async def test_mentions_off_marks_nothing(start_chatd: StartChatd) -> None:
    """18.6, 18.9: with --mentions off a line naming its reader comes unmarked."""
    server = await start_chatd(*FAST, "--mentions", "off")
    alice = await Client.joined(server.port, "alice")
    dave = await Client.joined(server.port, "dave")
    await dave.say("hi @Alice:")
    got = [m for m in await alice.recv_until(
        lambda m: m["type"] == "message" and m["message"] == "hi @Alice:")
        if m["type"] == "message"]
    assert len(got) == 1 and "mention" not in got[0]


async def test_login_tokens_log_in_without_the_password_until_revoked(
    start_chatd: StartChatd, tmp_path: Path,
) -> None:
    """18.3: a password login's welcome carries this device's login token; a connect
    with it is the account (also after a restart, from the database); a password
    change revokes the other devices' tokens but the asking device's; logout revokes
    its own; a token that is none: login_failed."""
    db = str(tmp_path / "chat.db")
    server = await start_chatd(*FAST, "--db", db)
    await register(server.port, "olga", PASSWORD)
    phone, welcome = await _login(server.port, "olga")
    phone_token = welcome["login_token"]
    assert len(phone_token) == 43, welcome
    await phone.send({"type": "disconnect"})
    await phone.closed()
    laptop, welcome = await _login(server.port, "olga")
    laptop_token = welcome["login_token"]
    assert laptop_token != phone_token
    await laptop.send({"type": "password", "password": PASSWORD, "new": "new secret"})
    assert (await laptop.recv_until(lambda m: m["type"] == "account"))[-1]["event"] == (
        "password")
    await laptop.send({"type": "logout"})
    await laptop.closed()
    stale = await Client.open(server.port)
    await stale.send({"type": "connect", "name": "olga", "login_token": phone_token})
    assert (await stale.recv("error"))["code"] == "login_failed"  # revoked by the change
    await server.stop()
    again = await start_chatd(*FAST, "--db", db)
    client = await Client.open(again.port)
    await client.send({"type": "connect", "name": "olga", "login_token": laptop_token})
    assert (await client.recv("error"))["code"] == "login_failed"  # logged out
    _phone, welcome = await _login(again.port, "olga", "new secret")
    token = welcome["login_token"]
    await _phone.send({"type": "disconnect"})
    await _phone.closed()
    await again.stop()
    third = await start_chatd(*FAST, "--db", db)
    client = await Client.open(third.port)
    welcome = await client.join("OLGA", login_token=token)
    assert (welcome["name"], welcome["account"]) == ("olga", "olga")
    assert "login_token" not in welcome  # a token login keeps its token
    assert not any(token in line for line in third.log)
