"""xen metadata: the bytes that tell a module the shape of a decoder's roll, and their container.

Byte layout (the original xen_machinelearning tables, then our extension, so old readers still work)::

    b"xen:" b"seqdec" rows ticks latent_scale                                  b"rv" 1 base_note latent_dim
    b"xen:" b"perdec" rows ticks latent_scale n_groups group_sizes[n_groups]   b"rv" 1 base_note latent_dim

As the original did, the bytes are the ``description`` of a TFLite ``ModelMetadata`` flatbuffer (file
identifier ``M001``) held in the buffer of the model's metadata entry ``TFLITE_METADATA``. Unlike the
original (which round-tripped them through UTF-8), they are written raw, so values >= 128 survive.

The original firmware (xen_quantizer ``TensorflowModel::loadMetadata``) searches ``"xen:"`` from the
buffer's 4-byte length prefix over ``size`` bytes, then copies 6 type and 12 data bytes without a
bounds check. ``description_bytes`` pads with zeros so that copy stays inside the description, and
``read_xen_metadata`` follows the same search, with bounds checks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from rackvae.dataset import RollKind, RollLayout

MAGIC = b"xen:"
TYPE_BY_KIND: dict[str, bytes] = {"note": b"seqdec", "perc": b"perdec"}
KIND_BY_TYPE = {value: key for key, value in TYPE_BY_KIND.items()}
EXTENSION_TAG = b"rv"
EXTENSION_VERSION = 1
# What the original firmware copies after finding MAGIC: 6 type bytes, then 12 data bytes.
FIRMWARE_COPY_SIZE = len(MAGIC) + 6 + 12
METADATA_ENTRY_NAME = b"TFLITE_METADATA"
METADATA_FILE_IDENTIFIER = b"M001"
# ModelMetadata fields we write (metadata_schema.fbs): name, description, min_parser_version.
_FIELD_NAME, _FIELD_DESCRIPTION, _FIELD_MIN_PARSER_VERSION, _MODEL_METADATA_FIELDS = 0, 1, 7, 8
_MIN_PARSER_VERSION = b"1.0.0"
# The TFLite schema asks for 16-byte aligned buffer data (weights are read in place, also on the MCU).
_BUFFER_ALIGNMENT = 16


class MetadataError(ValueError):
    """Metadata that cannot be written or read, with the reason."""


@dataclass(frozen=True)
class XenMetadata:
    """What a module needs to turn decoder outputs into a roll; every field is stored as one byte.

    ``latent_scale`` is the knob range (latents span ``±latent_scale``). ``has_extension`` is False for
    files from the original exporter, which lack ``base_note`` (0 then) and ``latent_dim`` (3 then).
    Percussion files from the original exporter may have fewer ``rows`` than ``sum(group_sizes)``: it
    trimmed unused rows; ours never does.
    """

    kind: RollKind
    rows: int
    ticks: int
    latent_scale: int
    group_sizes: tuple[int, ...] = ()
    base_note: int = 0
    latent_dim: int = 3
    has_extension: bool = True

    def __post_init__(self) -> None:
        if self.kind not in TYPE_BY_KIND:
            raise MetadataError(f"kind must be 'note' or 'perc', got {self.kind!r}")
        for name in ("rows", "ticks", "latent_scale", "latent_dim"):
            value = getattr(self, name)
            if not 1 <= value <= 255:
                raise MetadataError(f"{name} must fit one byte (1..255), got {value}")
        if not 0 <= self.base_note <= 127:
            raise MetadataError(f"base_note must be a MIDI note (0..127), got {self.base_note}")
        if self.kind == "perc":
            if not 1 <= len(self.group_sizes) <= 255 or not all(1 <= s <= 255 for s in self.group_sizes):
                raise MetadataError(f"percussion needs 1..255 groups of 1..255 rows, got {self.group_sizes}")
        elif self.group_sizes:
            raise MetadataError(f"a note model has no percussion groups, got {self.group_sizes}")

    @classmethod
    def from_layout(cls, layout: RollLayout, ticks: int, latent_scale: float, latent_dim: int) -> XenMetadata:
        """Metadata of a model trained on rolls of ``layout``; the scale byte is rounded half up."""
        return cls(
            kind=layout.kind,
            rows=layout.rows,
            ticks=ticks,
            latent_scale=int(np.floor(latent_scale + 0.5)),
            group_sizes=tuple(layout.group_sizes) if layout.kind == "perc" else (),
            base_note=layout.base_note if layout.kind == "note" else 0,
            latent_dim=latent_dim,
        )

    def to_bytes(self) -> bytes:
        """``"xen:"`` + type + data bytes (+ extension), unpadded."""
        data = [self.rows, self.ticks, self.latent_scale]
        if self.kind == "perc":
            data += [len(self.group_sizes), *self.group_sizes]
        out = MAGIC + TYPE_BY_KIND[self.kind] + bytes(data)
        if self.has_extension:
            out += EXTENSION_TAG + bytes([EXTENSION_VERSION, self.base_note, self.latent_dim])
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
        fields: dict[str, Any] = {"has_extension": False}
        # The original fields end at the description's NUL terminator, so an "rv" here is ours.
        if bytes(data[pos : pos + 2]) == EXTENSION_TAG:
            pos += 2
            (version,) = take(1, "the extension version")
            if version < 1:
                raise MetadataError(f"extension version must be >= 1, got {version}")
            # Later versions only append fields: read the ones version 1 defines.
            base_note, latent_dim = take(2, "base_note and latent_dim")
            fields = {"has_extension": True, "base_note": base_note, "latent_dim": latent_dim}
        return cls(kind, rows, ticks, latent_scale, group_sizes, **fields)

    def group_of_row(self, row: int) -> int:
        """The percussion group of ``row`` (-1 when none), as the original firmware maps it."""
        start = 0
        for index, size in enumerate(self.group_sizes):
            if start <= row < start + size:
                return index
            start += size
        return -1

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


class _AlignedBuffer:
    """A TFLite ``Buffer`` packed with its data 16-byte aligned (the object API aligns to 1)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 (the object API's name)
        offset = 0
        if self.data:
            builder.StartVector(1, len(self.data), _BUFFER_ALIGNMENT)
            builder.head -= len(self.data)
            builder.Bytes[builder.head : builder.head + len(self.data)] = self.data
            offset = builder.EndVector()
        tfl.BufferStart(builder)
        if offset:
            tfl.BufferAddData(builder, offset)
        return tfl.BufferEnd(builder)


def unpack_model(tflite: bytes) -> tfl.ModelT:
    """A .tflite file as the schema's object tree, for editing and ``pack_model``."""
    model = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    if any(old.offset or old.size for old in model.buffers or []):
        raise MetadataError("models with external (offset/size) buffers are not supported")
    return model


def pack_model(model: tfl.ModelT) -> bytes:
    """The object tree as a .tflite file, every buffer's data 16-byte aligned."""
    model.buffers = [_AlignedBuffer(b"" if old.data is None else bytes(old.data)) for old in model.buffers]
    size = sum(len(buffer.data) for buffer in model.buffers)
    builder = flatbuffers.Builder(size + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def with_metadata_buffer(tflite: bytes, buffer: bytes) -> bytes:
    """``tflite`` with its ``TFLITE_METADATA`` entry (added or replaced) pointing at ``buffer``."""
    model = unpack_model(tflite)
    model.metadata = [entry for entry in model.metadata or [] if entry.name != METADATA_ENTRY_NAME]
    model.buffers.append(_AlignedBuffer(buffer))
    entry = tfl.MetadataT()
    entry.name = METADATA_ENTRY_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    return pack_model(model)


def with_xen_metadata(tflite: bytes, meta: XenMetadata, model_name: str) -> bytes:
    """``tflite`` carrying ``meta`` as the firmware expects it (checked by reading it back)."""
    out = with_metadata_buffer(tflite, model_metadata_flatbuffer(meta, model_name))
    if read_xen_metadata(out) != meta:
        raise MetadataError("metadata written into the model does not read back identically")
    return out


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
        model = tfl.Model.GetRootAs(tflite, 0)
        found: XenLocation | None = None
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() != METADATA_ENTRY_NAME:
                continue
            index, count = entry.Buffer(), model.BuffersLength()
            if not 0 <= index < count:
                raise MetadataError(f"metadata entry points at buffer {index} of {count}")
            table = model.Buffers(index)._tab
            field = table.Offset(4)  # Buffer.data
            if not field:
                raise MetadataError("the TFLITE_METADATA buffer has no data")
            start = table.Vector(field)
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


def read_xen_metadata(tflite: bytes) -> XenMetadata:
    """The xen metadata of a .tflite file (ours or the original exporter's)."""
    location = locate_xen_metadata(tflite)
    return XenMetadata.from_bytes(tflite[location.magic_offset : location.buffer_end])
