"""The package, its CLI and its compiled core import and answer."""

from __future__ import annotations

import subprocess
import sys

import rackvae
from rackvae import _core
from rackvae.atomic import atomic_write_bytes


def test_cli_help_lists_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "rackvae.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "ingest" in result.stdout


def test_compiled_core_version_matches_package() -> None:
    major, minor = (int(part) for part in rackvae.__version__.split(".")[:2])
    assert _core.lib.rv_version() == (major << 8) | minor


def test_atomic_write_leaves_no_temporary_on_failure(tmp_path) -> None:
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old")

    class InterruptedWriteError(Exception):
        pass

    from rackvae.atomic import atomic_open

    try:
        with atomic_open(target) as handle:
            handle.write(b"half")
            raise InterruptedWriteError
    except InterruptedWriteError:
        pass
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path) -> None:
    import os

    mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "model.tflite", b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "model.tflite").stat().st_mode & 0o777 == 0o644
