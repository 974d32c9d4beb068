"""Unit tests of chatc.readmarks: at most one read line a second per room (PROTOCOL.txt
18.5), the newest id seen always sent in the end."""

from __future__ import annotations

from chatc.readmarks import ReadMarks
from chatd import protocol as p


def test_one_read_line_a_second_per_room_and_the_last_id_is_sent_later() -> None:
    marks = ReadMarks(every=1.0)
    assert marks.seen("dev", "1", 10.0) == [p.Read("1", "dev")]
    assert marks.seen("dev", "2", 10.2) == []
    assert marks.seen("dev", "3", 10.5) == []
    assert marks.seen("lobby", "7", 10.5) == [p.Read("7", "lobby")]  # its own second
    assert marks.deadline == 11.0
    assert marks.due(10.9) == []
    assert marks.due(11.0) == [p.Read("3", "dev")]
    assert marks.deadline is None
    assert marks.seen("dev", "3", 13.0) == []  # sent already


def test_forgetting_a_room_drops_what_waits_for_it() -> None:
    marks = ReadMarks(every=1.0)
    marks.seen("dev", "1", 0.0)
    marks.seen("dev", "2", 0.1)
    marks.forget("dev")
    assert marks.deadline is None and marks.due(5.0) == []
