"""Groove parity: a groove model (hits, velocity, offset) trained here for a few seconds, exported by
``rackvae export``'s own code, decodes every channel alike in JAX, LiteRT, TFLite-Micro, the C core
(cffi) and the C core on the emulated Cortex-M7, on random latents in the ±latent_scale cube.

Asserted per channel (docs/groove_format.md: one LOGISTIC over ``[hits][velocity][offset]``, each block
``ticks * rows``): float32 LiteRT and the cffi core within 1e-5 of JAX; float16 LiteRT and the core
within 1e-5 of JAX with the float16-rounded weights (2e-3 of the float32 decoder, as
tests/test_export_tflite.py); int8: the core's integer graph (rv_decode_s8) bit-exact with
TFLite-Micro's reference kernels, every output within ``int8_error_budget`` of JAX; the M7 bit for bit
like the cffi core for every variant, so it inherits all of the above (asserted on its own output too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from tflite_micro import runtime

from rackvae.commands.export import export_model
from rackvae.core import Decoder
from rackvae.export import quantfit
from rackvae.export.metadata import XenMetadata, read_xen_metadata
from rackvae.export.tflite import (
    float16_weights,
    int8_error_budget,
    operator_names,
    quantize,
    run_litert,
    run_tflite_micro,
)
from rackvae.model import OUTPUTS, ModelConfig, decode_layers
from rackvae.train import TrainedModel, TrainSettings, new_model, train
from test_groove import ROWS, TICKS, synthetic_feel
from test_m7_parity import build_root, decode_on_m7, parity_elf  # noqa: F401  (fixtures)

N_LATENTS = 1000
FLOAT_TOLERANCE = 1e-5
FLOAT16_TOLERANCE = 2e-3  # vs the float32 decoder (tests/test_export_tflite.py)
CONFIG = ModelConfig(TICKS, ROWS, hidden_sizes=(32, 16), outputs=OUTPUTS)
CELLS = TICKS * ROWS
SUFFIXES = {"float32": "_dec.tflite", "float16": "_dec_f16.tflite", "int8": "_dec_int8.tflite"}


@dataclass(frozen=True)
class Groove:
    model: TrainedModel
    files: dict[str, bytes]  # variant -> the exported .tflite
    directory: Path  # everything export wrote, C arrays and card included


@pytest.fixture(scope="module")
def groove(tmp_path_factory: pytest.TempPathFactory) -> Groove:
    """12 epochs on the synthetic feel (about 10 s), exported with every format by export_model."""
    root = tmp_path_factory.mktemp("groove-parity")
    data = synthetic_feel()
    data.save(root / "feel.npz")
    train_set, validation_set = data.split(0.2)
    model = new_model("feel", CONFIG, data)
    train(model, train_set, validation_set, TrainSettings(epochs=12), root / "model", log=None)
    out = root / "export"
    out.mkdir()
    export_model(model, out, ["f32", "f16", "int8", "c"], root / "feel.npz")
    return Groove(model, {v: (out / f"feel{s}").read_bytes() for v, s in SUFFIXES.items()}, out)


@pytest.fixture(scope="module")
def latents() -> np.ndarray:
    return np.random.default_rng(16).uniform(-3, 3, (N_LATENTS, 3)).astype(np.float32)


def per_channel(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Largest |a - b| of each channel's block, outputs ``[N, channels * ticks * rows]``."""
    difference = np.abs(a.reshape(len(a), -1).astype(np.float64) - b.reshape(len(b), -1))
    return {name: float(difference[:, k * CELLS : (k + 1) * CELLS].max()) for k, name in enumerate(OUTPUTS)}


def assert_within(errors: dict[str, float], tolerance: float, what: str) -> None:
    assert set(errors) == set(OUTPUTS)
    for name, error in errors.items():
        assert error <= tolerance, f"{what}: {name} off by {error:.3g} (> {tolerance:g})"


def flat(outputs: np.ndarray) -> np.ndarray:
    return outputs.reshape(len(outputs), -1)


