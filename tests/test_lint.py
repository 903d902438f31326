"""The Python sources stay ruff clean (lint rules and formatting from pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ["host", "tests", "bench", "bindings"]


def ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert found, "ruff is a dev dependency: pip install -e .[dev]"
    return found


def test_ruff_check_is_clean() -> None:
    result = subprocess.run([ruff(), "check", *SOURCES], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_format_is_clean() -> None:
    result = subprocess.run([ruff(), "format", "--check", *SOURCES], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]
