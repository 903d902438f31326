"""The C-array export: deterministic files with valid identifiers that compile as strict C99 on their
own, and decode (through the portable C build, no x86 fast path) to the same bits as the .tflite file
loaded by the core through cffi."""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rackvae.core import Decoder
from rackvae.export.carray import c_files, c_files_from_tflite, c_identifier
from rackvae.export.tflite import tflite_bytes
from rackvae.model import random_decoder_layers
from test_core_models import DEMO_METADATA, core_models

REPO = Path(__file__).resolve().parent.parent
CORE_SOURCES = sorted(str(p) for p in (REPO / "core" / "src").glob("*.c"))
STRICT = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2", "-ffp-contract=off"]
N_LATENTS = 50
MODEL_NAME = "my drums-v2 (test)"
# The demo's shape as a groove model: hits, velocity and offset blocks of 16 x 12 (docs/groove_format.md).
GROOVE_METADATA = dataclasses.replace(DEMO_METADATA, channel_ids=(0, 1, 2), extension_version=None)
GROOVE_SIZES = (3, 12, 48, 3 * 192)


@functools.cache
def groove_tflite(variant: str) -> bytes:
    """A groove decoder (random weights) exported as ``variant``, once per session."""
    return tflite_bytes(
        random_decoder_layers(GROOVE_SIZES, seed=16), GROOVE_METADATA, variant, model_name="groove"
    )


DRIVER = r"""
#include <stdio.h>
#include "rackvae.h"
#include HEADER
static float latents[3 * 64], out[64 * 8192], scratch[1 << 16];
int main(void) {
    rv_status status;
    if (fread(latents, sizeof(float), 3 * N, stdin) != 3 * N) return 2;
    status = rv_decode(&SYMBOL, latents, N, out, scratch, sizeof scratch);
    if (status != RV_OK) { fprintf(stderr, "%s\n", rv_status_str(status)); return 1; }
    fwrite(out, sizeof(float), N * rv_model_output_size(&SYMBOL), stdout);
    return 0;
}
"""


def compile_and_decode(files: dict[str, bytes], workdir: Path, latents: np.ndarray) -> np.ndarray:
    for name, data in files.items():
        (workdir / name).write_bytes(data)
    header = next(name for name in files if name.endswith(".h"))
    symbol = re.search(rb"extern const rv_model (\w+);", files[header]).group(1).decode()
    (workdir / "driver.c").write_text(DRIVER)
    program = workdir / "decode"
    source = next(str(workdir / name) for name in files if name.endswith(".c"))
    subprocess.run(
        [
            "gcc",
            *STRICT,
            f"-I{REPO / 'core' / 'include'}",
            f'-DHEADER="{header}"',
            f"-DSYMBOL={symbol}",
            f"-DN={len(latents)}",
            str(workdir / "driver.c"),
            source,
            *CORE_SOURCES,
            "-lm",
            "-o",
            str(program),
        ],
        check=True,
        capture_output=True,
        cwd=workdir,
    )
    result = subprocess.run([str(program)], input=latents.tobytes(), capture_output=True, check=True)
    return np.frombuffer(result.stdout, np.float32).reshape(len(latents), -1)


@pytest.fixture(scope="module")
def latents() -> np.ndarray:
    return np.random.default_rng(1).uniform(-3, 3, (N_LATENTS, 3)).astype(np.float32)


@pytest.mark.parametrize("key", ["note_float32", "note_float16", "note_int8", "original_float32"])
def test_c_arrays_decode_like_the_tflite_file(key: str, tmp_path: Path, latents: np.ndarray) -> None:
    data = core_models()[key].tflite
    files = c_files_from_tflite(data, MODEL_NAME)
    assert sorted(files) == [f"{MODEL_NAME}_dec.c", f"{MODEL_NAME}_dec.h"]
    from_arrays = compile_and_decode(files, tmp_path, latents)
    from_file = Decoder.from_bytes(data).decode(latents).reshape(len(latents), -1)
    assert np.array_equal(from_arrays, from_file)


@pytest.mark.parametrize("variant", ["float32", "float16", "int8"])
def test_groove_arrays_carry_the_channels_and_decode_all_of_them(
    variant: str, tmp_path: Path, latents: np.ndarray
) -> None:
    data = groove_tflite(variant)
    files = c_files_from_tflite(data, "groove")
    source = files["groove_dec.c"].decode()
    assert ".extension_version = 3," in source and ".channels = 3, .channel_ids = {0, 1, 2}}" in source
    assert "channels hits + velocity + offset" in files["groove_dec.h"].decode()
    from_arrays = compile_and_decode(files, tmp_path, latents)
    from_file = Decoder.from_bytes(data).decode(latents).reshape(len(latents), -1)
    assert from_arrays.shape == (N_LATENTS, 3 * 192)  # rv_model_output_size: every channel
    assert np.array_equal(from_arrays, from_file)


def test_hits_only_arrays_hold_one_channel() -> None:
    source = c_files_from_tflite(core_models()["demo_float32"].tflite, "demo")["demo_dec.c"].decode()
    assert ".extension_version = 2," in source and ".channels = 1, .channel_ids = {0}}" in source


def test_output_is_deterministic_and_the_same_from_layers_or_tflite() -> None:
    model = core_models()["demo_float32"]
    first = c_files(model.layers, model.metadata, "demo")
    assert first == c_files(model.layers, model.metadata, "demo")
    assert first == c_files_from_tflite(model.tflite, "demo")
    assert c_files_from_tflite(model.tflite, "demo") == c_files_from_tflite(model.tflite, "demo")


def test_float16_arrays_hold_half_bits() -> None:
    model = core_models()["demo_float16"]
    source = c_files_from_tflite(model.tflite, "demo")["demo_dec.c"].decode()
    assert "static const uint16_t demo_dec_layer2_weights[9216] RV_FLASH" in source
    assert ".dtype = RV_F16" in source


@pytest.mark.parametrize(
    ("name", "identifier"),
    [
        ("demo", "demo"),
        ("my model-v2 (drums)", "my_model_v2_drums"),
        ("2nd", "m_2nd"),
        ("int", "m_int"),
        ("__Reserved", "Reserved"),
        ("Grüße/ß", "Gr_e"),
        ("", "m_"),
        ("++", "m_"),
    ],
)
def test_identifiers_are_valid_c99(name: str, identifier: str) -> None:
    assert c_identifier(name) == identifier
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", c_identifier(name))


def test_weights_go_where_progmem_puts_them(tmp_path: Path) -> None:
    model = core_models()["demo_int8"]
    files = c_files_from_tflite(model.tflite, "flash", symbol="rv_default_model")
    assert b"extern const rv_model rv_default_model;" in files["flash_dec.h"]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    obj = tmp_path / "flash.o"
    subprocess.run(
        [
            "gcc",
            *STRICT,
            f"-I{REPO / 'core' / 'include'}",
            '-DPROGMEM=__attribute__((section(".progmem")))',
            "-c",
            str(tmp_path / "flash_dec.c"),
            "-o",
            str(obj),
        ],
        check=True,
        capture_output=True,
    )
    sections = subprocess.run(["size", "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    progmem = int(re.search(r"^\.progmem\s+(\d+)", sections, re.MULTILINE).group(1))
    # int8 weights, int32 biases and the 256-entry logistic table, plus alignment
    constants = (3 * 12 + 12 * 48 + 48 * 192) + 4 * (12 + 48 + 192) + 256
    assert constants <= progmem <= constants + 16