def test_every_file_holds_the_three_channels_behind_one_logistic(groove: Groove) -> None:
    expected = XenMetadata.from_layout(
        groove.model.layout, TICKS, 3.0, 3, groove.model.thresholds, ("hits", "velocity", "offset")
    )
    assert expected.extension_version == 3 and expected.channel_ids == (0, 1, 2)
    for variant, blob in groove.files.items():
        assert read_xen_metadata(blob) == expected, variant
        assert [op for op in operator_names(blob) if op != "DEQUANTIZE"] == [
            "FULLY_CONNECTED", "FULLY_CONNECTED", "FULLY_CONNECTED", "LOGISTIC"
        ], variant  # fmt: skip
        decoder = Decoder.from_bytes(blob)
        assert decoder.metadata == expected, variant
        assert flat(decoder.decode(np.zeros((1, 3), np.float32))).shape == (1, 3 * CELLS), variant


def test_float32_litert_and_the_core_match_jax_in_every_channel(groove: Groove, latents: np.ndarray) -> None:
    reference = decode_layers(groove.model.decoder_layers(), latents)
    blob = groove.files["float32"]
    core = flat(Decoder.from_bytes(blob).decode(latents))
    assert_within(per_channel(run_litert(blob, latents), reference), FLOAT_TOLERANCE, "LiteRT float32")
    assert_within(per_channel(core, reference), FLOAT_TOLERANCE, "C core float32")
    # each channel spans values, not a constant (the feel is learned: loud and soft, early and late)
    for k, name in enumerate(OUTPUTS):
        block = reference[:, k * CELLS : (k + 1) * CELLS]
        assert block.max() - block.min() > 0.3, name


def test_float16_litert_and_the_core_match_the_rounded_decoder(groove: Groove, latents: np.ndarray) -> None:
    layers = groove.model.decoder_layers()
    rounded = decode_layers(float16_weights(layers), latents)
    blob = groove.files["float16"]
    litert = run_litert(blob, latents)
    core = flat(Decoder.from_bytes(blob).decode(latents))
    assert_within(per_channel(litert, rounded), FLOAT_TOLERANCE, "LiteRT float16")
    assert_within(per_channel(core, rounded), FLOAT_TOLERANCE, "C core float16")
    assert_within(per_channel(core, litert), FLOAT_TOLERANCE, "C core vs LiteRT float16")
    assert_within(per_channel(core, decode_layers(layers, latents)), FLOAT16_TOLERANCE, "float16 vs JAX")


def tflite_micro_codes(blob: bytes, quantized: np.ndarray) -> np.ndarray:
    """TFLite-Micro's int8 output codes for int8 latents."""
    interpreter = runtime.Interpreter.from_bytes(blob)
    codes = []
    for row in quantized:
        interpreter.set_input(row[None, :], 0)
        interpreter.invoke()
        codes.append(np.array(interpreter.get_output(0)[0]))
    return np.stack(codes)


def int8_latents(decoder: Decoder, latents: np.ndarray) -> np.ndarray:
    """The latents quantised with the file's input parameters, plus the int8 range's corners."""
    quant = decoder.c_model.input_quant
    corners = np.array([[-128, -128, -128], [127, 127, 127], [-128, 127, 0]], np.int8)
    return np.concatenate([corners, quantize(latents, np.int8, (quant.scale, quant.zero_point))])


def test_int8_core_is_bit_exact_with_tflite_micro_in_every_channel(
    groove: Groove, latents: np.ndarray
) -> None:
    blob = groove.files["int8"]
    decoder = Decoder.from_bytes(blob)
    quantized = int8_latents(decoder, latents)
    core = flat(decoder.decode_quantized(quantized))
    micro = tflite_micro_codes(blob, quantized)
    assert core.dtype == micro.dtype == np.int8 and core.shape == micro.shape == (len(quantized), 3 * CELLS)
    for k, name in enumerate(OUTPUTS):
        block = slice(k * CELLS, (k + 1) * CELLS)
        assert np.array_equal(core[:, block], micro[:, block]), name
        assert len(np.unique(core[:, block])) > 20, name  # many output levels, not a constant
    # one output quantisation for all channels: the LOGISTIC's 1/256, zero point -128
    output = decoder.c_model.output_quant
    assert (output.scale, output.zero_point) == (1 / 256, -128)
    assert np.array_equal(flat(decoder.decode(latents)), run_tflite_micro(blob, latents))


