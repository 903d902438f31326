"""Percussion maps: MIDI drum notes → roll rows, grouped for the module's trigger and accent outputs.

A map is a list of groups, each a list of rows; a row collects drum notes that play as one instrument
(e.g. every bass drum note → the kick row). The module fires one trigger per group and, in groups of
more than one row, an accent voltage saying which row played (see DESIGN.md, ``perdec`` metadata).

Built-in maps, by name:

- ``simple``: the original project's SimplePercussionMap (6 rows, groups 1,1,1,2,1); the original left
  ride 51 unmapped, here it joins the cymbals.
- ``extended``: the original's ExtendedPercussionMap (12 rows, groups 1,1,6,2,2), the demo's map.
- ``accented``: the original's AccentedPercussionMap (10 rows, groups 2,2,2,2,2): each group is a hit
  row and an accent row, on when the hit's velocity reaches ``accent_velocity``.
- ``gm``: one row per General MIDI drum note (35-81) plus the Roland TD-11 notes 22 and 26, in six
  family groups (49 rows).

All of them map the Roland TD-11 notes the Groove corpus uses: 22 (closed hi-hat edge) and 26 (open
hi-hat edge) to the hi-hat rows, and 58 (tom 3 rim; Vibraslap in General MIDI) to the tom rows (with
43, tom 3's head) in ``simple``, ``extended`` and ``accented``; ``gm`` gives 58 a row of its own.

User maps are JSON or YAML files::

    name: my-kit
    groups:
      - [{name: kick, notes: [36, 35]}]
      - [{name: snare, notes: [38, 40, 37]}, {name: snare accent, accent: true}]
      - [{name: closed hat, notes: [42, 44]}, {name: open hat, notes: [46]}]

The first note of a row is the one played when a roll is decoded back to MIDI.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ACCENT_ROW_NOTE = -1  # RollLayout.row_notes entry of an accent row: it plays no note of its own

GM_DRUM_NAMES = {
    22: "Hi-Hat Edge (TD-11)", 26: "Open Hi-Hat Edge (TD-11)",
    35: "Acoustic Bass Drum", 36: "Bass Drum 1", 37: "Side Stick", 38: "Acoustic Snare",
    39: "Hand Clap", 40: "Electric Snare", 41: "Low Floor Tom", 42: "Closed Hi-Hat",
    43: "High Floor Tom", 44: "Pedal Hi-Hat", 45: "Low Tom", 46: "Open Hi-Hat",
    47: "Low-Mid Tom", 48: "Hi-Mid Tom", 49: "Crash Cymbal 1", 50: "High Tom",
    51: "Ride Cymbal 1", 52: "Chinese Cymbal", 53: "Ride Bell", 54: "Tambourine",
    55: "Splash Cymbal", 56: "Cowbell", 57: "Crash Cymbal 2", 58: "Vibraslap / Tom 3 Rim (TD-11)",
    59: "Ride Cymbal 2", 60: "Hi Bongo", 61: "Low Bongo", 62: "Mute Hi Conga",
    63: "Open Hi Conga", 64: "Low Conga", 65: "High Timbale", 66: "Low Timbale",
    67: "High Agogo", 68: "Low Agogo", 69: "Cabasa", 70: "Maracas",
    71: "Short Whistle", 72: "Long Whistle", 73: "Short Guiro", 74: "Long Guiro",
    75: "Claves", 76: "Hi Wood Block", 77: "Low Wood Block", 78: "Mute Cuica",
    79: "Open Cuica", 80: "Mute Triangle", 81: "Open Triangle",
}  # fmt: skip


class PercussionMapError(Exception):
    """A percussion map that cannot be used; the message names the map and the reason."""


@dataclass(frozen=True)
class PercussionRow:
    name: str
    notes: tuple[int, ...] = ()
    accent: bool = False  # set when a hit of this row's group is loud, instead of by notes


@dataclass(frozen=True)
class PercussionMap:
    name: str
    groups: tuple[tuple[PercussionRow, ...], ...]

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for group in self.groups:
            if not group:
                raise PercussionMapError(f"percussion map {self.name}: empty group")
            if group[0].accent:
                raise PercussionMapError(
                    f"percussion map {self.name}: group starts with accent row {group[0].name!r}"
                )
            for row in group:
                if row.accent and row.notes:
                    raise PercussionMapError(
                        f"percussion map {self.name}: accent row {row.name!r} lists notes"
                    )
                if not row.accent and not row.notes:
                    raise PercussionMapError(f"percussion map {self.name}: row {row.name!r} has no notes")
                for note in row.notes:
                    if not 0 <= note <= 127:
                        raise PercussionMapError(
                            f"percussion map {self.name}: note {note} is not a MIDI note"
                        )
                    if note in seen:
                        raise PercussionMapError(
                            f"percussion map {self.name}: note {note} in both {seen[note]!r} and {row.name!r}"
                        )
                    seen[note] = row.name

    @property
    def rows(self) -> tuple[PercussionRow, ...]:
        return tuple(row for group in self.groups for row in group)

    @property
    def group_sizes(self) -> tuple[int, ...]:
        return tuple(len(group) for group in self.groups)

    @property
    def row_names(self) -> tuple[str, ...]:
        return tuple(row.name for row in self.rows)

    @property
    def row_notes(self) -> tuple[int, ...]:
        """The note each row plays when decoded: its first note, ``ACCENT_ROW_NOTE`` for accent rows."""
        return tuple(ACCENT_ROW_NOTE if row.accent else row.notes[0] for row in self.rows)

    @functools.cached_property
    def row_of_note(self) -> np.ndarray:
        """int16[128]: the row of each MIDI note, -1 where the map has none."""
        lookup = np.full(128, -1, np.int16)
        for index, row in enumerate(self.rows):
            lookup[list(row.notes)] = index
        return lookup

    @functools.cached_property
    def accent_row_of_row(self) -> np.ndarray:
        """int16[rows]: the accent row of each row's group, -1 where the group has none."""
        lookup = np.full(len(self.rows), -1, np.int16)
        start = 0
        for group in self.groups:
            accents = [start + offset for offset, row in enumerate(group) if row.accent]
            if accents:
                lookup[start : start + len(group)] = accents[0]
            start += len(group)
        return lookup


