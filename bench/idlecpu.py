"""What an idle crowd costs chatd's CPU (`python -m bench.idlecpu`).

Starts chatd (this tree, its defaults but for the limits on connections), joins
--clients JSON clients spread over --rooms rooms, waits --settle seconds after the last
welcome, then reads chatd's user and system time over --seconds seconds in which no
client sends anything (keep --settle + --seconds under --ping-interval's 25 s, or the
keepalive wave is measured too). What it measures is the server's periodic work: the
housekeeper's wake-ups and deadlines, the heartbeat, the collector's pace. It prints
milliseconds of CPU a second, best and median of --runs, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.procinfo import process_cpu, raise_fd_limit

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _ready(port: int, deadline: float) -> None:
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(1 << 16):
        pass


async def _measure(port: int, pid: int, clients: int, rooms: int, *, settle: float,
                   seconds: float) -> float:
    await _ready(port, time.monotonic() + 30)
    readers: list[asyncio.Task[None]] = []
    writers: list[asyncio.StreamWriter] = []
    for i in range(clients):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'{"type":"connect","name":"u%d","room":"r%d"}\n' % (i, i % rooms))
        readers.append(asyncio.create_task(_drain(reader)))
        writers.append(writer)
    await asyncio.sleep(settle)
    before, started = process_cpu(pid), time.monotonic()
    await asyncio.sleep(seconds)
    after, ended = process_cpu(pid), time.monotonic()
    for writer in writers:
        writer.close()
    for task in readers:
        task.cancel()
    return (after.total - before.total) / (ended - started) * 1000


def one_run(clients: int, rooms: int, settle: float, seconds: float) -> float:
    """chatd's CPU (ms a second) while `clients` joined clients stay idle."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "chatd", "--host", "127.0.0.1", "--port", str(port),
         "--rate", "0", "--max-clients", "0", "--max-per-ip", "0",
         "--connect-throttle", "0", "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(_measure(port, server.pid, clients, rooms, settle=settle,
                                    seconds=seconds))
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--rooms", type=int, default=200)
    ap.add_argument("--settle", type=float, default=8.0)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    raise_fd_limit()
    costs = [one_run(args.clients, args.rooms, args.settle, args.seconds)
             for _ in range(args.runs)]
    print(f"{'clients':>8}  {'runs':>4}  {'best ms/s':>9}  {'median ms/s':>11}")
    print(f"{args.clients:>8,}  {args.runs:>4}  {min(costs):>9.2f}  "
          f"{statistics.median(costs):>11.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "clients": args.clients, "rooms": args.rooms, "settle_s": args.settle,
            "seconds": args.seconds, "cpu_ms_per_s": [round(c, 3) for c in costs]}) + "\n")


if __name__ == "__main__":
    main()
