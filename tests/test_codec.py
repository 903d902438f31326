"""Encoding songs into rolls: exact rolls for known patterns, meter changes, resolutions, parts, decoding."""

from __future__ import annotations

import io
import json

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from midi_writer import midi_bytes, notes, time_signature, track_name
from rackvae import midi
from rackvae.codec import (
    EncodingError,
    EncodingSettings,
    encode_song,
    layout_for,
    roll_to_midi,
    save_midi,
    select_parts,
)
from rackvae.dataset import ingest
from rackvae.percussion import BUILT_IN, EXTENDED

KICK, SNARE, CLOSED_HAT, OPEN_HAT = 0, 1, 8, 9  # rows of the Extended map
STEP = 120  # ticks per 16th at 480 ticks per beat
BAR = 16 * STEP


def roll(hits: dict[int, list[int]], ticks: int = 16, rows: int = 12) -> np.ndarray:
    """A roll with 1 at (step, row) for row → steps."""
    expected = np.zeros((ticks, rows), np.uint8)
    for row, steps in hits.items():
        expected[steps, row] = 1
    return expected


def encode(data: bytes, **options: object):
    return encode_song(midi.parse(data), EncodingSettings(**options))


# Four bars of drums with known timing (480 ticks per beat, 16ths = 120 ticks):
#   bar 0: exactly on the grid;
#   bar 1: snare 30 ticks late (1/4 step), a hat 50 ticks early (5/12 step);
#   bar 2: snare on step 3, a kick 70 ticks after step 15 (nearer bar 3's first step);
#   bar 3: snare on step 4.
GROOVE = [
    *[(BAR * 0 + STEP * s, 36, 100) for s in (0, 8)],
    *[(BAR * 0 + STEP * s, 38, 90) for s in (4, 12)],
    *[(BAR * 0 + STEP * s, 42, 60) for s in range(0, 16, 2)],
    (BAR * 1 + 0, 36, 101),
    (BAR * 1 + STEP * 4 + 30, 38, 91),
    (BAR * 1 + STEP * 2 - 50, 42, 61),
    (BAR * 1 + STEP * 6, 42, 62),
    (BAR * 2 + STEP * 3, 38, 92),
    (BAR * 2 + STEP * 15 + 70, 36, 102),
    (BAR * 3 + STEP * 4, 38, 93),
]
BAR_0 = roll({KICK: [0, 8], SNARE: [4, 12], CLOSED_HAT: list(range(0, 16, 2))})


def groove_file() -> bytes:
    return midi_bytes([[track_name("drums"), *notes(GROOVE)]])


def test_strict_keeps_only_bars_entirely_on_the_grid() -> None:
    encoded = encode(groove_file(), percussion_map="extended", timing="strict")
    assert np.array_equal(encoded.rolls, [BAR_0])
    assert encoded.bar.tolist() == [0]
    assert encoded.velocities[0, 0, KICK] == 100 and encoded.velocities[0, 4, SNARE] == 90
    counts = encoded.counts
    assert (counts.bars_seen, counts.bars_kept) == (4, 1)
    assert counts.bars_discarded == {"off_grid": 2, "too_few_notes": 1}


def test_drop_removes_off_grid_onsets_and_keeps_the_bar() -> None:
    encoded = encode(groove_file(), percussion_map="extended", timing="drop")
    assert np.array_equal(encoded.rolls, [BAR_0, roll({KICK: [0], CLOSED_HAT: [6]})])
    assert encoded.bar.tolist() == [0, 1]
    assert encoded.counts.onsets_dropped_off_grid == 3
    assert encoded.counts.bars_discarded == {"too_few_notes": 2}  # bar 2: one snare left; bar 3: one snare


def test_snap_moves_onsets_to_the_nearest_step_across_bar_lines() -> None:
    encoded = encode(groove_file(), percussion_map="extended", timing="snap")
    bar_1 = roll({KICK: [0], SNARE: [4], CLOSED_HAT: [2, 6]})
    bar_3 = roll({KICK: [0], SNARE: [4]})
    assert np.array_equal(encoded.rolls, [BAR_0, bar_1, bar_3])
    assert encoded.bar.tolist() == [0, 1, 3]
    assert encoded.velocities[1, 2, CLOSED_HAT] == 61 and encoded.velocities[2, 0, KICK] == 102
    assert encoded.counts.bars_discarded == {"too_few_notes": 1}  # bar 2 lost its kick to bar 3
    offsets = encoded.counts.offsets
    assert (offsets.onsets, offsets.exact, offsets.within_eighth, offsets.within_quarter) == (19, 16, 16, 17)
    assert offsets.sum_abs == pytest.approx((30 + 50 + 50) / STEP)


