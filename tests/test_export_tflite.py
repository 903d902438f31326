"""The exported .tflite files against the JAX decoder, in LiteRT and TFLite-Micro, on 1000 random latents.

Sizes: the demo decoder (3→12→48→192, percussion) and the benchmark size (3→19→120→768, 48-pitch notes).
Each file is converted once per module. int8 LiteRT vs TFLite-Micro: they differ by one output step on
under 1 % of outputs, because LiteRT requantises with single rounding and TFLite-Micro with gemmlowp's double
rounding; ``test_int8_litert_and_micro_differ_only_by_requantisation_rounding`` shows it layer by layer.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from tflite_micro import runtime

from rackvae.export.metadata import XenMetadata, read_xen_metadata
from rackvae.export.tflite import (
    VARIANTS,
    ExportError,
    check_against_decoder,
    check_decoder_graph,
    convert_decoder,
    float16_weights,
    int8_error_budget,
    operator_names,
    representative_latents,
    run_litert,
    run_tflite_micro,
    tflite_bytes,
)
from rackvae.model import decode_layers, random_decoder_layers

SCALE = 3
DECODERS = {
    "demo": ((3, 12, 48, 192), XenMetadata("perc", 12, 16, SCALE, (1, 1, 6, 2, 2))),
    "bench": ((3, 19, 120, 768), XenMetadata("note", 48, 16, SCALE, base_note=36)),
}
CASES = [(size, variant) for size in DECODERS for variant in VARIANTS]


@pytest.fixture(scope="module")
def latents() -> np.ndarray:
    return np.random.default_rng(1234).uniform(-SCALE, SCALE, (1000, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def layers() -> dict[str, list]:
    return {size: random_decoder_layers(sizes, seed=7) for size, (sizes, _) in DECODERS.items()}


@pytest.fixture(scope="module")
def files(layers: dict[str, list]) -> dict[tuple[str, str], bytes]:
    return {
        (size, variant): tflite_bytes(layers[size], DECODERS[size][1], variant) for size, variant in CASES
    }


@pytest.fixture(scope="module")
def reference(layers: dict[str, list], latents: np.ndarray) -> dict[str, np.ndarray]:
    return {size: decode_layers(layers[size], latents) for size in DECODERS}


@pytest.mark.parametrize(("size", "variant"), CASES)
def test_op_list_is_fully_connected_and_logistic(size: str, variant: str, files: dict) -> None:
    layers = len(DECODERS[size][0]) - 1
    compute = ["FULLY_CONNECTED"] * layers + ["LOGISTIC"]
    # float16 keeps weights and biases as float16 constants, each dequantised once.
    expected = ["DEQUANTIZE"] * (2 * layers) + compute if variant == "float16" else compute
    assert operator_names(files[size, variant]) == expected


def test_graph_check_fails_loudly_on_other_ops(files: dict) -> None:
    with pytest.raises(ExportError, match="DEQUANTIZE"):
        check_decoder_graph(files["demo", "float16"], "float32", DECODERS["demo"][0])
    import tensorflow as tf  # a decoder with tanh instead of sigmoid: TANH must be refused

    @tf.function(input_signature=[tf.TensorSpec([1, 3], tf.float32)])
    def tanh_decoder(latent: tf.Tensor) -> tf.Tensor:
        return tf.tanh(tf.linalg.matmul(latent, tf.ones([3, 8])))

    converter = tf.lite.TFLiteConverter.from_concrete_functions([tanh_decoder.get_concrete_function()])
    with pytest.raises(ExportError, match="TANH"):
        check_decoder_graph(converter.convert(), "float32", (3, 8))


@pytest.mark.parametrize("size", DECODERS)
def test_float32_matches_jax_in_litert_and_micro(
    size: str, files: dict, latents: np.ndarray, reference: dict
) -> None:
    tflite = files[size, "float32"]
    assert np.abs(run_litert(tflite, latents) - reference[size]).max() <= 1e-5
    assert np.abs(run_litert(tflite, latents, reference_kernels=True) - reference[size]).max() <= 1e-5
    assert np.abs(run_tflite_micro(tflite, latents) - reference[size]).max() <= 1e-5


@pytest.mark.parametrize("size", DECODERS)
def test_float16_matches_jax_in_litert(size: str, files: dict, latents: np.ndarray, reference: dict) -> None:
    error = np.abs(run_litert(files[size, "float16"], latents) - reference[size]).max()
    assert 0 < error <= 2e-3  # not zero: the weights really are float16


def test_micro_refuses_float16_weights(files: dict) -> None:
    # TFLite-Micro's DEQUANTIZE takes integer inputs only; the C core runs these files instead.
    with pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(files["demo", "float16"]).invoke()


def logistic_range(tflite: bytes) -> tuple[float, float, float]:
    """(lowest logit, highest logit, output step) of the LOGISTIC op, from the schema's object API."""
    graph = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0).subgraphs[0]
    logistic = graph.operators[-1]
    logit, output = (graph.tensors[i].quantization for i in (logistic.inputs[0], logistic.outputs[0]))
    scale, zero_point = float(logit.scale[0]), int(logit.zeroPoint[0])
    return (-128 - zero_point) * scale, (127 - zero_point) * scale, float(output.scale[0])


