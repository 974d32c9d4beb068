"""contrib/chatd.service: systemd's own checker finds nothing to say about it, it has the
sandboxing docs/operations.md promises, and chatd takes its command line."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from tests.harness import CHATD

UNIT = Path(__file__).parents[2] / "contrib" / "chatd.service"
INSTALLED_AT = "/opt/chatd/bin/chatd"


def _settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_systemd_analyze_verify_passes_without_a_warning(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: `make system-deps` installs Debian's systemd"
    unit = tmp_path / "chatd.service"  # verify wants the program to exist: this chatd
    unit.write_text(UNIT.read_text().replace(INSTALLED_AT, CHATD))
    done = subprocess.run([analyze, "verify", str(unit)], check=False, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" and done.stdout.strip() == "", done.stderr + done.stdout


def test_the_unit_is_sandboxed() -> None:
    settings = _settings()
    assert settings["DynamicUser"] == ["yes"] or "User" in settings
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["StateDirectory"] == ["chatd"]
    assert settings["NoNewPrivileges"] == ["yes"]
    assert int(settings["LimitNOFILE"][0]) >= 65536
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_chatd_takes_the_units_command_line(tmp_path: Path) -> None:
    command = shlex.split(_settings()["ExecStart"][0].replace("${STATE_DIRECTORY}",
                                                              str(tmp_path)))
    assert command[0] == INSTALLED_AT
    config = tmp_path / "chatd.toml"
    config.write_text('host = ["127.0.0.1"]\nport = 0\n')
    args = [str(config) if arg == "/etc/chatd/chatd.toml" else arg for arg in command[1:]]
    done = subprocess.run([CHATD, *args, "--print-config"], check=False, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert f'db = "{tmp_path}/history.db"' in done.stdout.splitlines()
