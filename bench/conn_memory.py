"""What one joined idle connection costs chatd, part by part (`python -m bench.conn_memory`).

Runs a chatd Server in this process (uvloop) with tracemalloc on, connects N clients
from a child process (so their memory is not counted), joins them, and prints the
Python allocations per connection grouped by the module that made them, plus the RSS
growth per connection. Allocations outside Python's allocator (libuv's handles, kernel
socket buffers) show only in the RSS line. With `--rooms 3` each client is in 3 rooms
(connects to one, joins two more, spread over 200 rooms): what a membership costs, for
the idle-multi target. `--lines N` lists the N source lines that allocate the most: where
to look for the next cut. `--rss-only`: the RSS growth per connection alone, without
tracemalloc's overhead. The heap is trimmed first (as chatd trims it after a burst of
output), so that memory freed while starting does not hide the connections' own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import sys
import textwrap
import tracemalloc
from collections import Counter

import uvloop

from chatd.heap import trim_heap
from chatd.server import Server
from chatd.serverlog import ServerLog
from chatd.settings import ServerConfig


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


CLIENTS = textwrap.dedent("""
    import socket, sys, time
    port, n, rooms = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        if rooms > 1:
            s.sendall(b'{"type":"connect","name":"u%d","room":"r%d"}\\n' % (i, i % 200)
                      + b"".join(b'{"type":"join","room":"r%d"}\\n' % ((i + k) % 200)
                                 for k in range(1, rooms)))
        else:
            s.sendall(b'{"type":"connect","name":"u%d"}\\n' % i)
        socks.append(s)
    print("ready", flush=True)
    sys.stdin.readline()
""")


def _part(filename: str) -> str:
    for marker, part in (("asyncio/streams", "asyncio streams (reader, writer, protocol)"),
                         ("asyncio/tasks", "task"), ("asyncio/", "asyncio, other"),
                         ("uvloop", "uvloop transport"), ("chatd/link", "chatd link"),
                         ("chatd/server", "chatd connection (server.py)"),
                         ("chatd/connection", "chatd connection (server.py)"),
                         ("chatd/tcp", "chatd connection (server.py)"),
                         ("chatd/hub", "chatd hub (session, room)"),
                         ("chatd/outbox", "chatd writer"), ("chatd/channels", "chatd writer"),
                         ("chatd/writer", "chatd writer"), ("chatd/pacing", "chatd writer"),
                         ("chatd/limits", "chatd limits"), ("chatd/admission", "chatd limits"),
                         ("chatd/protocol", "chatd protocol"), ("chatd/", "chatd, other")):
        if marker in filename:
            return part
    return "other"


async def measure(n: int, rooms: int, lines: int, rss_only: bool) -> None:
    config = ServerConfig(hosts=("127.0.0.1",), port=0, rate=0, max_clients=0, max_per_ip=0,
                          connect_throttle=0, greet_after=0, ping_interval=0)
    server = Server(config, ServerLog("warning", io.StringIO()))
    bound = await server.start()
    port = int(bound[0].rpartition(":")[2])
    await asyncio.sleep(0.2)
    trim_heap()  # what was freed while starting is handed back: not room for connections
    rss0 = _rss_kib()
    if not rss_only:
        tracemalloc.start(1)
    before = tracemalloc.take_snapshot() if not rss_only else None
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENTS, str(port), str(n), str(rooms), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    await proc.stdout.readline()
    while len(server.hub.sessions) < n:  # noqa: ASYNC110 - the server runs in this loop
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # every join notice written
    rss1 = _rss_kib()
    if before is None:
        print(f"{n} joined idle connections, each in {rooms} room{'s' * (rooms > 1)}: "
              f"RSS growth per connection {(rss1 - rss0) / n:.2f} KiB (no tracemalloc)")
    else:
        _report(n, before, tracemalloc.take_snapshot(), rooms=rooms, lines=lines,
                rss_kib=rss1 - rss0)
    proc.stdin.write(b"\n")
    await proc.wait()
    await server.shutdown()


def _report(n: int, before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, *,
            rooms: int, lines: int, rss_kib: int) -> None:
    parts: Counter[str] = Counter()
    for stat in after.compare_to(before, "filename"):
        parts[_part(stat.traceback[0].filename)] += stat.size_diff
    print(f"{n} joined idle connections, each in {rooms} room{'s' * (rooms > 1)}; "
          "Python allocations per connection by part:")
    for part, size in parts.most_common():
        print(f"  {part:<44} {size / n:8.0f} B")
    print(f"  {'all Python allocations':<44} {sum(parts.values()) / n:8.0f} B")
    if lines:
        print(f"the {lines} source lines that allocate the most per connection:")
        for stat in after.compare_to(before, "lineno")[:lines]:
            frame = stat.traceback[0]
            print(f"  {stat.size_diff / n:8.0f} B  {stat.count_diff / n:5.1f} blocks  "
                  f"{frame.filename}:{frame.lineno}")
    print(f"RSS growth per connection (with tracemalloc's own overhead): "
          f"{rss_kib / n:.2f} KiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--rooms", type=int, default=1, help="rooms each client is in")
    ap.add_argument("--lines", type=int, default=0, metavar="N",
                    help="also list the N source lines that allocate the most")
    ap.add_argument("--rss-only", action="store_true",
                    help="no tracemalloc: the RSS growth alone")
    args = ap.parse_args()
    uvloop.run(measure(args.clients, args.rooms, args.lines, args.rss_only))


if __name__ == "__main__":
    main()