@pytest.mark.parametrize("size", DECODERS)
def test_int8_within_budget_in_litert_and_micro(
    size: str, layers: dict, files: dict, latents: np.ndarray, reference: dict
) -> None:
    tflite = files[size, "int8"]
    output_step = logistic_range(tflite)[2]
    assert output_step == 1 / 256  # LOGISTIC's fixed int8 output: zero point -128, step 1/256
    budget = int8_error_budget(tflite, layers[size], latents)
    assert budget.min() >= output_step and budget.max() < 4 * output_step  # tight for these decoders
    for output in (
        run_litert(tflite, latents),
        run_litert(tflite, latents, reference_kernels=True),
        run_tflite_micro(tflite, latents),
    ):
        error = np.abs(output - reference[size])
        assert np.all(error <= budget)
        assert (error / budget).max() > 0.25 and error.mean() <= output_step / 2


def test_int8_logit_range_is_narrowed_to_where_the_sigmoid_moves(layers: dict, latents: np.ndarray) -> None:
    """Trained decoders have rows that never play (logits far below -8); min/max calibration would
    stretch the shared logit range over them and coarsen every other output's steps."""
    kernel, bias = layers["demo"][-1]
    silent_row = bias.copy()
    silent_row[::12] = -60.0  # row 0 of every tick
    decoder = [*layers["demo"][:-1], (kernel, silent_row)]
    calibrated = convert_decoder(decoder, "int8", representative_latents(3, SCALE))
    narrowed = tflite_bytes(decoder, DECODERS["demo"][1], "int8")
    wide_low, wide_high, _ = logistic_range(calibrated)
    low, high, _ = logistic_range(narrowed)
    assert wide_low < -50 and -8.1 < low < -7.9
    assert high == pytest.approx(wide_high, abs=0.1)  # the side within ±8 stays as calibrated
    reference = decode_layers(decoder, latents)
    wide_error = np.abs(run_litert(calibrated, latents) - reference)
    budget = int8_error_budget(narrowed, decoder, latents)
    for output in (run_litert(narrowed, latents), run_tflite_micro(narrowed, latents)):
        error = np.abs(output - reference)
        assert np.all(error <= budget)
        assert error.mean() < wide_error.mean() / 4


def test_float16_file_holds_float16_rounded_weights(layers: dict, files: dict, latents: np.ndarray) -> None:
    same_weights = decode_layers(float16_weights(layers["bench"]), latents)
    assert np.abs(run_litert(files["bench", "float16"], latents) - same_weights).max() <= 1e-5


def test_check_against_decoder_refuses_a_file_of_another_decoder(
    layers: dict, files: dict, latents: np.ndarray
) -> None:
    other = random_decoder_layers(DECODERS["demo"][0], seed=8)
    for variant in VARIANTS:
        check_against_decoder(files["demo", variant], variant, layers["demo"], latents)
        with pytest.raises(ExportError, match="does not compute the decoder"):
            check_against_decoder(files["demo", variant], variant, other, latents)


