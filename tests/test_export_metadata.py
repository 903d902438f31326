"""xen metadata: the byte layout of the brief, its container in a real .tflite, the original firmware's
search-and-copy, files in the original exporter's style, and damaged files."""

from __future__ import annotations

import dataclasses

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rackvae.calibrate import Thresholds
from rackvae.dataset import RollLayout
from rackvae.export.container import with_metadata_buffer, with_xen_metadata
from rackvae.export.metadata import (
    ACCENT_ROW,
    CHANNEL_NAMES,
    DEFAULT_THRESHOLD,
    MAX_CHANNELS,
    MetadataError,
    XenMetadata,
    description_bytes,
    locate_xen_metadata,
    read_xen_metadata,
)
from rackvae.export.tflite import convert_decoder
from rackvae.model import random_decoder_layers

# The extended map's General MIDI notes; rows 3 and 7 made accent rows to carry the byte 255.
GM_NOTES = (36, 38, 42, ACCENT_ROW, 46, 49, 51, ACCENT_ROW, 48, 45, 50, 47)
NOTE = XenMetadata("note", rows=24, ticks=16, latent_scale=3, base_note=36, threshold=0.35)
PERC = XenMetadata(
    "perc",
    rows=12,
    ticks=16,
    latent_scale=3,
    group_sizes=(1, 1, 6, 2, 2),
    threshold=0.35,
    group_thresholds=(0.4, 0.3, 0.25, 0.1, 0.0),
    row_notes=GM_NOTES,
)
# Bytes >= 128 in every field that can hold them: 128 rows x 48 ticks, a group of 200, scale 130.
WIDE_NOTE = XenMetadata(
    "note", rows=128, ticks=48, latent_scale=130, base_note=0, latent_dim=5, threshold=1.0
)
WIDE_PERC = XenMetadata("perc", rows=202, ticks=48, latent_scale=3, group_sizes=(2, 200), latent_dim=2)
V1_NOTE = XenMetadata("note", rows=24, ticks=16, latent_scale=3, base_note=36, extension_version=1)
V1_PERC = XenMetadata(
    "perc", rows=12, ticks=16, latent_scale=3, group_sizes=(1, 1, 6, 2, 2), extension_version=1
)
# A groove model's metadata: the version 2 fields of PERC, then channels 3 and the ids 0 1 2 (the
# version left to be derived: 3).
GROOVE = dataclasses.replace(PERC, channel_ids=(0, 1, 2), extension_version=None)
# Converted decoders without our metadata, by (inputs, outputs).
Plain = dict[tuple[int, int], bytes]
CASES = {
    "note": NOTE,
    "perc": PERC,
    "note_128x48": WIDE_NOTE,
    "perc_wide": WIDE_PERC,
    "note_v1": V1_NOTE,
    "perc_v1": V1_PERC,
    "perc_groove": GROOVE,
}


def test_note_bytes_follow_the_table() -> None:
    # threshold 0.35 -> round(89.25) = 89
    assert NOTE.to_bytes() == b"xen:seqdec" + bytes([24, 16, 3]) + b"rv" + bytes([2, 36, 3, 89])
    assert V1_NOTE.to_bytes() == b"xen:seqdec" + bytes([24, 16, 3]) + b"rv" + bytes([1, 36, 3])


def test_perc_bytes_follow_the_table() -> None:
    # thresholds 0.35 0.4 0.3 0.25 0.1 0 -> 89 102 77 64 26 0 (0.3 * 255 = 76.5 rounds up, 63.75 to 64)
    assert PERC.to_bytes() == (
        b"xen:perdec"
        + bytes([12, 16, 3, 5, 1, 1, 6, 2, 2])
        + b"rv"
        + bytes([2, 0, 3, 89, 102, 77, 64, 26, 0, *GM_NOTES])
    )
    assert V1_PERC.to_bytes() == b"xen:perdec" + bytes([12, 16, 3, 5, 1, 1, 6, 2, 2]) + b"rv" + bytes(
        [1, 0, 3]
    )


