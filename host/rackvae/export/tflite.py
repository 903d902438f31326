"""The decoder as a .tflite file (float32, float16 weights, full int8) with xen metadata.

Route: a ``tf.function`` over the numpy weights (matmul + bias, ReLU, sigmoid) converted with
``TFLiteConverter.from_concrete_functions``; that yields FULLY_CONNECTED (fused RELU) layers and one
LOGISTIC, the only ops the module registers. ``check_decoder_graph`` refuses anything else.
TensorFlow is imported on first conversion only (it takes seconds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from rackvae.export.metadata import XenMetadata, with_xen_metadata
from rackvae.model import DecoderLayers

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
    if sizes[0] != metadata.latent_dim or sizes[-1] != metadata.rows * metadata.ticks:
        raise ExportError(
            f"decoder {sizes[0]} -> {sizes[-1]} does not match metadata latent_dim {metadata.latent_dim}, "
            f"rows {metadata.rows} x ticks {metadata.ticks}"
        )
    if variant == "int8" and representative is None:
        representative = representative_latents(metadata.latent_dim, metadata.latent_scale)
    converted = convert_decoder(layers, variant, representative)
    check_decoder_graph(converted, variant, sizes)
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


def int8_error_budget(tflite: bytes) -> float:
    """Largest expected |int8 output - float decoder| for this file, in its own quantisation steps.

    One output step (the output's rounding and the fixed-point logistic) plus two logit steps seen
    through the sigmoid's steepest slope, 1/4: the logit's own rounding and what the input and the
    hidden layers' rounding pass on. On random and sharpened decoders errors reach 55-65 % of it.
    """
    model = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    graph = model.subgraphs[0]
    logistic = graph.operators[-1]
    logit_scale = float(graph.tensors[logistic.inputs[0]].quantization.scale[0])
    output_scale = float(graph.tensors[logistic.outputs[0]].quantization.scale[0])
    return output_scale + 2 * logit_scale / 4
