"""The self-test ``rackvae export --formats c`` writes beside the C arrays (rackvae.export.selftest)
passes for float32, float16 and int8 models where they run: built with the core on the desktop (strict
C99, every warning an error) and on the emulated Cortex-M7 (a project vendoring core/ with CMake, QEMU
mps2-an500), each a program whose exit status is the self-test's verdict; int8 also on the ATmega2560
(simavr), where the expected values are read from program memory. A self-test given another
model's arrays counts mismatches, so a pass means something."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from rackvae.export.carray import c_files_from_tflite
from rackvae.export.selftest import selftest_files, selftest_latents
from rackvae.export.tflite import VARIANTS, tflite_bytes
from rackvae.mcu import SIMAVR_COMMAND
from rackvae.model import random_decoder_layers
from rackvae.simulate import QEMU_COMMAND, TOOLCHAIN_FILE
from test_carray import GROOVE_METADATA, GROOVE_SIZES, groove_tflite
from test_core_models import DEMO_METADATA, DEMO_SIZES, core_models
from test_firmware import require_cross_tools
from test_mcu_families import require

REPO = Path(__file__).resolve().parent.parent
CORE_SOURCES = sorted(str(p) for p in (REPO / "core" / "src").glob("*.c"))
STRICT = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2", "-ffp-contract=off"]
QEMU_DIR = REPO / "firmware" / "qemu"

COUNT_DRIVER = r"""
#include <stdio.h>
long demo_selftest(void);
int main(void) { printf("%ld\n", demo_selftest()); return 0; }
"""

AVR_DRIVER = r"""
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
long demo_selftest(void);
static void put(char c) { while (!(UCSR0A & (1 << UDRE0))) {} UDR0 = (uint8_t)c; }
int main(void) {
    long n = demo_selftest();
    char digits[12];
    int k = 0;
    UBRR0 = 0; UCSR0A = 1 << U2X0; UCSR0B = 1 << TXEN0; UCSR0C = 3 << UCSZ00;
    do { digits[k++] = (char)('0' + n % 10); n /= 10; } while (n > 0);
    put('m'); put(' ');
    while (k > 0) put(digits[--k]);
    put('\n');
    while (!(UCSR0A & (1 << TXC0))) {}
    cli();
    sleep_mode();
    return 0;
}
"""

M7_PROJECT = """cmake_minimum_required(VERSION 3.16)
project(selftest C)
add_subdirectory("{core}" core)
foreach(name {names})
  add_executable(${{name}}.elf ${{name}}/${{name}}_dec.c ${{name}}/${{name}}_dec_selftest.c
                 "{qemu}/startup.c" "{qemu}/semihost.c")
  target_compile_definitions(${{name}}.elf PRIVATE RV_SELFTEST_MAIN)
  target_include_directories(${{name}}.elf PRIVATE ${{name}} "{qemu}")
  target_link_libraries(${{name}}.elf PRIVATE rackvae_core)
  target_link_options(${{name}}.elf PRIVATE -nostartfiles "-T{qemu}/mps2_an500.ld")
endforeach()
"""


def model_files(tflite: bytes, variant: str, name: str) -> dict[str, bytes]:
    return {**c_files_from_tflite(tflite, name), **selftest_files(tflite, variant, name)}


def write(files: dict[str, bytes], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for file_name, data in files.items():
        (directory / file_name).write_bytes(data)


_CORE_OBJECTS: list[str] = []  # shared with the modules that import the fixture


@pytest.fixture(scope="session")
def core_objects(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The core compiled once per session for the host programs (strict C99, warnings are errors)."""
    if not _CORE_OBJECTS:
        directory = tmp_path_factory.mktemp("core-objects")
        for source in CORE_SOURCES:
            target = str(directory / f"{Path(source).stem}.o")
            command = ["gcc", *STRICT, f"-I{REPO / 'core' / 'include'}", "-c", source, "-o", target]
            subprocess.run(command, check=True, capture_output=True)
            _CORE_OBJECTS.append(target)
    return _CORE_OBJECTS


def host_program(directory: Path, sources: list[str], core: list[str], *flags: str) -> Path:
    program = directory / "selftest"
    command = ["gcc", *STRICT, *flags, f"-I{REPO / 'core' / 'include'}", f"-I{directory}"]
    subprocess.run([*command, *sources, *core, "-lm", "-o", str(program)], check=True, capture_output=True)
    return program


def test_latents_are_the_corners_the_centre_and_random_ones() -> None:
    latents = selftest_latents(3, 3.0)
    assert latents.shape == (12, 3)
    assert {tuple(row) for row in latents[:8]} == {
        (a, b, c) for a in (-3, 3) for b in (-3, 3) for c in (-3, 3)
    }
    assert np.array_equal(latents[8], np.zeros(3))
    assert np.all(np.abs(latents[9:]) < 3) and len(np.unique(latents[9:])) == 9
    assert len(selftest_latents(8, 2.0)) == 2 + 1 + 3  # wide latents: the diagonal's two ends