def test_thresholds_are_held_as_the_bytes_value_and_defaults_fill_the_rest() -> None:
    assert PERC.threshold == 89 / 255 and PERC.group_thresholds == (
        102 / 255,
        77 / 255,
        64 / 255,
        26 / 255,
        0.0,
    )
    assert NOTE.row_notes == tuple(range(36, 60)) and NOTE.group_thresholds == ()
    assert WIDE_NOTE.row_notes[-1] == 127  # base_note + row, at most 127
    # version 2 without thresholds or notes: the default for every group, percussion rows play their index
    assert WIDE_PERC.threshold == WIDE_PERC.group_thresholds[1] == 77 / 255
    assert WIDE_PERC.row_notes == (*range(128), *[127] * 74)
    # before version 2 nothing is stored: the documented default itself, rows as before
    assert V1_PERC.threshold == DEFAULT_THRESHOLD and V1_PERC.group_thresholds == (DEFAULT_THRESHOLD,) * 5
    assert V1_PERC.row_notes == tuple(range(12))


def test_description_is_padded_for_the_firmware_copy() -> None:
    # The firmware copies "xen:" + 6 type bytes + 12 data bytes = 22 bytes.
    assert description_bytes(V1_NOTE) == V1_NOTE.to_bytes() + bytes(22 - 18)
    assert description_bytes(NOTE) == NOTE.to_bytes() + bytes(22 - 19)
    long = XenMetadata("perc", rows=40, ticks=16, latent_scale=3, group_sizes=(5,) * 8)
    assert description_bytes(long) == long.to_bytes()  # already longer than 22 bytes


def test_from_layout_uses_rows_groups_notes_thresholds_and_rounds_scale_half_up() -> None:
    perc = RollLayout(
        "perc",
        12,
        base_note=35,
        group_sizes=(1, 1, 6, 2, 2),
        row_notes=tuple(-1 if n == 255 else n for n in GM_NOTES),
    )
    note = RollLayout("note", 24, base_note=36, row_notes=tuple(range(36, 60)))
    thresholds = Thresholds(0.35, (0.4, 0.3, 0.25, 0.1, 0.0))
    assert XenMetadata.from_layout(perc, 16, 3.0, 3, thresholds) == PERC  # percussion has no base note
    assert XenMetadata.from_layout(note, 16, 2.5, 3, Thresholds(0.35)) == NOTE
    assert XenMetadata.from_layout(note, 16, 2.49, 3).latent_scale == 2
    # a model without thresholds (model.json before calibration): version 2 holding the default
    assert XenMetadata.from_layout(note, 16, 2.5, 3).threshold == 77 / 255


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "note", "rows": 0, "ticks": 16, "latent_scale": 3},
        {"kind": "note", "rows": 256, "ticks": 16, "latent_scale": 3},
        {"kind": "note", "rows": 24, "ticks": 16, "latent_scale": 0},
        {"kind": "note", "rows": 24, "ticks": 16, "latent_scale": 3, "base_note": 128},
        {"kind": "note", "rows": 24, "ticks": 16, "latent_scale": 3, "group_sizes": (24,)},
        {"kind": "perc", "rows": 12, "ticks": 16, "latent_scale": 3},
        {"kind": "perc", "rows": 12, "ticks": 16, "latent_scale": 3, "group_sizes": (12, 0)},
        {"kind": "drum", "rows": 12, "ticks": 16, "latent_scale": 3},
        {"kind": "note", "rows": 24, "ticks": 16, "latent_scale": 3, "threshold": 1.01},
        {"kind": "note", "rows": 24, "ticks": 16, "latent_scale": 3, "threshold": -0.1},
        {
            "kind": "note",
            "rows": 24,
            "ticks": 16,
            "latent_scale": 3,
            "threshold": 0.4,
            "extension_version": 1,
        },
        {"kind": "note", "rows": 2, "ticks": 16, "latent_scale": 3, "row_notes": (40, 41)},
        {"kind": "perc", "rows": 2, "ticks": 16, "latent_scale": 3, "group_sizes": (2,), "row_notes": (36,)},
        {
            "kind": "perc",
            "rows": 2,
            "ticks": 16,
            "latent_scale": 3,
            "group_sizes": (2,),
            "row_notes": (36, 128),
        },
        {
            "kind": "perc",
            "rows": 2,
            "ticks": 16,
            "latent_scale": 3,
            "group_sizes": (1, 1),
            "group_thresholds": (0.5,),
        },
        {
            "kind": "perc",
            "rows": 2,
            "ticks": 16,
            "latent_scale": 3,
            "group_sizes": (2,),
            "extension_version": 0,
            "row_notes": (36, 38),
        },
    ],
)
def test_values_that_do_not_fit_are_refused(fields: dict) -> None:
    with pytest.raises(MetadataError):
        XenMetadata(**fields)


