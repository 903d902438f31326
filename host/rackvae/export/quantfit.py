"""int8 weights that play the float decoder's notes: fitted to its outputs, rounded with error feedback.

The converter rounds every weight to the nearest step of its output channel and leaves the hidden
activations' rounding (8 bits per layer) uncorrected, so cells near a threshold play differently in
int8 and float32 (0.20% of the 17³ knob grid on the demo model). Layer by layer, from the first:

1. convert the current weights and read the int8 input the layer gets (TFLite's reference kernels);
2. solve, per output channel, the least-squares weights and bias that map those int8 inputs to the
   float decoder's pre-activations (the last layer weighted towards what is heard, ``_heard_weights``:
   hit logits near the row's threshold, where a note is decided; a groove model's velocity and offset
   outputs by the sigmoid's slope squared, so the fit minimises the error of the value itself);
3. round them onto the channel's int8 grid one weight at a time, each rounding error spread over the
   weights not yet rounded (GPTQ: the inverse of the inputs' Gram matrix says how), the largest weight
   first and kept at ±127 steps so the converter picks the same scale; the bias (int32) takes the rest.

The result is plain float weights on the int8 grid: the converter quantises them to exactly those
values, so the file is an ordinary int8 .tflite, bit-exact with TFLite-Micro like any other. The
float32 and float16 files keep the decoder's own weights. Measured: int8 vs float32 note flips at
the model's thresholds on the 17³ knob grid, demo model (3-12-48-192) 0.201% -> 0.121%, the searched
3-64-192-320-192 model 0.114% -> 0.086%.

Groove models: ``grid_errors`` also measures velocity (0..127) and offset (steps) of the int8 file
against float32 on the grid. Their resolution in int8 is set by the shared LOGISTIC: its output step
1/256 (velocity 127/256 ≈ 0.5, offset 1/256 step) and, coarser in the middle of the range, its input's
step (the logit range ±8 in 255 steps: 0.063 logit, at sigmoid 0.5 about 2 velocity units or 0.016 step).
Measured on the 17³ grid, a groove-feel model as ``make demo`` trains it (3-64-192-576, 25 epochs), the
converter's rounding -> these weights: hit flips 0.121% -> 0.077%; on the cells both play, velocity
max 5.87 -> 3.48 (mean 0.54 -> 0.45) of 127, offset max 0.031 -> 0.016 step (mean 0.0043 -> 0.0039).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from rackvae.core import Decoder, latent_from_controls
from rackvae.export.metadata import read_xen_metadata
from rackvae.model import DecoderLayers, ModelConfig, split_outputs

KNOB_GRID_POINTS = 17  # per knob: the 17³ grid, 1/16 of the knob range apart
FIT_RANDOM_LATENTS = 1000  # uniform over the ±scale cube, beside the calibration latents
# Last layer: each sample's weight exp(-(logit - logit(threshold))² / 2 width²) + floor.
_LOGIT_WIDTH = 2.0
_WEIGHT_FLOOR = 1e-3
_RIDGE = 1e-5  # relative to the Gram matrix's mean diagonal


def knob_grid(latent_scale: float, latent_dim: int, points: int = KNOB_GRID_POINTS) -> np.ndarray:
    """Latents ``[points**latent_dim, latent_dim]`` of knobs at ``points`` positions from -5 to 5 V each,
    mapped as the module maps them (rv_latent_from_controls, no CV)."""
    axis = np.array(
        [latent_from_controls(v, 0.0, latent_scale) for v in np.linspace(-5, 5, points)], np.float32
    )
    return np.stack(np.meshgrid(*[axis] * latent_dim, indexing="ij"), -1).reshape(-1, latent_dim)


def note_flips(
    reference: np.ndarray, int8_file: bytes, latents: np.ndarray, row_thresholds: np.ndarray
) -> float:
    """Fraction of cells (latent, tick, row) where the int8 file, decoded by the C core, and the float
    ``reference`` outputs ``[N, outputs]`` disagree on whether the row plays (``p >= its row's
    threshold``); a groove model's hits channel (its first ``ticks * rows`` outputs) alone."""
    return grid_errors(reference, int8_file, latents, row_thresholds)["note_flips_vs_float32"]


