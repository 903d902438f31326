"""xen metadata: the bytes that tell a module the shape of a decoder's roll, and where a .tflite holds them.

Byte layout (the original xen_machinelearning tables, then our extension, so old readers still work)::

    b"xen:" b"seqdec" rows ticks latent_scale                          b"rv" version base_note latent_dim
    b"xen:" b"perdec" rows ticks latent_scale n_groups sizes[n_groups] b"rv" version base_note latent_dim

then, from extension version 2: ``threshold`` and, percussion only, ``group_thresholds[n_groups]`` and
``row_notes[rows]``. A threshold p is the byte round(p * 255) (half up), read back as byte / 255; a row
note is the MIDI note the row plays (``ACCENT_ROW``: an accent row, which plays none). Version 3 (groove
models, docs/groove_format.md) then appends ``channels`` (1..``MAX_CHANNELS``) and that many channel ids
(``CHANNEL_NAMES``' indices: 0 hits, 1 velocity, 2 offset; hits first, no repeats): the decoder's output
is ``channels`` blocks of ``ticks * rows`` in that order. Writers emit version 3 only for models with
more than one channel, so a hits-only model's bytes are those of version 2. Later versions append
fields; a reader takes the ones its version knows. Files without them (the original exporter's, ours
before version 2) get ``DEFAULT_THRESHOLD`` (the C core's ``RV_DEFAULT_THRESHOLD``, see rv_limits.h for
why 0.3) and the notes rows played before: percussion the row index, notes ``base_note + row`` (both at
most 127); files before version 3 decode hits alone (channels 1, ids (0,)).

As the original did, the bytes are the ``description`` of a TFLite ``ModelMetadata`` flatbuffer (file
identifier ``M001``) held in the buffer of the model's metadata entry ``TFLITE_METADATA``. Unlike the
original (which round-tripped them through UTF-8), they are written raw, so values >= 128 survive.

The original firmware (xen_quantizer ``TensorflowModel::loadMetadata``) searches ``"xen:"`` from the
buffer's 4-byte length prefix over ``size`` bytes, then copies 6 type and 12 data bytes without a
bounds check. ``description_bytes`` pads with zeros so that copy stays inside the description, and
``read_xen_metadata`` follows the same search, with bounds checks. This module needs only the
``flatbuffers`` package (it reads the few tables it needs itself); writing the entry into a model
is ``rackvae.export.container`` (the export extra).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import flatbuffers
from flatbuffers.table import Table

from rackvae.calibrate import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from rackvae.calibrate import Thresholds
    from rackvae.dataset import RollKind, RollLayout

MAGIC = b"xen:"
TYPE_BY_KIND: dict[str, bytes] = {"note": b"seqdec", "perc": b"perdec"}
KIND_BY_TYPE = {value: key for key, value in TYPE_BY_KIND.items()}
EXTENSION_TAG = b"rv"
EXTENSION_VERSION = 3  # the newest version written (by models with more than one channel)
HITS_ONLY_VERSION = 2  # the version a hits-only model's file carries (byte-identical to before version 3)
# Channel ids (RV_CHANNEL_HITS, RV_CHANNEL_VELOCITY, RV_CHANNEL_OFFSET) are indices into this tuple,
# which is rackvae.model.OUTPUTS (tests/test_export_metadata.py holds them equal).
CHANNEL_NAMES = ("hits", "velocity", "offset")
MAX_CHANNELS = len(CHANNEL_NAMES)  # RV_MAX_CHANNELS
ACCENT_ROW = 255  # row_notes entry of a percussion accent row (RV_ACCENT_ROW)
# What the original firmware copies after finding MAGIC: 6 type bytes, then 12 data bytes.
FIRMWARE_COPY_SIZE = len(MAGIC) + 6 + 12
METADATA_ENTRY_NAME = b"TFLITE_METADATA"
METADATA_FILE_IDENTIFIER = b"M001"
# ModelMetadata fields we write (metadata_schema.fbs): name, description, min_parser_version.
_FIELD_NAME, _FIELD_DESCRIPTION, _FIELD_MIN_PARSER_VERSION, _MODEL_METADATA_FIELDS = 0, 1, 7, 8
_MIN_PARSER_VERSION = b"1.0.0"
# Fields of the TFLite schema read here (field i sits at vtable slot 4 + 2 i): Model.buffers,
# Model.metadata, Metadata.name, Metadata.buffer, Buffer.data.
_MODEL_BUFFERS, _MODEL_METADATA, _METADATA_NAME, _METADATA_BUFFER, _BUFFER_DATA = 4, 6, 0, 1, 0


class MetadataError(ValueError):
    """Metadata that cannot be written or read, with the reason."""


def threshold_byte(value: float) -> int:
    """A threshold 0..1 as its byte: round(value * 255), halves up."""
    if not 0.0 <= value <= 1.0:
        raise MetadataError(f"thresholds must be in [0, 1], got {value}")
    return math.floor(value * 255 + 0.5)


@dataclass(frozen=True)
class XenMetadata:
    """What a module needs to turn decoder outputs into a roll; every field is stored as one byte.

    ``latent_scale`` is the knob range (latents span ``±latent_scale``). ``extension_version`` is 0 for
    files from the original exporter, which lack ``base_note`` (0 then) and ``latent_dim`` (3 then).
    Percussion files from the original exporter may have fewer ``rows`` than ``sum(group_sizes)``: it
    trimmed unused rows; ours never does.

    Version 2 fields (defaults when left out or absent, see the module docstring): ``threshold`` and
    ``group_thresholds`` (percussion: one per group), held as the byte's value (k / 255), and
    ``row_notes`` (the MIDI note of each row; percussion files store theirs). Version 3: ``channel_ids``
    (see ``CHANNEL_NAMES``; ``(0,)``, hits alone, when absent). ``extension_version`` left out (None)
    becomes the version the channels need: 3 with more than one channel, else 2.
    """

    kind: RollKind
    rows: int
    ticks: int
    latent_scale: int
    group_sizes: tuple[int, ...] = ()
    base_note: int = 0
    latent_dim: int = 3
    extension_version: int | None = None
    threshold: float = DEFAULT_THRESHOLD
    group_thresholds: tuple[float, ...] = ()
    row_notes: tuple[int, ...] = ()
    channel_ids: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_ids", tuple(self.channel_ids))
        if self.extension_version is None:
            needed = EXTENSION_VERSION if len(self.channel_ids) > 1 else HITS_ONLY_VERSION
            object.__setattr__(self, "extension_version", needed)
        if self.kind not in TYPE_BY_KIND:
            raise MetadataError(f"kind must be 'note' or 'perc', got {self.kind!r}")
        for name in ("rows", "ticks", "latent_scale", "latent_dim"):
            value = getattr(self, name)
            if not 1 <= value <= 255:
                raise MetadataError(f"{name} must fit one byte (1..255), got {value}")
        if not 0 <= self.base_note <= 127:
            raise MetadataError(f"base_note must be a MIDI note (0..127), got {self.base_note}")
        if not 0 <= self.extension_version <= 255:
            raise MetadataError(f"extension_version must fit one byte, got {self.extension_version}")
        if self.kind == "perc":
            if not 1 <= len(self.group_sizes) <= 255 or not all(1 <= s <= 255 for s in self.group_sizes):
                raise MetadataError(f"percussion needs 1..255 groups of 1..255 rows, got {self.group_sizes}")
        elif self.group_sizes:
            raise MetadataError(f"a note model has no percussion groups, got {self.group_sizes}")
        self._check_channels()
        self._set_thresholds_and_notes()

    def _check_channels(self) -> None:
        ids = self.channel_ids
        if not 1 <= len(ids) <= MAX_CHANNELS or ids[0] != 0 or len(set(ids)) != len(ids):
            raise MetadataError(
                f"channel ids must start with 0 (hits), 1..{MAX_CHANNELS} of them, no repeats; got {ids}"
            )
        if not all(0 <= i < MAX_CHANNELS for i in ids):
            raise MetadataError(
                f"channel ids are 0..{MAX_CHANNELS - 1} ({', '.join(CHANNEL_NAMES)}), got {ids}"
            )
        if len(ids) > 1 and self.version < 3:
            raise MetadataError(
                f"channels beyond hits are stored from extension version 3, got {self.version}"
            )

    def _set_thresholds_and_notes(self) -> None:
        """Fill the defaults and hold each threshold as its byte's value (what a file reads back)."""
        stored = self.version >= 2
        threshold = threshold_byte(self.threshold) / 255 if stored else self.threshold
        groups = self.group_thresholds or (self.threshold,) * len(self.group_sizes)
        if len(groups) != len(self.group_sizes):
            raise MetadataError(f"{len(groups)} group thresholds for {len(self.group_sizes)} groups")
        if stored:
            groups = tuple(threshold_byte(t) / 255 for t in groups)
        if self.kind == "note":
            notes = tuple(min(self.base_note + row, 127) for row in range(self.rows))
        else:
            defaults = tuple(min(row, 127) for row in range(self.rows))
            notes = defaults if not stored or not self.row_notes else self.row_notes
        if self.row_notes and self.row_notes != notes:
            raise MetadataError(
                "row_notes are stored for percussion from extension version 2; note rows play base_note + row"
            )
        if not stored and (threshold, *groups) != (DEFAULT_THRESHOLD,) * (1 + len(groups)):
            raise MetadataError("thresholds are stored from extension version 2 only")
        if len(notes) != self.rows or not all(0 <= n <= 127 or n == ACCENT_ROW for n in self.row_notes):
            raise MetadataError(
                f"row_notes must be {self.rows} MIDI notes (0..127, {ACCENT_ROW} for an accent row)"
            )
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "group_thresholds", tuple(groups))
        object.__setattr__(self, "row_notes", tuple(notes))

    @property
    def version(self) -> int:
        """``extension_version`` (never None once constructed)."""
        assert self.extension_version is not None
        return self.extension_version

    @property
    def has_extension(self) -> bool:
        return self.version > 0

    @property
    def channels(self) -> int:
        """Decoded channels: blocks of ``ticks * rows`` outputs, ``channel_ids`` in order."""
        return len(self.channel_ids)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(CHANNEL_NAMES[i] for i in self.channel_ids)

    @property
    def output_size(self) -> int:
        """The decoder's outputs: ``channels * ticks * rows`` (rv_model_output_size)."""
        return self.channels * self.ticks * self.rows

    @classmethod
    def from_layout(
        cls,
        layout: RollLayout,
        ticks: int,
        latent_scale: float,
        latent_dim: int,
        thresholds: Thresholds | None = None,
        outputs: tuple[str, ...] = ("hits",),
    ) -> XenMetadata:
        """Metadata of a model trained on rolls of ``layout`` with ``thresholds`` (None: the default)
        decoding ``outputs`` (ModelConfig.outputs; more than hits: version 3); the scale byte is rounded
        half up, accent rows (note -1 in the layout) become ``ACCENT_ROW``."""
        perc = layout.kind == "perc"
        unknown = [name for name in outputs if name not in CHANNEL_NAMES]
        if unknown:
            raise MetadataError(f"unknown output channels {unknown} (known: {', '.join(CHANNEL_NAMES)})")
        return cls(
            kind=layout.kind,
            rows=layout.rows,
            ticks=ticks,
            latent_scale=math.floor(latent_scale + 0.5),
            group_sizes=tuple(layout.group_sizes) if perc else (),
            base_note=layout.base_note if not perc else 0,
            latent_dim=latent_dim,
            threshold=DEFAULT_THRESHOLD if thresholds is None else thresholds.threshold,
            group_thresholds=tuple(thresholds.group_thresholds) if thresholds is not None and perc else (),
            row_notes=tuple(ACCENT_ROW if n < 0 else n for n in layout.row_notes) if perc else (),
            channel_ids=tuple(CHANNEL_NAMES.index(name) for name in outputs),
        )

    def to_bytes(self) -> bytes:
        """``"xen:"`` + type + data bytes (+ extension), unpadded."""
        data = [self.rows, self.ticks, self.latent_scale]
        if self.kind == "perc":
            data += [len(self.group_sizes), *self.group_sizes]
        out = MAGIC + TYPE_BY_KIND[self.kind] + bytes(data)
        if self.version > EXTENSION_VERSION:
            raise MetadataError(
                f"cannot write extension version {self.version} (knows 1..{EXTENSION_VERSION})"
            )
        if self.has_extension:
            out += EXTENSION_TAG + bytes([self.version, self.base_note, self.latent_dim])
        if self.version >= 2:
            out += bytes([threshold_byte(self.threshold)])
            if self.kind == "perc":
                out += bytes(threshold_byte(t) for t in self.group_thresholds) + bytes(self.row_notes)
        if self.version >= 3:
            out += bytes([self.channels, *self.channel_ids])
        return out

    @classmethod
    def from_bytes(cls, data: bytes) -> XenMetadata:
        """Parse bytes that start with ``"xen:"``; trailing bytes (padding) are ignored."""
        if data[: len(MAGIC)] != MAGIC:
            raise MetadataError(f"metadata must start with {MAGIC!r}, got {bytes(data[:4])!r}")
        type_ = bytes(data[4:10])
        if type_ not in KIND_BY_TYPE:
            raise MetadataError(f"unknown decoder type {type_!r} (expected seqdec or perdec)")
        kind = KIND_BY_TYPE[type_]
        pos = 10

        def take(count: int, what: str) -> bytes:
            nonlocal pos
            if pos + count > len(data):
                needed = pos + count
                raise MetadataError(f"metadata ends before {what} (needs {needed} bytes, has {len(data)})")
            chunk = bytes(data[pos : pos + count])
            pos += count
            return chunk

        rows, ticks, latent_scale = take(3, "rows, ticks and latent scale")
        group_sizes: tuple[int, ...] = ()
        if kind == "perc":
            (n_groups,) = take(1, "the group count")
            group_sizes = tuple(take(n_groups, "the group sizes"))
        fields: dict[str, Any] = {"extension_version": 0}
        # The original fields end at the description's NUL terminator, so an "rv" here is ours.
        if bytes(data[pos : pos + 2]) == EXTENSION_TAG:
            pos += 2
            (version,) = take(1, "the extension version")
            if version < 1:
                raise MetadataError(f"extension version must be >= 1, got {version}")
            # Later versions only append fields: read the ones versions 1 to 3 define.
            base_note, latent_dim = take(2, "base_note and latent_dim")
            fields = {"extension_version": version, "base_note": base_note, "latent_dim": latent_dim}
            if version >= 2:
                fields["threshold"] = take(1, "the threshold")[0] / 255
                if kind == "perc":
                    fields["group_thresholds"] = tuple(
                        b / 255 for b in take(n_groups, "the group thresholds")
                    )
                    fields["row_notes"] = tuple(take(rows, "the row notes"))
            if version >= 3:
                (channels,) = take(1, "the channel count")
                if not 1 <= channels <= MAX_CHANNELS:
                    raise MetadataError(f"channels must be 1..{MAX_CHANNELS}, got {channels}")
                fields["channel_ids"] = tuple(take(channels, "the channel ids"))
        return cls(kind, rows, ticks, latent_scale, group_sizes, **fields)

    def group_of_row(self, row: int) -> int:
        """The percussion group of ``row`` (-1 when none), as the original firmware maps it."""
        start = 0
        for index, size in enumerate(self.group_sizes):
            if start <= row < start + size:
                return index
            start += size
        return -1

    def row_thresholds(self) -> tuple[float, ...]:
        """The threshold each row plays at: its group's (percussion; rows past the groups: the model's)."""
        groups = (self.group_of_row(row) for row in range(self.rows))
        return tuple(self.group_thresholds[g] if g >= 0 else self.threshold for g in groups)

    def to_dict(self) -> dict[str, Any]:
        """For the model card: the fields, the metadata type and the raw bytes."""
        return {
            "type": TYPE_BY_KIND[self.kind].decode(),
            "kind": self.kind,
            "rows": self.rows,
            "ticks": self.ticks,
            "latent_scale": self.latent_scale,
            "group_sizes": list(self.group_sizes),
            "base_note": self.base_note,
            "latent_dim": self.latent_dim,
            "extension_version": self.extension_version,
            "threshold": self.threshold,
            "group_thresholds": list(self.group_thresholds),
            "row_notes": list(self.row_notes),
            "channels": list(self.channel_names),
            "bytes": list(self.to_bytes()),
        }


