"""Files the C core must refuse, each with the reason it gives: not a model, damaged, another op, no
metadata, metadata that does not match, and models beyond the limits of core/include/rv_limits.h."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from rackvae._core import lib

from rackvae.core import CoreError, Decoder
from rackvae.export.container import with_xen_metadata
from rackvae.export.metadata import XenMetadata
from rackvae.export.tflite import convert_decoder, tflite_bytes
from rackvae.model import random_decoder_layers
from test_core_models import DEMO_METADATA, core_models


def refusal(data: bytes) -> CoreError:
    with pytest.raises(CoreError) as caught:
        Decoder.from_bytes(data, source="model.tflite")
    assert "model.tflite" in str(caught.value) and caught.value.reason in str(caught.value)
    return caught.value


def test_bytes_that_are_not_a_model() -> None:
    assert refusal(b"TFL3").status == lib.RV_ERR_TRUNCATED
    assert refusal(bytes(64)).reason == "not a TFLite model"


def test_truncated_and_damaged_files() -> None:
    data = core_models()["demo_float32"].tflite
    for size in (8, 64, len(data) // 2, len(data) - 1):
        assert refusal(data[:size]).status != lib.RV_OK
    # the root table offset pointing past the end
    damaged = (len(data) + 4).to_bytes(4, "little") + data[4:]
    assert refusal(damaged).reason == "bad offset"


def test_a_model_without_xen_metadata() -> None:
    layers = random_decoder_layers((3, 12, 48, 192), seed=5)
    assert refusal(convert_decoder(layers, "float32")).reason == "no xen metadata"


def test_metadata_that_does_not_match_the_graph() -> None:
    layers = random_decoder_layers((3, 12, 48, 192), seed=5)
    wrong = XenMetadata("perc", rows=12, ticks=15, latent_scale=3, group_sizes=(12,))  # 180 != 192 outputs
    data = with_xen_metadata(convert_decoder(layers, "float32"), wrong, "wrong")
    assert refusal(data).status == lib.RV_ERR_METADATA


def tanh_decoder_tflite() -> bytes:
    """A decoder whose hidden activation is tanh: the converter emits a TANH operator."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    (k0, b0), (k1, b1) = random_decoder_layers((3, 8, 192), seed=6)

    class Decoder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 3], tf.float32)])
        def __call__(self, latent: Any) -> Any:
            return tf.sigmoid(tf.linalg.matmul(tf.tanh(tf.linalg.matmul(latent, k0) + b0), k1) + b1)

    module = Decoder()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module
    )
    return with_xen_metadata(bytes(converter.convert()), DEMO_METADATA, "tanh")


def test_an_operator_the_module_does_not_run() -> None:
    assert refusal(tanh_decoder_tflite()).reason == "op not supported"


@pytest.mark.parametrize(
    ("sizes", "metadata", "status"),
    [
        ((3, 8, 65), XenMetadata("note", rows=1, ticks=65, latent_scale=3), "RV_ERR_LIMIT_TICKS"),
        ((3, 8, 130), XenMetadata("note", rows=130, ticks=1, latent_scale=3), "RV_ERR_LIMIT_ROWS"),
        (
            (3, 8, 9 * 16),
            XenMetadata("perc", rows=9, ticks=16, latent_scale=3, group_sizes=(1,) * 9),
            "RV_ERR_LIMIT_GROUPS",
        ),
        ((3, *[4] * 9, 16), XenMetadata("note", rows=1, ticks=16, latent_scale=3), "RV_ERR_LIMIT_LAYERS"),
    ],
)
def test_models_beyond_the_limits(sizes: tuple[int, ...], metadata: XenMetadata, status: str) -> None:
    data = tflite_bytes(random_decoder_layers(sizes, seed=7), metadata, "float32")
    assert refusal(data).status == getattr(lib, status)


def test_decode_checks_the_latent_shape() -> None:
    decoder = Decoder.from_bytes(core_models()["demo_float32"].tflite)
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        decoder.decode(np.zeros((4, 2), np.float32))
    with pytest.raises(CoreError, match="wrong model type"):
        decoder.decode_quantized(np.zeros((1, 3), np.int8))


def test_every_reason_fits_a_line_of_the_module_display() -> None:
    reasons = [CoreError(status, "model.tflite", "load").reason for status in range(64)]
    assert "unknown status" in reasons  # the range runs past the last status
    assert max(len(reason) for reason in reasons) <= 21