def test_snap_rounds_half_a_step_later() -> None:
    data = midi_bytes(
        [notes([(STEP * 2 + 60, 38, 90), (STEP * 2 + 59, 42, 90), (BAR - 60, 36, 90), (BAR + 1, 42, 9)])]
    )
    encoded = encode(data, percussion_map="extended")
    assert np.array_equal(
        encoded.rolls, [roll({SNARE: [3], CLOSED_HAT: [2]}), roll({KICK: [0], CLOSED_HAT: [0]})]
    )


def test_snap_max_offset_discards_bars_with_onsets_further_off() -> None:
    encoded = encode(groove_file(), percussion_map="extended", timing="snap", max_offset=0.25)
    assert np.array_equal(encoded.rolls, [BAR_0])  # 1/4 step late is allowed, 5/12 early is not
    assert encoded.counts.bars_discarded == {"beyond_max_offset": 2, "too_few_notes": 1}


def test_onsets_snapping_onto_one_step_of_one_row_merge() -> None:
    # 42 and 22 (TD-11 hi-hat edge) share the closed hi-hat row; the loudest velocity wins.
    data = midi_bytes([notes([(0, 42, 50), (20, 22, 90), (STEP * 4, 38, 70)])])
    encoded = encode(data, percussion_map="extended")
    assert np.array_equal(encoded.rolls, [roll({CLOSED_HAT: [0], SNARE: [4]})])
    assert encoded.velocities[0, 0, CLOSED_HAT] == 90
    assert encoded.counts.onsets_merged == 1
    assert encoded.offsets[0, 0, CLOSED_HAT] == pytest.approx(20 / STEP)  # the loud one's timing


def test_snap_keeps_each_onset_s_offset_from_its_step() -> None:
    encoded = encode(groove_file(), percussion_map="extended", timing="snap")
    expected = np.zeros((3, 16, 12), np.float32)
    expected[1, 4, SNARE] = 30 / STEP  # late
    expected[1, 2, CLOSED_HAT] = -50 / STEP  # early
    expected[2, 0, KICK] = (70 - STEP) / STEP  # bar 2's last step + 70 ticks: bar 3's first, early
    assert encoded.offsets.dtype == np.float32
    assert np.allclose(encoded.offsets, expected, atol=1e-7)
    for timing in ("strict", "drop"):  # only onsets on the grid are placed
        assert not encode(groove_file(), percussion_map="extended", timing=timing).offsets.any()


def test_merged_cells_keep_the_loudest_onset_s_offset_the_first_of_equals() -> None:
    data = midi_bytes(
        [notes([(-10 + STEP * 4, 38, 60), (25 + STEP * 4, 38, 110), (5 + STEP * 4, 38, 80),
                (STEP * 8 - 40, 36, 70), (STEP * 8 + 30, 36, 70), (STEP * 8 + 10, 36, 50)])]
    )  # fmt: skip
    encoded = encode(data, percussion_map="extended")
    assert (encoded.velocities[0, 4, SNARE], encoded.velocities[0, 8, KICK]) == (110, 70)
    assert encoded.offsets[0, 4, SNARE] == pytest.approx(25 / STEP)
    assert encoded.offsets[0, 8, KICK] == pytest.approx(-40 / STEP)
    assert encoded.counts.onsets_merged == 4


def test_accent_rows_take_the_offset_of_their_loudest_accented_onset() -> None:
    # 38, 40 and 37 play the snare row; all three are loud enough to light its accent row.
    hits = [(STEP * 2 + 12, 38, 105), (STEP * 2 - 24, 40, 120), (STEP * 6 + 6, 37, 110)]
    encoded = encode(midi_bytes([notes(hits)]), percussion_map="accented")
    layout = layout_for(EncodingSettings(percussion_map="accented"))
    accent = layout.row_names.index("snare accent")
    assert encoded.velocities[0, 2, accent] == 120 and encoded.velocities[0, 6, accent] == 110
    assert encoded.offsets[0, 2, accent] == pytest.approx(-24 / STEP)
    assert encoded.offsets[0, 6, accent] == pytest.approx(6 / STEP)


