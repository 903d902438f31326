"""The C core on the emulated Cortex-M7 computes what the C core on the desktop (cffi), JAX, LiteRT and
TFLite-Micro compute, on 1000 random latents in the +-latent_scale cube, for every exported variant and
the original exporter's file (tests/test_core_models.py).

firmware/qemu/parity_main.c runs on QEMU mps2-an500: it reads model.tflite and latents.bin over
semihosting and writes the probabilities of the repacked model (as the module decodes) and of the
weights read in place. Both must equal the cffi core's bit for bit: the core computes identical floats
on every target. Through that, the M7 inherits the references: float32 within 1e-5 of JAX and LiteRT,
float16 within 1e-5 of LiteRT, int8 bit-exact with TFLite-Micro's reference kernels. Each is asserted
on the M7's own output here. All 7 files take ~7 s of QEMU time in total, so every file gets all
1000 latents.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from rackvae.core import Decoder
from rackvae.export.tflite import VARIANTS, run_litert, run_tflite_micro, tflite_bytes
from rackvae.model import decode_layers, random_decoder_layers
from rackvae.simulate import QEMU_COMMAND, build_firmware
from test_core_models import CoreModel, core_models
from test_core_odd_widths import SHAPES as ODD_SHAPES
from test_firmware import build_root, require_cross_tools  # noqa: F401  (build_root: a fixture)

N_LATENTS = 1000
FLOAT_TOLERANCE = 1e-5
QEMU_TIMEOUT_S = 300
MODEL_KEYS = (
    "demo_float32",
    "demo_float16",
    "demo_int8",
    "note_float32",
    "note_float16",
    "note_int8",
    "original_float32",
)


@pytest.fixture(scope="session")
def parity_elf(build_root: Path) -> Path:  # noqa: F811  (the imported fixture)
    require_cross_tools()
    return build_firmware("qemu", build_root, product="rackvae-parity.elf")


def random_latents(model: CoreModel) -> np.ndarray:
    scale = model.metadata.latent_scale
    return np.random.default_rng(0).uniform(-scale, scale, (N_LATENTS, 3)).astype(np.float32)


def decode_on_m7(
    elf: Path, tflite: bytes, latents: np.ndarray, run_dir: Path, quantized: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Outputs ``[N, channels * ticks * rows]`` (rv_model_output_size: a groove model's every channel)
    from the M7 program: {"repacked": ..., "in_place": ...}; with int8 ``quantized`` latents (int8
    files) also the integer graph's outputs {"quantized": ..., "quantized_in_place": ...}."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "model.tflite").write_bytes(tflite)
    (run_dir / "latents.bin").write_bytes(np.ascontiguousarray(latents, "<f4").tobytes())
    if quantized is not None:
        (run_dir / "latents_s8.bin").write_bytes(np.ascontiguousarray(quantized, np.int8).tobytes())
    result = subprocess.run(
        [*QEMU_COMMAND, "-kernel", str(elf)],
        cwd=run_dir,
        capture_output=True,
        text=True,
        timeout=QEMU_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"exit status {result.returncode}: {result.stdout}{result.stderr}"
    outputs = {}
    for name, file in (("repacked", "probabilities.bin"), ("in_place", "probabilities_in_place.bin")):
        values = np.fromfile(run_dir / file, "<f4").astype(np.float32)
        outputs[name] = values.reshape(len(latents), -1)
    if quantized is not None:
        for name in ("quantized", "quantized_in_place"):
            outputs[name] = np.fromfile(run_dir / f"{name}.bin", np.int8).reshape(len(quantized), -1)
    return outputs


@pytest.fixture(scope="module")
def m7(parity_elf: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    """Every model file decoded on the M7 at its random latents, once per module."""
    run_root = tmp_path_factory.mktemp("m7-parity")
    return {
        key: decode_on_m7(parity_elf, model.tflite, random_latents(model), run_root / key)
        for key, model in core_models().items()
    }


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def test_every_model_file_is_checked() -> None:
    assert set(MODEL_KEYS) == set(core_models())


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_m7_decodes_bit_for_bit_like_the_cffi_core(m7: dict[str, dict[str, np.ndarray]], key: str) -> None:
    model = core_models()[key]
    latents = random_latents(model)
    desktop = Decoder.from_bytes(model.tflite, source=key).decode(latents).reshape(N_LATENTS, -1)
    assert desktop.shape == (N_LATENTS, model.metadata.ticks * model.metadata.rows)
    assert len(np.unique(desktop)) > 50  # many distinct probabilities, not a constant
    for path, output in m7[key].items():
        assert output.shape == desktop.shape, (key, path)
        assert np.array_equal(output.view(np.uint32), desktop.view(np.uint32)), (key, path)


@pytest.mark.parametrize("key", ["demo_float32", "note_float32", "original_float32"])
def test_m7_float32_matches_jax_and_litert(m7: dict[str, dict[str, np.ndarray]], key: str) -> None:
    model = core_models()[key]
    latents = random_latents(model)
    output = m7[key]["repacked"]
    assert max_abs(output, decode_layers(model.layers, latents)) <= FLOAT_TOLERANCE
    assert max_abs(output, run_litert(model.tflite, latents)) <= FLOAT_TOLERANCE


@pytest.mark.parametrize("key", ["demo_float16", "note_float16"])
def test_m7_float16_matches_litert(m7: dict[str, dict[str, np.ndarray]], key: str) -> None:
    model = core_models()[key]
    output = m7[key]["repacked"]
    assert max_abs(output, run_litert(model.tflite, random_latents(model))) <= FLOAT_TOLERANCE


@pytest.mark.parametrize("key", ["demo_int8", "note_int8"])
def test_m7_int8_is_bit_exact_with_tflite_micro(m7: dict[str, dict[str, np.ndarray]], key: str) -> None:
    model = core_models()[key]
    reference = run_tflite_micro(model.tflite, random_latents(model))
    output = m7[key]["repacked"]
    # the dequantised outputs: equal floats means equal int8 codes (one scale, one zero point)
    assert np.array_equal(output, reference)
    assert len(np.unique(output)) > 50  # many output levels, not a constant


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", sorted(ODD_SHAPES))
def test_m7_odd_widths_decode_bit_for_bit_like_the_cffi_core(
    parity_elf: Path, tmp_path: Path, shape: str, variant: str
) -> None:
    """Widths below one tile (7), tails that end on an overlapping tile (15, 33, 60, 91, 129), odd
    float16 rows and int8 outputs not in groups of four: the M7's leftover paths, repacked and in place."""
    sizes, metadata = ODD_SHAPES[shape]
    data = tflite_bytes(random_decoder_layers(sizes, seed=11), metadata, variant, model_name=f"odd_{shape}")
    latents = np.random.default_rng(5).uniform(-3, 3, (200, 3)).astype(np.float32)
    desktop = Decoder.from_bytes(data).decode(latents).reshape(len(latents), -1)
    for path, output in decode_on_m7(parity_elf, data, latents, tmp_path).items():
        assert np.array_equal(output.view(np.uint32), desktop.view(np.uint32)), (shape, variant, path)


@pytest.mark.parametrize("key", ["demo_int8", "note_int8"])
def test_m7_integer_graph_is_bit_exact_with_the_cffi_core(parity_elf: Path, tmp_path: Path, key: str) -> None:
    """rv_decode_s8 (int8 latents in, the LOGISTIC's int8 codes out, as TFLite-Micro runs the file) on
    the M7, repacked and in place, over the whole int8 latent range including its corners."""
    model = core_models()[key]
    rng = np.random.default_rng(3)
    corners = np.array([[-128, -128, -128], [127, 127, 127], [-128, 127, 0]], np.int8)
    quantized = np.concatenate([corners, rng.integers(-128, 128, (N_LATENTS, 3), dtype=np.int8)])
    outputs = decode_on_m7(parity_elf, model.tflite, random_latents(model), tmp_path, quantized)
    desktop = Decoder.from_bytes(model.tflite).decode_quantized(quantized).reshape(len(quantized), -1)
    assert len(np.unique(desktop)) > 50
    for path in ("quantized", "quantized_in_place"):
        assert np.array_equal(outputs[path], desktop), (key, path)
