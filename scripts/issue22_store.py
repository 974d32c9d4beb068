"""The runs of issue 22 items 4-6, for the figures in the report (not a test).

    python scripts/issue22_store.py db        # item 4: --history-db growth
    python scripts/issue22_store.py redis     # item 5: Redis growth, one node
    python scripts/issue22_store.py snapshot  # item 6: honest ping p99 during snapshots

Each starts its own chatd (and redis-server) on loopback, with default options unless
named, and prints what grew. Needs the addresses 127.0.0.1-127.0.0.6 (Linux has them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

LINE = 64_000


async def start_chatd(*args: str) -> tuple[asyncio.subprocess.Process, int]:
    chatd = str(Path(sys.executable).parent / "chatd")
    extra = os.environ.get("CHATD_ARGS", "").split()
    proc = await asyncio.create_subprocess_exec(
        chatd, "--host", "127.0.0.1", "--port", "0", "--log-level", "warning", *args, *extra,
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    STARTED.append(proc)
    assert proc.stderr is not None
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        if not line:
            raise SystemExit("chatd exited")
        if m := re.search(r"listening on \S+:(\d+)", line):
            break

    async def drain() -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            if os.environ.get("CHATD_ARGS"):
                sys.stderr.write(line.decode())

    asyncio.get_running_loop().create_task(drain())
    return proc, int(m.group(1))


async def client(port: int, source: str, name: str, room: str | None = None
                 ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0), limit=1 << 24)
    hello: dict[str, str] = {"type": "connect", "name": name}
    if room:
        hello["room"] = room
    writer.write((json.dumps(hello) + "\n").encode())
    while json.loads(await reader.readline())["type"] != "welcome":
        pass
    return reader, writer


async def drain(reader: asyncio.StreamReader) -> None:
    while await reader.readline():
        pass


async def flood(writer: asyncio.StreamWriter, seconds: float, to: str | None = None) -> None:
    """64,000-byte lines at the default flood control: a burst of 10, then 2 a second."""
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        line: dict[str, str] = {"type": "message", "message": f"{i} ".ljust(LINE, "x")}
        if to:
            line["to"] = to
        writer.write((json.dumps(line) + "\n").encode())
        await writer.drain()
        i += 1
        if i >= 10:
            await asyncio.sleep(0.5)


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


async def run_db() -> None:
    folder = Path(tempfile.mkdtemp())
    db = folder / "h.sqlite"
    proc, port = await start_chatd("--history-db", str(db))
    before = file_size(db)
    clients = [await client(port, f"127.0.0.{1 + i % 3}", f"u{i}", f"room{i}")
               for i in range(30)]
    readers = [asyncio.create_task(drain(r)) for r, _ in clients]
    await asyncio.gather(*(flood(w, 20) for _, w in clients))
    await asyncio.sleep(3)  # the writer's last commits
    print(f"db: grew {(file_size(db) - before) / 1e6:.1f} MB "
          f"(file {db.stat().st_size / 1e6:.1f} MB, wal "
          f"{file_size(db) / 1e6 - db.stat().st_size / 1e6:.1f} MB)")
    for r in readers:
        r.cancel()
    proc.terminate()
    await proc.wait()
    shutil.rmtree(folder)


async def start_redis(folder: Path) -> tuple[asyncio.subprocess.Process, int]:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(folder), stdout=asyncio.subprocess.DEVNULL)
    STARTED.append(proc)
    for _ in range(100):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return proc, port
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit("redis-server did not start")


async def redis_used(port: int) -> int:
    import redis.asyncio as aioredis
    r = aioredis.Redis(port=port)
    info = await r.info("memory")
    await r.aclose()
    return int(info["used_memory"])


async def run_redis() -> None:
    folder = Path(tempfile.mkdtemp())
    rproc, rport = await start_redis(folder)
    proc, port = await start_chatd("--redis", f"redis://127.0.0.1:{rport}/0")
    await asyncio.sleep(1)
    before = await redis_used(rport)
    clients = [await client(port, f"127.0.0.{1 + i % 2}", f"u{i}", f"room{i}")
               for i in range(20)]
    readers = [asyncio.create_task(drain(r)) for r, _ in clients]
    peak = before

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, await redis_used(rport))
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(flood(w, 15) for _, w in clients))
    await asyncio.sleep(6)  # a snapshot and its room lines
    watcher.cancel()
    after = await redis_used(rport)
    print(f"redis: grew {(after - before) / 1e6:.1f} MB at the end, "
          f"{(peak - before) / 1e6:.1f} MB at the peak (used_memory)")
    for r in readers:
        r.cancel()
    proc.terminate()
    await proc.wait()
    rproc.terminate()
    await rproc.wait()
    shutil.rmtree(folder)


async def run_snapshot() -> None:
    folder = Path(tempfile.mkdtemp())
    rproc, rport = await start_redis(folder)
    proc, port = await start_chatd("--redis", f"redis://127.0.0.1:{rport}/0")
    # The honest clients run in a process of their own: the flood's loop must not
    # delay their reading.
    pinger = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "pinger", str(port), stdout=asyncio.subprocess.PIPE)
    clients = [await client(port, f"127.0.0.{1 + i % 5}", f"p{i}") for i in range(50)]
    readers = [asyncio.create_task(drain(r)) for r, _ in clients]
    await asyncio.gather(*(flood(w, 25, to=f"p{i}") for i, (_, w) in enumerate(clients)))
    out, _ = await pinger.communicate()
    rtts = json.loads(out)
    rtts.sort()
    p99 = rtts[int(len(rtts) * 0.99)]
    print(f"snapshot run: {len(rtts)} pings, median {statistics.median(rtts) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {rtts[-1] * 1000:.1f} ms; "
          f"redis used {await redis_used(rport) / 1e6:.0f} MB")
    for r in readers:
        r.cancel()
    proc.terminate()
    await proc.wait()
    rproc.terminate()
    await rproc.wait()
    shutil.rmtree(folder)


async def run_pinger(port: int) -> None:
    """Five honest clients pinging within flood control (2 a second) for 26 s; prints
    the round trips as JSON."""
    honest = [await client(port, "127.0.0.6", f"honest{i}") for i in range(5)]
    rtts: list[float] = []

    async def ping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   delay: float) -> None:
        await asyncio.sleep(delay)
        end = time.monotonic() + 26
        while time.monotonic() < end:
            sent = time.monotonic()
            writer.write(b'{"type":"ping"}\n')
            while json.loads(await reader.readline())["type"] != "pong":
                pass
            rtts.append(time.monotonic() - sent)
            await asyncio.sleep(max(0.0, sent + 0.6 - time.monotonic()))

    await asyncio.gather(*(ping(r, w, i * 0.12) for i, (r, w) in enumerate(honest)))
    print(json.dumps(rtts))


STARTED: list[asyncio.subprocess.Process] = []  # stopped whatever happens


async def main(which: str) -> None:
    try:
        await {"db": run_db, "redis": run_redis, "snapshot": run_snapshot}[which]()
    finally:
        for proc in STARTED:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "db"
    if which == "pinger":
        asyncio.run(run_pinger(int(sys.argv[2])))
        sys.exit(0)
    os.nice(5)
    asyncio.run(main(which))
