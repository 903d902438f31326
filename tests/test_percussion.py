"""Percussion maps: the built-in maps' shapes and notes, and user maps from JSON/YAML files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from rackvae.percussion import (
    ACCENT_ROW_NOTE,
    BUILT_IN,
    EXTENDED,
    GM,
    SIMPLE,
    PercussionMapError,
    load_map,
)

GENERAL_MIDI_DRUMS = range(35, 82)
TD11_NOTES = (22, 26, 58)


def test_built_in_map_shapes() -> None:
    shapes = {name: (len(m.rows), m.group_sizes) for name, m in BUILT_IN.items()}
    assert shapes == {
        "simple": (6, (1, 1, 1, 2, 1)),
        "extended": (12, (1, 1, 6, 2, 2)),
        "accented": (10, (2, 2, 2, 2, 2)),
        "gm": (49, (2, 4, 6, 5, 7, 25)),
    }


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_each_row_s_decoding_note_maps_back_to_that_row(name: str) -> None:
    percussion_map = BUILT_IN[name]
    for row, note in enumerate(percussion_map.row_notes):
        if note != ACCENT_ROW_NOTE:
            assert percussion_map.row_of_note[note] == row


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_every_map_takes_the_groove_corpus_roland_notes(name: str) -> None:
    assert all(BUILT_IN[name].row_of_note[note] >= 0 for note in TD11_NOTES)


def test_the_original_maps_with_ride_added_to_simple() -> None:
    # The original project's Extended map, row by row (its PercussionMap.py), plus the TD-11 notes.
    original_extended = [
        {35, 36}, {37, 38, 39, 40}, {41, 61}, {43, 60}, {45}, {47}, {48, 80}, {50, 81},
        {42, 44}, {46}, {51, 59, 53, 54, 56}, {49, 57, 52, 55},
    ]  # fmt: skip
    added = [set(), set(), set(), {58}, set(), set(), set(), set(), {22}, {26}, set(), set()]
    assert [set(row.notes) for row in EXTENDED.rows] == [
        a | b for a, b in zip(original_extended, added, strict=True)
    ]
    assert SIMPLE.row_of_note[51] == SIMPLE.row_of_note[49]  # ride joins the cymbals row


def test_gm_map_covers_every_general_midi_drum_note_once() -> None:
    mapped = np.flatnonzero(GM.row_of_note >= 0).tolist()
    assert mapped == sorted([*GENERAL_MIDI_DRUMS, 22, 26])
    assert len(set(GM.row_of_note[mapped].tolist())) == len(mapped)


def test_accent_rows_belong_to_their_group() -> None:
    accented = BUILT_IN["accented"]
    assert accented.row_notes[1::2] == (ACCENT_ROW_NOTE,) * 5
    assert accented.accent_row_of_row.tolist() == [1, 1, 3, 3, 5, 5, 7, 7, 9, 9]
    assert (EXTENDED.accent_row_of_row == -1).all()


def test_user_maps_from_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "kit.yaml"
    yaml_file.write_text(
        "name: two-piece\n"
        "groups:\n"
        "  - [{name: kick, notes: [36, 35]}]\n"
        "  - [{name: snare, notes: [38]}, {name: snare accent, accent: true}]\n"
    )
    from_yaml = load_map(str(yaml_file))
    assert (from_yaml.name, from_yaml.group_sizes, from_yaml.row_notes) == ("two-piece", (1, 2), (36, 38, -1))
    json_file = tmp_path / "kit.json"
    json_file.write_text(json.dumps({"groups": [[{"name": "hat", "notes": [42]}]]}))
    assert load_map(str(json_file)).name == "kit"
    assert load_map("EXTENDED") is EXTENDED


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("groups: [[{name: a, notes: [36]}], [{name: b, notes: [36]}]]", "note 36 in both 'a' and 'b'"),
        ("groups: [[{name: a}]]", "row 'a' has no notes"),
        ("groups: [[{name: a, notes: [200]}]]", "note 200 is not a MIDI note"),
        ("groups: [[{name: a, accent: true}]]", "group starts with accent row"),
        (
            "groups: [[{name: a, notes: [36]}, {name: b, notes: [37], accent: true}]]",
            "accent row 'b' lists notes",
        ),
        ("groups: [[{name: a, notes: [x]}]]", "notes must be integers"),
        ("groups: [[]]", "empty group"),
        ("rows: []", "expected a mapping with a 'groups' list"),
        (
            "groups: [{",
            "cannot read (expected the node content, but found '<stream end>' at line 1, column 11)",
        ),
    ],
)
def test_bad_user_maps_name_the_file_and_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PercussionMapError, match=re.escape(reason)) as caught:
        load_map(str(path))
    # one line, the file named once (not "bad.yaml: percussion map bad.yaml: ...")
    assert str(caught.value).count(str(path)) == 1 and "\n" not in str(caught.value)


def test_unknown_map_name() -> None:
    with pytest.raises(PercussionMapError, match="neither a built-in map"):
        load_map("no-such-kit")
