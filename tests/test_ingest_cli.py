"""``rackvae ingest``: options reach the encoding, the summary is printed, the dataset written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from midi_writer import notes, time_signature, write
from rackvae import dataset as datasets
from rackvae.cli import main
from rackvae.codec import EncodingSettings, layout_for

STEP = 120


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    # A 6/8 file: drums a little late (40 ticks = 1/3 step), a pitched part, plus a broken file.
    drums = notes(
        [(bar * 1440 + STEP * step + 40, 36 + step % 3, 100) for bar in range(2) for step in (0, 3, 6)]
    )
    tune = notes([(0, 60, 80), (STEP * 2, 64, 80), (STEP * 4, 67, 80)], channel=0)
    write(tmp_path / "six_eight.mid", [[time_signature(0, 6, 8)], drums, tune])
    (tmp_path / "broken.mid").write_bytes(b"MThd\x00")
    return tmp_path


def test_ingest_writes_the_dataset_and_prints_the_summary(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "drums.npz"
    argv = ["ingest", str(folder), "-o", str(out), "--percussion-map", "gm", "--time-signature", "6/8"]
    assert main([*argv, "--quiet", "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "files: 2 found, 1 read, 1 failed" in printed
    assert "bars with notes: 2 seen, 2 kept, 0 discarded" in printed
    assert "0.0% on the grid, 0.0% within 1/8 step, 0.0% within 1/4 step, mean distance 0.333 step" in printed
    assert "sequences: 2, shape [2, 12, 49]" in printed
    assert f"{folder / 'broken.mid'}: truncated header (5 bytes)" in printed
    data = datasets.load(out)
    assert data.rolls.shape == (2, 12, 49)
    settings = EncodingSettings.from_dict(data.settings)
    assert (settings.time_signature, settings.quarters_per_bar, settings.percussion_map) == ("6/8", 3, "gm")


def test_strict_timing_and_pitched_options(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.npz"
    common = ["ingest", str(folder), "-o", str(out), "--time-signature", "6/8", "--quiet"]
    assert main([*common, "--percussion-map", "extended", "--timing", "strict"]) == 1
    assert "off grid: 2" in capsys.readouterr().out
    assert not out.exists()
    assert main([*common, "--no-normalise-octave", "--min-notes", "3", "--include", "piano"]) == 0
    data = datasets.load(out)
    assert (data.layout.base_note, data.rows) == (60, 8)
    assert np.argwhere(data.rolls[0]).tolist() == [[0, 0], [2, 4], [4, 7]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--time-signature", "6/8", "--quarters-per-bar", "4"], "6/8 has 3 quarters per bar"),
        (["--percussion-map", "nope"], "neither a built-in map"),
        (["--include", "[unclosed"], "invalid regular expression"),
    ],
)
def test_bad_options_are_refused_before_reading(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    assert main(["ingest", str(folder), "-o", str(tmp_path / "x.npz"), *options]) == 2
    assert message in capsys.readouterr().err


def test_an_output_that_cannot_be_a_file_is_refused_before_reading(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["ingest", str(folder), "--percussion-map", "gm", "--time-signature", "6/8", "--quiet"]
    (tmp_path / "taken.npz").write_bytes(b"a file, not a folder")
    for output, message in (
        (tmp_path, f"-o {tmp_path}: is a folder; name the file to write"),
        (tmp_path / "taken.npz" / "sub" / "x.npz", f"{tmp_path / 'taken.npz'} is a file, not a folder"),
    ):
        assert main([*common, "-o", str(output)]) == 2
        printed = capsys.readouterr()
        assert message in printed.err and len(printed.err.splitlines()) == 1
        assert "files:" not in printed.out  # refused before the files were read
    assert (tmp_path / "taken.npz").read_bytes() == b"a file, not a folder"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be made")
def test_a_failed_write_is_one_line_after_the_summary(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "ingest",
        str(folder),
        "-o",
        "/proc/rackvae.npz",
        "--percussion-map",
        "gm",
        "--time-signature",
        "6/8",
    ]
    assert main([*argv, "--quiet"]) == 1
    printed = capsys.readouterr()
    assert "sequences: 2" in printed.out
    assert printed.err == "rackvae ingest: cannot write /proc/rackvae.npz: No such file or directory\n"


def test_a_map_file_is_recorded_so_that_the_settings_load_from_any_folder(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kits").mkdir()
    kit = "groups: [[{name: kick, notes: [36]}], [{name: snare, notes: [37, 38]}]]\n"
    (tmp_path / "kits" / "kit.yml").write_text(kit)
    monkeypatch.chdir(tmp_path)
    argv = [
        "ingest",
        str(folder),
        "-o",
        "kit.npz",
        "--percussion-map",
        "kits/kit.yml",
        "--time-signature",
        "6/8",
    ]
    assert main([*argv, "--quiet"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a model trained on the dataset is played from another folder
    settings = EncodingSettings.from_dict(datasets.load(tmp_path / "kit.npz").settings)
    assert settings.percussion_map == str(tmp_path / "kits" / "kit.yml")
    assert layout_for(settings).row_names == ("kick", "snare")