def test_int8_is_within_its_error_budget_of_jax_in_every_channel(groove: Groove, latents: np.ndarray) -> None:
    layers = groove.model.decoder_layers()
    blob = groove.files["int8"]
    core = flat(Decoder.from_bytes(blob).decode(latents))
    error = np.abs(core - decode_layers(layers, latents))
    budget = int8_error_budget(blob, layers, latents)
    for k, name in enumerate(OUTPUTS):
        block = slice(k * CELLS, (k + 1) * CELLS)
        assert np.all(error[:, block] <= budget[:, block]), name


def test_int8_velocity_and_offset_on_the_knob_grid(groove: Groove) -> None:
    """The card's int8 figures are the knob grid's, and the fitted weights keep the values close: the
    LOGISTIC's logit step (16/255) bounds the resolution to about 2 velocity units or 0.016 step at
    mid range, the shared output step to 127/256 and 1/256 step."""
    import yaml

    card = yaml.safe_load((groove.directory / "feel.yml").read_text())
    recorded = card["export"]["files"]["feel_dec_int8.tflite"]
    grid = quantfit.knob_grid(3, 3)
    thresholds = np.array(read_xen_metadata(groove.files["int8"]).row_thresholds())
    measured = quantfit.grid_errors(
        decode_layers(groove.model.decoder_layers(), grid), groove.files["int8"], grid, thresholds
    )
    for key, value in measured.items():
        assert recorded[key] == pytest.approx(value, abs=1e-6), key
    assert measured["note_flips_vs_float32"] < 0.01
    assert measured["velocity_max_abs_error_on_notes"] < 6.0  # of 0..127
    assert measured["offset_max_abs_error_on_notes"] < 0.05  # steps
    assert measured["velocity_mean_abs_error_on_notes"] < 1.5
    assert measured["offset_mean_abs_error_on_notes"] < 0.01
    assert [c["name"] for c in card["channels"]] == list(OUTPUTS)
    assert [c["outputs"] for c in card["channels"]] == [[0, 63], [64, 127], [128, 191]]


@pytest.mark.parametrize("variant", ["float32", "float16", "int8"])
def test_m7_decodes_every_channel_like_the_cffi_core(
    parity_elf: Path,  # noqa: F811  (the imported fixture)
    groove: Groove,
    latents: np.ndarray,
    tmp_path: Path,
    variant: str,
) -> None:
    blob = groove.files[variant]
    decoder = Decoder.from_bytes(blob)
    desktop = flat(decoder.decode(latents))
    quantized = int8_latents(decoder, latents) if variant == "int8" else None
    outputs = decode_on_m7(parity_elf, blob, latents, tmp_path, quantized)
    for path in ("repacked", "in_place"):
        output = outputs[path]
        assert output.shape == desktop.shape == (N_LATENTS, 3 * CELLS), path
        for k, name in enumerate(OUTPUTS):
            block = slice(k * CELLS, (k + 1) * CELLS)
            assert np.array_equal(output[:, block].view(np.uint32), desktop[:, block].view(np.uint32)), (
                path,
                name,
            )
    layers = groove.model.decoder_layers()
    m7 = outputs["repacked"]
    if variant == "float32":
        assert_within(per_channel(m7, decode_layers(layers, latents)), FLOAT_TOLERANCE, "M7 float32 vs JAX")
        assert_within(per_channel(m7, run_litert(blob, latents)), FLOAT_TOLERANCE, "M7 float32 vs LiteRT")
    elif variant == "float16":
        assert_within(per_channel(m7, run_litert(blob, latents)), FLOAT_TOLERANCE, "M7 float16 vs LiteRT")
    else:
        assert_within(per_channel(m7, run_tflite_micro(blob, latents)), 0.0, "M7 int8 vs TFLite-Micro")
        micro = tflite_micro_codes(blob, quantized)
        for path in ("quantized", "quantized_in_place"):
            assert_within(per_channel(outputs[path], micro), 0.0, f"M7 rv_decode_s8 ({path}) vs TFLite-Micro")
