"""The decoder core on the emulated Cortex-M7: instructions per inference, code size, RAM per model and
the clock-edge-to-trigger latency they imply on a Teensy 4.1 (600 MHz).

Instructions are counted by a QEMU TCG plugin (bench/qemu_plugin/insn_count.c, built here with the host
compiler) in firmware/qemu/bench_main.c, which decodes one latent with the core and runs the module's
inference and clock handler between calls of a marker function. Counts are exact and repeatable; they
are not cycles (the M7 dual-issues some pairs, and flash/cache wait states add cycles), so the latency
column assumes one instruction per cycle and says so. Models: random decoders of the demo's size
(3->12->48->192, percussion), of a groove model of that size (hits, velocity and offset: 3->12->48->576)
and of a 48-pitch note model (3->19->120->768), exported as float32, float16 and int8 .tflite files by
rackvae.export. For the groove models the bench firmware then plays the module on hardware timers (clock
edges from one, the board's 20 kHz poll of the app's timer from another) and logs the scheduling jitter
of the triggers the groove moves off the clock edge: due time -> the poll that fired them.

    .venv/bin/python bench/bench_mcu.py [--build-dir DIR]
"""

from __future__ import annotations

import argparse
import bisect
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rackvae.export.metadata import XenMetadata
from rackvae.export.tflite import VARIANTS, tflite_bytes
from rackvae.model import random_decoder_layers
from rackvae.simulate import QEMU_COMMAND, REPO_ROOT, build_firmware

PLUGIN_SOURCE = REPO_ROOT / "bench" / "qemu_plugin" / "insn_count.c"
CPU_HZ = 600e6  # Teensy 4.1
# Cortex-M7 exception entry (stacking) before the first handler instruction, in cycles.
INTERRUPT_ENTRY_CYCLES = 12
# One DAC8164 update on the board: 24 bits at 20 MHz plus chip-select and transaction overhead (assumed).
DAC_WRITE_US = 24 / 20e6 * 1e6 + 0.3
# The board's display transactions hold the clock interrupt off (SPI.usingInterrupt). By construction
# (firmware/teensy/board.cpp) each one is at most one chunk: DISPLAY_CHUNK_PIXELS 16-bit pixels after an
# 11-byte address window (CASET + 4, RASET + 4, RAMWR), at the requested 27 MHz SPI clock.
DISPLAY_CHUNK_PIXELS = 6 * 8
DISPLAY_WINDOW_BYTES = 11
DISPLAY_SPI_HZ = 27e6
DISPLAY_CHUNK_US = (DISPLAY_WINDOW_BYTES + 2 * DISPLAY_CHUNK_PIXELS) * 8 / DISPLAY_SPI_HZ * 1e6 + 0.3
# The 20 kHz step timer (app_timer_due, firmware/teensy/board.cpp) runs in the same PIT interrupt: an edge
# may also wait for one check. micros() on the Teensy 4 reads the cycle counter: ~30 instructions (assumed).
MICROS_INSTRUCTIONS = 30
# The 1 kHz pulse timer shares the gate interrupts' priority: an edge may also wait for it to end every
# jack's pulse (one DAC write per jack).
PULSE_TIMER_US = 8 * DAC_WRITE_US

# The emulated time of the jitter run: one instruction per 2^2 ns (250 MHz), deterministic, idle time not
# waited for.
ICOUNT = ("-icount", "shift=2,align=off,sleep=off")

RAM_PARTS = ("file_bytes", "aux_bytes", "repack_bytes", "scratch_bytes", "engine_bytes")
SIZES = {
    "demo perc 3-12-48-192": ((3, 12, 48, 192), XenMetadata("perc", 12, 16, 3, (1, 1, 6, 2, 2))),
    "groove perc 3-12-48-576": (
        (3, 12, 48, 576),
        XenMetadata("perc", 12, 16, 3, (1, 1, 6, 2, 2), channel_ids=(0, 1, 2)),
    ),
    "note 3-19-120-768": ((3, 19, 120, 768), XenMetadata("note", 48, 16, 3, base_note=36)),
}


