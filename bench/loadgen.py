"""The load generator: one process, many clients, every received line checked.

Run by `bench.run` in its own process, pinned to a CPU other than the server's. It uses
uvloop and bare asyncio Protocols (no streams, no task per client) so that it keeps up
with the server it measures, and reports its own CPU time so a reader can tell.

Sessions (each against one fresh server):
  fanout   seat --clients, then --senders each send --lines lines as fast as a window
           allows: a sender has at most --window lines that the lead receiver (below)
           has not yet received.
  latency  seat --clients, then send --rate lines a second in all, round robin over the
           senders, for --duration seconds; every delivery's latency is recorded.
  big      seat --idle clients (the idle scenario: time to seat, RSS per connection),
           then --broadcasts single lines from one client to all (the bigroom scenario).
  city     seat --city-clients in --city-rooms rooms (see `city_rooms`), then send
           --city-rate lines a second in all for --city-duration seconds, each from one
           of the --city-talkers first members of a room drawn with Zipf-like weights
           (`city_schedule`); every delivery's latency is recorded while the rest of the
           clients sit idle (and answer the server's keepalive pings).
  city-multi  the city with --multi-rooms rooms a client (`multi_sizes`, `multi_seating`):
           a client connects to its first room and joins the others; each talker sends
           its lines, with "room", to the one room it talks in. --seat-only stops after
           seating (the idle-multi scenario: RSS per connection in several rooms).

A chat line is {"type":"message","message":"<name>:<seq>:<time_ns at send>"}. A
delivery's latency is the time its last byte reached the client's socket (the kernel's
stamp, bench.stamped) minus the embedded time, both CLOCK_REALTIME: what a client on a
machine of its own would see, without the time this one process takes to get round to
each of thousands of clients. That time is reported apart: "latency_seen" is each
delivery's latency as of when this process read it (what these figures were before).

Checking, so that no line can be lost, doubled or reordered unnoticed:
  - A receiver checked line by line sees, for each sender, seq 0, 1, 2, ... with the
    server's "name" equal to that sender. Lines are matched in bulk with one regular
    expression per read (the payload anchored on the name); the match count must equal
    the newline count, else the read is re-checked line by line with a JSON parser. The
    first line of one such read in 4 is also parsed as JSON and compared with the match.
  - In fanout, every receiver that is not a sender gets the same bytes from a one-room
    server (the same lines, ids and times in the same order), so the first of them (the
    lead) is checked line by line as above and every other one is compared with the
    lead's stream byte for byte. One that differs anywhere (a keepalive ping, a missing
    or extra line) is checked line by line from the line where it differs, starting
    from the lead's state at that line. Senders are always checked line by line.
  - Seating checks that each client gets its welcome and exactly as many join notices
    as clients joined after it, itself included (its welcome's user list gives its
    place), counting notice lines in bulk and parsing anything else.
  - A run reports every fault it saw; the runner fails a run with any.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import heapq
import json
import random
import re
import sys
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import stamped
from bench.procinfo import (
    Cpu,
    load_average,
    pin,
    process_cpu,
    raise_fd_limit,
    rss_kib,
    system_cpu,
)
from bench.stamped import StampedTransport

# The server's chat line as the fast path sees it: the sender's name, then the payload
# "<name>:<seq>:<ns>" with the same name (both chatd and the reference put "name"
# right before "message").
MSG = re.compile(rb'"name":"([^"\\]+)","message":"\1:(\d+):(\d+)"')
CONNECT_NOTICE = b'{"type":"connect"'
PING = b'{"type":"ping"}\n'
PONG = b'{"type":"pong"}\n'
# The kernel stamps reads with CLOCK_REALTIME (bench.stamped): lines are stamped with it
# too. A run lasts a minute; a step of the clock meanwhile would show as a fault-free
# outlier, and none is made on a machine kept in time by slewing.
clock_ns = time.time_ns

# orjson where installed (chatd depends on it): it parses a line in a fraction of the
# time, and is stricter than the standard library (it refuses invalid UTF-8 and lone
# surrogates), which suits checking what a server sends.
json_loads: Callable[[bytes], Any]
try:
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover
    json_loads = json.loads

Handler = Callable[["Client", bytes, int], None]

IDLE_SETTLE_S = 2.0  # seconds the idle scenario waits after seating before reading RSS
SLOW_NS = 5_000_000  # a timed delivery this late is also noted with its send time
# The first line of one bulk-matched read in 4 is parsed as JSON and compared with the
# match (`_validate`): in a city nearly every read is one line, and parsing each one
# was a tenth of this process's time, which it needs to keep up (its lateness delays
# the lines it sends).
VALIDATE_MASK = 3


def _self_cpu() -> float:
    return time.process_time()


class Window:
    """A measured span: the server's, this process's and everyone else's CPU in it."""

    def __init__(self, server_pids: list[int]) -> None:
        self.server_pids = server_pids  # a cluster: its chatd nodes and its redis-server
        self.server0 = _cpu_of(server_pids)
        self.each0 = [process_cpu(pid).total for pid in server_pids]
        self.self0 = _self_cpu()
        self.system0 = system_cpu()
        self.t0 = time.perf_counter()

    def server(self) -> Cpu:
        return _cpu_of(self.server_pids) - self.server0

    def each(self) -> list[float]:
        """Each server process's CPU seconds (a cluster: its nodes, then redis-server)."""
        return [round(process_cpu(pid).total - t0, 4)
                for pid, t0 in zip(self.server_pids, self.each0, strict=True)]

    def own(self) -> float:
        return _self_cpu() - self.self0

    def others(self, server: Cpu, own: float) -> dict[str, float]:
        busy, softirq = system_cpu()
        return {"other_cpu_s": round(busy - self.system0[0] - server.total - own, 3),
                "softirq_cpu_s": round(softirq - self.system0[1], 3),
                "load_average": load_average()}


def _cpu_of(pids: list[int]) -> Cpu:
    total = Cpu(0.0, 0.0, 0.0)
    for pid in pids:
        cpu = process_cpu(pid)
        total = Cpu(total.user + cpu.user, total.system + cpu.system, total.total + cpu.total)
    return total


def _rss_of(pids: list[int]) -> int:
    return sum(rss_kib(pid) for pid in pids)


def _lateness(lateness: array[int]) -> dict[str, Any]:
    """How late the paced lines left this process (a late sender is not the server's fault)."""
    ordered = sorted(lateness)
    return {"lines_sent": len(ordered), "send_lateness_p99_ms": percentile(ordered, 99),
            "send_lateness_max_ms": round(ordered[-1] / 1e6, 3) if ordered else 0.0}


