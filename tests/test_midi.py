"""The MIDI reader: what it extracts from files written with mido, and how it refuses broken ones."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import mido
import pytest

from midi_writer import midi_bytes, notes, time_signature, track_name
from rackvae import midi
from rackvae.midi import MidiError


def chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack(">I", len(payload)) + payload


def header(midi_format: int = 0, tracks: int = 1, division: int = 480) -> bytes:
    return chunk(b"MThd", struct.pack(">HHH", midi_format, tracks, division))


def test_reads_notes_names_programs_and_maps_of_a_type_1_file() -> None:
    conductor = [
        track_name("song title"),
        time_signature(0, 3, 4),
        (0, mido.MetaMessage("set_tempo", tempo=400_000)),
        time_signature(1440, 6, 8),
        (1440, mido.MetaMessage("set_tempo", tempo=600_000)),
    ]
    guitar = [
        track_name("Guitar part"),
        (0, mido.MetaMessage("instrument_name", name="nylon")),
        (0, mido.Message("program_change", program=24, channel=2)),
        *notes([(0, 60, 100), (480, 64, 90)], channel=2, duration=240),
        (500, mido.Message("control_change", control=7, value=100, channel=2)),
    ]
    drums = notes([(0, 36, 127), (960, 38, 70)], channel=9, duration=30)
    song = midi.parse(midi_bytes([conductor, guitar, drums], ticks_per_beat=96 * 5))

    assert (song.format, song.ticks_per_beat) == (1, 480)
    assert [(t.name, t.instrument_name, t.programs) for t in song.tracks] == [
        ("song title", "", {}),
        ("Guitar part", "nylon", {2: 24}),
        ("", "", {}),
    ]
    assert song.time_signatures.tolist() == [[0, 3, 4], [1440, 6, 8]]
    assert song.tempos.tolist() == [[0, 400_000], [1440, 600_000]]
    expected = [
        (0, 240, 60, 100, 2, 1),
        (480, 240, 64, 90, 2, 1),
        (0, 30, 36, 127, 9, 2),
        (960, 30, 38, 70, 9, 2),
    ]
    assert song.notes.tolist() == expected
    assert song.program_name(1, 2) == "Acoustic Guitar (nylon)"
    assert song.program_name(2, 9) == "Percussion"
    assert song.program(2, 9) is None
    assert song.end_tick == 1440  # the conductor track is the longest


def test_defaults_without_time_signature_or_tempo() -> None:
    song = midi.parse(midi_bytes([notes([(0, 60, 1)])]))
    assert song.time_signatures.tolist() == [[0, 4, 4]]
    assert song.tempos.tolist() == [[0, 500_000]]


def test_note_pairing_velocity_zero_overlaps_and_unended_notes() -> None:
    track = bytes.fromhex(
        "00903c40"  # t=0 note on 60
        "60903c50"  # t=96 note on 60 again (overlapping: first in, first out)
        "603c00"  # t=192 running status, velocity 0 = note off → ends the first
        "00803c00"  # t=192 note off → ends the second
        "00904001"  # t=192 note on 64, never ended
        "8140ff2f00"  # t=384 end of track
    )
    song = midi.parse(header() + chunk(b"MTrk", track))
    assert song.notes[["onset", "duration", "pitch", "velocity"]].tolist() == [
        (0, 192, 60, 0x40),
        (96, 96, 60, 0x50),
        (192, 192, 64, 1),
    ]


def test_track_without_end_of_track_and_unknown_chunks() -> None:
    track = bytes.fromhex("00993f643089 3f00")  # no FF 2F 00
    data = header(1, 2) + chunk(b"XFIH", b"vendor data") + chunk(b"MTrk", track) + chunk(b"MTrk", track)
    song = midi.parse(data)
    assert song.notes[["onset", "duration", "track"]].tolist() == [(0, 48, 0), (0, 48, 1)]


def test_sysex_and_meta_events_are_skipped_and_keep_running_status() -> None:
    track = bytes.fromhex("00903c4000f00301020300ff0103616263103e4000ff2f00")
    song = midi.parse(header() + chunk(b"MTrk", track))
    assert song.notes[["onset", "pitch"]].tolist() == [(0, 60), (16, 62)]


# Notes at 0 (60) and 32 (62, by running status), ended at 64 and 80; the stray messages between them
# take their deltas with them: clock, song position (2 data bytes), tune request, active sensing,
# MTC quarter frame (1), an undefined real-time byte (0xFD, one byte like every real-time byte).
CLEAN_TRACK = "00903c40 203e40 20803c40 10803e40 00ff2f00"
STRAY_TRACK = "00903c40 08f8 08f20102 08f6 083e40 10fe 10803c40 00f17f 08fd 08803e40 00ff2f00"


def test_stray_system_messages_are_skipped_and_counted_like_a_player_does() -> None:
    clean = midi.parse(header() + chunk(b"MTrk", bytes.fromhex(CLEAN_TRACK)))
    stray = midi.parse(header() + chunk(b"MTrk", bytes.fromhex(STRAY_TRACK)))
    assert stray.notes.tolist() == clean.notes.tolist()
    assert stray.notes[["onset", "duration", "pitch"]].tolist() == [(0, 64, 60), (32, 48, 62)]
    assert (clean.stray_messages, stray.stray_messages) == (0, 6)
    assert stray.end_tick == clean.end_tick == 80


def test_the_ingest_report_counts_the_stray_messages(tmp_path: Path) -> None:
    from rackvae import dataset
    from rackvae.codec import EncodingSettings

    # Two files of one 4/4 bar (96 ticks per beat) with four 16th-note kicks (note 36 = 0x24, running
    # status); one has a stray clock byte after each kick.
    clean = "00992464 182464 182464 182464 8238ff2f00"
    stray = "00992464 00f8 182464 00f8 182464 00f8 182464 00f8 8238ff2f00"
    for name, track in (("clean.mid", clean), ("stray.mid", stray)):
        (tmp_path / name).write_bytes(header(0, 1, 96) + chunk(b"MTrk", bytes.fromhex(track)))
    result = dataset.ingest([tmp_path], EncodingSettings(percussion_map="gm"), jobs=1, progress=False)
    assert result.report.failures == []
    assert result.report.counts.stray_messages == 4
    assert "stray system messages skipped in tracks: 4" in result.report.summary()
    assert result.dataset.rolls[0].tolist() == result.dataset.rolls[1].tolist()
    assert result.dataset.rolls.sum(axis=(1, 2)).tolist() == [4, 4]


@pytest.mark.parametrize("resolution", [89, 96, 120, 960, 1024])
def test_any_ticks_per_beat(resolution: int) -> None:
    song = midi.parse(midi_bytes([notes([(resolution * 3, 40, 50)])], ticks_per_beat=resolution))
    assert song.ticks_per_beat == resolution
    assert song.notes["onset"].tolist() == [resolution * 3]


def test_meta_text_is_utf8_else_latin1() -> None:
    for raw, text in ((b"Caf\xc3\xa9", "Café"), (b"Caf\xe9", "Café")):
        track = b"\x00\xff\x03" + bytes([len(raw)]) + raw + b"\x00\xff\x2f\x00"
        assert midi.parse(header() + chunk(b"MTrk", track)).tracks[0].name == text


BROKEN = {
    "empty": (b"", "empty file"),
    "cut header": (b"MThd\x00\x00\x00\x06\x00", "truncated header (9 bytes)"),
    "garbage": (bytes(range(256)) * 4, "not a MIDI file"),
    "text": (b"MThd is what a MIDI file starts with, but not this one", "bad header length"),
    "format 2": (header(2, 1) + chunk(b"MTrk", b"\x00\xff\x2f\x00"), "format 2"),
    "smpte": (header(0, 1, 0xE728) + chunk(b"MTrk", b"\x00\xff\x2f\x00"), "SMPTE"),
    "zero division": (header(0, 1, 0) + chunk(b"MTrk", b"\x00\xff\x2f\x00"), "0 ticks per beat"),
    "missing track": (header(1, 2) + chunk(b"MTrk", b"\x00\xff\x2f\x00"), "announces 2 tracks"),
    "truncated track": (header() + chunk(b"MTrk", bytes.fromhex("00903c4060803c40"))[:-5], "claims 8 bytes"),
    "cut inside an event": (header() + chunk(b"MTrk", bytes.fromhex("00903c")), "ends inside an event"),
    "absurd chunk length": (header() + b"MTrk\xff\xff\xff\xff\x00\x90\x3c\x40", "claims 4294967295 bytes"),
    "absurd meta length": (
        header() + chunk(b"MTrk", bytes.fromhex("00ff01ffffff7f41")),
        "past the chunk end",
    ),
    "absurd delta": (header() + chunk(b"MTrk", bytes.fromhex("ffffffff7f903c40")), "longer than 4 bytes"),
    "absurd song length": (
        header() + chunk(b"MTrk", bytes.fromhex("00903c40") + bytes.fromhex("ffffff7f803c40") * 17),
        "absurd length",
    ),
    "no status": (header() + chunk(b"MTrk", bytes.fromhex("003c40")), "running status without"),
    "undefined system byte": (
        header() + chunk(b"MTrk", bytes.fromhex("00903c40 10f4 01 103c00 00ff2f00")),
        "undefined status byte 0xF4 at byte 27: its length is unknown",
    ),
    "system message without its data": (
        header() + chunk(b"MTrk", bytes.fromhex("00f201 903c40 00ff2f00")),
        "system message 0xF2 at byte 23 lacks its data bytes",
    ),
    "system message cut by the chunk end": (
        header(1, 2) + chunk(b"MTrk", bytes.fromhex("00f3")) + chunk(b"MTrk", bytes.fromhex("05")),
        "0xF3 at byte 23 lacks its data bytes",
    ),
    "data byte > 127": (header() + chunk(b"MTrk", bytes.fromhex("0090bc40")), "above 127"),
    "overrunning event": (
        header(1, 2) + chunk(b"MTrk", bytes.fromhex("00903c")) + chunk(b"MTrk", b""),
        "past",
    ),
    "invalid meter": (
        header() + chunk(b"MTrk", bytes.fromhex("00ff580400021808")),
        "invalid time signature 0/",
    ),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_files_raise_a_reason_naming_the_file(name: str, tmp_path: Path) -> None:
    data, reason = BROKEN[name]
    path = tmp_path / "broken.mid"
    path.write_bytes(data)
    with pytest.raises(MidiError) as caught:
        midi.read(path)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}: ")


def test_files_beyond_the_size_limit_are_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(midi, "MAX_FILE_BYTES", 1024 * 1024)  # the real limit is 64 MiB
    path = tmp_path / "huge.mid"
    path.write_bytes(header() + chunk(b"MTrk", bytes(1024 * 1024)))
    with pytest.raises(MidiError, match="absurd length: larger than 1 MiB"):
        midi.read(path)


def test_missing_file_is_a_midi_error(tmp_path: Path) -> None:
    with pytest.raises(MidiError, match="cannot open"):
        midi.read(tmp_path / "nothing.mid")


def _as_utf8(latin1: str) -> str:
    """mido decodes meta text as Latin-1; the reader prefers UTF-8 when the bytes are UTF-8."""
    try:
        return latin1.encode("latin-1").decode("utf-8").strip()
    except UnicodeDecodeError:
        return latin1.strip()


def _read_with_mido(data: bytes) -> tuple[int, list[tuple[int, ...]], list[list[int]], list[str]]:
    """What the reader should find, from mido: ticks per beat, notes (onset, duration, pitch,
    velocity, channel, track; paired first-in first-out), time signatures (the last per tick, 4/4 at 0
    by default) and track names."""
    reference = mido.MidiFile(file=io.BytesIO(data), clip=True)
    found: list[tuple[int, ...]] = []
    signatures = {0: [0, 4, 4]}
    names = []
    for index, track in enumerate(reference.tracks):
        tick = 0
        sounding: dict[tuple[int, int], list[int]] = {}
        track_notes: list[list[int]] = []
        names.append(_as_utf8(next((m.name for m in track if m.type == "track_name"), "")))
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                sounding.setdefault((message.channel, message.note), []).append(len(track_notes))
                track_notes.append([tick, -1, message.note, message.velocity, message.channel, index])
            elif message.type in ("note_on", "note_off") and sounding.get((message.channel, message.note)):
                note = track_notes[sounding[(message.channel, message.note)].pop(0)]
                note[1] = tick - note[0]
            elif message.type == "time_signature":
                signatures[tick] = [tick, message.numerator, message.denominator]
        for note in track_notes:
            if note[1] < 0:
                note[1] = tick - note[0]
        found.extend(tuple(note) for note in track_notes)
    return reference.ticks_per_beat, found, [signatures[t] for t in sorted(signatures)], names


@pytest.mark.slow
def test_every_shipped_file_reads_as_mido_reads_it(corpora: Path) -> None:
    files = sorted(p for p in corpora.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    assert len(files) == 1248
    for path in files:
        data = path.read_bytes()
        song = midi.parse(data, str(path))
        ticks_per_beat, found, signatures, names = _read_with_mido(data)
        assert song.ticks_per_beat == ticks_per_beat, path
        assert song.notes.tolist() == found, path
        assert song.time_signatures.tolist() == signatures, path
        assert [t.name for t in song.tracks] == names, path