def _row(name: str, *notes: int) -> PercussionRow:
    return PercussionRow(name, notes)


def _accent(name: str) -> PercussionRow:
    return PercussionRow(f"{name} accent", accent=True)


_KICKS = (36, 35)
_SNARES = (38, 40, 37, 39)
_TOMS = (41, 43, 45, 47, 48, 50, 58)
_CLOSED_HATS = (42, 44, 22)
_OPEN_HATS = (46, 26)
_RIDES = (51, 59, 53, 54, 56)
_CRASHES = (49, 57, 52, 55)

SIMPLE = PercussionMap(
    "simple",
    (
        (_row("kick", *_KICKS),),
        (_row("snare", *_SNARES),),
        (_row("toms", *_TOMS),),
        (_row("closed hi-hat", *_CLOSED_HATS), _row("open hi-hat", *_OPEN_HATS)),
        (_row("cymbals", *_CRASHES, *_RIDES),),
    ),
)

EXTENDED = PercussionMap(
    "extended",
    (
        (_row("kick", *_KICKS),),
        (_row("snare", *_SNARES),),
        (
            _row("low floor tom", 41, 61),
            _row("high floor tom", 43, 58, 60),
            _row("low tom", 45),
            _row("low-mid tom", 47),
            _row("hi-mid tom", 48, 80),
            _row("high tom", 50, 81),
        ),
        (_row("closed hi-hat", *_CLOSED_HATS), _row("open hi-hat", *_OPEN_HATS)),
        (_row("ride", *_RIDES), _row("crash", *_CRASHES)),
    ),
)

ACCENTED = PercussionMap(
    "accented",
    (
        (_row("kick", *_KICKS), _accent("kick")),
        (_row("snare", *_SNARES), _accent("snare")),
        (_row("toms", *_TOMS), _accent("toms")),
        (_row("hi-hat", *_CLOSED_HATS, *_OPEN_HATS), _accent("hi-hat")),
        (_row("cymbals", *_RIDES, *_CRASHES), _accent("cymbals")),
    ),
)


def _gm_group(*notes: int) -> tuple[PercussionRow, ...]:
    return tuple(_row(GM_DRUM_NAMES[note], note) for note in notes)


GM = PercussionMap(
    "gm",
    (
        _gm_group(35, 36),
        _gm_group(37, 38, 39, 40),
        _gm_group(41, 43, 45, 47, 48, 50),
        _gm_group(42, 22, 44, 46, 26),
        _gm_group(49, 51, 52, 53, 55, 57, 59),
        _gm_group(54, 56, 58, *range(60, 82)),
    ),
)

BUILT_IN = {m.name: m for m in (SIMPLE, EXTENDED, ACCENTED, GM)}


@functools.lru_cache(maxsize=16)
def load_map(name_or_path: str) -> PercussionMap:
    """A built-in map by name (``simple``, ``extended``, ``accented``, ``gm``) or a JSON/YAML map file."""
    built_in = BUILT_IN.get(name_or_path.lower())
    if built_in is not None:
        return built_in
    path = Path(name_or_path)
    if not path.is_file():
        raise PercussionMapError(
            f"percussion map {name_or_path!r}: neither a built-in map ({', '.join(BUILT_IN)}) nor a file"
        )
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        raise PercussionMapError(f"percussion map {path}: cannot read ({_one_line(error)})") from error
    return _map_from_data(data, path)


def _one_line(error: Exception) -> str:
    """A YAML error's problem and where it is (its own text spans lines), else the error's text."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem or error.context} at line {mark.line + 1}, column {mark.column + 1}"
    return str(error)


def _map_from_data(data: Any, path: Path) -> PercussionMap:
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise PercussionMapError(f"percussion map {path}: expected a mapping with a 'groups' list")
    groups = []
    for group in data["groups"]:
        if not isinstance(group, list):
            raise PercussionMapError(f"percussion map {path}: each group must be a list of rows")
        rows = []
        for row in group:
            if not isinstance(row, dict) or "name" not in row:
                raise PercussionMapError(f"percussion map {path}: each row needs a name ({row!r})")
            notes = row.get("notes", [])
            if not isinstance(notes, list) or not all(isinstance(n, int) for n in notes):
                raise PercussionMapError(f"percussion map {path}: row {row['name']!r} notes must be integers")
            rows.append(PercussionRow(str(row["name"]), tuple(notes), bool(row.get("accent", False))))
        groups.append(tuple(rows))
    try:
        return PercussionMap(str(data.get("name", path.stem)), tuple(groups))
    except PercussionMapError as error:  # it names the map, not the file
        raise PercussionMapError(f"{path}: {error}") from error
