"""chatd's own cost per chat line, without sockets (`python -m bench.hotpath`).

Runs a chatd Server in this process (uvloop) whose connections write to outlets that
only count bytes: 100 members of one room, 10 of them sending, each read holding 16
lines, a loop turn between rounds of reads (about what the fanout scenario's server
sees; --members, --senders and --lines-per-read change that: `--members 2 --senders 1
--lines-per-read 1` is a line a loop turn to one reader, bench.linefloor's shape). It
times the Python path a line takes (link, hub, effects, writer, log) with
`time.process_time`, best of --runs, and prints microseconds per line and per delivery.
The kernel's share (writes) is what `python -m bench` adds to this; the figure moves
with the code, not with the machine's load, far less than the full benchmark does,
which makes it the tool for comparing two versions of the path.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

from chatd.hub import HubConfig
from chatd.server import Server
from chatd.serverlog import ServerLog
from chatd.settings import ServerConfig

MEMBERS = 100
SENDERS = 10
LINES_PER_READ = 16
LINES_A_RUN = 20_000  # e.g. 125 rounds x 10 senders x 16 lines


# Built-in functions: a real transport's methods are C too (the writer calls them once
# a delivery, chatd.channels.Direct), and a Python method would add a call to the path.
_TAKE: Callable[[bytes], object] = len  # takes the bytes, keeps nothing
_NONE_UNSENT: Callable[[], int] = int  # 0
_OPEN: Callable[[], bool] = bool  # False


class NullTransport:
    """A transport that takes every byte at once."""

    write = staticmethod(_TAKE)
    get_write_buffer_size = staticmethod(_NONE_UNSENT)
    is_closing = staticmethod(_OPEN)


class CountingOutlet:
    """chatd.channels.Outlet that takes every byte at once. With `direct`, the writer's
    loops write to it as to a TCP connection (chatd.outbox), and only what goes through
    `send` is counted."""

    def __init__(self, direct: NullTransport | None = None) -> None:
        self.bytes = 0
        self.direct = direct

    def send(self, data: bytes) -> int:
        self.bytes += len(data)
        return 0

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


async def measure(runs: int, log_level: str, mentions: bool = True, *,
                  members: int = MEMBERS, senders: int = SENDERS,
                  per_read: int = LINES_PER_READ) -> list[float]:
    config = ServerConfig(hosts=("127.0.0.1",), port=0, rate=0, max_clients=0,
                          max_per_ip=0, connect_throttle=0, greet_after=0, ping_interval=0,
                          hub=HubConfig(mentions=mentions))
    server = Server(config, ServerLog(log_level, io.StringIO()))
    await server.start()
    conns = []
    for i in range(members):
        conn = server.accept("127.0.0.1", f"127.0.0.1:{1000 + i}",
                             CountingOutlet(NullTransport()))
        assert conn is not None
        server.received(conn, b'{"type":"connect","name":"u%d"}\n' % i)
        conns.append(conn)
        await asyncio.sleep(0)  # the joins go out, as they would between reads
    seq = [0] * senders
    rounds = max(1, LINES_A_RUN // (senders * per_read))

    def read(k: int) -> bytes:
        lines = []
        for _ in range(per_read):
            lines.append(b'{"type":"message","message":"%d %d a line of chat of usual '
                         b'length"}\n' % (k, seq[k]))
            seq[k] += 1
        return b"".join(lines)

    per_line: list[float] = []
    for _ in range(runs):
        started = time.process_time()
        for _ in range(rounds):
            for k in range(senders):
                server.received(conns[k], read(k))
            await asyncio.sleep(0)  # the turn ends: the writer flushes, the log writes
        per_line.append((time.process_time() - started) * 1e6
                        / (rounds * senders * per_read))
    await server.shutdown()
    return per_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--log-level", default="info", help="chatd's default: every line logged")
    ap.add_argument("--mentions", choices=("on", "off"), default="on",
                    help="chatd's default: on (PROTOCOL.txt 18.6)")
    ap.add_argument("--members", type=int, default=MEMBERS, help="of the one room")
    ap.add_argument("--senders", type=int, default=SENDERS, help="members who send")
    ap.add_argument("--lines-per-read", type=int, default=LINES_PER_READ)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not 1 <= args.senders <= args.members or args.members < 2 or args.lines_per_read < 1:
        ap.error("need 1 <= --senders <= --members, --members >= 2, --lines-per-read >= 1")
    per_line = uvloop.run(measure(args.runs, args.log_level, args.mentions == "on",
                                  members=args.members, senders=args.senders,
                                  per_read=args.lines_per_read))
    best = min(per_line)
    print(f"{'runs':>5}  {'best us/line':>12}  {'median us/line':>14}  {'us/delivery':>11}")
    print(f"{len(per_line):>5}  {best:>12.2f}  {sorted(per_line)[len(per_line) // 2]:>14.2f}"
          f"  {best / (args.members - 1):>11.4f}")
    if args.json:
        args.json.write_text(json.dumps({"us_per_line": per_line, "best": best,
                                         "members": args.members, "senders": args.senders,
                                         "lines_per_read": args.lines_per_read}, indent=1))


if __name__ == "__main__":
    main()
