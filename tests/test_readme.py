"""The README's Python section runs as written: its code blocks, in order, in one namespace, in a folder
laid out as after ``make demo`` (a tiny real model at out/demo/models/groove, the corpora at data/midi)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from rackvae.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def python_section_blocks() -> list[str]:
    text = README.read_text()
    section = re.search(r"^## Python\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Python' section"
    return re.findall(r"^```python\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)


def test_the_python_section_has_examples() -> None:
    blocks = python_section_blocks()
    assert len(blocks) >= 3
    for call in (
        "rackvae.load(",
        ".sample(",
        ".interpolate(",
        ".encode(",
        ".decode(",
        ".to_midi(",
        ".knobs_for(",
    ):
        assert any(call in block for block in blocks), call


def test_readme_python_blocks_run(corpora: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    os.symlink(corpora, tmp_path / "data" / "midi")
    models = tmp_path / "out" / "demo" / "models"
    data = str(tmp_path / "groove.npz")
    session = corpora / "groove" / "drummer1" / "session1"
    assert main(["ingest", str(session), "--percussion-map", "extended", "-o", data]) == 0
    assert main(["train", data, "--name", "groove", "-o", str(models), "--epochs", "2", "-q"]) == 0
    assert main(["export", str(models / "groove"), "--formats", "f32"]) == 0
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in python_section_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    for name in ("samples.mid", "samples.png", "morph.mid", "map.png", "map.mid"):
        assert (tmp_path / name).stat().st_size > 100, name
    bars = namespace["bars"]
    assert bars.rolls.shape == (8, 16, 12) and bars.rolls.dtype == np.uint8  # type: ignore[attr-defined]
