"""The C core on two more microcontroller families decodes bit for bit like the cffi core on the desktop:
the demo-size int8 model on a Cortex-M0+ without FPU (QEMU microbit) and on an 8-bit ATmega2560 (simavr:
16-bit int, 32-bit double), and the float32 model on the M0 in software floating point.

Each program (firmware/m0, firmware/avr) is built around the exporter's C arrays of the model, as a
project that vendors core/ builds it, and decodes a few hundred latents: the ±scale cube's corners, its
centre and random ones. Through the cffi core the targets inherit its references (int8 bit-exact with
TFLite-Micro, float32 within 1e-5 of JAX); both are asserted here on the targets' own outputs too.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rackvae.core import Decoder
from rackvae.export.tflite import run_tflite_micro
from rackvae.mcu import TOOLS, Family, build, run_avr, run_m0
from rackvae.model import decode_layers
from test_core_models import core_models

N_M0 = 400
N_AVR = 200  # simavr runs ~30 M cycles/s; an int8 decode is ~0.9 M cycles
FLOAT_TOLERANCE = 1e-5


def require(family: Family) -> None:
    missing = [tool for tool in TOOLS[family] if shutil.which(tool) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def latents(n: int, scale: float, seed: int) -> np.ndarray:
    """The cube's 8 corners, its centre, then random latents."""
    corners = np.array([*itertools.product((-scale, scale), repeat=3), (0.0, 0.0, 0.0)], np.float32)
    rng = np.random.default_rng(seed)
    return np.concatenate([corners, rng.uniform(-scale, scale, (n - len(corners), 3))]).astype(np.float32)


def assert_same_bits(target: np.ndarray, desktop: np.ndarray) -> None:
    assert target.shape == desktop.shape
    mismatches = int((target.view(np.uint32) != desktop.view(np.uint32)).sum())
    assert mismatches == 0, f"{mismatches} of {desktop.size} probabilities differ"


@pytest.mark.parametrize("variant", ["int8", "float32"])
def test_m0_decodes_bit_for_bit_like_the_cffi_core(variant: str, tmp_path: Path) -> None:
    require("m0")
    model = core_models()[f"demo_{variant}"]
    x = latents(N_M0, model.metadata.latent_scale, seed=7)
    elf = build("m0", model.tflite, tmp_path)
    run = run_m0(elf, x, tmp_path / "run")
    desktop = Decoder.from_bytes(model.tflite).decode(x).reshape(len(x), -1)
    assert len(np.unique(desktop)) > 50  # many distinct probabilities, not a constant
    assert_same_bits(run.probabilities, desktop)
    if variant == "int8":
        assert np.array_equal(run.probabilities, run_tflite_micro(model.tflite, x))
    else:
        assert float(np.abs(run.probabilities - decode_layers(model.layers, x)).max()) <= FLOAT_TOLERANCE
    # what the program measured: the core's scratch for one latent, a stack well inside 16 KiB of RAM
    assert run.values["scratch"] == (960 if variant == "int8" else 384)
    assert 0 < run.values["stack"] < 2048


def test_avr_decodes_int8_bit_for_bit_like_the_cffi_core(tmp_path: Path) -> None:
    require("avr")
    model = core_models()["demo_int8"]
    x = latents(N_AVR, model.metadata.latent_scale, seed=8)
    run = run_avr(build("avr", model.tflite, tmp_path, x), len(x))
    desktop = Decoder.from_bytes(model.tflite).decode(x).reshape(len(x), -1)
    assert len(np.unique(desktop)) > 50
    assert_same_bits(run.probabilities, desktop)
    assert np.array_equal(run.probabilities, run_tflite_micro(model.tflite, x))
    # the goal: under 100 ms at 16 MHz; the stack of a decode well inside the Mega's 8 KiB
    assert 0 < run.values["cycles"] < 1_600_000
    assert run.values["scratch"] == 960
    assert 0 < run.values["stack"] < 1024