# Meter map at 96 ticks per beat (a 16th = 24 ticks; 4/4 bar 384, 3/4 bar 288, 7/8 bar 336):
#   4/4 at 0 (bar 0) | 3/4 at 384 (bars 1, 2) | 4/4 at 960 (bar 3 full, bar 4 cut to 192 ticks)
#   | 7/8 at 1536 (bar 5) | 4/4 at 1872 (bars 6, 7, ...), restated mid-bar at 2356 (no change).
METER_STARTS = {0: 0, 1: 384, 2: 672, 3: 960, 4: 1344, 5: 1536, 6: 1872, 7: 2256}


def meter_file() -> bytes:
    conductor = [
        time_signature(0, 4, 4),
        time_signature(384, 3, 4),
        time_signature(960, 4, 4),
        time_signature(1536, 7, 8),
        time_signature(1872, 4, 4),
        time_signature(2356, 4, 4),
    ]
    # In every bar: a kick on its first step and a snare on its third step (48 ticks in).
    hits = [
        (start + offset, pitch, 100)
        for start in METER_STARTS.values()
        for offset, pitch in ((0, 36), (48, 38))
    ]
    return midi_bytes([conductor, notes(hits, duration=5)], ticks_per_beat=96)


def test_bars_follow_meter_changes() -> None:
    encoded = encode(meter_file(), percussion_map="extended", timing="strict")
    pattern = roll({KICK: [0], SNARE: [2]})
    assert np.array_equal(encoded.rolls, [pattern] * 4)
    assert encoded.bar.tolist() == [0, 3, 6, 7]
    assert encoded.counts.bars_discarded == {"other_meter": 3, "incomplete_bar": 1}


def test_other_meters_are_encoded_when_asked_for() -> None:
    three_four = encode(meter_file(), percussion_map="extended", time_signature="3/4", quarters_per_bar=3)
    assert three_four.rolls.shape == (2, 12, 12)
    assert three_four.bar.tolist() == [1, 2]
    seven_eight = encode(meter_file(), percussion_map="extended", time_signature="7/8", quarters_per_bar=3.5)
    assert seven_eight.rolls.shape == (1, 14, 12) and seven_eight.bar.tolist() == [5]


def test_multi_bar_sequences_take_consecutive_bars_of_one_meter() -> None:
    encoded = encode(meter_file(), percussion_map="extended", timing="strict", bars_per_sequence=2)
    pattern = roll({KICK: [0, 16], SNARE: [2, 18]}, ticks=32)
    assert np.array_equal(encoded.rolls, [pattern])
    assert encoded.bar.tolist() == [6]
    assert encoded.counts.bars_discarded == {"other_meter": 3, "incomplete_bar": 1, "incomplete_sequence": 2}
    assert encoded.counts.bars_kept == 2


@pytest.mark.parametrize("resolution", [89, 96, 120, 960, 1024])
def test_the_same_music_at_any_resolution_gives_the_same_rolls(resolution: int) -> None:
    # Bar 0 on quarter notes (whole ticks at any resolution), bar 1 on 16ths (22.25 ticks at 89).
    steps = [(0, 36), (4, 38), (8, 36), (12, 38), (16, 36), (18, 42), (22, 42), (25, 38), (31, 42)]
    hits = [(round(step * resolution / 4), pitch, 80) for step, pitch in steps]
    data = midi_bytes([notes(hits, duration=1)], ticks_per_beat=resolution)
    expected = [
        roll({KICK: [0, 8], SNARE: [4, 12]}),
        roll({KICK: [0], CLOSED_HAT: [2, 6, 15], SNARE: [9]}),
    ]
    assert np.array_equal(encode(data, percussion_map="extended").rolls, expected)
    strict = encode(data, percussion_map="extended", timing="strict")
    assert np.array_equal(strict.rolls, expected[:1] if resolution == 89 else expected)


def test_triplet_grid() -> None:
    # Eighth-note triplets (160 ticks) are 4 steps apart at 12 steps per quarter; 16ths cannot hold them.
    data = midi_bytes([notes([(160 * i, 42, 70) for i in range(12)])])
    triplets = encode(data, percussion_map="extended", timing="strict", steps_per_quarter=12)
    assert np.array_equal(triplets.rolls, [roll({CLOSED_HAT: list(range(0, 48, 4))}, ticks=48)])
    assert len(encode(data, percussion_map="extended", timing="strict").rolls) == 0


