"""chatd.protocol.values: immutable records, frozen for mypy, cheap to make."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

from chatd import protocol as p
from chatd.commands import Origin, SayCmd


def test_values_compare_and_hash_by_their_fields() -> None:
    a, b = p.Message("hi", None, "r1"), p.Message("hi", None, "r1")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert p.Message("hi") != p.Message("ho")
    assert SayCmd(Origin("n", 1), "s", "hi") in {SayCmd(Origin("n", 1), "s", "hi")}


def test_mypy_rejects_assigning_a_field_of_a_value(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent("""
        from chatd import protocol as p
        m = p.Message("hi")
        m.message = "changed"
    """))
    out, _, status = api.run(["--strict", "--no-incremental", "--follow-imports=silent",
                              str(snippet)])
    assert status == 1 and 'Property "message" defined in "Message" is read-only' in out
