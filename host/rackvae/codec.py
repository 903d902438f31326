"""Songs ↔ fixed-grid rolls: bars on a step grid, part selection, percussion maps, and back to MIDI.

One sequence is ``bars_per_sequence`` consecutive bars of the requested meter, ``ticks`` steps long
(``steps_per_quarter * quarters_per_bar * bars_per_sequence``), with one row per pitch (pitched
parts; 128 here, trimmed per dataset in ``rackvae.dataset``) or per percussion-map row. A roll cell
is 1 where a note starts; ``velocities`` holds its velocity and ``offsets`` its timing: how far the
onset sits from its step, in steps (-0.5..0.5, positive = late). Where onsets merge into one cell, the
loudest one gives both (of equally loud ones, the first).

Bars follow the file's time-signature map: every meter change starts a new bar (restating the
current meter changes nothing). Bars cut short by a change are incomplete and never used. Timing:

- ``strict``: a bar with any onset off the grid is discarded (what the original project's text says);
- ``drop``: onsets off the grid are dropped and counted, the bar kept (what its code did);
- ``snap``: each onset moves to the nearest step (half a step rounds later, as Magenta's quantiser
  does); a bar with an onset further than ``max_offset`` steps away is discarded (0.5 keeps all).

All positions are exact integer arithmetic on MIDI ticks, so odd resolutions (89, 96, 1024 ticks
per beat) and steps that fall between ticks cost no rounding error.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, NamedTuple

import mido
import numpy as np

from rackvae.atomic import atomic_open
from rackvae.dataset import RollLayout, core_limit_problem
from rackvae.midi import PERCUSSION_CHANNEL, Song
from rackvae.percussion import ACCENT_ROW_NOTE, BUILT_IN, PercussionMap, load_map

Timing = Literal["strict", "drop", "snap"]
TIMINGS: tuple[Timing, ...] = ("strict", "drop", "snap")
PITCHES = 128

# Why a bar with notes was not used, in the order they are tested.
DISCARD_REASONS = (
    "other_meter",  # the bar is not in the requested time signature
    "incomplete_bar",  # a meter change cut the bar short
    "off_grid",  # strict timing: an onset off the step grid
    "beyond_max_offset",  # snap timing: an onset further than max_offset from the grid
    "incomplete_sequence",  # too few usable consecutive bars to fill a sequence
    "too_few_notes",  # the sequence holds fewer than min_notes_per_sequence onsets
    "duplicate",  # dedupe: the same roll as an earlier sequence (counted by rackvae.dataset)
)


class EncodingError(Exception):
    """Settings or a song that cannot be encoded; the message says why."""


def parse_time_signature(text: str) -> tuple[int, int]:
    """``"6/8"`` → (6, 8); the denominator must be a power of two, as MIDI stores it."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or int(match[1]) < 1 or int(match[2]) not in (1, 2, 4, 8, 16, 32, 64, 128):
        raise EncodingError(f"time signature must look like 4/4 or 6/8, got {text!r}")
    return int(match[1]), int(match[2])