@dataclass(frozen=True)
class Measurement:
    values: dict[str, int]  # sizes printed by the bench firmware
    marks: list[tuple[int, int]]  # per mark: (instructions since the previous mark, of them in the range)


def build_plugin(build_root: Path) -> Path:
    plugin = build_root / "qemu_plugin" / "libinsn_count.so"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    flags = ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror"]
    subprocess.run(["gcc", *flags, "-o", str(plugin), str(PLUGIN_SOURCE)], check=True)
    return plugin


def elf_symbols(elf: Path) -> dict[str, tuple[int, int]]:
    """Function symbols: name -> (address without the Thumb bit, size)."""
    listing = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True)
    symbols = {}
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tT":
            symbols[fields[3]] = (int(fields[0], 16) & ~1, int(fields[1], 16))
    return symbols


def measure(elf: Path, plugin: Path, model: bytes, address_range: tuple[int, int]) -> Measurement:
    """Run the bench firmware on one model under the counting plugin."""
    mark = elf_symbols(elf)["rv_bench_mark"][0]
    with tempfile.TemporaryDirectory(prefix="rackvae-bench-") as tmp:
        run_dir = Path(tmp)
        (run_dir / "model.tflite").write_bytes(model)
        counts = run_dir / "counts.txt"
        options = f"mark={mark:#x},range={address_range[0]:#x}:{address_range[1]:#x},out={counts}"
        command = [*QEMU_COMMAND, *ICOUNT, "-kernel", str(elf), "-plugin", f"{plugin},{options}"]
        result = subprocess.run(command, cwd=run_dir, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"bench firmware failed ({result.returncode}): {result.stdout}{result.stderr}")
        lines = counts.read_text().splitlines()
    values = {name: int(value) for name, value in (line.split() for line in result.stdout.splitlines())}
    marks = [(int(f[2]), int(f[3])) for f in (line.split() for line in lines) if f[0] == "mark"]
    return Measurement(values, marks)


def logistic_range(elf: Path) -> tuple[int, int]:
    """Addresses of the float logistic (rv_sigmoid_f32 and the helpers inlined into it)."""
    start, size = elf_symbols(elf)["rv_sigmoid_f32"]
    return start, start + size


def part_of(origin: str) -> str:
    """Which part of the image an object file of the map belongs to."""
    if "/core/src/" in origin or re.search(r"\((rv_\w+)\.c\.obj\)", origin):
        return "core"
    if "default_model" in origin:
        return "built-in weights"
    if re.search(r"\((app|model_list|panel|report|text|labels)\.c\.obj\)", origin):
        return "app"
    if "lib" in origin and ".a(" in origin:
        return "libc/libm/libgcc"
    return "virtual-module HAL"