def test_original_firmware_default_perdec_reads_with_trimmed_rows() -> None:
    # xen_quantizer's Metadata default: 11 rows (trimmed) of a 12-row map in 5 groups, no extension.
    original = b"xen:perdec" + bytes([11, 16, 3, 5, 1, 1, 6, 2, 2, 1, 1, 1])
    meta = XenMetadata.from_bytes(original)
    assert (meta.kind, meta.rows, meta.ticks, meta.latent_scale) == ("perc", 11, 16, 3)
    assert meta.group_sizes == (1, 1, 6, 2, 2)
    assert (meta.has_extension, meta.base_note, meta.latent_dim) == (False, 0, 3)
    assert (meta.threshold, meta.row_notes) == (DEFAULT_THRESHOLD, tuple(range(11)))
    # The firmware's getPercussionGroupIndex: consecutive groups, -1 past the last one.
    assert [meta.group_of_row(row) for row in range(13)] == [0, 1, 2, 2, 2, 2, 2, 2, 3, 3, 4, 4, -1]


@pytest.mark.parametrize(
    "data",
    [
        b"xen:seqdex" + bytes([24, 16, 3]),
        b"xen:seqdec" + bytes([24, 16]),
        b"xen:perdec" + bytes([12, 16, 3, 5, 1, 1]),
        b"xen:seqdec" + bytes([24, 16, 3]) + b"rv" + bytes([1, 36]),
        b"xen:seqdec" + bytes([24, 16, 3]) + b"rv" + bytes([0, 36, 3]),
        b"xen:seqdec" + bytes([24, 16, 3]) + b"rv" + bytes([2, 36, 3]),
        b"xen:perdec" + bytes([2, 16, 3, 1, 2]) + b"rv" + bytes([2, 0, 3, 89, 89, 36]),
        b"xon:seqdec" + bytes([24, 16, 3]),
    ],
)
def test_truncated_or_unknown_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(MetadataError):
        XenMetadata.from_bytes(data)


def shape(meta: XenMetadata) -> tuple[int, int]:
    return meta.latent_dim, meta.output_size


@pytest.fixture(scope="module")
def plain_tflite() -> Plain:
    """Converter output without our metadata, per decoder (inputs, outputs), converted once each."""
    shapes = sorted({shape(meta) for meta in CASES.values()})
    return {
        (n_in, n_out): convert_decoder(random_decoder_layers((n_in, 4, n_out)), "float32")
        for n_in, n_out in shapes
    }


def tflite_for(meta: XenMetadata, plain_tflite: Plain) -> bytes:
    return with_xen_metadata(plain_tflite[shape(meta)], meta, "test model")


def metadata_buffer_position(tflite: bytes) -> tuple[int, bytes]:
    """Independent of the reader: the TFLITE_METADATA buffer via the object API, found in the file."""
    model = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    (entry,) = [m for m in model.metadata if m.name == b"TFLITE_METADATA"]
    buffer = bytes(model.buffers[entry.buffer].data)
    start = tflite.find(buffer)
    assert start > 0 and int.from_bytes(tflite[start - 4 : start], "little") == len(buffer)
    return start, buffer