def description_bytes(meta: XenMetadata) -> bytes:
    """The description string: metadata bytes, zero padded so the firmware's blind copy stays inside."""
    raw = meta.to_bytes()
    return raw + bytes(max(0, FIRMWARE_COPY_SIZE - len(raw)))


def model_metadata_flatbuffer(meta: XenMetadata, model_name: str) -> bytes:
    """A ``ModelMetadata`` flatbuffer (``M001``) with the model name and the xen description."""
    builder = flatbuffers.Builder(64)
    # Flatbuffers fill back to front: strings made first land last, so the description precedes the
    # name in the buffer and the firmware's forward search meets it first.
    name = builder.CreateString(model_name)
    version = builder.CreateString(_MIN_PARSER_VERSION)
    description = builder.CreateString(description_bytes(meta))
    builder.StartObject(_MODEL_METADATA_FIELDS)
    builder.PrependUOffsetTRelativeSlot(_FIELD_NAME, name, 0)
    builder.PrependUOffsetTRelativeSlot(_FIELD_DESCRIPTION, description, 0)
    builder.PrependUOffsetTRelativeSlot(_FIELD_MIN_PARSER_VERSION, version, 0)
    builder.Finish(builder.EndObject(), file_identifier=METADATA_FILE_IDENTIFIER)
    return bytes(builder.Output())