def grid_errors(
    reference: np.ndarray, int8_file: bytes, latents: np.ndarray, row_thresholds: np.ndarray
) -> dict[str, float]:
    """The int8 file (decoded by the C core) against the float ``reference`` outputs ``[N, outputs]``
    at ``latents``: ``note_flips_vs_float32`` (see note_flips) and, per further channel of a groove
    model, the largest difference of its value (velocity 0..127, offset in steps) over every cell and
    the largest and mean over the cells both play (what is heard)."""
    meta = read_xen_metadata(int8_file)
    config = ModelConfig(meta.ticks, meta.rows, outputs=meta.channel_names)
    quantized = split_outputs(config, Decoder.from_bytes(int8_file).decode(latents).reshape(len(latents), -1))
    exact = split_outputs(config, np.asarray(reference, np.float32).reshape(len(latents), -1))
    limits = np.asarray(row_thresholds, np.float32)
    played = exact["hits"] >= limits
    both = played & (quantized["hits"] >= limits)
    errors = {"note_flips_vs_float32": float(np.mean(played != (quantized["hits"] >= limits)))}
    for name in meta.channel_names[1:]:
        error = np.abs(quantized[name].astype(np.float64) - exact[name])
        errors[f"{name}_max_abs_error_vs_float32"] = float(error.max())
        errors[f"{name}_max_abs_error_on_notes"] = float(error[both].max()) if both.any() else 0.0
        errors[f"{name}_mean_abs_error_on_notes"] = float(error[both].mean()) if both.any() else 0.0
    return errors


def fitted_int8_layers(
    layers: DecoderLayers,
    convert: Callable[[DecoderLayers], bytes],
    fit_latents: np.ndarray,
    row_thresholds: np.ndarray,
    channels: int = 1,
) -> DecoderLayers:
    """Weights whose int8 conversion (``convert``: layers -> int8 .tflite, calibrated the same way every
    time) follows the float ``layers`` at ``fit_latents`` (see the module docstring); ``channels``: the
    decoder's output blocks (hits first), 3 for a groove model."""
    latents = np.asarray(fit_latents, np.float32)
    current = [(np.array(kernel), np.array(bias)) for kernel, bias in layers]
    for index in range(len(layers)):
        inputs = _int8_inputs(convert(current), latents, index)
        targets = _pre_activations(layers, latents, index)
        if index == len(layers) - 1:
            base, extra = _WEIGHT_FLOOR, _heard_weights(targets, row_thresholds, channels)
        else:
            base, extra = 1.0, np.zeros_like(targets)
        kernel, bias = layers[index]
        original = np.vstack([kernel, bias[None]]).astype(np.float64)
        solved = _fit_channels(inputs, targets, base, extra, original)
        current[index] = (solved[:-1].astype(np.float32), solved[-1].astype(np.float32))
    return current


