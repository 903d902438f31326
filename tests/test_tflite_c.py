"""``--formats tflite-c``: the .tflite bytes as a C++ array, as TFLite-Micro's ``generate_cc_arrays``
writes them. Compiled with g++ (every warning an error), the array holds the file byte for byte,
16-byte aligned, and the C core loads and decodes it like the file (a groove model: all its channels)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from rackvae.core import Decoder
from rackvae.export.tflite_c import tflite_c_files
from test_carray import groove_tflite
from test_core_models import core_models
from test_selftest import core_objects  # noqa: F401  (a fixture)

REPO = Path(__file__).resolve().parent.parent
LATENT = (0.5, -1.0, 2.0)

DRIVER = r"""
#include <cstdint>
#include <cstdio>
#include "rackvae.h"
#include "my_drums_dec_tflite.h"
static uint32_t aux[4096], scratch[8192];
static float probabilities[OUTPUTS];
int main() {
    if (reinterpret_cast<uintptr_t>(my_drums_dec_tflite) % 16 != 0) return 2;
    rv_model model;
    size_t aux_needed = 0;
    const float latent[3] = {LATENT};
    if (rv_model_load_tflite(&model, my_drums_dec_tflite, my_drums_dec_tflite_len, aux, sizeof aux,
                             &aux_needed) != RV_OK) return 3;
    if (rv_decode(&model, latent, 1, probabilities, scratch, sizeof scratch) != RV_OK) return 4;
    fwrite(my_drums_dec_tflite, 1, my_drums_dec_tflite_len, stdout);
    fwrite(probabilities, sizeof probabilities[0], OUTPUTS, stdout);
    return 0;
}
"""


@pytest.mark.parametrize("model", ["demo", "groove"])
@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_array_holds_the_file_and_the_core_decodes_it(
    model: str,
    variant: str,
    tmp_path: Path,
    core_objects: list[str],  # noqa: F811  (the imported fixture)
) -> None:
    data = core_models()[f"demo_{variant}"].tflite if model == "demo" else groove_tflite(variant)
    outputs = 192 if model == "demo" else 3 * 192
    files = tflite_c_files(data, "my_drums")
    assert sorted(files) == ["my_drums_dec_tflite.cc", "my_drums_dec_tflite.h"]
    for name, text in files.items():
        (tmp_path / name).write_bytes(text)
    driver = DRIVER.replace("LATENT", ", ".join(f"{v}f" for v in LATENT)).replace("OUTPUTS", str(outputs))
    (tmp_path / "driver.cc").write_text(driver)
    program = tmp_path / "driver"
    flags = ["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{REPO / 'core' / 'include'}"]
    sources = [str(tmp_path / "driver.cc"), str(tmp_path / "my_drums_dec_tflite.cc")]
    subprocess.run(["g++", *flags, f"-I{tmp_path}", *sources, *core_objects, "-o", str(program)], check=True)
    output = subprocess.run([str(program)], capture_output=True, check=True).stdout
    assert output[: len(data)] == data
    probabilities = np.frombuffer(output[len(data) :], np.float32)
    desktop = Decoder.from_bytes(data).decode(np.array([LATENT], np.float32)).ravel()
    assert len(desktop) == outputs
    assert np.array_equal(probabilities.view(np.uint32), desktop.view(np.uint32))
