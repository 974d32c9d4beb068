"""chatd.accounts.markers (PROTOCOL.txt 18.4, 18.8): read markers move forward only, in
chatd's order of ids, within their bounds."""

from __future__ import annotations

import tracemalloc

import pytest

from chatd.accounts import ReadMarkers
from chatd.accounts.markers import MARKER_BYTES
from chatd.hub import id_key
from chatd.protocol import ProtocolError


def test_a_marker_only_moves_forward_in_the_order_of_ids() -> None:
    markers = ReadMarkers(id_key)
    assert markers.get("alice", "dev") is None
    assert markers.advance("alice", "dev", "120")
    assert not markers.advance("alice", "dev", "119")  # back: ignored
    assert not markers.advance("alice", "dev", "120")  # the same: nothing to tell
    assert markers.advance("alice", "dev", "120.1")  # a further update of one command
    assert markers.advance("alice", "dev", "1000")  # numbers, not strings: "1000" > "999"
    assert markers.get("alice", "dev") == "1000"
    assert markers.of("alice") == {"dev": "1000"}
    assert markers.get("bob", "dev") is None


def test_cluster_ids_order_as_the_hub_orders_them() -> None:
    markers = ReadMarkers(id_key)
    markers.advance("alice", "dev", "1764100800123-9")
    assert not markers.advance("alice", "dev", "1764100800123-3")
    assert markers.advance("alice", "dev", "1764100800124-0")


def test_a_bad_id_is_bad_id_and_changes_nothing() -> None:
    markers = ReadMarkers(id_key)
    markers.advance("alice", "dev", "5")
    with pytest.raises(ProtocolError) as exc:
        markers.advance("alice", "dev", "five")
    assert exc.value.code == "bad_id"
    assert markers.get("alice", "dev") == "5"


def test_an_account_keeps_its_most_recently_moved_markers() -> None:
    markers = ReadMarkers(id_key, per_account=3)
    for i, room in enumerate(["a", "b", "c"]):
        markers.advance("alice", room, str(i + 1))
    markers.advance("alice", "a", "10")  # a is now the most recent
    markers.advance("alice", "d", "11")  # b, moved least recently, goes
    assert markers.of("alice") == {"c": "3", "a": "10", "d": "11"}
    markers.advance("bob", "a", "1")  # others are not counted against alice
    assert len(markers.of("alice")) == 3 and markers.get("bob", "a") == "1"


def test_all_markers_stay_within_their_bytes_the_least_recent_going_first() -> None:
    one = MARKER_BYTES + len("user0") + len("room0") + len("100")
    markers = ReadMarkers(id_key, max_bytes=10 * one)
    for i in range(25):
        markers.advance(f"user{i % 5}", f"room{i // 5}", str(100 + i))
    assert markers.bytes <= 10 * one
    assert len(markers) == 10
    assert [row[2] for row in markers.rows()] == [str(115 + i) for i in range(10)]


def test_drop_and_rename_take_the_markers_along() -> None:
    markers = ReadMarkers(id_key)
    markers.advance("alice", "dev", "7")
    markers.advance("alice", "lobby", "9")
    markers.advance("bob", "dev", "8")
    markers.rename("alice", "alicia")
    assert markers.of("alice") == {} and markers.of("alicia") == {"dev": "7", "lobby": "9"}
    assert markers.drop("alicia") == 2
    assert markers.rows() == [("bob", "dev", "8")]
    assert markers.bytes == MARKER_BYTES + len("bob") + len("dev") + len("8")
    markers.drop_one("bob", "dev")
    assert len(markers) == 0 and markers.bytes == 0


def test_load_restores_the_order_of_the_database() -> None:
    markers = ReadMarkers(id_key, per_account=2)
    markers.load([("alice", "a", "1"), ("alice", "b", "2"), ("alice", "c", "3")])
    assert markers.of("alice") == {"b": "2", "c": "3"}


def test_cost_per_marker_is_what_memory_says() -> None:
    """MARKER_BYTES is measured: 20,000 markers (2,000 accounts in 10 rooms)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        markers = ReadMarkers(id_key)
        for i in range(20_000):
            markers.advance(f"user{i // 10:05d}", f"room{i % 10}", f"{1764100800123456 + i}")
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0.8 * used <= markers.bytes <= 1.25 * used, (used, markers.bytes, used / 20_000)
