"""The decoder core on two more microcontroller families: a Cortex-M0+ without FPU (QEMU's microbit) and
an ATmega2560 (simavr). Builds ``firmware/m0`` or ``firmware/avr`` around a model's C arrays, decodes
latents there and returns the probabilities with what the program measured (``scratch``, ``stack``,
and on the AVR ``cycles`` of one decode). Used by tests/test_mcu_families.py and bench/bench_mcu.py.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from rackvae.simulate import FIRMWARE_DIR, REPO_ROOT

Family = Literal["m0", "avr"]
TOOLCHAINS = {
    "m0": REPO_ROOT / "cmake" / "arm-none-eabi-cortex-m0.cmake",
    "avr": REPO_ROOT / "cmake" / "avr-atmega2560.cmake",
}
PROGRAMS = {"m0": "rackvae-m0-parity.elf", "avr": "rackvae-avr-parity.elf"}
# Needed on PATH per family (Debian packages in .ci/run).
TOOLS = {"m0": ("arm-none-eabi-gcc", "qemu-system-arm"), "avr": ("avr-gcc", "simavr")}
# The M0 program's console goes to stdout, as in rackvae.simulate.QEMU_COMMAND (there: the M7 board).
M0_QEMU_COMMAND = [
    "qemu-system-arm",
    *("-M", "microbit", "-nographic", "-monitor", "none", "-serial", "none"),
    *("-chardev", "stdio,id=log", "-semihosting-config", "enable=on,target=native,chardev=log"),
]
AVR_CPU_HZ = 16_000_000
SIMAVR_COMMAND = ["simavr", "-m", "atmega2560", "-f", str(AVR_CPU_HZ)]
MODEL_SYMBOL = "rv_mcu_model"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class McuError(RuntimeError):
    """A program could not be built or did not run to the end; the message says why."""


@dataclass(frozen=True)
class McuRun:
    probabilities: np.ndarray  # [N, ticks * rows] float32
    values: dict[str, int]  # what the program printed: scratch, stack (bytes), cycles (AVR)


def _run(command: list[str], cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise McuError(f"{command[0]} did not finish within {timeout:.0f} s") from error
    if result.returncode != 0:
        output = f"{result.stdout}{result.stderr}"[-4000:]
        raise McuError(f"{' '.join(command)}: exit status {result.returncode}\n{output}")
    return result


def latents_c(latents: np.ndarray) -> str:
    """The AVR program's latents as C (program memory), exact (hexadecimal float literals)."""
    values = ",\n".join("    " + ", ".join(f"{float(v).hex()}f" for v in row) for row in latents)
    return (
        "#include <avr/pgmspace.h>\n#include <stdint.h>\n\n"
        f"const uint16_t rv_mcu_latent_count = {len(latents)};\n"
        f"const float rv_mcu_latents[{latents.size}] PROGMEM = {{\n{values}\n}};\n"
    )


def build(family: Family, tflite: bytes, build_dir: Path, latents: np.ndarray | None = None) -> Path:
    """Configure and build the family's program with the model's C arrays (and, for the AVR, the
    latents compiled in); returns the ELF."""
    from rackvae.export.carray import c_files_from_tflite

    sources = build_dir / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    for name, data in c_files_from_tflite(tflite, "model", symbol=MODEL_SYMBOL).items():
        (sources / name).write_bytes(data)
    configure = [
        *("cmake", "-S", str(FIRMWARE_DIR / family), "-B", str(build_dir / "build")),
        *(f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAINS[family]}", "-DCMAKE_BUILD_TYPE=Release"),
        f"-DRV_MODEL_C={sources / 'model_dec.c'}",
    ]
    if family == "avr":
        if latents is None:
            raise ValueError("the AVR program needs its latents at build time")
        (sources / "latents.c").write_text(latents_c(np.asarray(latents, np.float32)))
        configure.append(f"-DRV_LATENTS_C={sources / 'latents.c'}")
    _run(configure)
    _run(["cmake", "--build", str(build_dir / "build"), "-j2"])
    return build_dir / "build" / PROGRAMS[family]


def _values(lines: list[str]) -> dict[str, int]:
    values = {}
    for line in lines:
        fields = line.split()
        if len(fields) == 2 and fields[0] in ("scratch", "stack", "cycles", "done") and fields[1].isdigit():
            values[fields[0]] = int(fields[1])
    return values


def run_m0(elf: Path, latents: np.ndarray, run_dir: Path, extra: list[str] | None = None) -> McuRun:
    """Decode ``latents`` [N, latent_dim] on the emulated Cortex-M0 (``extra``: more QEMU options,
    e.g. a plugin)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "latents.bin").write_bytes(np.ascontiguousarray(latents, "<f4").tobytes())
    result = _run([*M0_QEMU_COMMAND, "-kernel", str(elf), *(extra or [])], cwd=run_dir)
    probabilities = np.fromfile(run_dir / "probabilities.bin", "<f4").astype(np.float32)
    return McuRun(probabilities.reshape(len(latents), -1), _values(result.stdout.splitlines()))


def run_avr(elf: Path, n_latents: int) -> McuRun:
    """Run the AVR program (its latents are compiled in) to the end in simavr."""
    result = _run([*SIMAVR_COMMAND, str(elf)])
    # simavr prints each USART line in colour, with its newline shown as '.'
    lines = [_ANSI.sub("", line).rstrip(".") for line in result.stderr.splitlines()]
    values = _values(lines)
    if values.get("done") != 0:
        raise McuError(f"AVR program did not finish with status 0: {values}\n{result.stderr[-2000:]}")
    rows: dict[int, list[int]] = {}
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[0] == "p":
            rows.setdefault(int(fields[1]), []).extend(int(word, 16) for word in fields[2:])
    if sorted(rows) != list(range(n_latents)):
        raise McuError(f"AVR program printed {len(rows)} of {n_latents} latents")
    bits = np.array([rows[n] for n in range(n_latents)], np.uint32)
    return McuRun(bits.view(np.float32), values)
