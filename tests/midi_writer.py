"""Write small MIDI files with mido for the ingest tests: events at absolute ticks, one list per track."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import mido

Event = tuple[int, mido.Message | mido.MetaMessage]  # (absolute tick, message)


def notes(onsets: Iterable[tuple[int, int, int]], channel: int = 9, duration: int = 10) -> list[Event]:
    """note_on/note_off pairs for (tick, pitch, velocity) onsets."""
    events: list[Event] = []
    for tick, pitch, velocity in onsets:
        events.append((tick, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)))
        events.append((tick + duration, mido.Message("note_off", note=pitch, channel=channel)))
    return events


def time_signature(tick: int, numerator: int, denominator: int) -> Event:
    return tick, mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)


def track_name(name: str) -> Event:
    return 0, mido.MetaMessage("track_name", name=name)


def midi_bytes(tracks: list[list[Event]], ticks_per_beat: int = 480, midi_type: int = 1) -> bytes:
    """A standard MIDI file holding ``tracks`` (events sorted by tick, stable)."""
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track = mido.MidiTrack()
        now = 0
        for tick, message in sorted(events, key=lambda event: event[0]):
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def write(path: Path, tracks: list[list[Event]], ticks_per_beat: int = 480, midi_type: int = 1) -> Path:
    path.write_bytes(midi_bytes(tracks, ticks_per_beat, midi_type))
    return path
