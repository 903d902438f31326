"""The xen metadata inside a real .tflite: the model as the TFLite schema's object tree, its buffers
kept 16-byte aligned, and the ``TFLITE_METADATA`` entry added or replaced (the export extra:
``ai_edge_litert``'s generated schema). The bytes themselves are ``rackvae.export.metadata``."""

from __future__ import annotations

import flatbuffers
from ai_edge_litert import schema_py_generated as tfl

from rackvae.export.metadata import (
    METADATA_ENTRY_NAME,
    MetadataError,
    XenMetadata,
    model_metadata_flatbuffer,
    read_xen_metadata,
)

# The TFLite schema asks for 16-byte aligned buffer data (weights are read in place, also on the MCU).
_BUFFER_ALIGNMENT = 16


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