def percentile(sorted_values: Sequence[int], q: float) -> float:
    """Nearest-rank percentile of sorted nanosecond values, in milliseconds."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, int(q / 100 * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[rank] / 1e6, 3)


def latency_summary(samples: array[int] | list[int]) -> dict[str, Any]:
    values = sorted(samples)
    return {
        "samples": len(values),
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "p999_ms": percentile(values, 99.9),
        "max_ms": round(values[-1] / 1e6, 3) if values else 0.0,
    }


def city_sizes(clients: int, rooms: int, big_rooms: int, big_size: int) -> list[int]:
    """Room sizes: `big_rooms` rooms of `big_size` first, the others sharing the rest evenly.

    Every room keeps at least two members (one to talk, one to hear), so `big_size`
    shrinks when the rest would not have that.
    """
    if rooms < 1 or clients < 2 * rooms:
        raise ValueError("the city needs at least two clients a room")
    big_rooms = max(0, min(big_rooms, rooms))
    rest_rooms = rooms - big_rooms
    if big_rooms and rest_rooms:
        big = max(2, min(big_size, (clients - 2 * rest_rooms) // big_rooms))
    elif big_rooms:  # every room is big: share evenly
        big_rooms, rest_rooms, big = 0, rooms, 0
    else:
        big = 0
    rest = clients - big * big_rooms
    return [big] * big_rooms + [rest // rest_rooms + (i < rest % rest_rooms)
                                for i in range(rest_rooms)]


def city_seating(sizes: Sequence[int]) -> list[int]:
    """The room of each client, by index: one seat in every room not yet full, in turn.

    So a wave of joins touches many rooms, as people arriving at a city would, and the
    first `k * len(sizes)` clients are the first k members of every room (k below the
    smallest size): the talkers.
    """
    left = list(sizes)
    order: list[int] = []
    while len(order) < sum(sizes):
        for room, n in enumerate(left):
            if n:
                order.append(room)
                left[room] = n - 1
    return order


def city_schedule(rooms: int, lines: int, skew: float, seed: int) -> list[int]:
    """The room of each line: weight 1/(rank+1)**skew, room 0 the busiest.

    With skew 1 and 200 rooms the busiest room gets 17% of the lines, the first four
    35%, the quietest a twentieth of a percent each: a few busy rooms, a long quiet tail.
    The big rooms of `city_sizes` are the first, so the busiest rooms are the biggest.
    """
    weights = [1 / (rank + 1) ** skew for rank in range(rooms)]
    return random.Random(seed).choices(range(rooms), weights, k=lines)


def multi_sizes(clients: int, per_client: int, rooms: int, skew: float, least: int
                ) -> list[int]:
    """Room sizes when each client is in `per_client` rooms: room k's in proportion to
    (k+1)**skew above `least`, so the rooms `city_schedule` draws most are the smallest.

    That way round is what a city of several rooms a person looks like (the room
    everybody is in is not the one everybody talks in), and it keeps the load of the
    one-room city: with 10,000 clients in 3 of 200 rooms and skew 0.6 the busiest room
    has 14 members and the quietest 237, ~67,000 deliveries a second at 1,000 lines a
    second (the city: ~66,000), so the two differ by the rooms a client is in, not by
    the load. The city's sizes times 3 (the busiest rooms the biggest) would make
    ~200,000, more than one load-generator CPU can read and time.
    """
    seats = clients * per_client
    if not 1 <= per_client <= rooms or seats < least * rooms or clients < least:
        raise ValueError(f"{clients} clients cannot be in {per_client} of {rooms} rooms "
                         f"with {least}+ members a room")
    weights = [(rank + 1) ** skew for rank in range(rooms)]
    share = [(seats - least * rooms) * w / sum(weights) for w in weights]
    sizes = [min(clients, least + int(x)) for x in share]
    # Seats left over by rounding down (or by a room capped at every client) go one each
    # to the rooms with the largest remainders first, round after round.
    by_remainder = sorted(range(rooms), key=lambda k: int(share[k]) - share[k])
    while sum(sizes) < seats:
        for k in by_remainder:
            if sum(sizes) < seats and sizes[k] < clients:
                sizes[k] += 1
    return sizes


def multi_seating(sizes: Sequence[int], per_client: int) -> list[list[int]]:
    """Each client's rooms, the first the one it connects to: every client takes the
    `per_client` rooms with the most seats left (the least recently served of equals),
    which always leaves a seating for the clients after it, and spreads a wave of joins
    over many rooms."""
    clients = sum(sizes) // per_client
    heap = [(-n, k, k) for k, n in enumerate(sizes) if n]
    heapq.heapify(heap)
    turn = len(sizes)
    out: list[list[int]] = []
    for _ in range(clients):
        taken = [heapq.heappop(heap) for _ in range(per_client)]
        out.append([room for _, _, room in taken])
        for left, _, room in taken:
            if left < -1:
                heapq.heappush(heap, (left + 1, turn, room))
                turn += 1
    return out


def choose_talkers(room_of: Sequence[Sequence[int]], rooms: int, talkers: int
                   ) -> dict[int, int]:
    """client index -> the one room it talks in: each room's first `talkers` members not
    talking elsewhere (one room each, so a receiver checks one sequence per sender). In
    the one-room city these are the first `talkers * rooms` clients."""
    members: list[list[int]] = [[] for _ in range(rooms)]
    for index, its_rooms in enumerate(room_of):
        for room in its_rooms:
            members[room].append(index)
    chosen: dict[int, int] = {}
    for room, people in enumerate(members):
        free = [i for i in people if i not in chosen][:talkers]
        if not free or len(people) < 2:
            raise ValueError(f"room {room} has no member free to talk and one to hear")
        chosen.update((i, room) for i in free)
    return dict(sorted(chosen.items()))


@dataclass(slots=True)
class Faults:
    """Everything that was not as expected; any non-zero count fails the run."""

    missing: int = 0  # sequence numbers skipped
    duplicate_or_reordered: int = 0
    unexpected_lines: int = 0
    bad_json: int = 0
    errors: int = 0  # error lines from the server
    disconnects: int = 0  # connections the server closed
    timeouts: int = 0  # phases that did not finish in time (what they lacked is lost too)
    samples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.samples) < 20:
            self.samples.append(text)

    def total(self) -> int:
        return (self.missing + self.duplicate_or_reordered + self.unexpected_lines
                + self.bad_json + self.errors + self.disconnects + self.timeouts)

    def as_dict(self) -> dict[str, Any]:
        return {"missing": self.missing, "duplicate_or_reordered": self.duplicate_or_reordered,
                "unexpected_lines": self.unexpected_lines, "bad_json": self.bad_json,
                "errors": self.errors, "disconnects": self.disconnects, "timeouts": self.timeouts,
                "samples": self.samples}


@dataclass(slots=True)
class Wave:
    """Clients whose connect lines went out together."""

    welcomed: asyncio.Future[float]
    left: int  # welcomes still to come


class Sender:
    """A client's sending side: `pump` keeps at most `window` lines unconfirmed."""

    __slots__ = ("client", "name", "room", "sent", "total", "window")

    def __init__(self, client: Client, total: int, window: int, room: bytes = b"") -> None:
        self.client = client
        self.name = client.name
        self.total = total
        self.window = window
        self.sent = 0
        self.room = b',"room":"%b"' % room if room else b""  # sent with every line

    def pump(self, confirmed: int) -> None:
        limit = min(self.total, confirmed + self.window)
        if self.sent >= limit:
            return
        now = clock_ns()
        name = self.name
        data = b"".join([b'{"type":"message","message":"%b:%d:%d"}\n' % (name, seq, now)
                         for seq in range(self.sent, limit)])
        self.sent = limit
        self.client.write(data)

    def send_one(self, seq: int) -> None:
        self.client.write(b'{"type":"message","message":"%b:%d:%d"%b}\n'
                          % (self.name, seq, clock_ns(), self.room))
        self.sent = seq + 1


