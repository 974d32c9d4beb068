"""The hub as a replicated state machine: what a cluster relies on (PROTOCOL.txt 14).

Several hubs (one per "node") apply the same command log; each delivers to its own
peers only, and they must agree on everything. No Redis here: the log is a list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chatd import protocol as p
from chatd.commands import (
    BeatCmd,
    Command,
    JoinCmd,
    JoinRoomCmd,
    LeaveCmd,
    Origin,
    PartCmd,
    ResumeCmd,
    SayCmd,
    SwitchCmd,
    from_records,
    to_records,
)
from chatd.hub import Effects, Hub, HubConfig, Stamp, replication
from tests.support.replay import Replay

T0 = 1_764_100_800.0


@dataclass(eq=False)
class Peer:
    cid: int
    text: bool = False


@dataclass
class Cluster:
    """Nodes sharing one log; `publish` appends, `run` applies the log on every node."""

    config: HubConfig = field(default_factory=HubConfig)
    nodes: dict[str, Hub[Peer]] = field(default_factory=dict)
    log: list[tuple[Command, float]] = field(default_factory=list)
    applied: dict[str, int] = field(default_factory=dict)
    inbox: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    closed: list[tuple[str, int]] = field(default_factory=list)
    replays: dict[str, Replay[Peer]] = field(default_factory=dict)
    now: float = T0

    def node(self, name: str) -> Hub[Peer]:
        hub: Hub[Peer] = Hub(self.config, node=name)
        self.nodes[name] = hub
        self.applied[name] = 0
        return hub

    def take(self, node: str, fx: Effects[Peer]) -> None:
        deliveries, commands = self.replays.setdefault(node, Replay()).run(fx)
        for targets, data, skip in deliveries:
            for peer in targets:
                if peer is not skip:
                    self.inbox.setdefault((node, peer.cid), []).append(json.loads(
                        data if isinstance(data, bytes) else p.encode_json(data)))
        self.closed += [(node, peer.cid) for peer in fx.closed]
        self.log += [(cmd, self.now) for cmd in commands]

    def handle(self, node: str, peer: Peer, event: p.Event) -> None:
        self.take(node, self.nodes[node].handle(peer, event))
        self.run()

    def run(self) -> None:
        while any(self.applied[n] < len(self.log) for n in self.nodes):
            for name, hub in self.nodes.items():
                while self.applied[name] < len(self.log):
                    i = self.applied[name]
                    cmd, when = self.log[i]
                    self.applied[name] += 1
                    self.take(name, hub.apply(cmd, Stamp(f"{i + 1}-0", (i + 1, 0), when)))

    def lines(self, node: str, cid: int) -> list[dict[str, Any]]:
        return self.inbox.get((node, cid), [])


def _state(hub: Hub[Peer]) -> dict[str, Any]:
    snap = replication.snapshot(hub)
    return {"snapshot": snap,
            "history": {k: [(e.id, e.name, e.message) for e in hub.history.lines.get(k, [])]
                        for k in hub.rooms}}


def test_nodes_applying_one_log_agree_and_deliver_only_locally() -> None:
    c = Cluster()
    a, b = c.node("a"), c.node("b")
    alice, bob = Peer(1), Peer(1)  # the same cid on two nodes: still two connections
    c.handle("a", alice, p.Connect(name="x"))
    c.handle("b", bob, p.Connect(name="X"))
    c.handle("a", alice, p.Message("hi", ref="r"))
    c.handle("b", bob, p.Message("psst", to="x"))
    assert [m["name"] for m in c.lines("b", 1) if m["type"] == "welcome"] == ["X2"]
    assert [m["message"] for m in c.lines("b", 1) if m["type"] == "message"] == ["hi"]
    got_a = c.lines("a", 1)
    assert [m["type"] for m in got_a if m["type"] in ("ack", "message")] == ["ack", "message"]
    assert _state(a) == _state(b)


def test_a_silent_node_is_declared_gone_by_a_steadily_beating_one() -> None:
    c = Cluster(HubConfig(resume_grace=0, node_timeout=5))
    c.node("a")
    c.node("b")
    doomed, watcher = Peer(1), Peer(1)
    c.handle("a", doomed, p.Connect(name="doomed"))
    c.handle("b", watcher, p.Connect(name="watcher"))
    for second in range(1, 8):  # "a" has died: only "b" beats
        c.now = T0 + second
        c.log.append((BeatCmd("b"), c.now))
        c.run()
    left = [m for m in c.lines("b", 1) if m["type"] == "disconnect"]
    assert [(m["name"], m["reason"]) for m in left] == [("doomed", "server went away")]
    assert "doomed" not in {s.name for s in c.nodes["b"].sessions.values()}
    assert c.closed == [("a", 1)]  # had "a" lived, it lets go of the connection
    assert _state(c.nodes["a"]) == _state(c.nodes["b"])


def test_after_an_outage_nobody_is_declared_gone() -> None:
    """The first beat after a long gap does not judge: everyone looks silent then."""
    c = Cluster(HubConfig(resume_grace=0, node_timeout=5))
    c.node("a")
    c.node("b")
    c.handle("a", Peer(1), p.Connect(name="x"))
    c.now = T0 + 60  # the log was unreachable for a minute
    c.log.append((BeatCmd("b"), c.now))
    c.now += 0.5
    c.log.append((BeatCmd("a"), c.now))
    c.now += 0.5
    c.log.append((BeatCmd("b"), c.now))
    c.run()
    assert "x" in {s.name for s in c.nodes["b"].sessions.values()}


def test_resume_on_another_node_closes_the_old_connection_there() -> None:
    c = Cluster()
    c.node("a")
    c.node("b")
    old, new, sam = Peer(1), Peer(2), Peer(3)
    c.handle("a", old, p.Connect(name="rita"))
    token = next(m["resume"] for m in c.lines("a", 1) if m["type"] == "welcome")
    c.handle("b", sam, p.Connect(name="sam"))
    c.handle("b", sam, p.Message("while moving"))
    c.handle("b", new, p.Connect(resume=token))
    welcome = next(m for m in c.lines("b", 2) if m["type"] == "welcome")
    assert (welcome["resumed"], welcome["name"]) == (True, "rita")
    assert [m["message"] for m in c.lines("b", 2) if m["type"] == "message"] == ["while moving"]
    assert ("a", 1) in c.closed


def test_a_join_whose_connection_vanished_is_let_go() -> None:
    """In a cluster the join comes back from the log later: the client may be gone."""
    c = Cluster(HubConfig(resume_grace=0))
    a = c.node("a")
    peer = Peer(1)
    c.take("a", a.handle(peer, p.Connect(name="ghost")))  # not applied yet
    c.take("a", a.disconnected(peer, "connection reset"))
    c.run()
    assert a.sessions == {}
    assert a.tokens == {}  # the resume token it never got is not kept either


def test_nodes_agree_on_every_session_s_rooms_and_current_room() -> None:
    """PROTOCOL.txt 17.13: join, part and switch are commands of the log; a line sent
    right after them goes where they say, on every node, and a node that starts from a
    snapshot knows the same memberships."""
    c = Cluster()
    a, b = c.node("a"), c.node("b")
    alice, bob = Peer(1), Peer(1)
    c.handle("a", alice, p.Connect(name="alice"))
    c.handle("b", bob, p.Connect(name="bob"))
    c.take("a", a.handle(alice, p.Join("dev")))  # not applied yet when the line comes
    c.take("a", a.handle(alice, p.Message("to dev")))
    c.take("b", b.handle(bob, p.Join("dev")))
    c.take("b", b.handle(bob, p.Switch("lobby")))
    c.take("b", b.handle(bob, p.Message("to lobby")))
    c.take("a", a.handle(alice, p.Part("lobby")))
    c.run()
    assert _state(a) == _state(b)
    for hub in (a, b):
        assert [(s.name, list(s.rooms), s.room) for s in hub.sessions.values()] == [
            ("alice", ["dev"], "dev"), ("bob", ["lobby", "dev"], "lobby")]
        assert [e.message for e in hub.history.lines["dev"]] == ["to dev"]
        assert [e.message for e in hub.history.lines["lobby"]] == ["to lobby"]
    later: Hub[Peer] = Hub(HubConfig(), node="later")
    replication.restore_dict(later, json.loads(json.dumps(replication.snapshot(a))))
    assert replication.snapshot(later) == replication.snapshot(b)


def test_snapshot_restores_an_equal_state() -> None:
    c = Cluster()
    a = c.node("a")
    rita, sam = Peer(1), Peer(2)
    c.handle("a", rita, p.Connect(name="rita"))
    c.handle("a", sam, p.Connect(name="sam", room="dev"))
    c.handle("a", sam, p.Message("to rita", to="rita"))
    c.take("a", a.disconnected(rita, "connection reset"))
    c.run()
    copy: Hub[Peer] = Hub(HubConfig(), node="later")
    replication.restore_dict(copy, json.loads(json.dumps(replication.snapshot(a))))
    assert replication.snapshot(copy) == replication.snapshot(a)
    assert copy.detached.keys() == a.detached.keys()


cids = st.integers(0, 2**63 - 1)  # connection numbers on a node
origins = st.builds(Origin, st.text(), cids)
commands = st.one_of(
    st.builds(SayCmd, st.builds(Origin, st.text(), cids), st.text(), st.text(),
              st.none() | st.text(), st.none() | st.text(), st.none() | st.text()),
    st.builds(JoinRoomCmd, origins, st.text(), st.text()),
    st.builds(PartCmd, origins, st.text(), st.none() | st.text()),
    st.builds(SwitchCmd, origins, st.text(), st.text()),
    st.builds(LeaveCmd, st.text(), st.none() | st.text()),
    st.builds(BeatCmd, st.text()),
    st.builds(ResumeCmd, st.builds(Origin, st.text(), cids), st.text(),
              st.none() | st.text(),
              st.builds(JoinCmd, st.builds(Origin, st.text(), cids), st.text(),
                        st.text(), st.text(), st.booleans(), st.text(),
                        st.none() | st.text())),
)


@settings(max_examples=300)
@given(commands)
def test_records_round_trip(cmd: Command) -> None:
    assert from_records(to_records([cmd])) == [cmd]


def test_a_snapshot_in_parts_restores_the_same_state() -> None:
    """PROTOCOL.txt 14.2: the snapshot is written in parts of about `part_bytes`, each a
    JSON value of its own, private lines apart from their sessions; restored part by
    part it is the same state as in one piece, and capturing copies no line."""
    c = Cluster()
    a = c.node("a")
    peers = [Peer(i) for i in range(4)]
    for i, peer in enumerate(peers):
        c.handle("a", peer, p.Connect(name=f"u{i}", room="dev" if i % 2 else None))
    for n in range(10):
        for i, peer in enumerate(peers):
            c.handle("a", peer, p.Message(f"{n} " + "x" * 3000, to=f"u{(i + 1) % 4}"))
    c.take("a", a.disconnected(peers[0], "connection reset"))
    c.run()
    steps = replication.capturing(a, every=1, log_id="9-0")  # a session a step
    yielded = 0
    while True:
        try:
            next(steps)
            yielded += 1
        except StopIteration as done:
            captured: replication.Captured = done.value
            break
    assert yielded == len(a.sessions) - 1
    inbox = a.sessions[captured.sessions[1].sid].inbox
    assert inbox is not None and captured.sessions[1].inbox[0] is inbox[0]
    parts = list(replication.encode(captured, part_bytes=20_000))
    assert len(parts) >= 6 and max(map(len, parts)) < 30_000
    header, *rest = (json.loads(part) for part in parts)
    assert header["log_id"] == "9-0"
    copy: Hub[Peer] = Hub(HubConfig(), node="later")
    replication.restore(copy, header, rest)
    assert replication.snapshot(copy) == replication.snapshot(a)
    assert copy.detached.keys() == a.detached.keys() == {captured.sessions[0].sid}
    assert [len(s.inbox or ()) for s in copy.sessions.values()] == [20, 20, 20, 20]
