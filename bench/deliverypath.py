"""chatd's own cost per delivery in a city, without sockets (`python -m bench.deliverypath`).

Runs a chatd Server in this process (uvloop) whose connections are real
`chatd.tcp.StreamOutlet`s over a transport of C functions that takes every byte
(`bench.hotpath.NullTransport`), so the writer's path is the one a TCP connection takes:
`--clients` connections in `--rooms` rooms, each in `--rooms-each` of them (1: the city,
3: city-multi), one talker a room, a line to each room a loop turn, `--turns` times.
It prints the deliveries and the CPU (`time.process_time`) per delivery. The figure that
does not move with the machine is instructions: run it under callgrind at two turn
counts and divide the difference by the difference in deliveries, e.g.

    valgrind --tool=callgrind python -m bench.deliverypath --turns 10
    valgrind --tool=callgrind python -m bench.deliverypath --turns 30

(docs/performance.md: 5,108 instructions a delivery in the city at 7e9edbe).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import time

import uvloop

from bench.hotpath import NullTransport
from chatd.connection import Connection
from chatd.hub import HubConfig
from chatd.server import Server
from chatd.serverlog import ServerLog
from chatd.settings import ServerConfig
from chatd.tcp import StreamOutlet


class _Stream:
    """What StreamOutlet reads of a StreamWriter when it is made."""

    def __init__(self) -> None:
        self.transport = NullTransport()


async def measure(clients: int, rooms: int, each: int, turns: int) -> tuple[int, float]:
    """(deliveries, CPU seconds) of `turns` turns, after three to warm up."""
    config = ServerConfig(hosts=("127.0.0.1",), port=0, rate=0, max_clients=0,
                          max_per_ip=0, connect_throttle=0, greet_after=0, ping_interval=0,
                          hub=HubConfig())
    server = Server(config, ServerLog("info", io.StringIO()))
    await server.start()
    members: collections.Counter[int] = collections.Counter()
    talkers: dict[int, Connection] = {}
    for i in range(clients):
        mine = [(i + k * 7) % rooms for k in range(each)]
        conn = server.accept("127.0.0.1", f"127.0.0.1:{1000 + i}",
                             StreamOutlet(_Stream()))  # type: ignore[arg-type]
        assert conn is not None
        server.received(conn, b'{"type":"connect","name":"u%d","room":"c%d"}\n' % (i, mine[0]))
        for room in mine[1:]:
            server.received(conn, b'{"type":"join","room":"c%d"}\n' % room)
        members.update(mine)
        talkers.setdefault(mine[0], conn)
        await asyncio.sleep(0)
    sent = 0

    async def turn() -> None:
        nonlocal sent
        for room, talker in talkers.items():
            sent += 1
            server.received(talker, b'{"type":"message","room":"c%d","message":"s1:%d:'
                            b'1765000000000000000"}\n' % (room, sent))
            await asyncio.sleep(0)

    for _ in range(3):
        await turn()
    started = time.process_time()
    for _ in range(turns):
        await turn()
    cpu = time.process_time() - started
    per_turn = 0
    for room in talkers:
        per_turn += members[room] - 1
    return turns * per_turn, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--rooms", type=int, default=40)
    ap.add_argument("--rooms-each", type=int, default=1, help="rooms a connection is in")
    ap.add_argument("--turns", type=int, default=50)
    args = ap.parse_args()
    deliveries, cpu = uvloop.run(measure(args.clients, args.rooms, args.rooms_each,
                                         args.turns))
    print(f"deliveries {deliveries}  cpu {cpu:.3f} s  us/delivery "
          f"{cpu / max(deliveries, 1) * 1e6:.3f}")


if __name__ == "__main__":
    main()