@pytest.mark.parametrize("case", CASES)
def test_metadata_round_trips_through_a_tflite_byte_for_byte(case: str, plain_tflite: Plain) -> None:
    meta = CASES[case]
    tflite = tflite_for(meta, plain_tflite)
    read = read_xen_metadata(tflite)
    assert read == meta
    assert read.to_bytes() == meta.to_bytes()


@pytest.mark.parametrize("case", CASES)
def test_description_of_the_m001_flatbuffer_holds_the_raw_bytes(case: str, plain_tflite: Plain) -> None:
    meta = CASES[case]
    _, buffer = metadata_buffer_position(tflite_for(meta, plain_tflite))
    assert flatbuffers.util.BufferHasIdentifier(buffer, 0, b"M001")
    table = flatbuffers.table.Table(buffer, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buffer, 0))
    # ModelMetadata field i sits at vtable slot 4 + 2 i: 0 name, 1 description.
    name, description = (table.String(table.Offset(4 + 2 * field) + table.Pos) for field in (0, 1))
    assert name == b"test model"
    assert description == description_bytes(meta)
    if max(meta.to_bytes()) >= 128:
        # Raw, not UTF-8: the original turned 0x80 into 0xC2 0x80.
        assert bytes([0xC2, 0x80]) not in description


@pytest.mark.parametrize("case", CASES)
def test_firmware_search_and_blind_copy_stay_inside_the_buffer(case: str, plain_tflite: Plain) -> None:
    """xen_quantizer: memmem(length prefix, size, "xen:"), then memcpy 6 type + 12 data bytes."""
    meta = CASES[case]
    tflite = tflite_for(meta, plain_tflite)
    start, buffer = metadata_buffer_position(tflite)
    window = tflite[start - 4 : start - 4 + len(buffer)]
    hit = start - 4 + window.index(b"xen:")
    copied_type, copied_data = tflite[hit + 4 : hit + 10], tflite[hit + 10 : hit + 22]
    assert hit >= start and hit + 22 <= start + len(buffer)
    assert copied_type + copied_data == description_bytes(meta)[4:22]
    location = locate_xen_metadata(tflite)
    assert (location.buffer_start, location.buffer_end, location.magic_offset) == (
        start,
        start + len(buffer),
        hit,
    )


def test_buffers_stay_16_byte_aligned(plain_tflite: Plain) -> None:
    tflite = tflite_for(WIDE_NOTE, plain_tflite)
    model = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    weights = [bytes(b.data) for b in model.buffers if b.data is not None and len(b.data) >= 16]
    assert len(weights) >= 4
    assert all(tflite.find(data) % 16 == 0 for data in weights)


def test_writing_again_replaces_the_entry(plain_tflite: Plain) -> None:
    first = tflite_for(NOTE, plain_tflite)
    other = XenMetadata("note", rows=24, ticks=16, latent_scale=2, base_note=48, threshold=0.6)
    second = with_xen_metadata(first, other, "renamed")
    model = tfl.ModelT.InitFromPackedBuf(bytearray(second), 0)
    assert [m.name for m in model.metadata].count(b"TFLITE_METADATA") == 1
    assert read_xen_metadata(second) == other


def original_exporter_file(plain: bytes, description: str) -> bytes:
    """What xen_machinelearning wrote: name + description as a UTF-8 string, no padding, no extension."""
    builder = flatbuffers.Builder(64)
    text = builder.CreateString(description)
    name = builder.CreateString("perc-model_16_dec")
    builder.StartObject(8)
    builder.PrependUOffsetTRelativeSlot(0, name, 0)
    builder.PrependUOffsetTRelativeSlot(1, text, 0)
    builder.Finish(builder.EndObject(), file_identifier=b"M001")
    return with_metadata_buffer(plain, bytes(builder.Output()))


