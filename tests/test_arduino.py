"""core/ is an Arduino library (specification 1.5): Debian's arduino-builder compiles its DecodeModel
example for an Arduino Mega 2560 with every warning on (none from the library or the sketch), and the
sketch, run in simavr, prints the bar the core on the desktop decodes from the same C arrays."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "core"
SKETCH = CORE / "examples" / "DecodeModel"
BUILDER_SHARE = Path("/usr/share/arduino-builder")  # Debian: the ctags recipe arduino-builder needs
HARDWARE = Path("/usr/share/arduino/hardware")
FQBN = "arduino:avr:mega:cpu=atmega2560"
# Debian's gcc-avr 5.4 defines DECIMAL_DIG for C99 only, and Debian's Arduino AVR core uses it in C++
# (WString.cpp): give C++ the value float.h gives C, or the core itself does not compile.
CORE_WORKAROUND = "compiler.cpp.extra_flags=-DDECIMAL_DIG=__DECIMAL_DIG__"
SIMAVR_TIMEOUT_S = 60

# The sketch's output on the desktop: decode its latent, print its grid the same way.
HOST_DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "rackvae.h"
#include "groove_dec.h"
static float probabilities[16 * 12], scratch[4096];
int main(void) {
    const rv_model *model = &groove_dec_model;
    const float latent[3] = {-2.0f, 1.0f, 1.0f};
    const rv_post_config config = rv_post_config_for_model(&model->metadata);
    char grid[12][17];
    int r, t, n;
    if (rv_decode(model, latent, 1, probabilities, scratch, sizeof scratch) != RV_OK) return 1;
    for (r = 0; r < 12; r++) { memset(grid[r], '.', 16); grid[r][16] = '\0'; }
    for (t = 0; t < 16; t++) {
        rv_step step;
        if (rv_postprocess_step(&model->metadata, probabilities + t * 12, &config, &step) != RV_OK) return 1;
        for (n = 0; n < step.count; n++) grid[step.notes[n].row][t] = 'x';
    }
    for (r = 0; r < 12; r++) printf("row %2d note %d %s\n", r, model->metadata.row_notes[r], grid[r]);
    return 0;
}
"""


def require_arduino_tools() -> None:
    missing = [tool for tool in ("arduino-builder", "avr-gcc", "simavr") if shutil.which(tool) is None]
    if missing or not (HARDWARE / "arduino" / "avr" / "boards.txt").exists():
        message = f"{', '.join(missing) or 'arduino-core-avr'} not installed (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def sketch_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The example compiled for the Mega 2560 with -Wall -Wextra: (its ELF, the builder's output)."""
    require_arduino_tools()
    root = tmp_path_factory.mktemp("arduino")
    libraries = root / "libraries"
    libraries.mkdir()
    (libraries / "rackvae").symlink_to(CORE)  # the library as the IDE would find it in its folder
    build = root / "build"
    build.mkdir()
    command = [
        *("arduino-builder", "-compile", "-hardware", str(HARDWARE), "-hardware", str(BUILDER_SHARE)),
        *("-tools", str(BUILDER_SHARE), "-fqbn", FQBN, "-libraries", str(libraries)),
        *("-build-path", str(build), "-warnings", "all", "-prefs", CORE_WORKAROUND, "-verbose"),
        str(SKETCH / "DecodeModel.ino"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return build / "DecodeModel.ino.elf", output


def test_library_follows_the_arduino_layout() -> None:
    properties = dict(
        line.split("=", 1) for line in (CORE / "library.properties").read_text().splitlines() if "=" in line
    )
    for field in ("name", "version", "author", "maintainer", "sentence", "paragraph", "category", "url"):
        assert properties.get(field), field
    assert properties["includes"] == "rackvae.h"
    assert (CORE / "src" / "rackvae.h").exists()  # the builder puts only src/ on the include path


def test_example_compiles_for_the_mega_2560_without_warnings(sketch_build: tuple[Path, str]) -> None:
    elf, output = sketch_build
    assert elf.exists()
    compiles = [line for line in output.splitlines() if 'rv_decode.c" -o' in line and " -E " not in line]
    assert compiles and all(" -Wall -Wextra " in line for line in compiles)  # '-warnings all'
    ours = [
        line
        for line in output.splitlines()
        if "warning:" in line
        and (str(CORE) in line or "/libraries/rackvae/" in line or "DecodeModel" in line)
    ]
    assert not ours, "\n".join(ours)
    used = re.search(r"Global variables use (\d+) bytes", output)
    assert used and int(used.group(1)) < 8192 - 1024  # room for the stack on the Mega's 8 KiB


def test_example_prints_the_bar_the_desktop_core_decodes(
    sketch_build: tuple[Path, str], tmp_path: Path
) -> None:
    elf, _ = sketch_build
    process = subprocess.Popen(
        ["simavr", "-m", "atmega2560", "-f", "16000000", str(elf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + SIMAVR_TIMEOUT_S
    try:
        assert process.stderr is not None
        for raw in process.stderr:  # the sketch loops forever once it has printed "end"
            # simavr shows the line's "\r\n" (Serial.println) as ".."
            lines.append(re.sub(r"\x1b\[[0-9;]*m", "", raw).rstrip("\n").removesuffix(".."))
            if lines[-1] == "end" or time.monotonic() > deadline:
                break
    finally:
        process.kill()
        process.wait()
    assert "end" in lines, "\n".join(lines[-20:])
    printed = [line for line in lines if line.startswith("row ")]
    assert re.match(r"latent -2\.00 1\.00 1\.00, decoded in \d+ us", next(x for x in lines if "latent" in x))

    driver = tmp_path / "driver.c"
    driver.write_text(HOST_DRIVER)
    program = tmp_path / "decode"
    sources = [str(p) for p in sorted((CORE / "src").glob("*.c"))]
    subprocess.run(
        [
            *("gcc", "-std=c99", "-O2", "-ffp-contract=off", f"-I{CORE / 'include'}", f"-I{SKETCH}"),
            *(str(driver), str(SKETCH / "groove_dec.c"), *sources, "-lm", "-o", str(program)),
        ],
        check=True,
        capture_output=True,
    )
    desktop = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert printed == desktop
    assert sum(line.count("x") for line in printed) >= 8  # a groove, not silence
