"""Bounds that count bytes, not lines (issue 22, items 7 and 8; PROTOCOL.txt 8.3, 8.8),
against a real chatd on loopback."""

from __future__ import annotations

import json

from tests.conftest import StartChatd
from tests.harness import Client


async def test_the_log_grows_at_most_half_again_what_clients_send(
    start_chatd: StartChatd,
) -> None:
    """Issue 22.8: lines of U+061C (two bytes, once logged as the eight "<U+061C>") from a
    JSON and a text-mode client grow chatd's stderr by at most 1.5 bytes per byte sent,
    and every line still has its log line, saying its size. (14 KB lines: the old log
    line of one, 56 KB, still fits the harness's line reader.)"""
    server = await start_chatd("--rate", "0")
    json_sender = await Client.joined(server.port, "j")
    text_sender = await Client.open(server.port)
    await text_sender.send(b"t\n")
    await server.wait_log(r"t joined lobby")
    start = len(server.log)
    filler = "\u061c" * 7_000
    sent = 0
    for i in range(4):
        line = (json.dumps({"type": "message", "message": f"j{i} {filler}"},
                           ensure_ascii=False) + "\n").encode()
        await json_sender.send(line)
        sent += len(line)
        raw = f"t{i} {filler}\n".encode()
        await text_sender.send(raw)
        sent += len(raw)
    await server.wait_log(r"<t@lobby> t3 ", start=start)
    await server.wait_log(r"<j@lobby> j3 ", start=start)
    logged = server.log[start:]
    growth = sum(len(line.encode()) + 1 for line in logged)
    assert growth <= 1.5 * sent, (growth, sent)
    for who in ("j", "t"):
        for i in range(4):
            [entry] = [x for x in logged if f"<{who}@lobby> {who}{i} " in x]
            assert entry.endswith(f"({len(f'<{who}@lobby> {who}{i} {filler}'.encode()):,} bytes)")