@pytest.mark.parametrize("variant", VARIANTS)
def test_selftest_passes_on_the_host(variant: str, tmp_path: Path, core_objects: list[str]) -> None:
    files = model_files(core_models()[f"demo_{variant}"].tflite, variant, "demo")
    write(files, tmp_path)
    source = files["demo_dec_selftest.c"].decode()
    assert "long demo_selftest(void)" in source
    assert ("DEMO_DEC_SELFTEST_TOLERANCE 0.0f" in source) == (variant == "int8")  # int8: exact
    sources = [str(tmp_path / "demo_dec.c"), str(tmp_path / "demo_dec_selftest.c")]
    program = host_program(tmp_path, sources, core_objects, "-DRV_SELFTEST_MAIN")
    assert subprocess.run([str(program)], check=False).returncode == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_groove_selftest_checks_every_channel_on_the_host(
    variant: str, tmp_path: Path, core_objects: list[str]
) -> None:
    """A groove model's self-test holds all 3 x 192 outputs per latent and passes; run against a
    groove model of other weights it counts most of its outputs as mismatches."""
    files = model_files(groove_tflite(variant), variant, "demo")
    write(files, tmp_path)
    source = files["demo_dec_selftest.c"].decode()
    assert f"{12 * 576} outputs (hits + velocity + offset)" in source
    sources = [str(tmp_path / "demo_dec.c"), str(tmp_path / "demo_dec_selftest.c")]
    program = host_program(tmp_path, sources, core_objects, "-DRV_SELFTEST_MAIN")
    assert subprocess.run([str(program)], check=False).returncode == 0
    other = tflite_bytes(random_decoder_layers(GROOVE_SIZES, seed=9), GROOVE_METADATA, variant)
    write(
        {**c_files_from_tflite(other, "demo"), **selftest_files(groove_tflite(variant), variant, "demo")},
        tmp_path,
    )
    (tmp_path / "driver.c").write_text(COUNT_DRIVER)
    sources = [str(tmp_path / name) for name in ("driver.c", "demo_dec.c", "demo_dec_selftest.c")]
    result = subprocess.run(
        [str(host_program(tmp_path, sources, core_objects))], capture_output=True, text=True, check=True
    )
    assert 12 * 576 // 2 < int(result.stdout) <= 12 * 576


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_selftest_counts_the_outputs_of_another_model(
    variant: str, tmp_path: Path, core_objects: list[str]
) -> None:
    """The self-test of one model run against a model of the same shape and other weights."""
    mine = core_models()[f"demo_{variant}"].tflite
    other = tflite_bytes(
        random_decoder_layers(DEMO_SIZES, seed=9), DEMO_METADATA, variant, model_name="demo_dec"
    )
    write({**c_files_from_tflite(other, "demo"), **selftest_files(mine, variant, "demo")}, tmp_path)
    (tmp_path / "driver.c").write_text(COUNT_DRIVER)
    sources = [str(tmp_path / name) for name in ("driver.c", "demo_dec.c", "demo_dec_selftest.c")]
    result = subprocess.run(
        [str(host_program(tmp_path, sources, core_objects))], capture_output=True, text=True, check=True
    )
    assert 12 * 192 // 2 < int(result.stdout) <= 12 * 192  # most of the 2304 probabilities differ


def test_selftest_passes_on_the_emulated_cortex_m7(tmp_path: Path) -> None:
    require_cross_tools()
    names = [f"{model}_{variant}" for model in ("demo", "groove") for variant in VARIANTS]
    for variant in VARIANTS:
        demo, groove = core_models()[f"demo_{variant}"].tflite, groove_tflite(variant)
        write(model_files(demo, variant, f"demo_{variant}"), tmp_path / f"demo_{variant}")
        write(model_files(groove, variant, f"groove_{variant}"), tmp_path / f"groove_{variant}")
    project = M7_PROJECT.format(
        core=(REPO / "core").as_posix(), qemu=QEMU_DIR.as_posix(), names=" ".join(names)
    )
    (tmp_path / "CMakeLists.txt").write_text(project)
    build = tmp_path / "build"
    configure = ["cmake", "-S", str(tmp_path), "-B", str(build), f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_FILE}"]
    subprocess.run([*configure, "-DCMAKE_BUILD_TYPE=Release"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)
    for name in names:
        result = subprocess.run(
            [*QEMU_COMMAND, "-kernel", str(build / f"{name}.elf")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (name, result.stdout, result.stderr)


def test_int8_selftest_passes_on_the_avr(tmp_path: Path) -> None:
    require("avr")
    write(model_files(core_models()["demo_int8"].tflite, "int8", "demo"), tmp_path)
    (tmp_path / "driver.c").write_text(AVR_DRIVER)
    elf = tmp_path / "selftest.elf"
    flags = ["-mmcu=atmega2560", *STRICT[:-2], "-Os", "-ffp-contract=off", f"-I{REPO / 'core' / 'include'}"]
    sources = [str(tmp_path / name) for name in ("driver.c", "demo_dec.c", "demo_dec_selftest.c")]
    subprocess.run(["avr-gcc", *flags, *sources, *CORE_SOURCES, "-lm", "-o", str(elf)], check=True)
    result = subprocess.run([*SIMAVR_COMMAND, str(elf)], capture_output=True, text=True, timeout=120)
    assert "m 0." in result.stderr, result.stderr[-2000:]  # simavr shows the line's newline as '.'