def band_file() -> bytes:
    return midi_bytes(
        [
            [track_name("conductor"), time_signature(0, 4, 4)],
            [track_name("Drums"), *notes([(0, 36, 100), (STEP * 4, 38, 100)])],
            [
                track_name("Lead"),
                (0, mido.Message("program_change", program=29, channel=0)),
                *notes([(0, 64, 90), (STEP, 67, 90)], channel=0),
            ],
            [
                track_name("Bass"),
                (0, mido.Message("program_change", program=33, channel=1)),
                *notes([(0, 40, 90), (STEP * 8, 43, 90)], channel=1),
            ],
            [
                (0, mido.MetaMessage("instrument_name", name="Timpani")),
                *notes([(0, 45, 90), (STEP * 12, 45, 90)], channel=2),
            ],
        ]
    )


@pytest.mark.parametrize(
    ("options", "tracks"),
    [
        ({}, [2, 3, 4]),
        ({"include": ["guitar"]}, [2]),  # the GM program name of 29: Overdriven Guitar
        ({"include": ["^bass$", "timp"]}, [3, 4]),  # track name, instrument name
        ({"exclude": ["lead", "bass"]}, [4]),
        ({"percussion_names": ["timpani"]}, [2, 3]),
        ({"percussion_map": "extended"}, [1]),
        ({"percussion_map": "extended", "percussion_names": ["timpani"]}, [1, 4]),
        ({"merge_parts": True}, [-1]),
    ],
)
def test_part_selection(options: dict, tracks: list[int]) -> None:
    song = midi.parse(band_file())
    settings = EncodingSettings(**options)
    assert [part.track for part in select_parts(song, settings)] == tracks
    assert encode_song(song, settings).track.tolist() == tracks


def test_merged_parts_fold_into_one_roll() -> None:
    encoded = encode(band_file(), merge_parts=True, normalise_octave=False)
    expected = roll({64: [0], 67: [1], 40: [0], 43: [8], 45: [0, 12]}, rows=128)
    assert np.array_equal(encoded.rolls, [expected])


def test_normalise_octave_moves_the_lowest_note_into_octave_zero() -> None:
    data = midi_bytes([notes([(0, 50, 90), (STEP, 55, 90), (STEP * 2, 62, 90)], channel=0)])
    assert np.array_equal(encode(data).rolls, [roll({2: [0], 7: [1], 14: [2]}, rows=128)])
    assert np.array_equal(
        encode(data, normalise_octave=False).rolls, [roll({50: [0], 55: [1], 62: [2]}, rows=128)]
    )


def test_min_notes_per_sequence() -> None:
    data = midi_bytes([notes([(0, 60, 90), (BAR, 60, 90), (BAR + STEP, 62, 90)], channel=0)])
    assert encode(data).bar.tolist() == [1]
    assert encode(data, min_notes_per_sequence=1).bar.tolist() == [0, 1]
    assert encode(data, min_notes_per_sequence=3).bar.tolist() == []


def test_percussion_notes_outside_the_map_are_counted() -> None:
    data = midi_bytes([notes([(0, 36, 90), (STEP, 38, 90), (STEP, 75, 90), (STEP * 2, 75, 90)])])
    encoded = encode(data, percussion_map="extended")
    assert np.array_equal(encoded.rolls, [roll({KICK: [0], SNARE: [1]})])
    assert encoded.counts.unmapped_notes == {75: 2}


def test_accent_rows_light_up_from_the_accent_velocity() -> None:
    data = midi_bytes([notes([(0, 36, 120), (STEP, 38, 99), (STEP * 2, 38, 100)])])
    encoded = encode(data, percussion_map="accented")
    # Accented rows: kick 0, kick accent 1, snare 2, snare accent 3, ...
    assert np.array_equal(encoded.rolls, [roll({0: [0], 1: [0], 2: [1, 2], 3: [2]}, rows=10)])
    assert encoded.velocities[0, 2, 3] == 100


def test_settings_round_trip_through_json_and_validate() -> None:
    settings = EncodingSettings(
        steps_per_quarter=12, time_signature="6/8", quarters_per_bar=3, include=["a"], percussion_map="gm"
    )
    assert settings.ticks == 36
    again = EncodingSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings
    assert EncodingSettings().ticks == 16
    for bad, message in (
        ({"time_signature": "3/4"}, "3 quarters per bar"),
        ({"time_signature": "4/5"}, "must look like"),
        ({"timing": "loose"}, "timing must be"),
        ({"include": ["("]}, "invalid regular expression"),
        ({"max_offset": 0.7}, "max_offset"),
        ({"steps_per_quarter": 3, "time_signature": "3/8", "quarters_per_bar": 1.5}, "not a whole number"),
        ({"percussion_map": "no-such-map"}, "neither a built-in map"),
    ):
        with pytest.raises(Exception, match=message):
            EncodingSettings(**bad)
    with pytest.raises(EncodingError, match="unknown encoding settings: colour"):
        EncodingSettings.from_dict({"colour": "red"})