def test_original_exporter_file_reads_without_extension(plain_tflite: Plain) -> None:
    data = [11, 16, 3, 5, 1, 1, 6, 2, 2]
    tflite = original_exporter_file(
        plain_tflite[shape(PERC)], "xen:perdec" + bytes(data).decode("iso-8859-1")
    )
    meta = read_xen_metadata(tflite)
    assert meta == XenMetadata("perc", 11, 16, 3, (1, 1, 6, 2, 2), extension_version=0)
    assert meta.to_bytes() == b"xen:perdec" + bytes(data)


def test_converter_output_without_metadata_is_refused(plain_tflite: Plain) -> None:
    with pytest.raises(MetadataError, match="no TFLITE_METADATA"):
        read_xen_metadata(plain_tflite[shape(PERC)])


def test_metadata_buffer_without_xen_bytes_is_refused(plain_tflite: Plain) -> None:
    tflite = original_exporter_file(plain_tflite[shape(PERC)], "just a description")
    with pytest.raises(MetadataError, match="not found"):
        read_xen_metadata(tflite)


@pytest.mark.parametrize("data", [b"", b"TFL3", b"\x00" * 64, b"\x10\x00\x00\x00TFL3" + b"\xff" * 40])
def test_non_models_are_refused(data: bytes) -> None:
    with pytest.raises(MetadataError):
        read_xen_metadata(data)


@pytest.fixture(scope="module")
def good_file(plain_tflite: Plain) -> bytes:
    return tflite_for(PERC, plain_tflite)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_read_or_fail_with_metadata_error(good_file: bytes, data: st.DataObject) -> None:
    """Truncations and byte changes never escape as another exception."""
    damaged = bytearray(good_file)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(damaged)))
    try:
        read = read_xen_metadata(bytes(damaged[:cut]))
    except MetadataError:
        return
    assert isinstance(read, XenMetadata)


def test_rows_of_a_percussion_model_map_to_consecutive_groups() -> None:
    groups = [PERC.group_of_row(row) for row in range(PERC.rows)]
    assert groups == [0, 1, 2, 2, 2, 2, 2, 2, 3, 3, 4, 4]
    assert np.bincount(groups).tolist() == list(PERC.group_sizes)


def test_a_later_version_reads_as_the_fields_version_3_knows() -> None:
    """Version 4 appends fields: a reader of version 3 takes its own and leaves the rest."""
    later = (
        b"xen:perdec" + bytes([2, 16, 3, 1, 2]) + b"rv" + bytes([4, 0, 3, 89, 102, 36, 255, 2, 0, 2, 7, 7])
    )
    meta = XenMetadata.from_bytes(later)
    assert (meta.extension_version, meta.threshold, meta.group_thresholds) == (4, 89 / 255, (102 / 255,))
    assert meta.row_notes == (36, ACCENT_ROW) and meta.channel_ids == (0, 2)
    assert meta.channel_names == ("hits", "offset") and meta.output_size == 2 * 16 * 2
    with pytest.raises(MetadataError, match="cannot write extension version 4"):
        meta.to_bytes()


def test_groove_bytes_are_version_3_the_version_2_fields_then_the_channels() -> None:
    assert GROOVE.extension_version == 3 and GROOVE.channels == 3
    assert GROOVE.to_bytes() == (
        b"xen:perdec"
        + bytes([12, 16, 3, 5, 1, 1, 6, 2, 2])
        + b"rv"
        + bytes([3, 0, 3, 89, 102, 77, 64, 26, 0, *GM_NOTES, 3, 0, 1, 2])
    )
    offset_only = XenMetadata("note", rows=24, ticks=16, latent_scale=3, base_note=36, channel_ids=(0, 2))
    assert offset_only.to_bytes() == b"xen:seqdec" + bytes([24, 16, 3]) + b"rv" + bytes(
        [3, 36, 3, 77, 2, 0, 2]
    )
    assert XenMetadata.from_bytes(description_bytes(GROOVE)) == GROOVE
    assert XenMetadata.from_bytes(offset_only.to_bytes()).channel_names == ("hits", "offset")
    assert GROOVE.to_dict()["channels"] == ["hits", "velocity", "offset"]
    assert GROOVE.output_size == 3 * 16 * 12 and PERC.output_size == 16 * 12