@dataclass(frozen=True)
class XenLocation:
    """Where the firmware's search finds the metadata: absolute offsets into the .tflite bytes."""

    buffer_start: int  # first data byte of the TFLITE_METADATA buffer (its length prefix is 4 earlier)
    buffer_end: int
    magic_offset: int  # where "xen:" starts


def _read(fmt: str, data: bytes, offset: int) -> int:
    if offset < 0 or offset + struct.calcsize(fmt) > len(data):
        raise MetadataError(f"offset {offset} is outside the file ({len(data)} bytes)")
    return struct.unpack_from(fmt, data, offset)[0]


def locate_xen_metadata(tflite: bytes) -> XenLocation:
    """Find ``"xen:"`` as the original firmware does, checking every offset against the file.

    For each metadata entry named ``TFLITE_METADATA`` (the last one wins, as in the firmware), the
    search covers the buffer's 4-byte length prefix and the first ``size - 4`` data bytes.
    """
    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise MetadataError("not a TFLite model (no TFL3 identifier)")
    try:
        model = Table(tflite, _read("<I", tflite, 0))
        buffers = _tables(model, _MODEL_BUFFERS)
        found: XenLocation | None = None
        for entry in _tables(model, _MODEL_METADATA):
            name = entry.Offset(4 + 2 * _METADATA_NAME)
            if not name or entry.String(name + entry.Pos) != METADATA_ENTRY_NAME:
                continue
            slot = entry.Offset(4 + 2 * _METADATA_BUFFER)
            index = _read("<I", tflite, entry.Pos + slot) if slot else 0
            if not 0 <= index < len(buffers):
                raise MetadataError(f"metadata entry points at buffer {index} of {len(buffers)}")
            table = buffers[index]
            data = table.Offset(4 + 2 * _BUFFER_DATA)
            if not data:
                raise MetadataError("the TFLITE_METADATA buffer has no data")
            start = table.Vector(data)
            size = _read("<I", tflite, start - 4)
            if start + size > len(tflite):
                raise MetadataError(f"TFLITE_METADATA buffer ({size} bytes at {start}) runs past the file")
            window = tflite[start - 4 : start - 4 + size]
            hit = window.find(MAGIC)
            if hit < 0:
                raise MetadataError("xen metadata not found in the TFLITE_METADATA buffer")
            found = XenLocation(start, start + size, start - 4 + hit)
    except MetadataError:
        raise
    except (struct.error, IndexError, TypeError, ValueError, OverflowError) as exc:  # damaged offsets
        raise MetadataError(f"damaged TFLite flatbuffer: {exc!r}") from exc
    if found is None:
        raise MetadataError("the model has no TFLITE_METADATA entry")
    return found


def _tables(table: Table, index: int) -> list[Table]:
    """The tables of vector field ``index`` of ``table`` (empty when the field is absent)."""
    slot = table.Offset(4 + 2 * index)
    if not slot:
        return []
    start = table.Vector(slot)
    return [Table(table.Bytes, table.Indirect(start + 4 * i)) for i in range(table.VectorLen(slot))]


def read_xen_metadata(tflite: bytes) -> XenMetadata:
    """The xen metadata of a .tflite file (ours or the original exporter's)."""
    location = locate_xen_metadata(tflite)
    return XenMetadata.from_bytes(tflite[location.magic_offset : location.buffer_end])
