"""The room lines a cluster node keeps until the snapshot writer puts them in Redis
(chatd.roomstreams.RedisHistory; PROTOCOL.txt 14.2)."""

from __future__ import annotations

from chatd.hub import Entry, id_key
from chatd.roomstreams import RedisHistory
from chatd.streambudget import LogBudget, RoomBudget


def _line(ms: int, text: str) -> Entry:
    line_id = f"{ms}-0"
    return Entry(id_key(line_id), line_id, str(ms / 1000), "ann", text)


def _texts(history: RedisHistory, room: str) -> list[str]:
    return [e.message for e in history.pending.get(room, ())]


def test_a_room_keeps_at_most_the_history_size_of_unwritten_lines() -> None:
    history = RedisHistory(size=3)
    for i in range(5):
        history.append("lobby", _line(1000 + i, f"l{i}"))
    history.append("dev", _line(2000, "d0"))
    assert _texts(history, "lobby") == ["l2", "l3", "l4"]  # older ones: MAXLEN drops them
    taken = history.take()
    assert history.pending == {}
    assert [e.message for e in taken["dev"]] == ["d0"]


def test_lines_that_could_not_be_written_go_before_the_newer_ones() -> None:
    history = RedisHistory(size=3)
    history.append("lobby", _line(1000, "a"))
    history.append("lobby", _line(1001, "b"))
    taken = history.take()
    history.append("lobby", _line(1002, "c"))
    history.append("lobby", _line(1003, "d"))
    history.put_back(taken)
    assert _texts(history, "lobby") == ["b", "c", "d"]


def test_a_node_that_does_not_write_forgets_only_old_lines() -> None:
    history = RedisHistory(size=10)
    for i in range(4):
        history.append("lobby", _line(1000 * i, f"l{i}"))
    history.append("dev", _line(500, "old"))
    history.forget_before(2000)
    assert _texts(history, "lobby") == ["l2", "l3"]
    assert "dev" not in history.pending


def test_the_log_budget_cuts_the_oldest_entries_past_its_bytes() -> None:
    """PROTOCOL.txt 14.6: the log keeps its newest --redis-log-bytes, in buckets."""
    budget = LogBudget(6400)  # buckets of 100 bytes
    for i in range(64):
        budget.add(f"{i}-0", 100)
    assert budget.cut is None and budget.total == 6400
    budget.add("64-0", 100)
    assert budget.cut == "1-0" and budget.total == 6400
    for i in range(65, 200):
        budget.add(f"{i}-0", 100)
    assert budget.cut == "136-0" and budget.total <= 6400
    budget.add("200-0", 10_000)  # one entry past the whole budget: it alone is kept
    assert budget.cut == "200-0" and budget.since_snapshot == 201 * 100 - 100 + 10_000


def test_the_room_budget_lets_the_least_recently_active_room_go_first() -> None:
    """PROTOCOL.txt 14.6: past the bytes of all the room streams, the room least recently
    written to gives up its oldest lines first; the room written to keeps its newest."""
    budget = RoomBudget(limit=1000, per_room=4)
    for i in range(3):
        budget.add("quiet", (1000 + i, 0), 100)
    for i in range(4):
        budget.add("busy", (2000 + i, 0), 100)
    assert budget.total == 700 and not budget.touched
    budget.add("busy", (2004, 0), 100)  # past per_room: busy's oldest goes
    assert [k for k, _ in budget.rooms["busy"]] == [(2001, 0), (2002, 0), (2003, 0), (2004, 0)]
    assert budget.take_touched() == {"busy": 2004}
    budget.add("other", (3000, 0), 500)  # 1,200 bytes: quiet gives up 2 lines
    assert [k for k, _ in budget.rooms["quiet"]] == [(1002, 0)]
    budget.add("other", (3001, 0), 300)  # quiet goes whole, then busy's oldest
    assert "quiet" not in budget.rooms and len(budget.rooms["busy"]) == 2
    assert budget.total <= 1000 and set(budget.take_touched()) == {"quiet", "busy"}
    budget.add("huge", (4000, 0), 5000)  # alone past the limit: keeps its newest line
    assert list(budget.rooms) == ["huge"] and budget.total == 5000


def test_rooms_idle_past_the_retention_go_whole() -> None:
    budget = RoomBudget(limit=10_000, per_room=10, idle_ms=1000)
    budget.add("old", (1000, 0), 10)
    budget.add("new", (1500, 0), 10)
    budget.add("new", (2001, 0), 10)  # "old" has had no line for over a second
    assert list(budget.rooms) == ["new"] and budget.take_touched() == {"old": 2001}
    budget.forget_touched_before(0)
    budget.add("x", (5000, 0), 10)
    budget.forget_touched_before(5001)
    assert budget.touched == {}


def test_lines_a_room_stream_no_longer_keeps_are_not_written() -> None:
    history = RedisHistory(size=10, budget=RoomBudget(limit=250, per_room=10))
    history.append("a", _line(1000, "x" * 50))
    history.append("b", _line(2000, "y" * 50))
    history.append("b", _line(2001, "z" * 50))  # "a" had to go to make room
    taken = history.take()
    assert history.kept("a", taken["a"]) == []
    assert [e.message[0] for e in history.kept("b", taken["b"])] == ["y", "z"]
