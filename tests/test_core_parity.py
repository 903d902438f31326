"""The C core (via cffi) computes what the JAX decoder, LiteRT and TFLite-Micro compute, on 1000 random
latents in the +-scale cube, for every exported variant and the original exporter's file."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_micro import runtime

from rackvae.core import Decoder
from rackvae.export.tflite import quantize, run_litert
from rackvae.model import decode_layers
from test_core_models import CoreModel, core_models

N_LATENTS = 1000
FLOAT_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def models() -> dict[str, CoreModel]:
    return core_models()


@pytest.fixture(scope="module")
def latents() -> np.ndarray:
    return np.random.default_rng(0).uniform(-3, 3, (N_LATENTS, 3)).astype(np.float32)


def tflite_micro_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    interpreter = runtime.Interpreter.from_bytes(tflite)
    outputs = []
    for row in inputs:
        interpreter.set_input(row[None, :], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)[0]))
    return np.stack(outputs)


def flat(probabilities: np.ndarray) -> np.ndarray:
    return probabilities.reshape(len(probabilities), -1)


@pytest.mark.parametrize("key", ["demo_float32", "note_float32", "original_float32"])
def test_float32_matches_jax_and_litert(models: dict[str, CoreModel], latents: np.ndarray, key: str) -> None:
    model = models[key]
    decoder = Decoder.from_bytes(model.tflite, source=key)
    core = flat(decoder.decode(latents))
    assert core.shape == (N_LATENTS, model.metadata.rows * model.metadata.ticks)
    assert np.abs(core - decode_layers(model.layers, latents)).max() <= FLOAT_TOLERANCE
    assert np.abs(core - run_litert(model.tflite, latents)).max() <= FLOAT_TOLERANCE
    assert np.abs(core - tflite_micro_outputs(model.tflite, latents)).max() <= FLOAT_TOLERANCE


@pytest.mark.parametrize("name", ["demo", "note"])
def test_float16_matches_litert_and_the_rounded_decoder(
    models: dict[str, CoreModel], latents: np.ndarray, name: str
) -> None:
    model = models[f"{name}_float16"]
    core = flat(Decoder.from_bytes(model.tflite).decode(latents))
    assert np.abs(core - run_litert(model.tflite, latents)).max() <= FLOAT_TOLERANCE
    rounded = [
        (k.astype(np.float16).astype(np.float32), b.astype(np.float16).astype(np.float32))
        for k, b in model.layers
    ]
    assert np.abs(core - decode_layers(rounded, latents)).max() <= FLOAT_TOLERANCE
    # and it is a float16 file: further from the float32 decoder than float32 rounding
    assert np.abs(core - decode_layers(model.layers, latents)).max() > FLOAT_TOLERANCE


@pytest.mark.parametrize("name", ["demo", "note"])
def test_int8_is_bit_exact_with_tflite_micro(
    models: dict[str, CoreModel], latents: np.ndarray, name: str
) -> None:
    model = models[f"{name}_int8"]
    decoder = Decoder.from_bytes(model.tflite)
    assert decoder.dtype == "int8"
    quant = decoder.c_model.input_quant
    inputs = quantize(latents, np.int8, (quant.scale, quant.zero_point))
    core = flat(decoder.decode_quantized(inputs))
    reference = tflite_micro_outputs(model.tflite, inputs)
    assert core.dtype == np.int8 and np.array_equal(core, reference)
    assert len(np.unique(core)) > 50  # many output levels, not a constant
    # the float interface quantises like TFLite and dequantises the same integers
    output = decoder.c_model.output_quant
    dequantized = (core.astype(np.int32) - output.zero_point).astype(np.float32) * np.float32(output.scale)
    assert np.array_equal(flat(decoder.decode(latents)), dequantized)


def test_repacked_weights_decode_like_weights_read_in_place(
    models: dict[str, CoreModel], latents: np.ndarray
) -> None:
    for key, model in models.items():
        in_place = Decoder.from_bytes(model.tflite, repack=False).decode(latents[:64])
        repacked = Decoder.from_bytes(model.tflite, repack=True).decode(latents[:64])
        assert np.array_equal(in_place, repacked), key


@pytest.mark.parametrize("variant", ["float32", "float16"])
def test_layers_and_tflite_give_identical_bits(
    models: dict[str, CoreModel], latents: np.ndarray, variant: str
) -> None:
    model = models[f"note_{variant}"]
    from_file = Decoder.from_bytes(model.tflite).decode(latents)
    from_layers = Decoder.from_layers(model.layers, model.metadata, variant).decode(latents)
    assert np.array_equal(from_file, from_layers)


def test_one_at_a_time_equals_batched(models: dict[str, CoreModel], latents: np.ndarray) -> None:
    for key in ("note_float32", "note_float16", "note_int8"):
        decoder = Decoder.from_bytes(models[key].tflite)
        batched = decoder.decode(latents[:19])
        single = np.concatenate([decoder.decode(latents[i : i + 1]) for i in range(19)])
        assert np.array_equal(batched, single), key
        # the interpreter-style path: the same bits, in the same reused output array
        for i in range(19):
            decoder.input[:] = latents[i]
            assert decoder.invoke() is decoder.output
            assert np.array_equal(decoder.output, batched[i]), (key, i)


def test_original_file_metadata_and_row_groups(models: dict[str, CoreModel]) -> None:
    decoder = Decoder.from_bytes(models["original_float32"].tflite)
    assert decoder.metadata == models["original_float32"].metadata
    assert (decoder.rows, decoder.ticks, decoder.latent_scale) == (11, 16, 3)
    probabilities = np.zeros((16, 11), np.float32)
    probabilities[0, :] = np.linspace(0.5, 1.0, 11)  # all rows at tick 0, row 10 most probable
    notes = decoder.notes(probabilities, threshold=0.4, max_notes=8)
    # the 8 most probable: rows 3..10, in pitch order; groups as the original firmware mapped rows
    assert [n.row for n in notes[0]] == list(range(3, 11))
    assert [n.group for n in notes[0]] == [2, 2, 2, 2, 2, 3, 3, 4]
    assert [round(n.accent, 6) for n in notes[0]] == [0.2, 0.4, 0.6, 0.8, 1.0, 0.0, 1.0, 0.0]
    assert all(not step for step in notes[1:])