class Client:
    """One connection's reading and checking (a bench.stamped.StampedProtocol)."""

    __slots__ = ("arrived", "done", "due", "expect", "gen", "got", "index", "joins", "lat",
                 "lost", "name", "on_chunk", "pending", "pos", "position", "rooms", "seen",
                 "settled", "tail", "transport", "unplaced", "want", "watches", "wave")

    def __init__(self, gen: LoadGen, index: int, on_chunk: Handler) -> None:
        self.gen = gen
        self.index = index
        self.name = b""
        self.transport: StampedTransport | None = None
        self.tail = b""
        self.on_chunk = on_chunk
        self.position = 0  # 1-based place in its first room's join order, from the welcome
        self.rooms: list[int] = []  # city: the index of its rooms, the first connected to
        self.unplaced = 1  # rooms whose welcome or who has not come yet
        self.due = 0  # join notices due in the rooms placed: those who joined after it
        self.joins = 0  # join notices received
        self.settled = False
        self.expect: dict[bytes, int] = {}  # sender name -> next seq
        self.got = 0
        self.want = 0
        self.done = False
        self.lost = False
        self.watches: list[tuple[bytes, Sender]] = []
        self.lat: array[int] = array("q")  # timed deliveries: arrival in its socket
        self.seen: array[int] = array("q")  # ... and as of when this process read them
        self.arrived = 0  # the kernel's stamp of the read being handled (bench.stamped)
        self.pending = bytearray()  # a mirror's bytes not yet compared with the lead's
        self.pos = 0  # how far a mirror's stream matches the lead's
        self.wave: Wave | None = None

    def connection_made(self, transport: StampedTransport) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes, arrived_ns: int) -> None:
        self.arrived = arrived_ns
        if self.tail:
            data = self.tail + data
        end = data.rfind(b"\n") + 1
        self.tail = data[end:] if end < len(data) else b""
        if end:
            self.on_chunk(self, data, end)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.gen.client_lost(self, exc)


