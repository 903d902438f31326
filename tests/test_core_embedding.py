"""The core as an embedded developer meets it: core/README.md's example, compiled in a separate CMake
project that pulls the core in with ``add_subdirectory(core)``, decodes the exporter's C arrays and
prints the same notes as the core does through cffi."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from rackvae.core import Decoder, lib
from rackvae.export.carray import c_files_from_tflite
from test_core_models import core_models

REPO = Path(__file__).resolve().parent.parent
README_LATENT = np.array([[0.5, -1.0, 2.0]], np.float32)  # the latent the example decodes


def readme_example() -> str:
    text = (REPO / "core" / "README.md").read_text()
    blocks = re.findall(r"```c\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "core/README.md should hold exactly one C example"
    return blocks[0]


def test_readme_example_builds_with_add_subdirectory_and_plays_the_cffi_notes(tmp_path: Path) -> None:
    tflite = core_models()["demo_float32"].tflite
    # "NAME" is the README's placeholder model name: the exporter's files for it are NAME_dec.h/.c.
    for name, data in c_files_from_tflite(tflite, "NAME").items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "main.c").write_text(readme_example())
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\n"
        "project(embedding_example C)\n"
        f'add_subdirectory("{REPO / "core"}" rackvae_core)\n'
        "add_executable(example main.c NAME_dec.c)\n"
        "set_target_properties(example PROPERTIES C_STANDARD 99 C_EXTENSIONS OFF)\n"
        "target_compile_options(example PRIVATE -Wall -Wextra -Werror -pedantic)\n"
        "target_link_libraries(example PRIVATE rackvae_core)\n"
    )
    build = tmp_path / "build"
    for command in (["cmake", "-S", str(tmp_path), "-B", str(build)], ["cmake", "--build", str(build)]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = subprocess.run([str(build / "example")], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr

    decoder = Decoder.from_bytes(tflite)
    # the example's defaults: rv_post_config_default()
    expected = decoder.notes(decoder.decode(README_LATENT)[0], threshold=lib.RV_DEFAULT_THRESHOLD)
    printed = [[int(n) for n in line.split()] for line in run.stdout.splitlines()]
    assert printed == [[note.midi_note for note in tick] for tick in expected]
    assert sum(map(len, printed)) > 0, "the example should play something at that latent"
