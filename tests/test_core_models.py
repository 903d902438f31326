"""Real model files for the C core's tests: every exporter variant at the demo size and at the larger
note-model size, and a file made the way the original xen_machinelearning exporter made it.

``core_models()`` converts once per test session (TensorFlow's converter takes seconds). The tests in
this file check that the files are what the other tests take them for.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import flatbuffers
import numpy as np

from rackvae.export.container import with_metadata_buffer, with_xen_metadata
from rackvae.export.metadata import XenMetadata
from rackvae.export.tflite import VARIANTS, operator_names, tflite_bytes
from rackvae.model import DecoderLayers, random_decoder_layers

DEMO_SIZES = (3, 12, 48, 192)  # Extended percussion map (12 rows) x 16 ticks
NOTE_SIZES = (3, 19, 120, 768)  # 48 pitch rows x 16 ticks
ORIGINAL_SIZES = (3, 11, 45, 176)  # the original's default metadata: 11 rows (trimmed) x 16 ticks
DEMO_METADATA = XenMetadata("perc", rows=12, ticks=16, latent_scale=3, group_sizes=(1, 1, 6, 2, 2))
NOTE_METADATA = XenMetadata("note", rows=48, ticks=16, latent_scale=3, base_note=36)
# what xen_quantizer's Metadata class holds by default: perdec, 11 rows, 16 ticks, scale 3, 1+1+6+2+2
ORIGINAL_METADATA = XenMetadata(
    "perc", rows=11, ticks=16, latent_scale=3, group_sizes=(1, 1, 6, 2, 2), extension_version=0
)


@dataclass(frozen=True)
class CoreModel:
    """A .tflite file and the float decoder layers it was made from."""

    name: str
    variant: str
    tflite: bytes
    layers: DecoderLayers
    metadata: XenMetadata


def original_style_tflite(layers: DecoderLayers, meta: XenMetadata, name: str) -> bytes:
    """As xen_machinelearning's AbstractModel.saveModelTfLite: a Keras model of Dense layers through
    ``TFLiteConverter.from_keras_model``, then a ModelMetadata (name, and the description "xen:" + type
    + data bytes as a string, UTF-8 encoded by flatbuffers) put in the TFLITE_METADATA entry."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input(shape=(layers[0][0].shape[0],), name="decoder_input")
    h = inputs
    for index, (kernel, _) in enumerate(layers):
        last = index == len(layers) - 1
        h = tf_keras.layers.Dense(kernel.shape[1], activation="sigmoid" if last else "relu")(h)
    model = tf_keras.Model(inputs, h, name="decoder")
    for dense, (kernel, bias) in zip(model.layers[1:], layers, strict=True):
        dense.set_weights([kernel, bias])
    converted = bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    # ModelMetadataT: name (field 0), description (field 1); the description was a Python str of the
    # metadata bytes decoded as ISO-8859-1
    description = meta.to_bytes().decode("iso-8859-1")
    builder = flatbuffers.Builder(0)
    name_offset = builder.CreateString(name)
    description_offset = builder.CreateString(description)
    builder.StartObject(2)
    builder.PrependUOffsetTRelativeSlot(0, name_offset, 0)
    builder.PrependUOffsetTRelativeSlot(1, description_offset, 0)
    builder.Finish(builder.EndObject(), file_identifier=b"M001")
    return with_metadata_buffer(converted, bytes(builder.Output()))


@functools.lru_cache(maxsize=1)
def core_models() -> dict[str, CoreModel]:
    """``{"demo_float32": ..., "note_int8": ..., "original_float32": ...}``."""
    models: dict[str, CoreModel] = {}
    for name, sizes, meta, seed in (
        ("demo", DEMO_SIZES, DEMO_METADATA, 1),
        ("note", NOTE_SIZES, NOTE_METADATA, 2),
    ):
        layers = random_decoder_layers(sizes, seed=seed)
        for variant in VARIANTS:
            data = tflite_bytes(layers, meta, variant, model_name=f"{name}_dec")
            models[f"{name}_{variant}"] = CoreModel(name, variant, data, layers, meta)
    layers = random_decoder_layers(ORIGINAL_SIZES, seed=3)
    data = original_style_tflite(layers, ORIGINAL_METADATA, "perc_model_16_dec")
    models["original_float32"] = CoreModel("original", "float32", data, layers, ORIGINAL_METADATA)
    return models


def test_model_files_have_the_expected_operators() -> None:
    models = core_models()
    assert len(models) == 7
    for key, model in models.items():
        ops = operator_names(model.tflite)
        compute = [op for op in ops if op != "DEQUANTIZE"]
        assert compute == ["FULLY_CONNECTED"] * (len(model.layers)) + ["LOGISTIC"], (key, ops)
        assert ("DEQUANTIZE" in ops) == (model.variant == "float16"), (key, ops)


def test_original_style_file_keeps_the_original_metadata_bytes() -> None:
    data = core_models()["original_float32"].tflite
    raw = b"xen:perdec" + bytes([11, 16, 3, 5, 1, 1, 6, 2, 2])
    at = data.find(raw)
    assert at > 0
    assert data[at + len(raw)] == 0  # the string's terminator: no rackvae extension, no padding
    assert np.frombuffer(data[:8], np.uint8)[4:].tobytes() == b"TFL3"


def test_files_without_thresholds_play_at_the_default_threshold() -> None:
    """The original exporter's file and a version 1 file (ours before thresholds): the core plays them
    at RV_DEFAULT_THRESHOLD (0.3) in every group, percussion rows sending their index as before."""
    from rackvae.core import Decoder, lib
    from rackvae.export.metadata import DEFAULT_THRESHOLD

    original = core_models()["original_float32"]
    demo = core_models()["demo_float32"]
    meta1 = XenMetadata(
        "perc", rows=12, ticks=16, latent_scale=3, group_sizes=(1, 1, 6, 2, 2), extension_version=1
    )
    version1 = with_xen_metadata(demo.tflite, meta1, "demo_dec")
    for data, rows in ((original.tflite, 11), (version1, 12)):
        decoder = Decoder.from_bytes(data)
        meta = decoder.metadata
        assert meta.extension_version in (0, 1) and meta.threshold == DEFAULT_THRESHOLD
        assert meta.group_thresholds == (DEFAULT_THRESHOLD,) * 5 and meta.row_notes == tuple(range(rows))
        assert decoder.threshold == np.float32(0.3) == lib.RV_DEFAULT_THRESHOLD
        probabilities = decoder.decode(np.full((1, 3), 1.5, np.float32))[0]
        notes = decoder.notes(probabilities)
        expected = [
            sorted(sorted(np.flatnonzero(t >= np.float32(0.3)), key=lambda r: -t[r])[:4])
            for t in probabilities
        ]
        assert [[n.row for n in tick] for tick in notes] == expected
        assert all(n.midi_note == n.row for tick in notes for n in tick)
        assert sum(map(len, notes)) > 0
