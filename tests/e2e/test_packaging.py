"""The package builds quietly: `make run` on a fresh clone shows chatd's lines, not the
build backend's deprecation warnings (pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_editable_build_prints_no_warnings(tmp_path: Path) -> None:
    """`make run`'s install step into a new venv (an isolated build with the newest backend
    the pin allows, as on a fresh clone): the backend says nothing. The pip is this venv's,
    which the Makefile upgraded as it upgrades a fresh clone's (`pip --python` installs into
    the new venv; making that venv its own pip and upgrading it cost most of this test's
    time). pip's "WARNING: Location" lines are about this machine's index, not the
    project."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-deps", "-e", str(ROOT)],
        capture_output=True, text=True, timeout=170, check=False)
    backend = [line for line in (result.stdout + result.stderr).splitlines()
               if line.strip() and not line.startswith("WARNING: Location ")]
    assert result.returncode == 0, "\n".join(backend)
    assert backend == []
    # The install went into the new venv, not this one.
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import chatd"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert found.returncode == 0, found.stderr
