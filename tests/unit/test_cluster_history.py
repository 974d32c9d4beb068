"""The room lines a cluster node keeps until the snapshot writer puts them in Redis
(chatd.cluster.RedisHistory; PROTOCOL.txt 14.2)."""

from __future__ import annotations

from chatd.cluster import RedisHistory
from chatd.hub import Entry, id_key


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
