"""chatd.serverlog: the text format unchanged, the JSON format, the log file's reopen."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from chatd.serverlog import ServerLog


def test_text_lines_name_the_connection_as_before() -> None:
    out = io.StringIO()
    log = ServerLog("info", out)
    log.info("connected", event="connect", cid=7, address="127.0.0.1:4000")
    log.info("<alice@lobby> hi\x1b[2J", event="message", user="alice", room="lobby")
    first, second = out.getvalue().splitlines()
    assert re.fullmatch(r"\S+Z INFO  #7 127\.0\.0\.1:4000 connected", first)
    assert "INFO  <alice@lobby> hi" in second and "\x1b" not in second  # made visible


def test_json_lines_carry_the_fields_that_are_known() -> None:
    out = io.StringIO()
    log = ServerLog("debug", out, json=True)
    log.warning("refused: full", event="refuse", cid=3, address="[::1]:5")
    log.info("<bob@dev> x\u202ey", event="message", user="bob", room="dev")
    log.always("bye")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0] == {"time": records[0]["time"], "level": "warning", "event": "refuse",
                          "conn": 3, "address": "[::1]:5", "message": "refused: full"}
    assert records[1]["user"] == "bob" and records[1]["room"] == "dev"
    assert "\u202e" not in records[1]["message"] and "conn" not in records[1]
    assert records[2] == {"time": records[2]["time"], "level": "info", "event": "log",
                          "message": "bye"}


def test_levels_can_change_while_running() -> None:
    out = io.StringIO()
    log = ServerLog("info", out)
    log.set_level("warning")
    log.info("hidden")
    log.warning("shown")
    assert "hidden" not in out.getvalue() and "shown" in out.getvalue()


def test_reopen_writes_to_a_new_file_at_the_path(tmp_path: Path) -> None:
    path = tmp_path / "chatd.log"
    log = ServerLog("info", path=str(path))
    log.info("before")
    path.rename(tmp_path / "chatd.log.1")
    log.reopen()
    log.info("after")
    assert "before" in (tmp_path / "chatd.log.1").read_text()
    assert "after" in path.read_text() and "before" not in path.read_text()