@dataclass(frozen=True)
class EncodingSettings:
    """Every option of the encoding, with defaults; JSON-able through ``to_dict``/``from_dict``."""

    steps_per_quarter: int = 4  # 4 → 16ths, 12 → 16th triplets
    quarters_per_bar: float = 4  # must match time_signature (4/4 → 4, 6/8 → 3, 3/8 → 1.5)
    bars_per_sequence: int = 1
    time_signature: str = "4/4"  # only bars of this meter are used
    timing: Timing = "snap"
    max_offset: float = 0.5  # snap: discard bars with an onset further off, in steps (0.5 keeps all)
    include: tuple[str, ...] = ()  # regexes (searched, any case) on track, instrument and GM program names
    exclude: tuple[str, ...] = ()
    percussion_map: str | None = None  # built-in name or map file; None encodes pitched parts
    percussion_names: tuple[str, ...] = ()  # regexes naming percussion parts besides channel 10
    merge_parts: bool = False  # all selected parts of a file into one roll, else one roll per part
    normalise_octave: bool = True  # pitched: transpose each sequence so its lowest note is in octave 0
    trim: bool = True  # pitched: keep only the pitch rows used anywhere in the dataset
    min_notes_per_sequence: int = 2
    dedupe: bool = False  # drop sequences whose roll repeats an earlier one
    accent_velocity: int = 100  # accent rows of a percussion map light up from this velocity

    def __post_init__(self) -> None:
        for name in ("include", "exclude", "percussion_names"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            for pattern in getattr(self, name):
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise EncodingError(
                        f"{name}: invalid regular expression {pattern!r} ({error})"
                    ) from error
        if self.percussion_map is not None and self.percussion_map.lower() not in BUILT_IN:
            # A map file is recorded with the dataset and the model: absolute, so that they read it from
            # any folder (a built-in map is its name)
            path = Path(self.percussion_map)
            if path.is_file():
                object.__setattr__(self, "percussion_map", str(path.resolve()))
        if self.timing not in TIMINGS:
            raise EncodingError(f"timing must be one of {', '.join(TIMINGS)}, got {self.timing!r}")
        if self.steps_per_quarter < 1 or self.bars_per_sequence < 1:
            raise EncodingError("steps_per_quarter and bars_per_sequence must be at least 1")
        if not 0.0 <= self.max_offset <= 0.5:
            raise EncodingError(f"max_offset is in steps, from 0 to 0.5; got {self.max_offset}")
        if not 1 <= self.accent_velocity <= 127:
            raise EncodingError(f"accent_velocity must be a MIDI velocity 1..127, got {self.accent_velocity}")
        numerator, denominator = self.meter
        bar_quarters = Fraction(4 * numerator, denominator)
        if Fraction(self.quarters_per_bar) != bar_quarters:
            raise EncodingError(
                f"time signature {self.time_signature} has {float(bar_quarters):g} quarters per bar, "
                f"quarters_per_bar is {self.quarters_per_bar:g}"
            )
        if (bar_quarters * self.steps_per_quarter).denominator != 1:
            raise EncodingError(
                f"a {self.time_signature} bar is not a whole number of steps "
                f"at {self.steps_per_quarter} steps per quarter"
            )
        # Fail now: a bad map with its own error, not in every worker; rolls the C core cannot decode
        # with the limit they exceed, not at export.
        layout = layout_for(self)
        problem = core_limit_problem(self.ticks, layout.rows, len(layout.group_sizes))
        if problem:
            raise EncodingError(problem)

    @property
    def meter(self) -> tuple[int, int]:
        """(numerator, denominator) of ``time_signature``."""
        return parse_time_signature(self.time_signature)

    @property
    def steps_per_bar(self) -> int:
        return int(Fraction(self.quarters_per_bar) * self.steps_per_quarter)

    @property
    def ticks(self) -> int:
        """Sequence length in steps (the roll's ``ticks`` axis)."""
        return self.steps_per_bar * self.bars_per_sequence

    @property
    def is_percussion(self) -> bool:
        return self.percussion_map is not None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("include", "exclude", "percussion_names"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncodingSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise EncodingError(f"unknown encoding settings: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class Part:
    """Notes of one (track, channel), or of all selected ones when merged (track = channel = -1)."""

    track: int
    channel: int
    names: tuple[str, ...]
    notes: np.ndarray


def is_percussion_part(names: tuple[str, ...], channel: int, settings: EncodingSettings) -> bool:
    return channel == PERCUSSION_CHANNEL or _matches_any(settings.percussion_names, names)


def select_parts(song: Song, settings: EncodingSettings) -> list[Part]:
    """The parts the settings ask for: percussion or pitched, then include/exclude by name."""
    notes = song.notes
    keys = notes["track"].astype(np.int32) * 16 + notes["channel"]
    parts = []
    for key in np.unique(keys):
        track, channel = divmod(int(key), 16)
        names = tuple(
            name
            for name in (
                song.tracks[track].name,
                song.tracks[track].instrument_name,
                song.program_name(track, channel),
            )
            if name
        )
        if is_percussion_part(names, channel, settings) != settings.is_percussion:
            continue
        if settings.include and not _matches_any(settings.include, names):
            continue
        if _matches_any(settings.exclude, names):
            continue
        parts.append(Part(track, channel, names, notes[keys == key]))
    if settings.merge_parts and len(parts) > 1:
        merged = np.concatenate([part.notes for part in parts])
        return [Part(-1, -1, tuple(name for part in parts for name in part.names), merged)]
    if settings.merge_parts and parts:
        return [dataclasses.replace(parts[0], track=-1, channel=-1)]
    return parts


def _matches_any(patterns: tuple[str, ...], names: tuple[str, ...]) -> bool:
    return any(re.search(pattern, name, re.IGNORECASE) for pattern in patterns for name in names)


@dataclass
class OffsetStats:
    """How far onsets sit from their nearest grid step (in bars of the requested meter)."""

    onsets: int = 0
    exact: int = 0
    within_eighth: int = 0  # |offset| <= 1/8 step
    within_quarter: int = 0  # |offset| <= 1/4 step
    sum_abs: float = 0.0  # in steps

    def add(self, other: OffsetStats) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def mean_abs(self) -> float:
        return self.sum_abs / self.onsets if self.onsets else 0.0


@dataclass
class EncodingCounts:
    """What happened to the bars and notes of the selected parts; add() merges counts of many songs."""

    parts: int = 0
    bars_seen: int = 0  # bars (of one part, or of the merged parts) holding at least one onset
    bars_kept: int = 0
    bars_discarded: Counter[str] = field(default_factory=Counter)
    onsets: int = 0
    onsets_dropped_off_grid: int = 0  # drop timing
    onsets_merged: int = 0  # onsets landing on a cell already set
    unmapped_notes: Counter[int] = field(default_factory=Counter)  # percussion notes the map lacks
    offsets: OffsetStats = field(default_factory=OffsetStats)
    stray_messages: int = 0  # system messages the MIDI reader skipped (rackvae.midi)

    def add(self, other: EncodingCounts) -> None:
        for name in (
            "parts",
            "bars_seen",
            "bars_kept",
            "onsets",
            "onsets_dropped_off_grid",
            "onsets_merged",
            "stray_messages",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.bars_discarded.update(other.bars_discarded)
        self.unmapped_notes.update(other.unmapped_notes)
        self.offsets.add(other.offsets)


@dataclass
class EncodedSong:
    """Sequences of one song before dataset-wide trimming: rows are 128 pitches or the map's rows.

    ``sequence_bars`` is the number of bars with onsets in each sequence, so a dataset can move them
    from kept to ``duplicate`` when it dedupes.
    """

    velocities: np.ndarray  # uint8 [n, ticks, rows]; 0 where no onset
    offsets: np.ndarray  # float32 [n, ticks, rows]: the onset's distance from its step, in steps
    track: np.ndarray  # int32 [n]
    bar: np.ndarray  # int32 [n], first bar (0-based, counted through meter changes)
    sequence_bars: np.ndarray  # int32 [n]
    counts: EncodingCounts

    @property
    def rolls(self) -> np.ndarray:
        """uint8 [n, ticks, rows]: 1 where an onset is."""
        return (self.velocities > 0).astype(np.uint8)


@dataclass(frozen=True)
class _MeterMap:
    """The song's bars: segments of one meter each, starting at ``start`` ticks."""

    start: np.ndarray  # int64 [segments]
    numerator: np.ndarray
    denominator: np.ndarray
    is_target: np.ndarray  # bool: the requested meter
    full_bars: np.ndarray  # complete bars in the segment (the last one is open-ended)
    first_bar: np.ndarray  # index of the segment's first bar in the whole song


_OPEN_ENDED = np.int64(2**62)


def _meter_map(song: Song, settings: EncodingSettings) -> _MeterMap:
    events = song.time_signatures
    changes = [0]  # an event restating the current meter changes nothing
    for index in range(1, len(events)):
        if tuple(events[index, 1:]) != tuple(events[changes[-1], 1:]):
            changes.append(index)
    events = events[changes]
    start, numerator, denominator = events[:, 0], events[:, 1], events[:, 2]
    target_numerator, target_denominator = settings.meter
    bar_ticks_num = song.ticks_per_beat * 4 * numerator  # bar length in ticks = this / denominator
    length = np.append(start[1:] - start[:-1], 0)
    full_bars = length * denominator // bar_ticks_num
    partial = (length * denominator) % bar_ticks_num > 0
    full_bars[-1] = _OPEN_ENDED
    bars_in_segment = full_bars + partial
    first_bar = np.concatenate([[0], np.cumsum(bars_in_segment[:-1])]).astype(np.int64)
    return _MeterMap(
        start=start,
        numerator=numerator,
        denominator=denominator,
        is_target=(numerator == target_numerator) & (denominator == target_denominator),
        full_bars=full_bars,
        first_bar=first_bar,
    )


def encode_song(song: Song, settings: EncodingSettings) -> EncodedSong:
    """Cut the selected parts of ``song`` into sequences; count what was kept and why the rest was not."""
    percussion_map = load_map(settings.percussion_map) if settings.percussion_map else None
    rows = len(percussion_map.rows) if percussion_map else PITCHES
    meters = _meter_map(song, settings)
    counts = EncodingCounts(stray_messages=song.stray_messages)
    pieces = [
        _encode_part(part, song.ticks_per_beat, meters, settings, percussion_map, rows, counts)
        for part in select_parts(song, settings)
    ]
    counts.parts = len(pieces)

    def joined(values: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
        return np.concatenate([empty, *values])

    return EncodedSong(
        velocities=joined([p.velocities for p in pieces], np.zeros((0, settings.ticks, rows), np.uint8)),
        offsets=joined([p.offsets for p in pieces], np.zeros((0, settings.ticks, rows), np.float32)),
        track=joined([p.track for p in pieces], np.zeros(0, np.int32)),
        bar=joined([p.bar for p in pieces], np.zeros(0, np.int32)),
        sequence_bars=joined([p.sequence_bars for p in pieces], np.zeros(0, np.int32)),
        counts=counts,
    )


class _PartSequences(NamedTuple):
    velocities: np.ndarray
    offsets: np.ndarray
    track: np.ndarray
    bar: np.ndarray
    sequence_bars: np.ndarray


def _encode_part(
    part: Part,
    ticks_per_beat: int,
    meters: _MeterMap,
    settings: EncodingSettings,
    percussion_map: PercussionMap | None,
    rows: int,
    counts: EncodingCounts,
) -> _PartSequences:
    """Velocity and offset rolls [n, ticks, rows], track, first bar and bars with onsets of each kept
    sequence."""
    tpb = ticks_per_beat
    spq = settings.steps_per_quarter
    steps_per_bar = settings.steps_per_bar
    n_bars = settings.bars_per_sequence
    onset = part.notes["onset"]

    # Segment of each onset. Snapping lets an onset within half a step before a meter change
    # belong to the new segment's first step.
    if settings.timing == "snap":
        segment = np.searchsorted(meters.start * 2 * spq, onset * 2 * spq + tpb, side="right") - 1
    else:
        segment = np.searchsorted(meters.start, onset, side="right") - 1
    relative = onset - meters.start[segment]  # ticks from the segment start (≥ -half a step)
    target = meters.is_target[segment]

    # Steps (exact: step = relative * spq / tpb). Offsets from the nearest step, in 1/tpb steps.
    scaled = relative * spq
    nearest = (2 * scaled + tpb) // (2 * tpb)
    offset = scaled - nearest * tpb
    step = nearest if settings.timing == "snap" else scaled // tpb
    off_grid = scaled % tpb != 0

    bar_in_segment = np.where(
        target,
        step // steps_per_bar,
        np.maximum(relative, 0) * meters.denominator[segment] // (tpb * 4 * meters.numerator[segment]),
    )
    complete = bar_in_segment < meters.full_bars[segment]
    song_bar = meters.first_bar[segment] + bar_in_segment
    measured = target & complete

    # Onset statistics over bars of the requested meter.
    distance = np.abs(offset[measured])
    counts.onsets += len(onset)
    counts.offsets.add(
        OffsetStats(
            onsets=len(distance),
            exact=int(np.count_nonzero(distance == 0)),
            within_eighth=int(np.count_nonzero(8 * distance <= tpb)),
            within_quarter=int(np.count_nonzero(4 * distance <= tpb)),
            sum_abs=float(distance.sum()) / tpb,
        )
    )

    # Bar verdicts, one per bar with onsets.
    bars, note_bar = np.unique(song_bar, return_inverse=True)
    note_bar = note_bar.reshape(-1)

    def any_per_bar(flags: np.ndarray) -> np.ndarray:
        return np.bincount(note_bar, weights=flags, minlength=len(bars)) > 0

    bar_target = any_per_bar(target)
    bar_complete = any_per_bar(complete)
    bar_off_grid = (
        any_per_bar(measured & off_grid) if settings.timing == "strict" else np.zeros(len(bars), bool)
    )
    if settings.timing == "snap":
        bar_beyond = any_per_bar(measured & (np.abs(offset) > settings.max_offset * tpb))
    else:
        bar_beyond = np.zeros(len(bars), bool)
    bar_usable = bar_target & bar_complete & ~bar_off_grid & ~bar_beyond

    # Sequences: windows of n_bars consecutive bars from each segment's start, inside its complete bars.
    window_in_segment = bar_in_segment // n_bars
    window_start = meters.first_bar[segment] + window_in_segment * n_bars
    window_fits = (window_in_segment + 1) * n_bars <= meters.full_bars[segment]
    windows, note_window = np.unique(window_start, return_inverse=True)
    note_window = note_window.reshape(-1)
    bar_window = np.zeros(len(bars), np.int64)
    bar_window[note_bar] = note_window
    window_usable = np.bincount(bar_window, weights=~bar_usable, minlength=len(windows)) == 0
    window_usable &= np.bincount(note_window, weights=~window_fits, minlength=len(windows)) == 0

    # Which onsets are placed: in a usable window, on the grid (drop timing), on a map row.
    placed = window_usable[note_window] & measured
    if settings.timing == "drop":
        counts.onsets_dropped_off_grid += int(np.count_nonzero(placed & off_grid))
        placed &= ~off_grid
    pitch = part.notes["pitch"]
    if percussion_map is not None:
        row = percussion_map.row_of_note[pitch].astype(np.int64)
        unmapped = placed & (row < 0)
        counts.unmapped_notes.update(pitch[unmapped].tolist())
        placed &= row >= 0
    else:
        row = pitch.astype(np.int64)

    used_windows, sequence_of_note = np.unique(note_window[placed], return_inverse=True)
    sequence_of_note = sequence_of_note.reshape(-1)
    tick = (bar_in_segment[placed] % n_bars) * steps_per_bar + step[placed] % steps_per_bar
    row = row[placed]
    velocity = part.notes["velocity"][placed]
    onset_offset = offset[placed] / tpb  # in steps; 0 for drop and strict timing (on the grid)
    if percussion_map is None and settings.normalise_octave and len(row):
        lowest = np.full(len(used_windows), PITCHES, np.int64)
        np.minimum.at(lowest, sequence_of_note, row)
        row = row - (lowest // 12 * 12)[sequence_of_note]

    cells = (sequence_of_note * settings.ticks + tick) * rows + row
    unique_cells = np.unique(cells)
    counts.onsets_merged += len(cells) - len(unique_cells)
    hits_per_sequence = np.bincount(unique_cells // (settings.ticks * rows), minlength=len(used_windows))
    if percussion_map is not None:
        accent_row = percussion_map.accent_row_of_row[row].astype(np.int64)
        accented = (accent_row >= 0) & (velocity >= settings.accent_velocity)
        accent_cells = (sequence_of_note * settings.ticks + tick) * rows + accent_row
        cells = np.concatenate([cells, accent_cells[accented]])
        velocity = np.concatenate([velocity, velocity[accented]])
        onset_offset = np.concatenate([onset_offset, onset_offset[accented]])
    # The loudest onset of each cell (the first of equally loud ones) gives its velocity and offset.
    order = np.lexsort((-velocity.astype(np.int64), cells))
    first = np.ones(len(order), bool)
    first[1:] = cells[order][1:] != cells[order][:-1]
    loudest = order[first]
    shape = (len(used_windows), settings.ticks, rows)
    velocities = np.zeros(shape, np.uint8)
    velocities.reshape(-1)[cells[loudest]] = velocity[loudest]
    offsets = np.zeros(shape, np.float32)
    offsets.reshape(-1)[cells[loudest]] = onset_offset[loudest]

    # Windows with onsets but none placed hold no sequence: too few notes as well.
    window_hits = np.zeros(len(windows), np.int64)
    window_hits[used_windows] = hits_per_sequence
    window_kept = window_usable & (window_hits >= max(1, settings.min_notes_per_sequence))

    verdict = np.select(
        [
            ~bar_target,
            ~bar_complete,
            bar_off_grid,
            bar_beyond,
            ~window_usable[bar_window],
            ~window_kept[bar_window],
        ],
        list(range(6)),
        default=-1,
    )
    counts.bars_seen += len(bars)
    counts.bars_kept += int(np.count_nonzero(verdict < 0))
    for reason_index, number in zip(*np.unique(verdict[verdict >= 0], return_counts=True), strict=True):
        counts.bars_discarded[DISCARD_REASONS[reason_index]] += int(number)

    keep = window_kept[used_windows]
    kept_windows = used_windows[keep]
    sequence_bars = np.bincount(bar_window, minlength=len(windows))[kept_windows]
    return _PartSequences(
        velocities=velocities[keep],
        offsets=offsets[keep],
        track=np.full(len(kept_windows), part.track, np.int32),
        bar=windows[kept_windows].astype(np.int32),
        sequence_bars=sequence_bars.astype(np.int32),
    )


def layout_for(settings: EncodingSettings, base_note: int = 0, rows: int = PITCHES) -> RollLayout:
    """Rows of rolls encoded with ``settings``: the map's, else ``rows`` pitches from ``base_note``."""
    if settings.percussion_map is not None:
        percussion_map = load_map(settings.percussion_map)
        return RollLayout(
            kind="perc",
            rows=len(percussion_map.rows),
            group_sizes=percussion_map.group_sizes,
            row_names=percussion_map.row_names,
            row_notes=percussion_map.row_notes,
        )
    notes = tuple(range(base_note, base_note + rows))
    return RollLayout(
        kind="note", rows=rows, base_note=base_note, row_names=tuple(map(note_name, notes)), row_notes=notes
    )


_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch: int) -> str:
    """Scientific pitch name, MIDI 60 = C4."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def roll_to_midi(
    roll: np.ndarray,
    layout: RollLayout,
    velocities: np.ndarray | None = None,
    *,
    tempo_bpm: float = 120.0,
    steps_per_quarter: int = 4,
    time_signature: str = "4/4",
    note_steps: float = 1.0,
    ticks_per_beat: int = 480,
    velocity: int = 90,
    accent_velocity: int = 127,
    offsets: np.ndarray | None = None,
) -> mido.MidiFile:
    """A one-track MIDI file playing ``roll`` (``[ticks, rows]``, or ``[n, ticks, rows]`` played in turn).

    Note rolls play ``base_note + row`` on channel 1; percussion rolls play each row's ``row_notes``
    on channel 10, and an accent row (``row_notes`` = -1) plays no note but raises the hits of its
    group at that step to ``accent_velocity``. With ``velocities`` the hits keep their own velocity,
    with ``offsets`` (steps, as ingest keeps them) each hit sounds that far from its step: kept within
    the ticks that ingest snaps back onto the same step, and not before the file's start.
    Notes last ``note_steps`` steps, cut short where the same row plays again.
    """
    roll = np.asarray(roll).reshape(-1, layout.rows) > 0
    if velocities is not None:
        velocities = np.asarray(velocities).reshape(roll.shape)
    # Half a step rounds later when ingested: the latest tick that stays on the step is one before.
    latest = 0.5 - steps_per_quarter / ticks_per_beat
    shift = (
        np.zeros(roll.shape)
        if offsets is None
        else np.clip(np.asarray(offsets).reshape(roll.shape), -0.5, latest)
    )
    is_percussion = layout.kind == "perc"
    row_notes = np.array(
        layout.row_notes if is_percussion else range(layout.base_note, layout.base_note + layout.rows)
    )
    if np.any((row_notes > 127) | (row_notes < ACCENT_ROW_NOTE)):
        raise EncodingError(f"layout plays notes outside MIDI's 0..127: {row_notes.min()}..{row_notes.max()}")
    hit_velocity = np.full(roll.shape, velocity, np.int64)
    if is_percussion:
        _raise_accented_hits(roll, layout, row_notes, hit_velocity, accent_velocity)
    if velocities is not None:
        hit_velocity = np.where(velocities > 0, velocities, hit_velocity)
    hit_velocity = np.clip(hit_velocity, 1, 127)

    def step_tick(step: np.ndarray | int) -> np.ndarray:
        return np.rint(np.asarray(step) * ticks_per_beat / steps_per_quarter).astype(np.int64)

    events = []  # (tick, order, message): note-offs sort before note-ons at one tick
    channel = PERCUSSION_CHANNEL if is_percussion else 0
    for row in np.flatnonzero(row_notes >= 0):
        onsets = np.flatnonzero(roll[:, row])
        if not len(onsets):
            continue
        starts = np.maximum(onsets + shift[onsets, row], 0.0)
        next_starts = np.append(starts[1:], len(roll) + note_steps)
        ends = np.minimum(starts + note_steps, next_starts)
        for start, end, vel in zip(
            step_tick(starts), step_tick(ends), hit_velocity[onsets, row], strict=True
        ):
            note = int(row_notes[row])
            events.append(
                (int(start), 1, mido.Message("note_on", channel=channel, note=note, velocity=int(vel)))
            )
            events.append((int(max(end, start + 1)), 0, mido.Message("note_off", channel=channel, note=note)))
    numerator, denominator = parse_time_signature(time_signature)
    track = mido.MidiTrack(
        [
            mido.MetaMessage("track_name", name="rackvae"),
            mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm)),
        ]
    )
    now = 0
    for tick, _, message in sorted(events, key=lambda event: (event[0], event[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    end_of_roll = int(step_tick(len(roll)))
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_of_roll - now)))
    return mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat, tracks=[track])


def _raise_accented_hits(
    roll: np.ndarray,
    layout: RollLayout,
    row_notes: np.ndarray,
    hit_velocity: np.ndarray,
    accent_velocity: int,
) -> None:
    """Where an accent row is on, its group's hits at that step play at ``accent_velocity``."""
    start = 0
    for size in layout.group_sizes:
        group = np.arange(start, start + size)
        accent_rows = group[row_notes[group] == ACCENT_ROW_NOTE]
        if len(accent_rows):
            accented_steps = roll[:, accent_rows].any(axis=1)
            hit_velocity[np.ix_(accented_steps, group)] = accent_velocity
        start += size


def save_midi(midi_file: mido.MidiFile, path: str | Path) -> None:
    """Write ``midi_file`` atomically."""
    with atomic_open(path, "wb") as handle:
        midi_file.save(file=handle)