def test_a_version_2_reader_finds_its_fields_in_a_groove_file() -> None:
    """What an old reader sees: the version 2 bytes unchanged at their offsets, the channels after them."""
    hits_only = dataclasses.replace(GROOVE, channel_ids=(0,), extension_version=None)
    assert hits_only.extension_version == 2 and hits_only == PERC
    old, new = PERC.to_bytes(), GROOVE.to_bytes()
    version_at = old.index(b"rv") + 2
    assert new[:version_at] == old[:version_at] and new[version_at + 1 : len(old)] == old[version_at + 1 :]
    assert new[len(old) :] == bytes([3, 0, 1, 2])


def test_hits_only_models_stay_version_2_byte_for_byte() -> None:
    """Every layout of the shipped kinds, from from_layout with and without thresholds: the bytes a
    hits-only model writes are the version 2 table's, no channel fields (GROOVE's tail) anywhere."""
    perc = RollLayout(
        "perc", 12, group_sizes=(1, 1, 6, 2, 2), row_notes=tuple(-1 if n == 255 else n for n in GM_NOTES)
    )
    note = RollLayout("note", 24, base_note=36, row_notes=tuple(range(36, 60)))
    thresholds = Thresholds(0.35, (0.4, 0.3, 0.25, 0.1, 0.0))
    assert XenMetadata.from_layout(perc, 16, 3.0, 3, thresholds, ("hits",)).to_bytes() == PERC.to_bytes()
    assert XenMetadata.from_layout(note, 16, 3.0, 3, Thresholds(0.35)).to_bytes() == NOTE.to_bytes()
    assert XenMetadata.from_layout(perc, 16, 3.0, 3, thresholds, ("hits", "velocity", "offset")) == GROOVE


def test_channel_names_are_the_models_outputs_in_order() -> None:
    from rackvae.model import OUTPUTS

    assert CHANNEL_NAMES == OUTPUTS and MAX_CHANNELS == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"channel_ids": (1, 0)}, "start with 0"),
        ({"channel_ids": (0, 0)}, "no repeats"),
        ({"channel_ids": (0, 3)}, "0..2"),
        ({"channel_ids": (0, 1, 2, 1)}, "1..3 of them"),
        ({"channel_ids": ()}, "1..3 of them"),
        ({"channel_ids": (0, 1), "extension_version": 2}, "from extension version 3"),
    ],
)
def test_channels_that_the_format_cannot_hold_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        XenMetadata("note", rows=24, ticks=16, latent_scale=3, **fields)
    with pytest.raises(MetadataError, match="unknown output channels"):
        XenMetadata.from_layout(RollLayout("note", 24, base_note=36), 16, 3.0, 3, outputs=("hits", "pitch"))


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (bytes([]), "ends before the channel count"),
        (bytes([2, 0]), "ends before the channel ids"),  # the second id missing
        (bytes([0]), "channels must be 1..3, got 0"),
        (bytes([4, 0, 1, 2, 0]), "channels must be 1..3, got 4"),  # more than RV_MAX_CHANNELS
        (bytes([2, 1, 0]), r"must start with 0 .*got \(1, 0\)"),  # velocity first
        (bytes([2, 0, 0]), r"no repeats; got \(0, 0\)"),
        (bytes([2, 0, 5]), r"ids are 0..2 .*got \(0, 5\)"),  # an unknown channel
    ],
)
def test_bad_channel_fields_are_refused(tail: bytes, reason: str) -> None:
    head = b"xen:seqdec" + bytes([24, 16, 3]) + b"rv" + bytes([3, 36, 3, 77])
    with pytest.raises(MetadataError, match=reason):
        XenMetadata.from_bytes(head + tail)
