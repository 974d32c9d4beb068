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
    """`make run`'s install step in a new venv (an isolated build with the newest backend
    the pin allows, as on a fresh clone): the backend says nothing. pip's
    "WARNING: Location" lines are about this machine's index, not the project."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--upgrade", "pip"],
                   capture_output=True, check=True, timeout=120)  # as the Makefile does
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "-e", str(ROOT)],
        capture_output=True, text=True, timeout=170, check=False)
    backend = [line for line in (result.stdout + result.stderr).splitlines()
               if line.strip() and not line.startswith("WARNING: Location ")]
    assert result.returncode == 0, "\n".join(backend)
    assert backend == []