class LoadGen:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = asyncio.get_running_loop()
        self.server_pids: list[int] = args.server_pid
        self.clients: list[Client] = []
        self.faults = Faults()
        self.expected_clients = 0
        self.welcomed = 0
        self.settled = 0
        self.all_welcomed: asyncio.Future[float] = self.loop.create_future()
        self.all_settled: asyncio.Future[float] = self.loop.create_future()
        self.phase_done: asyncio.Future[float] = self.loop.create_future()
        self.remaining = 0
        self.waves: deque[asyncio.Future[float]] = deque()  # joining, not all welcomed
        self.finished = False  # results are out: from now on, reads are only drained
        self.broadcast_seq = 0
        self.validated = 0  # lines fully parsed with json.loads on the fast path
        self.bulk_reads = 0  # reads of chat lines only, matched in bulk
        self.lead: Client | None = None
        self.mirrors: list[Client] = []
        self.waiting: set[Client] = set()  # mirrors with bytes the lead has not had yet
        self.stream = bytearray()  # everything the lead received in the fanout phase
        self.diverged = 0
        self.senders = args.senders  # clients 0..senders-1 talk (named s<index>)
        self.room_of: list[list[int]] = []  # city: each client's rooms
        self.talker_room: dict[int, int] = {}  # city: client index -> the room it talks in
        self.seats: list[int] = []  # city: each room's size
        self.pongs = 0
        # Timed deliveries over SLOW_NS: when they were sent and how late they came, so
        # that a report can tell periodic stalls (once a second?) from one-off ones.
        self.slow_sent: array[int] = array("q")
        self.slow_lat: array[int] = array("q")
        self.paced_from = 0  # clock_ns of the first paced line
        self.pinged_at: array[int] = array("q")  # when keepalive pings came (one a read)

    # ------------------------------------------------------------------ plumbing

    def client_lost(self, client: Client, exc: Exception | None) -> None:
        if not self.finished:
            self.faults.disconnects += 1
            self.faults.note(f"{client.name.decode() or client.index} lost: {exc!r}")
            self._fail_futures()

    def _fail_futures(self) -> None:
        # A lost client can never complete: stop waiting instead of timing out.
        for fut in (self.all_welcomed, self.all_settled, self.phase_done, *self.waves):
            if not fut.done():
                fut.set_result(-1.0)

    def _pong(self, client: Client) -> None:
        self.pongs += 1
        self.pinged_at.append(clock_ns())
        client.write(PONG)

    def _misc_line(self, client: Client, obj: dict[str, Any], line: bytes) -> None:
        """A line that is not the phase's business: pings answered, faults counted."""
        kind = obj.get("type")
        if kind == "ping":
            self._pong(client)
        elif kind in ("pong", "history_end") or (kind == "message" and obj.get("history")):
            pass
        elif kind == "error":
            self.faults.errors += 1
            self.faults.note(f"{client.name.decode()}: {line[:200]!r}")
        else:
            self.faults.unexpected_lines += 1
            self.faults.note(f"{client.name.decode()}: unexpected {line[:200]!r}")

    def _loads(self, client: Client, line: bytes) -> dict[str, Any] | None:
        try:
            obj = json_loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            self.faults.bad_json += 1
            self.faults.note(f"{client.name.decode()}: not a JSON object {line[:200]!r}")
            return None
        return obj

    # ------------------------------------------------------------------ seating

    async def seat(self, count: int) -> dict[str, Any]:
        """Connect and join `count` clients; wait until every join notice has arrived."""
        self.expected_clients = count
        rss0 = _rss_of(self.server_pids)
        window = Window(self.server_pids)
        t0 = window.t0
        # Clients connect in blocks of --connect-block and then join in waves of
        # --join-wave: a wave's connect lines leave at once (a burst, as after a restart),
        # and the next wave goes when the wave --join-depth before it has all its
        # welcomes, so the server works on one wave while this process reads the notices
        # of the one before. A block connects while the server is idle: libuv accepts one
        # connection per loop turn, so sockets opened while the server is busy would
        # measure that, and joins that trickled in one per turn would each cost a write
        # per seated client: both measure the arrival pattern, not the server.
        size, depth = max(1, self.args.join_wave), max(1, self.args.join_depth)
        block = max(size, self.args.connect_block)
        for first in range(0, count, block):
            connected = await self._open(first, min(first + block, count))
            if not connected or self.all_welcomed.done():  # a failure ended seating early
                break
            for at in range(0, len(connected), size):
                if len(self.waves) >= depth and not await self._next_wave():
                    break
                wave = Wave(self.loop.create_future(), len(connected[at : at + size]))
                self.waves.append(wave.welcomed)
                for client in connected[at : at + size]:
                    client.wave = wave
                    if not client.rooms:
                        client.write(b'{"type":"connect","name":"%b"}\n' % client.name)
                    else:
                        client.write(b"".join(
                            [b'{"type":"connect","name":"%b","room":"c%d"}\n'
                             % (client.name, client.rooms[0])]
                            + [b'{"type":"join","room":"c%d"}\n' % room
                               for room in client.rooms[1:]]))
            while self.waves:
                if not await self._next_wave():
                    break
        timeout = self.args.timeout
        welcomed_at = await self._wait(self.all_welcomed, timeout)
        settled_at = await self._wait(self.all_settled, timeout)
        cpu, own = window.server(), window.own()
        notices = (sum(n * (n + 1) // 2 for n in self.seats) if self.seats
                   else count * (count + 1) // 2)
        rss_settled = _rss_of(self.server_pids)
        # "Idle connections" means idle: let the server finish its housekeeping after the
        # burst of N^2/2 notices before reading its size (both sizes are reported).
        await asyncio.sleep(self.args.idle_settle)
        return {
            "clients": count,
            "welcomed": self.welcomed,
            "settled": self.settled,
            "join_notices_expected": notices,
            "join_notices_received": sum(c.joins for c in self.clients),
            "seconds_to_welcome_all": round(welcomed_at - t0, 3) if welcomed_at > 0 else None,
            "seconds_to_settle": round(settled_at - t0, 3) if settled_at > 0 else None,
            "server_cpu": cpu.as_dict(),
            "server_cpu_us_per_notice": round(cpu.total / notices * 1e6, 3) if notices else 0,
            "loadgen_cpu_s": round(own, 3),
            **window.others(cpu, own),
            "rss_before_kib": rss0,
            "rss_settled_kib": rss_settled,
            "rss_after_kib": _rss_of(self.server_pids),
            "idle_settle_s": self.args.idle_settle,
        }

    async def _wait(self, fut: asyncio.Future[float], timeout: float) -> float:
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            self.faults.timeouts += 1
            self.faults.note(f"timed out after {timeout}s")
            self._fail_futures()
            return -1.0

    async def _next_wave(self) -> bool:
        """Wait for the oldest wave's welcomes; False on a failure or timeout."""
        if await self._wait(self.waves[0], self.args.timeout) < 0:
            return False
        self.waves.popleft()
        return True

    async def _open(self, first: int, stop: int) -> list[Client]:
        """Connect clients first..stop-1 (not joined yet); [] if any connect fails."""
        clients = [Client(self, i, self._seating_chunk) for i in range(first, stop)]
        for client in clients:
            talks = (client.index in self.talker_room if self.room_of
                     else client.index < self.senders)
            client.name = (b"s%d" if talks else b"r%d") % client.index
            if self.room_of:
                client.rooms = self.room_of[client.index]
                client.unplaced = len(client.rooms)
        results = await asyncio.gather(
            *(stamped.connect(self.loop, c, self.args.host,
                              self.args.port[c.index % len(self.args.port)])  # a cluster
              for c in clients), return_exceptions=True)
        self.clients.extend(clients)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            self.faults.disconnects += len(failed)
            self.faults.note(f"{len(failed)} connects failed, first: {failed[0]!r}")
            self._fail_futures()
            return []
        return clients

    def _seating_chunk(self, client: Client, data: bytes, end: int) -> None:
        if not client.unplaced:
            # Once placed in its rooms, a client reads only join notices: count in bulk.
            lines = data.count(b"\n", 0, end)
            notices = data.count(CONNECT_NOTICE, 0, end)
            # chatd pings clients silent for 25 s: answer in bulk too.
            pings = data.count(PING, 0, end) if notices != lines else 0
            if notices + pings == lines:
                client.joins += notices
                if pings:
                    self.pongs += pings
                    self.pinged_at.append(clock_ns())
                    client.write(PONG * pings)
                self._check_settled(client)
                return
        for line in data[:end].split(b"\n")[:-1]:
            obj = self._loads(client, line)
            if obj is None:
                continue
            kind = obj.get("type")
            if kind == "welcome" and not client.position:
                users, more = obj.get("users"), obj.get("more", 0)
                client.name = str(obj.get("name")).encode()
                # Past 32 KiB of names the others are counted, not listed (PROTOCOL 8.13).
                client.position = (len(users) + (more if isinstance(more, int) else 0)
                                   if isinstance(users, list) else 0)
                if not client.position:
                    self.faults.unexpected_lines += 1
                    self.faults.note(f"welcome without users: {line[:200]!r}")
                self._place(client, client.rooms[0] if client.rooms else -1, client.position)
                self.welcomed += 1
                wave = client.wave
                if wave is not None:
                    wave.left -= 1
                    if not wave.left and not wave.welcomed.done():
                        wave.welcomed.set_result(time.perf_counter())
                if self.welcomed == self.expected_clients and not self.all_welcomed.done():
                    self.all_welcomed.set_result(time.perf_counter())
            elif kind == "connect":
                client.joins += 1
            elif kind == "who" and isinstance(obj.get("users"), list):
                # The answer to a join (city-multi): its place in that room.
                users = [u.get("name") if isinstance(u, dict) else u for u in obj["users"]]
                room = str(obj.get("room"))
                more = obj.get("more", 0) if isinstance(obj.get("more", 0), int) else 0
                place = len(users) + more + (not more and client.name.decode() not in users)
                at = int(room[1:]) if room[:1] == "c" and room[1:].isdigit() else -2
                if at not in client.rooms[1:]:
                    self.faults.unexpected_lines += 1
                    self.faults.note(f"{client.name.decode()}: who of {room!r} unasked")
                else:
                    self._place(client, at, place)
            else:
                self._misc_line(client, obj, line)
        self._check_settled(client)

    def _place(self, client: Client, room: int, position: int) -> None:
        """The client's place in a room's join order: it gets a notice of each later join."""
        client.unplaced -= 1
        client.due += (self.seats[room] if room >= 0 else self.expected_clients) - position + 1

    def _check_settled(self, client: Client) -> None:
        if client.settled or client.unplaced:
            return
        due = client.due
        if client.joins > due:
            self.faults.unexpected_lines += client.joins - due
            self.faults.note(f"{client.name.decode()}: {client.joins} join notices, want {due}")
        if client.joins >= due:
            client.settled = True
            self.settled += 1
            if self.settled == self.expected_clients and not self.all_settled.done():
                self.all_settled.set_result(time.perf_counter())

    # ------------------------------------------------------------------ chat lines

    def _lines(self, client: Client, data: bytes, end: int
               ) -> list[tuple[bytes, bytes, bytes]]:
        """The (name, seq, ns) of every chat line in a read; anything else is dealt with."""
        found: list[tuple[bytes, bytes, bytes]] = MSG.findall(data, 0, end)
        if len(found) == data.count(b"\n", 0, end):
            self.bulk_reads += 1
            if found and not self.bulk_reads & VALIDATE_MASK:
                self._validate(client, data, found[0])
            return found
        # Slow path: something else is in this read (a ping, an error, a stray line).
        found = []
        for line in data[:end].split(b"\n")[:-1]:
            match = MSG.search(line)
            obj = self._loads(client, line)
            if obj is None:
                continue
            if match is not None and obj.get("type") == "message" and not obj.get("history"):
                found.append(match.groups())  # type: ignore[arg-type]
            else:
                self._misc_line(client, obj, line)
        return found

    def _validate(self, client: Client, data: bytes, first: tuple[bytes, bytes, bytes]
                  ) -> None:
        """Parse the read's first line in full: the bulk match must agree with JSON."""
        self.validated += 1
        line = data[: data.index(b"\n")]
        obj = self._loads(client, line)
        if obj is None:
            return
        name = first[0].decode()
        if (obj.get("type") != "message" or obj.get("name") != name
                or obj.get("message") != b":".join(first).decode()):
            self.faults.unexpected_lines += 1
            self.faults.note(f"{client.name.decode()}: bulk match disagrees with {line[:200]!r}")

    def _chat_chunk(self, client: Client, data: bytes, end: int) -> None:
        now = client.arrived
        if client is self.lead:
            self.stream += memoryview(data)[:end]
        found = self._lines(client, data, end)
        if found:
            expect = client.expect
            if self.args.scenario != "fanout":  # every delivery timed
                lat, seen, read_at = client.lat, client.seen, clock_ns()
                for name, seq, ns in found:
                    s = int(seq)
                    if s != expect.get(name):
                        self._order_fault(client, name, s)
                    expect[name] = s + 1
                    sent = int(ns)
                    lat.append(now - sent)
                    seen.append(read_at - sent)
                    if now - sent > SLOW_NS:
                        self.slow_sent.append(sent)
                        self.slow_lat.append(now - sent)
            else:
                for name, seq, _ns in found:
                    s = int(seq)
                    if s != expect.get(name):
                        self._order_fault(client, name, s)
                    expect[name] = s + 1
                # One sample a read: under saturation a line's latency measures the window.
                client.lat.append(now - int(found[0][2]))
            client.got += len(found)
            for name, sender in client.watches:
                sender.pump(expect[name])
            if client.got >= client.want and not client.done:
                self._finish(client)
        if client is self.lead:
            for mirror in list(self.waiting if not client.done else self.mirrors):
                self._verify(mirror)

    def _finish(self, client: Client) -> None:
        client.done = True
        self.remaining -= 1
        if not self.remaining and not self.phase_done.done():
            self.phase_done.set_result(time.perf_counter())

    # A one-room server sends every receiver that is not a sender the same bytes (the same
    # lines, ids and times, in the same order). So the first such receiver (the lead) is
    # checked line by line, and every other one (a mirror) is compared with the lead's
    # stream byte for byte. A mirror that differs (a ping, a lost or extra line) is
    # checked line by line from the line where it differs, with the state the lead's
    # stream had there.

    def _mirror_chunk(self, client: Client, data: bytes, end: int) -> None:
        client.pending += memoryview(data)[:end]
        self._verify(client)

    def _verify(self, mirror: Client) -> None:
        stream, pending, lead = self.stream, mirror.pending, self.lead
        assert lead is not None
        if pending:
            if stream.startswith(pending, mirror.pos):
                mirror.pos += len(pending)
                pending.clear()
                self.waiting.discard(mirror)
            else:
                ahead = len(stream) - mirror.pos
                if ahead >= len(pending) or lead.done:
                    self._diverge(mirror)
                    return
                if ahead > 0:
                    if not stream.startswith(pending[:ahead], mirror.pos):
                        self._diverge(mirror)
                        return
                    mirror.pos += ahead
                    del pending[:ahead]
                self.waiting.add(mirror)
        if lead.done and not mirror.done and mirror.pos == len(stream) and not pending:
            mirror.expect = dict(lead.expect)
            mirror.got = lead.got
            self._finish(mirror)

    def _diverge(self, mirror: Client) -> None:
        self.diverged += 1
        self.waiting.discard(mirror)
        stream, pending = self.stream, bytes(mirror.pending)
        same, limit = 0, min(len(pending), len(stream) - mirror.pos)
        while same < limit and stream[mirror.pos + same] == pending[same]:
            same += 1
        start = stream.rfind(b"\n", 0, mirror.pos + same) + 1
        expect = mirror.expect
        got = 0
        for name, seq, _ns in MSG.findall(stream, 0, start):
            expect[name] = int(seq) + 1
            got += 1
        mirror.got = got
        mirror.on_chunk = self._chat_chunk
        mirror.pending = bytearray()
        rest = pending[start - mirror.pos :]
        if rest:
            end = rest.rfind(b"\n") + 1
            self._chat_chunk(mirror, rest, end)

    def _order_fault(self, client: Client, name: bytes, seq: int) -> None:
        want = client.expect.get(name)
        if want is None:
            self.faults.unexpected_lines += 1
            self.faults.note(f"{client.name.decode()}: line from {name.decode()}, not a sender")
            client.got -= 1  # not one of the lines it waits for
        elif seq > want:
            self.faults.missing += seq - want
            self.faults.note(f"{client.name.decode()}: {name.decode()} {want}..{seq - 1} missing")
        else:
            self.faults.duplicate_or_reordered += 1
            self.faults.note(f"{client.name.decode()}: {name.decode()} {seq} after {want - 1}")

    def _prepare_chat(self, total: int, window: int, mirrors: bool) -> list[Sender]:
        """Expectations per receiver, the lead and its mirrors, and who paces the senders."""
        clients = self.clients
        senders = [Sender(c, total, window) for c in clients[: self.args.senders]]
        listeners = clients[len(senders):]
        self.lead = listeners[0] if listeners and mirrors else None
        self.mirrors = listeners[1:] if self.lead is not None else []
        self.remaining = 0
        for client in clients:
            client.expect = {s.name: 0 for s in senders if s.client is not client}
            client.want = total * len(client.expect)
            client.got = 0
            client.done = client.want == 0
            self.remaining += not client.done
            client.lat, client.seen = array("q"), array("q")
            client.on_chunk = self._chat_chunk
        for mirror in self.mirrors:
            mirror.on_chunk = self._mirror_chunk
        for s in senders if window > 0 else ():
            # The window is counted at the lead; without one, at the last client (or the
            # one before it, for the last client's own lines).
            last = clients[-1]
            watcher = self.lead or (last if s.client is not last else clients[-2])
            watcher.watches.append((s.name, s))
        return senders

    def _completeness(self, totals: dict[bytes, int]) -> dict[str, Any]:
        """`totals`: the lines each sender sent, which every receiver of it must have."""
        clients = self.clients
        want = sum(c.want for c in clients)
        got = sum(c.got for c in clients)
        complete = (all(c.done for c in clients) and self.faults.total() == 0
                    and all(all(v == totals[k] for k, v in c.expect.items())
                            for c in clients))
        return {"deliveries_expected": want, "deliveries_received": got, "complete": complete,
                "receivers_checked_line_by_line": len(clients) - len(self.mirrors),
                "receivers_compared_with_lead": len(self.mirrors),
                "mirrors_diverged": self.diverged}

    async def fanout(self) -> dict[str, Any]:
        args = self.args
        senders = self._prepare_chat(args.lines, args.window, mirrors=True)
        window = Window(self.server_pids)
        for s in senders:
            s.pump(0)
        end = await self._wait(self.phase_done, args.timeout)
        t1 = end if end > 0 else time.perf_counter()
        return self._chat_result({s.name: args.lines for s in senders}, t1 - window.t0,
                                 window, per_line_latency=False)

    async def latency(self) -> dict[str, Any]:
        args = self.args
        per_sender = max(1, int(args.rate * args.duration / args.senders))
        senders = self._prepare_chat(per_sender, 0, mirrors=False)
        plan = [senders[k % len(senders)] for k in range(per_sender * len(senders))]
        window = Window(self.server_pids)
        lateness = self._pace(plan, args.rate)
        end = await self._wait(self.phase_done, args.duration + args.timeout)
        t1 = end if end > 0 else time.perf_counter()
        result = self._chat_result({s.name: per_sender for s in senders}, t1 - window.t0,
                                   window, per_line_latency=True)
        result["rate_lines_per_s"] = args.rate
        return {**result, **_lateness(lateness), "slow": self._slow()}

    def _slow(self) -> dict[str, Any]:
        """Deliveries over SLOW_NS by the second they were sent in (the worst 60 seconds)."""
        seconds: dict[int, list[int]] = {}
        for sent, lat in zip(self.slow_sent, self.slow_lat, strict=True):
            at = seconds.setdefault((sent - self.paced_from) // 1_000_000_000, [0, 0])
            at[0] += 1
            at[1] = max(at[1], lat)
        worst = sorted(seconds.items(), key=lambda kv: -kv[1][0])[:60]
        return {"over_ms": SLOW_NS / 1e6, "deliveries": len(self.slow_sent),
                "seconds_with_any": len(seconds),
                "by_second": [[second, count, round(top / 1e6, 2)]
                              for second, (count, top) in sorted(worst)]}

    def _pace(self, plan: list[Sender], rate: float) -> array[int]:
        """Send plan[k] its next line at start + k/rate; the lateness of each line sent."""
        total = len(plan)
        period_ns = int(1e9 / rate)
        start_ns = self.paced_from = clock_ns() + 50_000_000
        lateness: array[int] = array("q")
        k = 0

        def tick() -> None:
            # Send every line that is due (timers fire in 1 ms steps), then sleep until
            # the next one is: the schedule is absolute, so lateness never accumulates.
            nonlocal k
            now = clock_ns()
            while k < total and start_ns + k * period_ns <= now:
                lateness.append(now - (start_ns + k * period_ns))
                sender = plan[k]
                sender.send_one(sender.sent)
                k += 1
            if k < total:
                delay = (start_ns + k * period_ns - clock_ns()) / 1e9
                self.loop.call_later(max(0.0, delay), tick)

        self.loop.call_later((start_ns - clock_ns()) / 1e9, tick)
        return lateness

    async def city(self, talkers: int) -> dict[str, Any]:
        """--city-rate lines a second over the rooms (`city_schedule`), every delivery timed.

        Each room's first `talkers` members take turns at its lines; everyone else in
        the city only listens, or sits idle in a room the schedule rarely draws.
        """
        args = self.args
        rooms = len(self.seats)
        talkers_of: list[list[Sender]] = [[] for _ in range(rooms)]
        several = any(len(c.rooms) > 1 for c in self.clients)
        for index, room in self.talker_room.items():
            # With several rooms a client names the room of each line, as chatc does.
            talkers_of[room].append(Sender(self.clients[index], 0, 0,
                                           b"c%d" % room if several else b""))
        total = int(args.city_rate * args.city_duration)
        plan: list[Sender] = []
        turns = [0] * rooms
        for room in city_schedule(rooms, total, args.city_skew, args.city_seed):
            sender = talkers_of[room][turns[room] % len(talkers_of[room])]
            turns[room] += 1
            sender.total += 1
            plan.append(sender)
        totals = {s.name: s.total for room in talkers_of for s in room}
        self.remaining = 0
        for client in self.clients:
            client.expect = {s.name: 0 for room in client.rooms for s in talkers_of[room]
                             if s.client is not client}
            client.want = sum(totals[name] for name in client.expect)
            client.got = 0
            client.done = client.want == 0
            self.remaining += not client.done
            client.lat, client.seen = array("q"), array("q")
            client.on_chunk = self._chat_chunk
        if not self.remaining:
            self.phase_done.set_result(time.perf_counter())
        pongs = self.pongs
        window = Window(self.server_pids)
        lateness = self._pace(plan, args.city_rate)
        end = await self._wait(self.phase_done, args.city_duration + args.timeout)
        t1 = end if end > 0 else time.perf_counter()
        result = self._chat_result(totals, t1 - window.t0, window, per_line_latency=True)
        big = max(self.seats)
        by_size: dict[str, array[int]] = {"big_rooms": array("q"), "other_rooms": array("q")}
        for client in self.clients if not several else ():  # a client's lines: one room's
            by_size["big_rooms" if self.seats[client.rooms[0]] == big else "other_rooms"
                    ].extend(client.lat)
        busiest = turns.index(max(turns))
        return {
            **result,
            "rooms": rooms,
            "rooms_per_client": len(self.clients[0].rooms) if self.clients else 0,
            "room_sizes": {"min": min(self.seats), "max": big,
                           "big_rooms": self.seats.count(big) if big > min(self.seats) else 0},
            "talkers_per_room": talkers,
            "rate_lines_per_s": args.city_rate,
            "skew": args.city_skew,
            "busiest_room_share": round(max(turns) / max(1, total), 4),
            "busiest_room_size": self.seats[busiest],
            "rooms_without_lines": turns.count(0),
            "pongs_in_window": self.pongs - pongs,
            "pings_by_second": sorted(Counter(
                (t - self.paced_from) // 1_000_000_000 for t in self.pinged_at
                if t >= self.paced_from).items()),
            "latency_by_room": {k: latency_summary(v) for k, v in by_size.items() if v},
            **_lateness(lateness),
            "slow": self._slow(),
        }

    def _chat_result(self, totals: dict[bytes, int], seconds: float, window: Window,
                     per_line_latency: bool) -> dict[str, Any]:
        cpu, self_cpu = window.server(), window.own()
        counts = self._completeness(totals)
        deliveries = counts["deliveries_received"]
        samples: array[int] = array("q")
        seen: array[int] = array("q")
        for c in self.clients:
            samples.extend(c.lat)
            seen.extend(c.seen)
        return {
            **counts,
            "clients": len(self.clients),
            "senders": len(totals),
            "lines_per_sender": max(totals.values(), default=0),
            "window": self.args.window if not per_line_latency else None,
            "seconds": round(seconds, 4),
            "deliveries_per_s": round(deliveries / seconds) if seconds > 0 else 0,
            "server_cpu": cpu.as_dict(),
            "server_cpu_by_process_s": window.each(),
            "lines": sum(totals.values()),
            "server_cpu_us_per_delivery": (round(cpu.total / deliveries * 1e6, 4)
                                           if deliveries else None),
            "server_cpu_utilisation": round(cpu.total / seconds, 3) if seconds > 0 else 0,
            "loadgen_cpu_s": round(self_cpu, 3),
            "loadgen_cpu_us_per_delivery": (round(self_cpu / deliveries * 1e6, 4)
                                            if deliveries else None),
            "loadgen_cpu_utilisation": round(self_cpu / seconds, 3) if seconds > 0 else 0,
            **window.others(cpu, self_cpu),
            "validated_lines": self.validated,
            "latency": {**latency_summary(samples),
                        "what": "every delivery, arrived in its client's socket"
                        if per_line_latency
                        else "first line of each read (saturated: reflects the window)"},
            **({"latency_seen": {**latency_summary(seen),
                                 "what": "every delivery, read by the load generator"}}
               if per_line_latency else {}),
            "server_rss_kib": _rss_of(self.server_pids),
        }

    # ------------------------------------------------------------------ big room

    async def bigroom(self) -> dict[str, Any]:
        clients = self.clients
        receivers = len(clients) - 1
        lat: array[int] = array("q")
        spans: list[float] = []
        firsts: list[float] = []
        window = Window(self.server_pids)
        sender = clients[0]
        for client in clients:
            client.on_chunk = self._broadcast_chunk
            client.lat = lat
        for b in range(self.args.broadcasts):
            self.broadcast_seq = b
            self.remaining = receivers
            self.phase_done = self.loop.create_future()
            t0 = clock_ns()
            sender.write(b'{"type":"message","message":"%b:%d:%d"}\n' % (sender.name, b, t0))
            end = await self._wait(self.phase_done, self.args.timeout)
            if end < 0:
                break
            spans.append(max(lat[-receivers:]) / 1e6)
            firsts.append(min(lat[-receivers:]) / 1e6)
        cpu, own = window.server(), window.own()
        deliveries = len(lat)
        want = receivers * self.args.broadcasts
        return {
            "receivers": receivers,
            "broadcasts": self.args.broadcasts,
            "deliveries_expected": want,
            "deliveries_received": deliveries,
            "complete": deliveries == want and self.faults.total() == 0,
            "arrival": latency_summary(lat),
            "first_arrival_ms": [round(s, 2) for s in firsts],
            "last_arrival_ms": [round(s, 2) for s in spans],
            "server_cpu": cpu.as_dict(),
            "server_cpu_us_per_delivery": (round(cpu.total / deliveries * 1e6, 4)
                                           if deliveries else None),
            "loadgen_cpu_s": round(own, 3),
            **window.others(cpu, own),
        }

    def _broadcast_chunk(self, client: Client, data: bytes, end: int) -> None:
        # Kept lean: with 10,000 receivers this process reads each broadcast 10,000 times.
        now = client.arrived
        if end == len(data) and data.count(b"\n") == 1:
            match = MSG.search(data)
            if match is not None and match[1] == self.clients[0].name:
                self.validated += 1
                obj = self._loads(client, data)
                name, seq, ns = match.groups()
                if (obj is not None and obj.get("type") == "message"
                        and obj.get("name") == name.decode()
                        and obj.get("message") == b":".join((name, seq, ns)).decode()
                        and int(seq) == self.broadcast_seq and client.index):
                    client.lat.append(now - int(ns))
                    self.remaining -= 1
                    if not self.remaining and not self.phase_done.done():
                        self.phase_done.set_result(time.perf_counter())
                    return
        for name, seq, ns in self._lines(client, data, end):
            if client is self.clients[0] or int(seq) != self.broadcast_seq:
                self.faults.unexpected_lines += 1
                self.faults.note(f"{client.name.decode()}: {name.decode()}:{seq.decode()}")
                continue
            client.lat.append(now - int(ns))
            self.remaining -= 1
            if not self.remaining and not self.phase_done.done():
                self.phase_done.set_result(time.perf_counter())

    def _drain_chunk(self, client: Client, data: bytes, end: int) -> None:
        pass

    def drain(self) -> None:
        """Results are out: keep reading (so the server never waits) but check nothing."""
        self.finished = True
        for client in self.clients:
            client.on_chunk = self._drain_chunk


@dataclass(slots=True)
class CityLayout:
    sizes: list[int]
    room_of: list[list[int]]  # each client's rooms, the first the one it connects to
    talker_room: dict[int, int]  # client index -> the one room it talks in
    talkers: int  # a room


def city_layout(args: argparse.Namespace) -> CityLayout:
    """The rooms of the city (one room a client) or of city-multi (--multi-rooms)."""
    if args.scenario == "city":
        sizes = city_sizes(args.city_clients, args.city_rooms, args.city_big_rooms,
                           args.city_big_size)
        room_of = [[room] for room in city_seating(sizes)]
        talkers = max(1, min(args.city_talkers, min(sizes) - 1))
    else:
        talkers = max(1, args.city_talkers)
        sizes = multi_sizes(args.city_clients, args.multi_rooms, args.city_rooms,
                            args.multi_size_skew, talkers + 1)
        room_of = multi_seating(sizes, args.multi_rooms)
    return CityLayout(sizes, room_of, choose_talkers(room_of, len(sizes), talkers), talkers)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stamped.stamping.keep()  # before the first connect (see bench.stamped.Stamping)
    gen = LoadGen(args)
    result: dict[str, Any] = {"scenario": args.scenario}
    try:
        if args.scenario == "big":
            result["idle"] = await gen.seat(args.idle)
            result["idle"]["rss_per_connection_kib"] = round(
                (result["idle"]["rss_after_kib"] - result["idle"]["rss_before_kib"])
                / max(1, args.idle), 3)
            if gen.faults.total() == 0 and args.broadcasts > 0:
                result["bigroom"] = await gen.bigroom()
        elif args.scenario in ("city", "city-multi"):
            layout = city_layout(args)
            gen.seats, gen.room_of, gen.talker_room = (layout.sizes, layout.room_of,
                                                       layout.talker_room)
            result["seat"] = seat = await gen.seat(args.city_clients)
            if args.scenario == "city-multi":
                result["idle"] = {"rss_per_connection_kib": round(
                    (seat["rss_after_kib"] - seat["rss_before_kib"]) / args.city_clients, 3)}
            if gen.faults.total() == 0 and not args.seat_only:
                result[args.scenario] = await gen.city(layout.talkers)
        else:
            result["seat"] = await gen.seat(args.clients)
            if gen.faults.total() == 0:
                result[args.scenario] = await (gen.fanout() if args.scenario == "fanout"
                                               else gen.latency())
    finally:
        result["unstamped_reads"] = stamped.stamping.unstamped
        result["faults"] = gen.faults.as_dict()
        result["ok"] = gen.faults.total() == 0
        gen.drain()
    print(json.dumps(result), flush=True)
    # Keep the connections open until told to go: the runner stops the server first, so
    # the server's shutdown, not a storm of leaves, is what ends these connections.
    await _stdin_closed()
    for client in gen.clients:
        if client.transport is not None:
            client.transport.abort()
    return result


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError, ValueError):
        await loop.run_in_executor(None, sys.stdin.buffer.read)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.loadgen",
                                 description="chatd load generator (run by python -m bench)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=_ints, required=True,
                    help="the server's port; comma-separated for a cluster's nodes")
    ap.add_argument("--server-pid", type=_ints, required=True,
                    help="pids whose CPU and memory count as the server's, comma-separated")
    ap.add_argument("--scenario", choices=["fanout", "latency", "big", "city", "city-multi"],
                    required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--senders", type=int, default=10)
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--idle-settle", type=float, default=IDLE_SETTLE_S)
    ap.add_argument("--broadcasts", type=int, default=5)
    ap.add_argument("--join-wave", type=int, default=100)
    ap.add_argument("--join-depth", type=int, default=2)
    ap.add_argument("--connect-block", type=int, default=1000)
    ap.add_argument("--city-clients", type=int, default=10000)
    ap.add_argument("--city-rooms", type=int, default=200)
    ap.add_argument("--city-big-rooms", type=int, default=4)
    ap.add_argument("--city-big-size", type=int, default=100)
    ap.add_argument("--city-talkers", type=int, default=3)
    ap.add_argument("--city-rate", type=float, default=1000.0)
    ap.add_argument("--city-duration", type=float, default=40.0)
    ap.add_argument("--city-skew", type=float, default=1.0)
    ap.add_argument("--city-seed", type=int, default=1)
    ap.add_argument("--multi-rooms", type=int, default=3, help="city-multi: rooms a client")
    ap.add_argument("--multi-size-skew", type=float, default=0.6,
                    help="city-multi: room k has members in proportion to (k+1)**skew")
    ap.add_argument("--seat-only", action="store_true",
                    help="city-multi: stop after seating (idle-multi)")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scenario in ("city", "city-multi"):
        try:
            city_layout(args)
        except ValueError as exc:
            print(f"loadgen: {exc}", file=sys.stderr)
            return 2
    else:
        size = args.idle if args.scenario == "big" else args.clients
        if size < 2 or not 1 <= args.senders <= size:
            print("loadgen: need 2+ clients and 1..clients senders", file=sys.stderr)
            return 2
    pin(args.cpu)
    raise_fd_limit()
    # No cyclic garbage is made on the hot path; a collector pass would only add jitter.
    gc.disable()
    import uvloop

    result: dict[str, Any] = uvloop.run(run(args))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