def midi_messages(midi_file: mido.MidiFile) -> list[tuple[int, str, int, int, int]]:
    """(absolute tick, type, channel, note, velocity) of the note messages."""
    tick, found = 0, []
    for message in midi_file.tracks[0]:
        tick += message.time
        if message.type in ("note_on", "note_off"):
            velocity = message.velocity if message.type == "note_on" else 0
            found.append((tick, message.type, message.channel, message.note, velocity))
    return found


def test_roll_to_midi_plays_each_row_s_note_on_channel_10() -> None:
    layout = layout_for(EncodingSettings(percussion_map="extended"))
    pattern = roll({KICK: [0, 3], OPEN_HAT: [2]})
    velocities = pattern * 77
    midi_file = roll_to_midi(pattern, layout, velocities, tempo_bpm=90, steps_per_quarter=4, note_steps=4)
    assert midi_file.ticks_per_beat == 480
    metas = {m.type: m for m in midi_file.tracks[0] if m.is_meta}
    assert metas["set_tempo"].tempo == mido.bpm2tempo(90)
    assert (metas["time_signature"].numerator, metas["time_signature"].denominator) == (4, 4)
    assert midi_messages(midi_file) == [
        (0, "note_on", 9, 36, 77),
        (240, "note_on", 9, 46, 77),
        (360, "note_off", 9, 36, 0),  # cut short where the kick plays again
        (360, "note_on", 9, 36, 77),
        (720, "note_off", 9, 46, 0),
        (840, "note_off", 9, 36, 0),
    ]
    assert sum(m.time for m in midi_file.tracks[0]) == 16 * 120


def test_roll_to_midi_pitched_and_accents() -> None:
    note_layout = layout_for(EncodingSettings(), base_note=60, rows=12)
    midi_file = roll_to_midi(roll({0: [0], 7: [1]}, rows=12), note_layout, velocity=64)
    assert [m[:4] for m in midi_messages(midi_file) if m[1] == "note_on"] == [
        (0, "note_on", 0, 60),
        (120, "note_on", 0, 67),
    ]
    accented = layout_for(EncodingSettings(percussion_map="accented"))
    midi_file = roll_to_midi(roll({0: [0, 1], 1: [1]}, rows=10), accented, velocity=70, accent_velocity=120)
    assert [(m[0], m[3], m[4]) for m in midi_messages(midi_file) if m[1] == "note_on"] == [
        (0, 36, 70),
        (120, 36, 120),
    ]


def test_saved_midi_file_ingests_back_to_the_roll(tmp_path) -> None:
    settings = EncodingSettings(percussion_map="extended")
    pattern = np.stack([BAR_0, roll({KICK: [0, 10], OPEN_HAT: [3]})])
    save_midi(roll_to_midi(pattern, layout_for(settings)), tmp_path / "pattern.mid")
    data = ingest([tmp_path], settings, progress=False).dataset
    assert np.array_equal(data.rolls, pattern)
    assert [p.name for p in tmp_path.iterdir()] == ["pattern.mid"]


def reencode(midi_file: mido.MidiFile, settings: EncodingSettings):
    buffer = io.BytesIO()
    midi_file.save(file=buffer)
    return encode_song(midi.parse(buffer.getvalue()), settings)


