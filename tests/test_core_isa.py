"""The C core's x86 kernels are chosen at run time from the CPU, and ``RACKVAE_ISA`` caps the choice
(rackvae.isa). Under every level this CPU has, in a subprocess with the cap, the parity checks
(tests/test_core_parity.py), the random odd-width layers (tests/test_core_odd_widths.py) and the
logistic's checks (tests/test_core_logistic.py) pass, and every level decodes the test models and more
random layers to the same bits as every other level (float32 bitwise, int8 exactly), batched and one
latent at a time, repacked and in place, latents up to +-3e38 and infinite ones included."""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rackvae import isa
from rackvae.export.metadata import XenMetadata
from rackvae.export.tflite import VARIANTS, tflite_bytes
from rackvae.model import random_decoder_layers
from test_core_models import core_models
from test_core_odd_widths import SHAPES

TESTS = Path(__file__).resolve().parent
# More random layers for the int8 kernels' row lengths: 4 and 17 inputs (the first layer: any input
# zero point), 32 and 48 after a ReLU (128-bit lanes), 65 (two chunks), 160 (a loop of chunks); float
# outputs 17, 65, 160 and 112 (16-wide vectors and masked tails).
MORE_SHAPES = {
    "rows": (
        (4, 17, 32, 65, 112),
        XenMetadata("note", rows=7, ticks=16, latent_scale=3, base_note=40, latent_dim=4),
    ),
    "lanes": ((3, 48, 160, 96), XenMetadata("note", rows=6, ticks=16, latent_scale=3, base_note=40)),
}
N_LATENTS = 203  # 25 blocks of 8 and a partial one


def spread_latents(rng: np.random.Generator, dim: int) -> np.ndarray:
    """Latents in the +-3 cube, the last 40 of any size up to 3e38 (the logistic's whole range) and 3
    infinite ones."""
    latents = rng.uniform(-3, 3, (N_LATENTS, dim))
    latents[-40:] *= 10.0 ** rng.uniform(0, 38, (40, 1))
    latents[-3:, 0] = (np.inf, -np.inf, np.inf)
    return latents.astype(np.float32)


DECODE = """
import sys
from pathlib import Path

import numpy as np

from rackvae import isa
from rackvae.core import Decoder

level, folder = sys.argv[1], Path(sys.argv[2])
if isa.active() != level:
    sys.exit(f"asked for {level}, running {isa.active()}")
outputs = {}
for path in sorted(folder.glob("*.tflite")):
    latents = np.load(folder / f"{path.stem}.npy")
    for repack in (True, False):
        decoder = Decoder.from_bytes(path.read_bytes(), source=path.name, repack=repack)
        key = f"{path.stem}/{'repacked' if repack else 'in place'}"
        outputs[key] = decoder.decode(latents)
        outputs[key + "/single"] = np.stack([decoder.decode(latent[None, :])[0] for latent in latents[:9]])
        if decoder.dtype == "int8":
            quant = decoder.c_model.input_quant
            steps = np.round(np.clip(latents / quant.scale, -1000, 1000)) + quant.zero_point
            outputs[key + "/int8"] = decoder.decode_quantized(np.clip(steps, -128, 127).astype(np.int8))
np.savez(folder / f"{level}.npz", **outputs)
"""


def run_capped(level: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Python with RACKVAE_ISA=level (empty: no cap), from the tests folder."""
    env = {**os.environ, isa.ENV: level}
    return subprocess.run([sys.executable, *args], env=env, cwd=TESTS, capture_output=True, text=True)


@functools.lru_cache(maxsize=1)
def best_level() -> str:
    """The level the core runs without a cap (this process may run capped)."""
    result = run_capped("", "-c", "from rackvae import core, isa; print(isa.active())")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def levels_here() -> list[str]:
    return list(isa.LEVELS[: isa.LEVELS.index(best_level()) + 1])


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs Linux's /proc/cpuinfo")
def test_the_core_runs_the_highest_level_the_cpu_has() -> None:
    # the kernel's view of the CPU (cpuid and the state the OS saves) against the core's detection
    flags = cpu_flags()
    expected = "generic"
    if platform.machine() == "x86_64" and {"avx2", "fma", "f16c"} <= flags:
        expected = "avx2"
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
            expected = "avx512"
            if "avx512_vnni" in flags:
                expected = "vbmi" if "avx512vbmi" in flags else "vnni"
    assert best_level() == expected


def test_a_cap_lowers_the_level_and_never_raises_it() -> None:
    script = "from rackvae import core, isa; print(isa.active())"
    for level in isa.LEVELS:
        result = run_capped(level, "-c", script)
        assert result.returncode == 0, result.stderr
        expected = level if level in levels_here() else best_level()
        assert result.stdout.strip() == expected, level
    assert run_capped(" AVX2 ", "-c", script).stdout.strip() == min(
        "avx2", best_level(), key=isa.LEVELS.index
    )
    bad = run_capped("sse9", "-c", script)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1] == (
        "ValueError: RACKVAE_ISA 'sse9': not one of generic, avx2, avx512, vnni, vbmi"
    )


@pytest.mark.slow
@pytest.mark.parametrize("level", isa.LEVELS)
def test_parity_odd_widths_and_logistic_pass_at_every_level(level: str) -> None:
    if level not in levels_here():
        pytest.skip(f"this CPU runs {best_level()} at most")
    result = run_capped(
        level,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "test_core_parity.py",
        "test_core_odd_widths.py",
        "test_core_logistic.py",
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.fullmatch(r"=* ?\d+ passed in [\d.]+s ?=*", summary), summary  # nothing skipped


@pytest.mark.slow
def test_every_level_decodes_to_the_same_bits(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    for key, model in core_models().items():
        (tmp_path / f"{key}.tflite").write_bytes(model.tflite)
        np.save(tmp_path / f"{key}.npy", spread_latents(rng, 3))
    for name, (sizes, metadata) in {**SHAPES, **MORE_SHAPES}.items():
        layers = random_decoder_layers(sizes, seed=21)
        for variant in VARIANTS:
            key = f"random_{name}_{variant}"
            (tmp_path / f"{key}.tflite").write_bytes(tflite_bytes(layers, metadata, variant, model_name=key))
            np.save(tmp_path / f"{key}.npy", spread_latents(rng, sizes[0]))
    levels = levels_here()
    for level in levels:
        result = run_capped(level, "-c", DECODE, level, str(tmp_path))
        assert result.returncode == 0, result.stderr[-3000:]
    reference = dict(np.load(tmp_path / f"{levels[-1]}.npz"))
    files, int8_files = len(list(tmp_path.glob("*.tflite"))), len(list(tmp_path.glob("*int8.tflite")))
    assert len(reference) == 4 * files + 2 * int8_files  # batch and single, repacked and in place
    for key, values in reference.items():
        assert len(np.unique(values)) > 20, key  # real outputs, not a constant
    for level in levels[:-1]:
        outputs = dict(np.load(tmp_path / f"{level}.npz"))
        assert outputs.keys() == reference.keys()
        for key, values in reference.items():
            other = outputs[key]
            assert other.dtype == values.dtype and other.shape == values.shape, (level, key)
            assert np.array_equal(other.view(np.uint8), values.view(np.uint8)), (level, key)
