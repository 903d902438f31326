"""The C core's float logistic against float64 sigmoid over the whole float range.

A float32 decoder whose layers pass latent[0] through exactly (ReLU of x and -x, then their
difference) and add a bias per output, so the core's logistic sees x + bias_j, a float32 sum numpy
reproduces bit for bit. The core builds the logistic from exactly rounded operations only (so the
Cortex-M7 computes the same bits, tests/test_m7_parity.py); here its accuracy, range, saturation and
monotonicity are checked.
"""

from __future__ import annotations

import numpy as np
import pytest

from rackvae.core import Decoder
from rackvae.export.metadata import XenMetadata
from rackvae.export.tflite import tflite_bytes

OUTPUTS = 16
# offsets between outputs: each latent covers [x, x + 15/16 * 1e-3] in steps of 1/16 * 1e-3
BIASES = (np.arange(OUTPUTS) * (1e-3 / OUTPUTS)).astype(np.float32)


@pytest.fixture(scope="module")
def pass_through() -> Decoder:
    first = np.zeros((3, 2), np.float32)
    first[0] = (1.0, -1.0)  # relu(x), relu(-x)
    layers = [
        (first, np.zeros(2, np.float32)),
        (np.eye(2, dtype=np.float32), np.zeros(2, np.float32)),
        (np.tile(np.array([[1.0], [-1.0]], np.float32), (1, OUTPUTS)), BIASES),
    ]
    metadata = XenMetadata("note", rows=OUTPUTS, ticks=1, latent_scale=3, base_note=40)
    return Decoder.from_bytes(tflite_bytes(layers, metadata, "float32"), source="pass_through")


def logistic(decoder: Decoder, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the logistic's float32 inputs, the core's outputs), both flattened."""
    latents = np.zeros((len(x), 3), np.float32)
    latents[:, 0] = x
    inputs = (latents[:, :1] + BIASES[None, :]).astype(np.float32).ravel()
    return inputs, decoder.decode(latents).ravel()


def sigmoid64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def test_logistic_within_1e_6_of_float64_sigmoid(pass_through: Decoder) -> None:
    x = np.arange(-20000, 20001, dtype=np.float64) * 1e-3
    inputs, got = logistic(pass_through, x.astype(np.float32))
    assert np.array_equal(logistic(pass_through, x.astype(np.float32))[1], got)
    error = np.abs(got.astype(np.float64) - sigmoid64(inputs))
    assert error.max() <= 1e-6, f"worst at x = {inputs[error.argmax()]}: {error.max():.3g}"
    # relative accuracy where the probability is small (exp's polynomial, not the clamp)
    small = (inputs > -80) & (inputs < -1)
    relative = error[small] / sigmoid64(inputs[small])
    assert relative.max() <= 1e-6


def test_logistic_is_monotone_and_in_unit_interval(pass_through: Decoder) -> None:
    x = np.arange(-20000, 20001, dtype=np.float64) * 1e-3
    inputs, got = logistic(pass_through, x.astype(np.float32))
    order = np.argsort(inputs, kind="stable")
    assert np.all(np.diff(got[order]) >= 0)
    assert got.min() >= 0.0 and got.max() <= 1.0
    assert got[inputs == 0].tolist() == [0.5]


def test_logistic_saturates_and_maps_extremes(pass_through: Decoder) -> None:
    big = np.float32(np.finfo(np.float32).max)
    x = np.array([-np.inf, -big, -1e30, -200, -100, -80, 80, 100, 200, 1e30, big, np.inf, np.nan], np.float32)
    inputs, got = logistic(pass_through, x)
    assert np.all((got >= 0.0) & (got <= 1.0))
    want = sigmoid64(inputs)
    finite = np.isfinite(inputs)
    assert np.abs(got[finite] - want[finite]).max() <= 1e-6
    high = inputs >= 80
    assert np.all(got[high] == 1.0)
    low = inputs <= -80
    assert np.all((got[low] > 0.0) & (got[low] < 1e-30))
