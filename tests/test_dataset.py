"""Ingesting folders of MIDI files into a Dataset: bad files reported and skipped, provenance, save/load."""

from __future__ import annotations

import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from midi_writer import notes, write
from rackvae import dataset as datasets
from rackvae.codec import EncodingSettings
from rackvae.dataset import DatasetError, ingest

STEP = 120
BAR = 16 * STEP
EXTENDED = EncodingSettings(percussion_map="extended")


def drum_bars(path: Path, bars: int, pattern_shift: int = 0) -> Path:
    """``bars`` bars of kick on step 0 and snare on step (4 + bar + shift) % 16."""
    hits = []
    for bar in range(bars):
        hits += [(bar * BAR, 36, 100), (bar * BAR + STEP * ((4 + bar + pattern_shift) % 16), 38, 80)]
    return write(path, [notes(hits)])


def header(midi_format: int = 0, tracks: int = 1, division: int = 480) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, midi_format, tracks, division)


def track(payload: bytes) -> bytes:
    return b"MTrk" + struct.pack(">I", len(payload)) + payload


BAD_FILES = {
    "empty.mid": (b"", "empty file"),
    "garbage.mid": (bytes(range(200, 256)) * 10, "not a MIDI file"),
    "truncated.mid": (header() + track(bytes.fromhex("00993c40608940"))[:-3], "truncated"),
    "type2.mid": (header(2) + track(b"\x00\xff\x2f\x00"), "format 2"),
    "smpte.mid": (header(0, 1, 0xE250) + track(b"\x00\xff\x2f\x00"), "SMPTE"),
    "absurd.mid": (header() + b"MTrk\x7f\xff\xff\xff" + b"\x00\x99\x24\x40", "claims 2147483647 bytes"),
}


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Three good files (one in a subfolder, odd suffix case), the bad files, and a non-MIDI file."""
    drum_bars(tmp_path / "a.mid", 3)
    (tmp_path / "sub").mkdir()
    drum_bars(tmp_path / "sub" / "b.MIDI", 2, pattern_shift=5)
    drum_bars(tmp_path / "c.Mid", 1, pattern_shift=9)
    for name, (data, _) in BAD_FILES.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "notes.txt").write_text("not music")
    return tmp_path


@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_files_are_reported_and_the_good_ones_load(mixed_folder: Path, jobs: int) -> None:
    result = ingest([mixed_folder], EXTENDED, jobs=jobs, progress=False)
    report = result.report
    assert sorted(Path(f).name for f in result.dataset.files) == ["a.mid", "b.MIDI", "c.Mid"]
    reasons = {Path(file).name: reason for file, reason in report.failures}
    assert sorted(reasons) == sorted(BAD_FILES)
    for name, (_, reason) in BAD_FILES.items():
        assert reason in reasons[name], (name, reasons[name])
    assert report.files_read == 3 and len(result.dataset) == 6
    summary = report.summary()
    assert "9 found, 3 read, 6 failed" in summary
    assert all(f"{mixed_folder / name}: " in summary for name in BAD_FILES)


def test_parallel_and_serial_loads_agree(mixed_folder: Path) -> None:
    serial = ingest([mixed_folder], EXTENDED, jobs=1, progress=False).dataset
    parallel = ingest([mixed_folder], EXTENDED, jobs=2, progress=False).dataset
    assert serial.files == parallel.files
    for name in ("rolls", "velocities", "file_index", "track", "bar"):
        assert np.array_equal(getattr(serial, name), getattr(parallel, name)), name


def test_provenance_names_file_track_and_bar(tmp_path: Path) -> None:
    first = drum_bars(tmp_path / "first.mid", 2)
    second = drum_bars(tmp_path / "second.mid", 3, pattern_shift=3)
    data = ingest([second, first], EXTENDED, progress=False).dataset
    assert data.files == [str(second), str(first)]
    assert data.file_index.tolist() == [0, 0, 0, 1, 1]
    assert data.bar.tolist() == [0, 1, 2, 0, 1]
    assert data.track.tolist() == [0] * 5
    snare_steps = np.argmax(data.rolls[:, :, 1], axis=1)
    assert snare_steps.tolist() == [7, 8, 9, 4, 5]
    assert data.layout.group_sizes == (1, 1, 6, 2, 2)
    assert data.settings == EXTENDED.to_dict()


def test_missing_paths_are_failures(tmp_path: Path) -> None:
    result = ingest([tmp_path / "nowhere"], EXTENDED, progress=False)
    assert result.report.failures == [(str(tmp_path / "nowhere"), "no such file or folder")]
    assert result.dataset.rolls.shape == (0, 16, 12)


def test_dedupe_keeps_first_occurrences_and_counts_their_bars(tmp_path: Path) -> None:
    drum_bars(tmp_path / "a.mid", 4)
    drum_bars(tmp_path / "b.mid", 2, pattern_shift=2)  # its bars repeat a.mid's bars 2 and 3
    plain = ingest([tmp_path], EXTENDED, progress=False)
    deduped = ingest([tmp_path], EncodingSettings(percussion_map="extended", dedupe=True), progress=False)
    assert len(plain.dataset) == 6 and len(deduped.dataset) == 4
    assert deduped.dataset.file_index.tolist() == [0, 0, 0, 0]
    assert deduped.report.counts.bars_discarded["duplicate"] == 2
    assert deduped.report.counts.bars_kept == 4


def test_pitched_rows_are_trimmed_to_the_notes_used(tmp_path: Path) -> None:
    write(
        tmp_path / "tune.mid", [notes([(0, 64, 90), (STEP, 67, 90), (BAR, 70, 90), (BAR + STEP, 76, 90)], 0)]
    )
    data = ingest([tmp_path], EncodingSettings(normalise_octave=False), progress=False).dataset
    assert (data.layout.kind, data.layout.base_note, data.rows) == ("note", 64, 13)
    assert data.layout.row_notes == tuple(range(64, 77))
    assert data.layout.row_names[0] == "E4"
    assert np.argwhere(data.rolls).tolist() == [[0, 0, 0], [0, 1, 3], [1, 0, 6], [1, 1, 12]]
    untrimmed = ingest(
        [tmp_path], EncodingSettings(normalise_octave=False, trim=False), progress=False
    ).dataset
    assert (untrimmed.layout.base_note, untrimmed.rows) == (0, 128)
    normalised = ingest([tmp_path], EncodingSettings(), progress=False).dataset  # 64 → 4, 70 → 10
    assert (normalised.layout.base_note, normalised.rows) == (4, 13)


def test_saved_dataset_loads_back_and_splits_by_file(tmp_path: Path) -> None:
    for index in range(12):
        drum_bars(tmp_path / f"song{index:02d}.mid", 2, pattern_shift=index)
    data = ingest([tmp_path], EXTENDED, progress=False).dataset
    data.save(tmp_path / "out.npz")
    loaded = datasets.load(tmp_path / "out.npz")
    for name in ("rolls", "velocities", "offsets", "file_index", "track", "bar"):
        assert np.array_equal(getattr(loaded, name), getattr(data, name)), name
    assert (loaded.layout, loaded.settings, loaded.files) == (data.layout, data.settings, data.files)
    assert EncodingSettings.from_dict(loaded.settings) == EXTENDED
    train, validation = loaded.split(0.25, seed=1)
    assert len(train) + len(validation) == len(loaded) and len(validation) > 0
    assert not set(train.file_index.tolist()) & set(validation.file_index.tolist())


def test_offsets_travel_with_the_sequences_and_old_files_load_without_them(tmp_path: Path) -> None:
    write(tmp_path / "late.mid", [notes([(0, 36, 100), (STEP * 4 + 40, 38, 80), (STEP * 15 - 30, 42, 70)])])
    drum_bars(tmp_path / "straight.mid", 1)
    data = ingest([tmp_path], EXTENDED, progress=False).dataset
    assert data.offsets is not None
    assert np.argwhere(data.offsets).tolist() == [[0, 4, 1], [0, 15, 8]]
    assert data.offsets[0, 4, 1] == pytest.approx(1 / 3) and data.offsets[0, 15, 8] == pytest.approx(-1 / 4)
    assert np.array_equal(data.subset(np.array([1, 0])).timing[1], data.offsets[0])
    # A file written before ingest kept offsets: everything else loads, the timing reads straight.
    data.save(tmp_path / "new.npz")
    archive = dict(np.load(tmp_path / "new.npz"))
    del archive["offsets"]
    np.savez(tmp_path / "old.npz", **archive)
    old = datasets.load(tmp_path / "old.npz")
    assert old.offsets is None and np.array_equal(old.velocities, data.velocities)
    assert old.timing.shape == data.rolls.shape and not old.timing.any()
    old.save(tmp_path / "resaved.npz")
    assert datasets.load(tmp_path / "resaved.npz").offsets is None
    with pytest.raises(ValueError, match="offsets"):
        datasets.Dataset(data.rolls, data.velocities, data.layout, offsets=data.offsets[:, :8])


def test_loading_something_else_is_a_dataset_error(tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_bytes(b"not an archive")
    with pytest.raises(DatasetError, match="not a rackvae dataset"):
        datasets.load(tmp_path / "x.npz")


def test_a_truncated_or_corrupted_dataset_is_a_dataset_error_naming_the_file(tmp_path: Path) -> None:
    drum_bars(tmp_path / "song.mid", 2)
    data = ingest([tmp_path], EXTENDED, progress=False).dataset
    data.save(tmp_path / "good.npz")
    whole = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])  # a copy cut short: no zip directory
    corrupt = bytearray(whole)
    with zipfile.ZipFile(tmp_path / "good.npz") as archive:
        rolls = archive.getinfo("rolls.npy")
    # The rolls' deflate stream starts after its local header (30 bytes, name, extra field); 0xFF there
    # is a final block of the reserved type, which zlib refuses.
    start = rolls.header_offset
    name_length, extra_length = struct.unpack("<HH", whole[start + 26 : start + 30])
    corrupt[start + 30 + name_length + extra_length] = 0xFF
    (tmp_path / "corrupt.npz").write_bytes(corrupt)
    archive_data = dict(np.load(tmp_path / "good.npz"))
    archive_data["layout"] = np.array('{"kind": "perc", "rows": [12]}')
    np.savez(tmp_path / "bad_layout.npz", **archive_data)
    for name, reason in (
        ("cut.npz", "File is not a zip file"),
        ("corrupt.npz", "Error -3 while decompressing"),
        ("bad_layout.npz", "int()"),
    ):
        expected = f"{tmp_path / name}: not a rackvae dataset ("
        with pytest.raises(DatasetError, match=f"^{re.escape(expected)}.*{re.escape(reason)}"):
            datasets.load(tmp_path / name)