def _heard_weights(logits: np.ndarray, row_thresholds: np.ndarray, channels: int) -> np.ndarray:
    """The last layer's extra weight per sample and output ``[N, outputs]``: a hit output by
    exp(-(logit - logit(threshold))² / 2 width²); a velocity or offset output by the squared slope of
    the sigmoid at its logit, (4 s (1 - s))², which turns the logit's squared error into the value's.

    Velocity and offset are weighted at every sample, not only where the float hit plays: on a trained
    groove model (synthetic feel, 17³ knob grid) that gating left fewer samples per output and fitted
    no better on the played cells (velocity max 2.64 vs 2.43, offset 0.0186 vs 0.0191 step) and worse
    off them (velocity max 5.2 vs 2.4)."""
    cells = logits.shape[1] // channels
    centre = np.log(row_thresholds / (1 - np.maximum(row_thresholds, 1e-6)))
    centre = np.tile(np.clip(centre, -30, 30), cells // len(row_thresholds))
    hits = np.clip(logits[:, :cells], -30, 30)
    values = 1 / (1 + np.exp(-np.clip(logits[:, cells:], -30, 30)))
    return np.hstack(
        [np.exp(-((hits - centre) ** 2) / (2 * _LOGIT_WIDTH**2)), (4 * values * (1 - values)) ** 2]
    )


def _int8_inputs(tflite: bytes, latents: np.ndarray, layer: int) -> np.ndarray:
    """The dequantised int8 input of dense layer ``layer`` at each latent, from TFLite's reference
    kernels (those TFLite-Micro and the C core reproduce bit for bit)."""
    from rackvae.export.tflite import dequantize, quantize

    graph = tfl.ModelT.InitFromPackedBuf(bytearray(tflite), 0).subgraphs[0]
    tensor = graph.operators[layer].inputs[0]
    quant = graph.tensors[tensor].quantization
    params = (float(quant.scale[0]), int(quant.zeroPoint[0]))
    if layer == 0:
        return dequantize(quantize(latents, np.int8, params), params).astype(np.float64)
    interpreter = Interpreter(
        model_content=tflite,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], list(latents.shape))  # all latents in one batch
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], quantize(latents, np.int8, source["quantization"]))
    interpreter.invoke()
    return dequantize(interpreter.get_tensor(tensor), params).astype(np.float64)


def _pre_activations(layers: DecoderLayers, latents: np.ndarray, layer: int) -> np.ndarray:
    h = latents.astype(np.float64)
    for kernel, bias in layers[:layer]:
        h = np.maximum(h @ kernel + bias, 0.0)
    kernel, bias = layers[layer]
    return h @ kernel + bias


def _fit_channels(
    inputs: np.ndarray, targets: np.ndarray, base: float, extra: np.ndarray, original: np.ndarray
) -> np.ndarray:
    """``[in + 1, out]`` (kernel rows, then the bias): per output channel the least-squares fit of
    ``targets`` from ``inputs``, each sample weighted ``base + extra[sample, channel]``, rounded onto
    the channel's int8 grid with error feedback."""
    design = np.hstack([inputs, np.ones((len(inputs), 1))])
    size = design.shape[1]
    result = np.empty_like(original)
    gram_all, moments_all = design.T @ design, design.T @ targets  # the base weight's share, once
    for channel in range(targets.shape[1]):
        # samples whose extra weight is negligible (far from the threshold) count at the base weight
        near = extra[:, channel] > 1e-4
        part, part_weight = design[near], extra[near, channel]
        gram = (base * gram_all + part.T @ (part * part_weight[:, None])) / len(design)
        moments = base * moments_all[:, channel] + part.T @ (part_weight * targets[near, channel])
        gram += _RIDGE * np.mean(np.diag(gram)) * np.eye(size)
        solution = np.linalg.solve(gram, moments / len(design))
        step = np.abs(original[:-1, channel]).max() / 127
        if step == 0:  # a channel without weights: nothing to round
            result[:, channel] = solution
            continue
        order = [*np.argsort(-np.abs(original[:-1, channel]), kind="stable"), size - 1]
        factor = np.linalg.cholesky(np.linalg.inv(gram[np.ix_(order, order)])).T
        values = solution[order]
        for i in range(size - 1):  # the bias (last) stays continuous
            if i == 0:  # the largest keeps the channel's scale: exactly 127 steps
                rounded = np.copysign(127 * step, original[order[0], channel])
            else:
                rounded = np.clip(np.round(values[i] / step), -127, 127) * step
            error = (values[i] - rounded) / factor[i, i]
            values[i] = rounded
            values[i + 1 :] -= error * factor[i, i + 1 :]
        result[order, channel] = values
    return result