def code_size(map_path: Path) -> dict[str, int]:
    """Bytes of .text/.rodata each part contributes to the linked virtual-module image, from the map.

    Merged string sections (.str1.*) are listed with their sizes before merging, some at the same
    address as another file's strings: each entry counts only the bytes up to the next entry's address
    that no earlier entry covered, so every byte of the image is counted once."""
    parts = {"core": 0, "app": 0, "built-in weights": 0, "virtual-module HAL": 0, "libc/libm/libgcc": 0}
    pattern = re.compile(r"^\s*(?:\.(?:text|rodata)\S*)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$")
    section = ""
    text = map_path.read_text()
    entries: list[tuple[int, int, str]] = []  # (address, size, part)
    # Only what was linked: the map lists the sections the linker discarded before this heading.
    linked = text[text.index("Memory Configuration") :]
    for line in linked.splitlines():
        head = line.split()
        if head and head[0].startswith("."):
            section = head[0]
        if not section.startswith((".text", ".rodata")):
            continue
        match = pattern.match(line)
        if match and int(match.group(2), 16) > 0:
            entries.append((int(match.group(1), 16), int(match.group(2), 16), part_of(match.group(3))))
    entries.sort()
    starts = sorted({address for address, _, _ in entries})
    covered = 0
    for address, size, part in entries:
        following = bisect.bisect_right(starts, address)
        end = min(address + size, starts[following]) if following < len(starts) else address + size
        parts[part] += max(0, end - max(address, covered))
        covered = max(covered, end)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description="instruction counts, code size and timing on emulated MCUs")
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build", help="default: build/")
    build_root = parser.parse_args().build_dir
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        raise SystemExit("bench_mcu needs qemu-system-arm and gcc-arm-none-eabi")
    elf = build_firmware("qemu", build_root, product="rackvae-bench.elf")
    module_elf = build_firmware("qemu", build_root)
    plugin = build_plugin(build_root)
    span = logistic_range(elf)

    print("One inference on the emulated Cortex-M7 (instructions counted by the TCG plugin)\n")
    header = (
        f"{'model':24} {'variant':8} {'MACs':>7} {'decode':>9} {'per MAC':>8} {'dense/MAC':>9} "
        f"{'as file':>9} {'logistic/out':>12} {'inference':>10} {'clock max':>9} {'RAM KB':>7}"
    )
    print(header)
    print("-" * len(header))
    worst_clock = worst_timer_check = 0
    m7_decodes: dict[str, int] = {}  # the demo's decode per variant, beside the other families
    jitter: list[tuple[str, dict[str, int]]] = []  # groove models: the timed triggers' scheduling jitter
    for name, (sizes, metadata) in SIZES.items():
        layers = random_decoder_layers(sizes, seed=1)
        for variant in VARIANTS:
            model = tflite_bytes(layers, metadata, variant)
            result = measure(elf, plugin, model, span)
            v, marks = result.values, result.marks
            macs = v["macs"]
            as_file, decode, again = marks[1][0], marks[3][0], marks[5][0]
            if decode != again:
                raise RuntimeError(f"{name} {variant}: counts differ between runs ({decode} != {again})")
            logistic = marks[3][1]
            if name == DEMO:
                m7_decodes[variant] = decode
                demo_macs = macs
            inference = marks[7][0]
            clock = max(count for count, _ in marks[9 : 9 + 2 * v["ticks"] : 2])
            worst_clock = max(worst_clock, clock)
            worst_timer_check = max(worst_timer_check, marks[9 + 2 * v["ticks"]][0])
            ram = sum(v[key] for key in RAM_PARTS)
            if "timed_fires" in v:
                jitter.append((f"{name} {variant}", v))
            print(
                f"{name:24} {variant:8} {macs:7d} {decode:9d} {decode / macs:8.2f} "
                f"{(decode - logistic) / macs:9.2f} {as_file:9d} {logistic / v['outputs']:12.1f} "
                f"{inference:10d} {clock:9d} {ram / 1024:7.1f}"
            )
    print(
        "\ndecode: rv_decode with the weights repacked row-per-input (what the module runs); as file: the\n"
        "same on the .tflite's row-per-output weights; dense/MAC leaves out the logistic; inference: the\n"
        "module's whole app_poll inference (knobs, decode, thresholds, notes); clock max: the module's\n"
        "clock handler over all steps; RAM: file + int8 constants + repacked weights + scratch + engine.\n"
    )
    print(
        "Timed triggers (groove models): 16 clock edges at 120 BPM from a hardware timer, the app's timer\n"
        "polled at 20 kHz as on the board, emulated at 250 MHz; microseconds from each firing's due time to\n"
        "the poll that fired it\n"
    )
    print(f"  {'model':34} {'firings':>7} {'min':>5} {'median':>6} {'max':>5}")
    for label, v in jitter:
        print(
            f"  {label:34} {v['timed_fires']:7d} {v['jitter_min_us']:5d} {v['jitter_median_us']:6d} "
            f"{v['jitter_max_us']:5d}"
        )
    print()

    parts = code_size(module_elf.with_name("rackvae-qemu.map"))
    print(
        "Code linked into the virtual-module image (arm-none-eabi, core and app -Os;"
        " bytes of .text + .rodata)\n"
    )
    for part, size in parts.items():
        print(f"  {part:22} {size:8d}")
    print(f"  {'core + app':22} {parts['core'] + parts['app']:8d}  (goal <= 16384)\n")

    cpu_us = (worst_clock + INTERRUPT_ENTRY_CYCLES) / CPU_HZ * 1e6
    dac_writes = 8  # at most every jack: 5 triggers + 3 accents, or 4 pitches + 4 gates
    dac_us = dac_writes * DAC_WRITE_US
    rows = [
        (f"display chunk holding the interrupt off ({DISPLAY_CHUNK_PIXELS} px)", DISPLAY_CHUNK_US),
        ("pulse timer ending 8 pulses before the edge is served", PULSE_TIMER_US),
        (f"clock handler, {worst_clock} instructions + interrupt entry", cpu_us),
        (
            f"step timer check ({worst_timer_check} instructions + micros()) on the PIT",
            (worst_timer_check + MICROS_INSTRUCTIONS) / CPU_HZ * 1e6,
        ),
        (f"{dac_writes} DAC writes on SPI (board)", dac_us),
    ]
    print("Worst-case clock edge -> last trigger written at 600 MHz (a bound by construction)\n")
    for label, us in rows:
        print(f"  {label:58} {us:7.2f} us")
    print(f"  {'total':58} {sum(us for _, us in rows):7.2f} us")
    print(
        "\nAssumptions: one instruction per cycle (the handler counts are measured, cycles are not);\n"
        f"SPI time = bits / clock at the requested clocks (display {DISPLAY_SPI_HZ / 1e6:.0f} MHz, DACs\n"
        "20 MHz) plus 0.3 us per transaction for chip select and setup; every display transaction is at\n"
        "most one chunk (board.cpp splits rectangles and draws text one unclipped glyph per transaction);\n"
        "the edge arrives just after a chunk and a pulse-timer tick began. Not covered: a model change,\n"
        "when the SD card's transactions hold the bus and the module plays no step (edges are counted\n"
        "and replayed)."
    )
    if all(shutil.which(tool) for tool in ("avr-gcc", "simavr")):
        print_families(measure_families(build_root, plugin), m7_decodes, parts["core"], demo_macs)
    else:
        print("\n(the M0+ and AVR comparison needs avr-gcc and simavr)")


