from tests.harness import Chatd, Client


async def test_two_clients_chat(chatd: Chatd) -> None:
    a = await Client.joined(chatd.port, "alice")
    b = await Client.joined(chatd.port, "bob")
    await a.recv_until(lambda m: m["type"] == "connect" and m["name"] == "bob")
    await a.say("hi")
    msg = await b.recv("message")
    assert (msg["name"], msg["message"]) == ("alice", "hi")
    assert await a.silent()
