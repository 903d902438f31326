"""The shipped corpora (data/midi): every file reads, the documented counts hold, and the groove
encoding agrees with a plain re-implementation of its simple case (one meter, 480 ticks per beat)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rackvae import midi
from rackvae.codec import EncodingSettings
from rackvae.dataset import Dataset, IngestResult, find_midi_files, ingest
from rackvae.percussion import EXTENDED

pytestmark = pytest.mark.slow

FILE_COUNTS = {"groove": 1021, "freedoom": 66, "mutopia-guitar": 161}

# The README's table: (corpus, settings) → sequences, discarded bars by reason.
DOCUMENTED = [
    ("groove", {"percussion_map": "extended"}, 19_495, {"other_meter": 906, "too_few_notes": 97}),
    ("groove", {"percussion_map": "extended", "timing": "strict"}, 0,
     {"other_meter": 906, "off_grid": 19_468, "too_few_notes": 3}),
    ("freedoom", {"percussion_map": "extended"}, 3_658, {"other_meter": 544, "too_few_notes": 17}),
    ("freedoom", {"percussion_map": "extended", "timing": "strict"}, 2_797,
     {"other_meter": 544, "off_grid": 860, "too_few_notes": 16}),
    ("freedoom", {}, 13_341, {"other_meter": 1_807, "too_few_notes": 2_447}),
    ("freedoom", {"timing": "strict"}, 11_133,
     {"other_meter": 1_807, "off_grid": 2_444, "too_few_notes": 2_208}),
    ("mutopia-guitar", {}, 1_858, {"other_meter": 5_973, "too_few_notes": 22}),
    ("mutopia-guitar", {"timing": "strict"}, 1_662,
     {"other_meter": 5_973, "off_grid": 196, "too_few_notes": 22}),
]  # fmt: skip


@pytest.fixture(scope="module")
def groove_snap(corpora: Path) -> IngestResult:
    return ingest([corpora / "groove"], EncodingSettings(percussion_map="extended"), progress=False)


@pytest.mark.parametrize(("corpus", "options", "sequences", "discarded"), DOCUMENTED)
def test_documented_counts(
    corpora: Path, corpus: str, options: dict, sequences: int, discarded: dict
) -> None:
    result = ingest([corpora / corpus], EncodingSettings(**options), progress=False)
    report = result.report
    assert (report.files_read, report.failures) == (FILE_COUNTS[corpus], [])
    assert report.sequences == sequences
    assert dict(report.counts.bars_discarded) == discarded
    assert report.counts.bars_seen == report.counts.bars_kept + sum(discarded.values())
    rows = {"groove": 12, "freedoom": 12 if "percussion_map" in options else 66, "mutopia-guitar": 41}[corpus]
    assert result.dataset.rolls.shape == (sequences, 16, rows)


def test_groove_timing_matches_the_manifest(groove_snap: IngestResult) -> None:
    # MANIFEST.md: 1.7% of onsets exactly on the 16th grid, 44% within 1/8 step, 73% within 1/4 step.
    offsets = groove_snap.report.counts.offsets
    assert round(offsets.exact / offsets.onsets, 3) == 0.017
    assert round(offsets.within_eighth / offsets.onsets, 2) in (0.44, 0.45)
    assert round(offsets.within_quarter / offsets.onsets, 2) == 0.73
    # ... and snapping keeps all but the bars left with fewer than two onsets.
    counts = groove_snap.report.counts
    in_four_four = counts.bars_seen - counts.bars_discarded["other_meter"]
    assert counts.bars_kept / in_four_four > 0.99


def test_groove_strict_finds_the_three_bars_exactly_on_the_grid(corpora: Path) -> None:
    # MANIFEST.md: of the bars with notes in the 4/4 files, 3 have every onset exactly on the grid.
    strict = EncodingSettings(percussion_map="extended", timing="strict", min_notes_per_sequence=1)
    assert ingest([corpora / "groove"], strict, progress=False).report.sequences == 3


def _plain_groove_encoding(files: list[str]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Velocity and offset rolls and (file, bar) of the groove files, the simple way: every 4/4 file
    has one meter and 480 ticks per beat, so step = onset / 120 rounded half up, bar = step // 16; a
    cell keeps its loudest onset (the first of equally loud ones) and that onset's offset."""
    rolls, offset_rolls, provenance = [], [], []
    for file_index, path in enumerate(files):
        song = midi.read(path)
        assert song.ticks_per_beat == 480
        if song.time_signatures[:, 1:].tolist() != [[4, 4]]:
            continue
        bars: dict[int, np.ndarray] = {}
        offsets: dict[int, np.ndarray] = {}
        for onset, pitch, velocity in song.notes[["onset", "pitch", "velocity"]].tolist():
            step = (onset + 60) // 120
            row = EXTENDED.row_of_note[pitch]
            bar = bars.setdefault(step // 16, np.zeros((16, 12), np.uint8))
            offset = offsets.setdefault(step // 16, np.zeros((16, 12), np.float32))
            if velocity > bar[step % 16, row]:
                bar[step % 16, row] = velocity
                offset[step % 16, row] = (onset - step * 120) / 120
        for number in sorted(bars):
            if np.count_nonzero(bars[number]) >= 2:
                rolls.append(bars[number])
                offset_rolls.append(offsets[number])
                provenance.append((file_index, number))
    return np.array(rolls), np.array(offset_rolls), provenance


def test_groove_encoding_agrees_with_a_plain_reimplementation(groove_snap: IngestResult) -> None:
    data: Dataset = groove_snap.dataset
    velocities, offsets, provenance = _plain_groove_encoding(data.files)
    assert list(zip(data.file_index.tolist(), data.bar.tolist(), strict=True)) == provenance
    assert np.array_equal(data.velocities, velocities)
    assert np.array_equal(data.rolls, velocities > 0)
    assert data.offsets is not None and np.array_equal(data.offsets, offsets)


def test_groove_cell_offsets_are_the_manifest_s_human_timing(groove_snap: IngestResult) -> None:
    # MANIFEST.md counts onsets: 1.7% exactly on the grid, 73% within 1/4 step. A cell keeps its
    # loudest onset, so the cells' offsets come out the same within two points.
    data: Dataset = groove_snap.dataset
    assert data.offsets is not None
    cells = data.offsets[data.rolls > 0]
    assert len(cells) == np.count_nonzero(data.rolls) > 300_000
    assert round(float(np.mean(cells == 0)), 3) == 0.017
    assert abs(float(np.mean(np.abs(cells) <= 0.25)) - 0.73) < 0.025
    assert cells.min() >= -0.5 and cells.max() < 0.5
    assert not data.offsets[data.rolls == 0].any()
    assert float(np.mean(cells)) < -0.03  # these drummers play ahead of the grid on average


def test_freedoom_resolutions_and_meter_changes_as_the_manifest_says(corpora: Path) -> None:
    files, _ = find_midi_files([corpora / "freedoom"])
    songs = [midi.read(path) for path in files]
    assert sorted({song.ticks_per_beat for song in songs}) == [89, 96, 120, 240, 480, 960, 1024]
    changing = [s.path for s in songs if len({tuple(m) for m in s.time_signatures[:, 1:].tolist()}) > 1]
    assert [Path(path).name for path in changing] == ["freedoom2_D_ROMER2.mid", "freedoom2_D_ULTIMA.mid"]


@pytest.mark.parametrize(
    "options",
    [
        {"percussion_map": "gm", "timing": "drop", "merge_parts": True},
        # 48 ticks: two bars of triplets would exceed the C core's RV_MAX_TICKS (64) and are refused.
        {"percussion_map": "accented", "steps_per_quarter": 12, "dedupe": True},
        {
            "time_signature": "3/4",
            "quarters_per_bar": 3,
            "bars_per_sequence": 2,
            "merge_parts": True,
            "trim": False,
        },
        {"time_signature": "6/8", "quarters_per_bar": 3, "max_offset": 0.1, "normalise_octave": False},
    ],
)
def test_every_file_of_every_corpus_encodes_under_other_settings(corpora: Path, options: dict) -> None:
    result = ingest([corpora], EncodingSettings(**options), progress=False)
    assert (result.report.files_read, result.report.failures) == (sum(FILE_COUNTS.values()), [])
    counts = result.report.counts
    assert counts.bars_seen == counts.bars_kept + sum(counts.bars_discarded.values())
    assert len(result.dataset) > 0 and result.dataset.rolls.max() == 1