@st.composite
def percussion_rolls(draw: st.DrawFn) -> tuple[str, int, int, np.ndarray, np.ndarray]:
    """(map name, steps per quarter, ticks per beat, rolls [bars, ticks, rows], velocities)."""
    name = draw(st.sampled_from(sorted(BUILT_IN)))
    percussion_map = BUILT_IN[name]
    steps_per_quarter = draw(st.sampled_from([2, 3, 4, 6, 12]))
    ticks_per_beat = draw(st.sampled_from([89, 96, 480, 1024]))
    shape = (draw(st.integers(1, 3)), steps_per_quarter * 4, len(percussion_map.rows))
    random = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    hits = random.random(shape) < draw(st.floats(0.0, 0.5))
    hits &= np.array(percussion_map.row_notes) >= 0  # accent rows follow the velocities below
    velocities = np.where(hits, random.integers(1, 128, shape), 0).astype(np.uint8)
    accent = percussion_map.accent_row_of_row
    for row in np.flatnonzero(accent >= 0):
        if accent[row] != row:
            loud = velocities[:, :, row] >= 100
            velocities[:, :, accent[row]] = np.where(
                loud, velocities[:, :, row], velocities[:, :, accent[row]]
            )
    return name, steps_per_quarter, ticks_per_beat, (velocities > 0).astype(np.uint8), velocities


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(percussion_rolls())
def test_percussion_roll_to_midi_to_roll(example: tuple[str, int, int, np.ndarray, np.ndarray]) -> None:
    name, steps_per_quarter, ticks_per_beat, rolls, velocities = example
    encoding = EncodingSettings(
        percussion_map=name, steps_per_quarter=steps_per_quarter, min_notes_per_sequence=1
    )
    midi_file = roll_to_midi(
        rolls,
        layout_for(encoding),
        velocities,
        steps_per_quarter=steps_per_quarter,
        ticks_per_beat=ticks_per_beat,
    )
    encoded = reencode(midi_file, encoding)
    played = np.flatnonzero(rolls.any(axis=(1, 2)))
    assert encoded.bar.tolist() == played.tolist()
    assert np.array_equal(encoded.rolls, rolls[played])
    assert np.array_equal(encoded.velocities, velocities[played])


@settings(max_examples=40, deadline=None)
@given(
    base_note=st.integers(0, 100),
    steps=st.lists(
        st.tuples(st.integers(0, 31), st.integers(0, 27), st.integers(1, 127)), min_size=1, max_size=40
    ),
)
def test_pitched_roll_to_midi_to_roll(base_note: int, steps: list[tuple[int, int, int]]) -> None:
    velocities = np.zeros((32, 28), np.uint8)
    for step, row, velocity in steps:
        velocities[step, row] = velocity
    layout = layout_for(EncodingSettings(), base_note=base_note, rows=28)
    midi_file = roll_to_midi(velocities > 0, layout, velocities, note_steps=3)
    encoding = EncodingSettings(normalise_octave=False, trim=False, min_notes_per_sequence=1, timing="strict")
    encoded = reencode(midi_file, encoding)
    expected = np.zeros((2, 16, 128), np.uint8)
    rows = slice(base_note, base_note + 28)
    expected[:, :, rows] = velocities.reshape(2, 16, 28)
    played = np.flatnonzero(expected.any(axis=(1, 2)))
    assert np.array_equal(encoded.velocities, expected[played])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_notes_sound_at_their_offsets_and_ingest_gets_them_back(seed: int) -> None:
    rng = np.random.default_rng(seed)
    played = rng.random((48, 12)) < 0.3  # three bars of the Extended map
    velocities = np.where(played, rng.integers(1, 128, played.shape), 0).astype(np.uint8)
    offsets = np.where(played, rng.uniform(-0.5, 0.5, played.shape), 0.0)
    offsets[0, :] = np.where(played[0], -0.3, 0.0)  # before the file's start: played on it
    offsets[5, :] = np.where(played[5], 0.5, 0.0)  # half a step late would snap to the next step
    layout = layout_for(EncodingSettings(percussion_map="extended"))
    midi_file = roll_to_midi(played, layout, velocities, offsets=offsets, note_steps=0.25)
    encoded = reencode(midi_file, EncodingSettings(percussion_map="extended", min_notes_per_sequence=1))
    kept = np.flatnonzero(played.reshape(3, 16, 12).any(axis=(1, 2)))
    assert np.array_equal(encoded.velocities, velocities.reshape(3, 16, 12)[kept])
    expected = np.minimum(offsets, 59 / 120)  # the latest tick that stays on the step
    expected[0] = 0.0
    # 480 ticks per beat: a step is 120 ticks, an offset is off by at most half a tick.
    assert np.abs(encoded.offsets - expected.reshape(3, 16, 12)[kept]).max() <= 0.5 / 120 + 1e-6


def test_extended_map_rows_in_the_layout() -> None:
    layout = layout_for(EncodingSettings(percussion_map="extended"))
    assert (layout.kind, layout.rows, layout.group_sizes) == ("perc", 12, (1, 1, 6, 2, 2))
    assert layout.row_notes == EXTENDED.row_notes
    assert layout.row_names[KICK] == "kick" and layout.row_names[OPEN_HAT] == "open hi-hat"
