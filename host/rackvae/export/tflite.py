"""The decoder as a .tflite file (float32, float16 weights, full int8) with xen metadata.

Route: a ``tf.function`` over the numpy weights (matmul + bias, ReLU, sigmoid) converted with
``TFLiteConverter.from_concrete_functions``; that yields FULLY_CONNECTED (fused RELU) layers and one
LOGISTIC, the only ops the module registers. ``check_decoder_graph`` refuses anything else.
A groove decoder's channels (docs/groove_format.md) are more outputs of the same graph: one LOGISTIC
over the channel-major vector, so int8 gives every channel its output scale (1/256, zero point -128).
The int8 file is calibrated on ``representative_latents`` and its logit range narrowed to ±8;
``check_against_decoder`` runs every file in LiteRT against the JAX decoder (int8 against
``int8_error_budget``). TensorFlow is imported on first conversion only (it takes seconds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from rackvae.export.container import pack_model, unpack_model, with_xen_metadata
from rackvae.export.metadata import XenMetadata
from rackvae.model import DecoderLayers, decode_layers

Variant = Literal["float32", "float16", "int8"]
VARIANTS: tuple[Variant, ...] = ("float32", "float16", "int8")
# Only the float16 file dequantizes its constant weights; the module's resolvers know nothing else.
ALLOWED_OPS: dict[str, frozenset[str]] = {
    "float32": frozenset({"FULLY_CONNECTED", "LOGISTIC"}),
    "float16": frozenset({"FULLY_CONNECTED", "LOGISTIC", "DEQUANTIZE"}),
    "int8": frozenset({"FULLY_CONNECTED", "LOGISTIC"}),
}
_OP_NAMES = {code: name for name, code in vars(tfl.BuiltinOperator).items() if not name.startswith("_")}
_TENSOR_TYPE_NAMES = {code: name for name, code in vars(tfl.TensorType).items() if not name.startswith("_")}
_IO_TYPE = {"float32": "FLOAT32", "float16": "FLOAT32", "int8": "INT8"}
_CALIBRATION_CUBE_POINTS = 1000
CALIBRATION_MAX_MEANS = 2000
# Beyond ±8 the sigmoid is within 3.4e-4 of 0 or 1, under half an int8 output step (1/512): a wider
# logit range only coarsens the steps where the probabilities change.
LOGIT_LIMIT = 8.0
# float32 and float16 files against the decoder holding the same weights (float16-rounded for float16).
FLOAT_TOLERANCE = 1e-5
# int8 budget: rounding noise propagated as standard deviations; this many of them, plus one output step.
BUDGET_DEVIATIONS = 6.0


class ExportError(RuntimeError):
    """The converter produced something the module cannot run, with the reason."""


def representative_latents(
    latent_dim: int, latent_scale: float, encoder_means: np.ndarray | None = None, seed: int = 0
) -> np.ndarray:
    """Calibration latents for int8: about 1000 points spread over the ±scale cube, its two extreme
    corners included so the input range is exactly the knob range (a grid while that has at most 2000
    points, random points beyond), plus up to 2000 encoder means of training data (where the music lives)."""
    per_axis = max(2, round(_CALIBRATION_CUBE_POINTS ** (1.0 / latent_dim)))
    if per_axis**latent_dim <= 2 * _CALIBRATION_CUBE_POINTS:
        axis = np.linspace(-latent_scale, latent_scale, per_axis, dtype=np.float32)
        cube = np.stack(np.meshgrid(*[axis] * latent_dim, indexing="ij"), axis=-1).reshape(-1, latent_dim)
    else:
        spread = np.random.default_rng(seed).uniform(
            -latent_scale, latent_scale, (_CALIBRATION_CUBE_POINTS - 2, latent_dim)
        )
        corners = np.array([[-latent_scale] * latent_dim, [latent_scale] * latent_dim])
        cube = np.concatenate([corners, spread]).astype(np.float32)
    if encoder_means is None or len(encoder_means) == 0:
        return cube
    means = np.asarray(encoder_means, np.float32).reshape(-1, latent_dim)
    if len(means) > CALIBRATION_MAX_MEANS:
        means = means[np.random.default_rng(seed).choice(len(means), CALIBRATION_MAX_MEANS, replace=False)]
    return np.concatenate([cube, np.clip(means, -latent_scale, latent_scale)])


def _tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep conversion output readable
    import tensorflow as tf

    return tf


def convert_decoder(
    layers: DecoderLayers, variant: Variant, representative: np.ndarray | None = None
) -> bytes:
    """Run TensorFlow's converter on the decoder; no metadata, graph not yet checked."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == "int8" and (representative is None or len(representative) == 0):
        raise ValueError("the int8 variant needs representative latents for calibration")
    tf = _tensorflow()
    latent_dim = layers[0][0].shape[0]

    class Decoder(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = [(tf.constant(kernel), tf.constant(bias)) for kernel, bias in layers]

        @tf.function(input_signature=[tf.TensorSpec([1, latent_dim], tf.float32, name="latent")])
        def __call__(self, latent: Any) -> Any:
            h = latent
            for kernel, bias in self.weights[:-1]:
                h = tf.nn.relu(tf.linalg.matmul(h, kernel) + bias)
            kernel, bias = self.weights[-1]
            return tf.sigmoid(tf.linalg.matmul(h, kernel) + bias)

    decoder = Decoder()
    function = decoder.__call__.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], decoder)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        samples = np.asarray(representative, np.float32).reshape(-1, latent_dim)

        def calibration() -> Iterator[list[np.ndarray]]:
            for sample in samples:
                yield [sample[None, :]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def operator_names(tflite: bytes) -> list[str]:
    """The builtin op of every operator of the first subgraph, in execution order."""
    model = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    codes = [max(code.builtinCode, code.deprecatedBuiltinCode) for code in model.operatorCodes]
    used = [codes[op.opcodeIndex] for op in model.subgraphs[0].operators]
    return [_OP_NAMES.get(code, f"op{code}") for code in used]


def check_decoder_graph(tflite: bytes, variant: Variant, sizes: tuple[int, ...]) -> None:
    """Raise ExportError unless ``tflite`` is FULLY_CONNECTED (RELU)... FULLY_CONNECTED, LOGISTIC
    (plus weight DEQUANTIZE for float16) mapping ``[1, sizes[0]]`` to ``[1, sizes[-1]]``."""
    model = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    if len(model.subgraphs) != 1:
        raise ExportError(f"{variant}: expected one subgraph, got {len(model.subgraphs)}")
    graph = model.subgraphs[0]
    names = operator_names(tflite)
    unexpected = sorted(set(names) - ALLOWED_OPS[variant])
    if unexpected:
        raise ExportError(f"{variant}: converter emitted ops the module cannot run: {unexpected} ({names})")
    compute = [(name, op) for name, op in zip(names, graph.operators, strict=True) if name != "DEQUANTIZE"]
    expected = ["FULLY_CONNECTED"] * (len(sizes) - 1) + ["LOGISTIC"]
    if [name for name, _ in compute] != expected:
        raise ExportError(f"{variant}: expected ops {expected}, got {names}")
    activation = tfl.ActivationFunctionType
    for index, (_, op) in enumerate(compute[:-1]):
        wanted = activation.RELU if index < len(sizes) - 2 else activation.NONE
        fused = op.builtinOptions.fusedActivationFunction
        if fused != wanted:
            raise ExportError(f"{variant}: layer {index} has fused activation {fused}, expected {wanted}")
    for role, indices, width in (("input", graph.inputs, sizes[0]), ("output", graph.outputs, sizes[-1])):
        if len(indices) != 1:
            raise ExportError(f"{variant}: expected one {role}, got {len(indices)}")
        tensor = graph.tensors[indices[0]]
        shape, type_name = list(tensor.shape), _TENSOR_TYPE_NAMES[tensor.type]
        if shape != [1, width] or type_name != _IO_TYPE[variant]:
            wanted_type = _IO_TYPE[variant]
            raise ExportError(f"{variant}: {role} is {type_name}{shape}, expected {wanted_type}[1, {width}]")


def narrow_logit_range(tflite: bytes, limit: float = LOGIT_LIMIT) -> bytes:
    """int8 file whose LOGISTIC input covers at most ±``limit`` (calibration saw the cube's extreme
    logits, up to ±100 in trained decoders). The kernels derive their multipliers from the tensor
    scales when they prepare, so only the logit tensor's scale and zero point change."""
    model = unpack_model(tflite)
    graph = model.subgraphs[0]
    quantization = graph.tensors[graph.operators[-1].inputs[0]].quantization
    scale, zero_point = float(quantization.scale[0]), int(quantization.zeroPoint[0])
    calibrated = ((-128 - zero_point) * scale, (127 - zero_point) * scale)
    low, high = max(calibrated[0], -limit), min(calibrated[1], limit)
    if (low, high) == calibrated:
        return tflite
    scale = (high - low) / 255
    quantization.scale = np.array([scale], np.float32)
    quantization.zeroPoint = np.array([np.clip(round(-128 - low / scale), -128, 127)], np.int64)
    quantization.min = quantization.max = None  # calibration statistics of the old range
    return pack_model(model)


def tflite_bytes(
    layers: DecoderLayers,
    metadata: XenMetadata,
    variant: Variant,
    representative: np.ndarray | None = None,
    model_name: str = "decoder",
) -> bytes:
    """The decoder as a checked .tflite file with xen metadata.

    int8 without ``representative`` latents calibrates on the ±scale cube alone.
    """
    sizes = (layers[0][0].shape[0], *(kernel.shape[1] for kernel, _ in layers))
    if sizes[0] != metadata.latent_dim or sizes[-1] != metadata.output_size:
        raise ExportError(
            f"decoder {sizes[0]} -> {sizes[-1]} does not match metadata latent_dim {metadata.latent_dim}, "
            f"{metadata.channels} channel(s) x rows {metadata.rows} x ticks {metadata.ticks}"
        )
    if variant == "int8" and representative is None:
        representative = representative_latents(metadata.latent_dim, metadata.latent_scale)
    converted = convert_decoder(layers, variant, representative)
    check_decoder_graph(converted, variant, sizes)
    if variant == "int8":
        converted = narrow_logit_range(converted)
    return with_xen_metadata(converted, metadata, model_name)


def run_litert(tflite: bytes, latents: np.ndarray, reference_kernels: bool = False) -> np.ndarray:
    """Probabilities ``[N, outputs]`` from LiteRT, one latent at a time as on the module.

    int8 files get their input quantised and their output dequantised with the file's parameters.
    ``reference_kernels`` selects TFLite's reference kernels instead of the optimised (XNNPACK) ones.
    """
    resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
    interpreter = Interpreter(model_content=tflite, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for latent in np.asarray(latents, np.float32):
        interpreter.set_tensor(
            source["index"], quantize(latent[None, :], source["dtype"], source["quantization"])
        )
        interpreter.invoke()
        outputs.append(dequantize(interpreter.get_tensor(target["index"])[0], target["quantization"]))
    return np.stack(outputs)


def quantize(values: np.ndarray, dtype: Any, params: tuple[float, int]) -> np.ndarray:
    """Float values as a tensor of ``dtype``: affine int8 (round half away from zero as TFLite's
    quantiser, then saturate) or unchanged."""
    if np.dtype(dtype) != np.int8:
        return values.astype(dtype)
    scale, zero_point = params
    scaled = values / np.float32(scale)
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


def dequantize(values: np.ndarray, params: tuple[float, int]) -> np.ndarray:
    if values.dtype != np.int8:
        return values.astype(np.float32)
    scale, zero_point = params
    return ((values.astype(np.int32) - zero_point) * np.float32(scale)).astype(np.float32)


def float16_weights(layers: DecoderLayers) -> DecoderLayers:
    """The decoder with its weights rounded to float16, as the float16 file holds them."""
    return [
        (k.astype(np.float16).astype(np.float32), b.astype(np.float16).astype(np.float32)) for k, b in layers
    ]


def int8_error_budget(tflite: bytes, layers: DecoderLayers, latents: np.ndarray) -> np.ndarray:
    """Per output ``[N, outputs]``: how far the int8 file may be from the float decoder at ``latents``.

    The input's rounding is taken exactly (the float decoder runs at the quantised latents). Every
    other rounding (each weight, each layer's output) is noise uniform within its quantisation step
    (variance step²/12), carried through the float weights (ReLU passes it only where a unit may be
    active). The probability may move by ``BUDGET_DEVIATIONS`` standard deviations of the logit
    through the sigmoid (within the logit tensor's range), plus one output step for the output's
    rounding and the fixed-point logistic.
    """
    graph = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0).subgraphs[0]
    tensors = graph.tensors
    layer_ops, logistic = graph.operators[:-1], graph.operators[-1]
    source = tensors[layer_ops[0].inputs[0]].quantization
    params = (float(source.scale[0]), int(source.zeroPoint[0]))
    h = dequantize(quantize(np.asarray(latents, np.float32), np.int8, params), params).astype(np.float64)
    variance = np.zeros_like(h)
    for index, ((kernel, bias), op) in enumerate(zip(layers, layer_ops, strict=True)):
        weights = kernel.astype(np.float64)
        weight_steps = np.asarray(tensors[op.inputs[1]].quantization.scale, np.float64)
        output_step = float(tensors[op.outputs[0]].quantization.scale[0])
        z = h @ weights + bias
        variance = (
            variance @ weights**2
            + weight_steps**2 / 12 * (h**2).sum(axis=-1, keepdims=True)
            + output_step**2 / 12
        )
        if index < len(layer_ops) - 1:
            variance = np.where(z + BUDGET_DEVIATIONS * np.sqrt(variance) > 0, variance, 0.0)
            z = np.maximum(z, 0.0)
        h = z
    logit = tensors[logistic.inputs[0]].quantization
    logit_step, logit_zero = float(logit.scale[0]), int(logit.zeroPoint[0])
    low, high = (-128 - logit_zero) * logit_step, (127 - logit_zero) * logit_step
    spread = BUDGET_DEVIATIONS * np.sqrt(variance)
    probability = decode_layers(layers, latents).astype(np.float64)
    moved = [np.abs(_sigmoid(np.clip(h + sign * spread, low, high)) - probability) for sign in (-1, 1)]
    return np.maximum(*moved) + float(tensors[logistic.outputs[0]].quantization.scale[0])


def check_against_decoder(
    tflite: bytes, variant: Variant, layers: DecoderLayers, latents: np.ndarray
) -> dict[str, float]:
    """Run ``tflite`` in LiteRT at ``latents`` and raise ExportError unless it computes the decoder:
    float32 within 1e-5; float16 within 1e-5 of the decoder with float16-rounded weights; int8 within
    ``int8_error_budget`` at every output. Returns the errors for the model card."""
    output = run_litert(tflite, latents)
    error = np.abs(output - decode_layers(layers, latents))
    result = {"max_abs_error_vs_jax": float(error.max()), "mean_abs_error_vs_jax": float(error.mean())}
    if variant == "int8":
        budget = int8_error_budget(tflite, layers, latents)
        result["max_error_over_budget"] = float((error / budget).max())
        failed = result["max_error_over_budget"] > 1.0 + 1e-4
    else:
        same_weights = layers if variant == "float32" else float16_weights(layers)
        exact = float(np.abs(output - decode_layers(same_weights, latents)).max())
        result["max_abs_error_vs_same_weights"] = exact
        failed = exact > FLOAT_TOLERANCE
    if failed:
        raise ExportError(f"{variant}: the file does not compute the decoder ({result})")
    return result


def run_tflite_micro(tflite: bytes, latents: np.ndarray) -> np.ndarray:
    """Probabilities ``[N, outputs]`` from TFLite-Micro's reference kernels (quantised like run_litert)."""
    from tflite_micro import runtime

    details = Interpreter(model_content=tflite)
    details.allocate_tensors()
    source, target = details.get_input_details()[0], details.get_output_details()[0]
    interpreter = runtime.Interpreter.from_bytes(tflite)
    outputs = []
    for latent in np.asarray(latents, np.float32):
        interpreter.set_input(quantize(latent[None, :], source["dtype"], source["quantization"]), 0)
        interpreter.invoke()
        outputs.append(dequantize(np.array(interpreter.get_output(0)[0]), target["quantization"]))
    return np.stack(outputs)


def check_c_core(tflite: bytes, variant: Variant, latents: np.ndarray, source: str) -> dict[str, Any]:
    """Decode ``latents`` with the C core (rackvae.core) from the same bytes and raise ExportError
    unless it computes what the reference interpreters compute: float variants within 1e-5 of LiteRT,
    int8 bit-exact with TFLite-Micro (LiteRT's optimised int8 kernels round differently)."""
    from rackvae.core import Decoder

    core = Decoder.from_bytes(tflite, source=source).decode(latents).reshape(len(latents), -1)
    if variant == "int8":
        reference, tolerance, name = run_tflite_micro(tflite, latents), 0.0, "TFLite-Micro"
    else:
        reference, tolerance, name = run_litert(tflite, latents), FLOAT_TOLERANCE, "LiteRT"
    result = {"c_core_reference": name, "c_core_max_abs_error": float(np.abs(core - reference).max())}
    if result["c_core_max_abs_error"] > tolerance:
        raise ExportError(f"{variant}: the C core does not decode {source} like {name} ({result})")
    return result


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|