def test_int8_input_range_is_the_knob_range(files: dict) -> None:
    details = Interpreter(model_content=files["demo", "int8"]).get_input_details()[0]
    scale, zero_point = details["quantization"]
    low, high = (-128 - zero_point) * scale, (127 - zero_point) * scale
    assert low == pytest.approx(-SCALE, abs=scale) and high == pytest.approx(SCALE, abs=scale)


# --- int8: LiteRT vs TFLite-Micro ---------------------------------------------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = q * 2**(shift - 31), q in [2**30, 2**31)."""
    mantissa, shift = math.frexp(real)
    q = math.floor(mantissa * 2**31 + 0.5)
    if q == 2**31:
        q, shift = q // 2, shift + 1
    return q, shift


def truncating_divide(value: np.ndarray, divisor: int) -> np.ndarray:
    return np.where(value >= 0, value // divisor, -((-value) // divisor))


def requantize_double(acc: np.ndarray, q: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """gemmlowp: SaturatingRoundingDoublingHighMul then RoundingDivideByPOT (TFLite-Micro)."""
    product = (acc << np.maximum(shift, 0)) * q
    high = truncating_divide(product + np.where(product >= 0, 1 << 30, 1 - (1 << 30)), 1 << 31)
    exponent = np.maximum(-shift, 0)
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> exponent) + ((high & mask) > threshold)


def requantize_single(acc: np.ndarray, q: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLITE_SINGLE_ROUNDING: one rounding shift of the 64-bit product (LiteRT)."""
    total = 31 - shift
    return (acc * q + (1 << (total - 1))) >> total


def fully_connected_int8(
    graph: tfl.SubGraphT, buffers: list, op: tfl.OperatorT, x: np.ndarray, rounding
) -> np.ndarray:
    """One per-channel int8 FULLY_CONNECTED with the given requantisation, from the file's numbers."""
    tensors = graph.tensors
    source, weights, bias = (tensors[i] for i in op.inputs)
    target = tensors[op.outputs[0]]
    w = np.frombuffer(bytes(buffers[weights.buffer].data), np.int8).reshape(weights.shape).astype(np.int64)
    b = np.frombuffer(bytes(buffers[bias.buffer].data), np.int32).astype(np.int64)
    acc = (x.astype(np.int64) - source.quantization.zeroPoint[0]) @ w.T + b
    in_scale, out_scale = float(source.quantization.scale[0]), float(target.quantization.scale[0])
    multipliers = [quantize_multiplier(in_scale * float(w) / out_scale) for w in weights.quantization.scale]
    q, shift = (np.array(column, np.int64) for column in zip(*multipliers, strict=True))
    out = rounding(acc, q, shift)
    zero_point = int(target.quantization.zeroPoint[0])
    relu = op.builtinOptions.fusedActivationFunction == tfl.ActivationFunctionType.RELU
    return np.clip(out + zero_point, zero_point if relu else -128, 127)


@pytest.mark.parametrize("size", DECODERS)
def test_int8_litert_and_micro_differ_only_by_requantisation_rounding(
    size: str, files: dict, latents: np.ndarray
) -> None:
    tflite = files[size, "int8"]
    model = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    graph = model.subgraphs[0]
    litert = Interpreter(
        model_content=tflite,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    litert.allocate_tensors()
    micro = runtime.Interpreter.from_bytes(
        tflite, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors
    )
    source = litert.get_input_details()[0]
    scale, zero_point = source["quantization"]
    scaled = latents / np.float32(scale)
    inputs = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point, -128, 127)
    rounding_differs = 0
    logistic = {"litert": {}, "micro": {}}
    final = {"litert": [], "micro": []}
    for value in inputs.astype(np.int8):
        litert.set_tensor(source["index"], value[None, :])
        litert.invoke()
        micro.set_input(value[None, :], 0)
        micro.invoke()
        read = {
            "litert": litert.get_tensor,
            "micro": lambda index: np.asarray(micro.GetTensor(index, 0)["tensor_data"]),
        }
        for op in graph.operators[:-1]:  # FULLY_CONNECTED layers
            for name, rounding in (("litert", requantize_single), ("micro", requantize_double)):
                x = read[name](op.inputs[0])
                expected = fully_connected_int8(graph, model.buffers, op, x, rounding)
                np.testing.assert_array_equal(read[name](op.outputs[0]), expected)
            x = read["litert"](op.inputs[0])
            single = fully_connected_int8(graph, model.buffers, op, x, requantize_single)
            rounding_differs += int(
                (single != fully_connected_int8(graph, model.buffers, op, x, requantize_double)).sum()
            )
        last = graph.operators[-1]
        for name in logistic:
            for logit, probability in zip(
                read[name](last.inputs[0]).ravel(), read[name](last.outputs[0]).ravel(), strict=True
            ):
                assert logistic[name].setdefault(int(logit), int(probability)) == int(probability)
            final[name].append(read[name](last.outputs[0]).astype(int).ravel())
    assert rounding_differs > 0  # the two roundings really disagree on some accumulators
    common = logistic["litert"].keys() & logistic["micro"].keys()
    assert len(common) > 100 and all(logistic["litert"][k] == logistic["micro"][k] for k in common)
    difference = np.abs(np.stack(final["litert"]) - np.stack(final["micro"]))
    assert difference.max() <= 1 and 0 < difference.mean() < 0.05


def test_int8_litert_default_kernels_match_reference_kernels_almost_always(
    files: dict, latents: np.ndarray
) -> None:
    # The default resolver hands FULLY_CONNECTED to XNNPACK, which requantises in float: rare 1-step misses.
    tflite = files["bench", "int8"]
    default, reference = run_litert(tflite, latents), run_litert(tflite, latents, reference_kernels=True)
    steps = np.abs(default - reference) * 256
    assert steps.max() <= 1 + 1e-3 and (steps > 0.5).mean() < 1e-3


# --- the files themselves -----------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "variant"), CASES)
def test_every_file_carries_its_metadata(size: str, variant: str, files: dict) -> None:
    assert read_xen_metadata(files[size, variant]) == DECODERS[size][1]


def test_conversion_is_deterministic(layers: dict, files: dict) -> None:
    for variant in VARIANTS:
        assert tflite_bytes(layers["demo"], DECODERS["demo"][1], variant) == files["demo", variant]


def test_metadata_that_does_not_match_the_decoder_is_refused(layers: dict) -> None:
    wrong = XenMetadata("note", rows=24, ticks=16, latent_scale=3)
    with pytest.raises(ExportError, match="does not match"):
        tflite_bytes(layers["demo"], wrong, "float32")


def test_int8_needs_calibration_latents(layers: dict) -> None:
    with pytest.raises(ValueError, match="representative"):
        convert_decoder(layers["demo"], "int8")


def test_representative_latents_cover_the_cube_and_add_clipped_means() -> None:
    grid = representative_latents(3, 3.0)
    assert grid.shape == (1000, 3)
    assert {tuple(p) for p in grid[[0, -1]]} == {(-3.0, -3.0, -3.0), (3.0, 3.0, 3.0)}
    means = np.random.default_rng(0).normal(0, 2, (5000, 3)).astype(np.float32)
    mixed = representative_latents(3, 3.0, means)
    assert mixed.shape == (3000, 3)  # at most 2000 means
    assert np.abs(mixed).max() <= 3.0
    assert np.array_equal(mixed, representative_latents(3, 3.0, means))  # same subsample each time
    assert representative_latents(2, 1.5).shape == (32 * 32, 2)
    wide = representative_latents(16, 2.0)  # 2**16 grid points would be too many: random + corners
    assert wide.shape == (1000, 16) and {wide.min(), wide.max()} == {-2.0, 2.0}
    assert np.all(wide[0] == -2.0) and np.all(wide[1] == 2.0)


def test_file_sizes_shrink_with_precision(files: dict) -> None:
    for size in DECODERS:
        f32, f16, i8 = (len(files[size, v]) for v in VARIANTS)
        weights = sum(a * b + b for a, b in zip(DECODERS[size][0][:-1], DECODERS[size][0][1:], strict=True))
        assert f32 > 4 * weights and f16 > 2 * weights and i8 > weights
        assert f32 > f16 > i8