# ---- the same core on two more families: Cortex-M0+ without FPU (QEMU microbit), ATmega2560 (simavr) ----
M0_CPU_HZ = 133e6  # RP2040
DEMO = "demo perc 3-12-48-192"


@dataclass(frozen=True)
class FamilyRow:
    target: str
    variant: str
    count: int  # instructions (QEMU) or cycles (simavr) of one decode
    unit: str
    clock_hz: float
    core_bytes: int  # code + constants of the core linked into the program
    model_bytes: int  # the model's C arrays in flash
    ram_bytes: int | None  # scratch + one output vector + the decode's stack


def symbol_bytes(elf: Path, prefix: str, nm: str) -> int:
    """Bytes of the symbols whose name starts with ``prefix`` (the model's C arrays)."""
    listing = subprocess.run([nm, "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    return sum(
        int(f[1], 16)
        for f in (line.split() for line in listing.splitlines())
        if len(f) == 4 and f[3].startswith(prefix)
    )


def measure_families(build_root: Path, plugin: Path) -> list[FamilyRow]:
    """One decode of the demo-size model on each family: int8 and float32 on the M0, int8 on the AVR."""
    from rackvae import mcu

    sizes, metadata = SIZES[DEMO]
    layers = random_decoder_layers(sizes, seed=1)
    latent = np.array([[0.5, -1.0, 2.0]], np.float32)
    rows = []
    for variant in ("int8", "float32"):
        model = tflite_bytes(layers, metadata, variant)
        directory = build_root / f"mcu-m0-{variant}"
        elf = mcu.build("m0", model, directory)
        counts = directory / "counts.txt"
        mark = elf_symbols(elf)["rv_bench_mark"][0]
        options = f"mark={mark:#x},range=0x0:0x0,out={counts}"
        run = mcu.run_m0(elf, latent, directory / "run", extra=["-plugin", f"{plugin},{options}"])
        marks = [
            int(f[2]) for f in (line.split() for line in counts.read_text().splitlines()) if f[0] == "mark"
        ]
        ram = run.values["scratch"] + run.probabilities.shape[1] * 4 + run.values["stack"]
        core = code_size(elf.with_suffix(".map"))["core"]
        weights = symbol_bytes(elf, "model_dec_", "arm-none-eabi-nm")
        rows.append(
            FamilyRow(
                "Cortex-M0+ (soft float)", variant, marks[1], "instructions", M0_CPU_HZ, core, weights, ram
            )
        )
    model = tflite_bytes(layers, metadata, "int8")
    directory = build_root / "mcu-avr-int8"
    elf = mcu.build("avr", model, directory, latent)
    run = mcu.run_avr(elf, 1)
    ram = run.values["scratch"] + run.probabilities.shape[1] * 4 + run.values["stack"]
    core = code_size(elf.with_suffix(".map"))["core"]
    weights = symbol_bytes(elf, "model_dec_", "avr-nm")
    rows.append(
        FamilyRow("ATmega2560", "int8", run.values["cycles"], "cycles", mcu.AVR_CPU_HZ, core, weights, ram)
    )
    return rows


def print_families(rows: list[FamilyRow], m7: dict[str, int], m7_core: int, macs: int) -> None:
    print(
        f"\nThe demo-size model ({macs} MACs) on three families: one decode (rv_decode, one latent), the\n"
        "core's code, the model's C arrays, and RAM (scratch + output + the decode's measured stack)\n"
    )
    header = (
        f"{'target':24} {'variant':8} {'per decode':>12} {'unit':12} {'per MAC':>8} {'clock':>8} "
        f"{'decode':>10} {'core B':>7} {'model B':>8} {'RAM B':>6}"
    )
    print(header)
    print("-" * len(header))
    m7_rows = [
        FamilyRow("Cortex-M7 (FPU, DSP)", v, m7[v], "instructions", CPU_HZ, m7_core, 0, None) for v in m7
    ]
    for row in [*m7_rows, *rows]:
        ms = row.count / row.clock_hz * 1e3
        print(
            f"{row.target:24} {row.variant:8} {row.count:12d} {row.unit:12} {row.count / macs:8.2f} "
            f"{row.clock_hz / 1e6:5.0f}MHz {ms:8.3f}ms {row.core_bytes:7d} "
            f"{row.model_bytes or '-':>8} {row.ram_bytes or '-':>6}"
        )
    print(
        "\nM7: repacked weights (the module's decode, table above); model and RAM: see above; its core\n"
        "column is all the module links (reader, engine, postprocessing), the others' what a decode links.\n"
        "M0+: instructions counted by the TCG plugin, time at one instruction per cycle (a Cortex-M0+\n"
        "spends 2 cycles per load and taken branch: expect more). AVR: cycles counted by Timer1 in simavr\n"
        "(cycle-accurate); the int8 multipliers and shifts and the model descriptor sit in RAM there\n"
        "(.data), beside the RAM column.\n"
        "Goals: int8 < 2 ms at 133 MHz on the M0+ class, < 100 ms at 16 MHz on the AVR."
    )


if __name__ == "__main__":
    main()
