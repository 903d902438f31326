"""The virtual module: build the firmware for the desktop or the emulated Cortex-M7, replay an event
script into it, read back the output log, and turn what it played into MIDI or a screen picture.

The script and log formats are defined in ``firmware/sim/replay.h``. The desktop build reads the SD
card from a directory; the QEMU build reads a card image (``write_card_image``) over semihosting.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from rackvae import __version__
from rackvae.atomic import atomic_open

if TYPE_CHECKING:
    from rackvae.export.metadata import XenMetadata

Target = Literal["host", "qemu"]
TARGETS: tuple[Target, ...] = ("host", "qemu")

REPO_ROOT = Path(__file__).resolve().parents[2]
# An installed package carries the firmware and core sources as package data (setup.py copies them into
# rackvae/_src); a checkout (editable install) builds from its own tree.
PACKAGED_SOURCES = Path(__file__).resolve().parent / "_src"
SOURCE_ROOT = PACKAGED_SOURCES if PACKAGED_SOURCES.is_dir() else REPO_ROOT
FIRMWARE_DIR = SOURCE_ROOT / "firmware"
TOOLCHAIN_FILE = SOURCE_ROOT / "cmake" / "arm-none-eabi-cortex-m7.cmake"
CARD_MAGIC = b"RVCARD 1\n"
MODEL_DIRS = {"note": "models/note", "perc": "models/perc"}
# Semihosting console output would go to stderr with QEMU's own messages: route it to stdout.
QEMU_COMMAND = [
    "qemu-system-arm",
    *("-M", "mps2-an500", "-nographic", "-monitor", "none", "-serial", "none"),
    *("-chardev", "stdio,id=log", "-semihosting-config", "enable=on,target=native,chardev=log"),
]

# The panel, as the original module's: percussion group g triggers jack PERC_TRIGGER_JACKS[g]; the
# accents of groups 2-4 are on jacks 5-7 (models with a velocity channel: the velocity of the group's
# loudest hit, 0-5 V for 0-127; hits-only models: the accent, the row's position in its group, 0-3 V).
# Note models: gates on jacks 0-3, pitch on 4-7.
PERC_TRIGGER_JACKS = (0, 4, 1, 2, 3)
PERC_ACCENT_JACKS = {2: 5, 3: 6, 4: 7}
NOTE_TRIGGER_JACKS = (0, 1, 2, 3)
NOTE_PITCH_JACKS = (4, 5, 6, 7)
DRUM_CHANNEL = 9  # MIDI channel 10, 0-based
MIDI_TICKS_PER_BEAT = 480
MIDI_TEMPO_US = 500_000  # the MIDI file's clock: one beat = 0.5 s, so times keep their real length


class SimulateError(RuntimeError):
    """The firmware could not be built or run, or its log is malformed; the message says why."""


# The module's settings blob (firmware/app/app.c ``settings``, little-endian Cortex-M7 and x86 layout):
# magic, model path, density per group, note density, max notes, chaos, pattern length, clock, tempo,
# groove amount, swing.
SETTINGS_MAGIC = b"RVS3"
SETTINGS_LAYOUT = struct.Struct("<4s64s5bbBBBBBBBxxx")
CLOCK_PPQN = (1, 2, 4, 24)  # external clock settings 0-3; 4 is the internal clock
CLOCK_INTERNAL = 4
PERC_GROUPS_WITH_JACKS = len(PERC_TRIGGER_JACKS)


@dataclass(frozen=True)
class ModuleSettings:
    """What the module keeps across power cycles; ``ppqn`` None means the internal clock at ``bpm``."""

    model_path: str = ""
    density: tuple[int, ...] = (0,) * PERC_GROUPS_WITH_JACKS  # per group, -100..100 % (-100: silent)
    note_density: int = 0  # note models, likewise
    max_notes: int = 4  # note models: notes per tick, 1..4
    chaos: int = 0  # 0..100 % of the latent range, drawn once per inference
    length: int = 64  # pattern length in steps (the model's ticks at most)
    ppqn: int | None = 4  # external clock pulses per quarter (4: one per step), None: internal clock
    bpm: int = 120  # internal clock, 40..240
    groove: int = 100  # 0..200 % of the learned timing offsets (0 straight, 100 as learned)
    swing: int = 0  # 0..75 % of a step, added to the delay of the odd (off-beat) steps

    def problems(self) -> list[str]:
        checks = [
            (len(self.density) == PERC_GROUPS_WITH_JACKS, f"density needs {PERC_GROUPS_WITH_JACKS} values"),
            (all(-100 <= d <= 100 for d in (*self.density, self.note_density)), "densities are -100..100"),
            (1 <= self.max_notes <= 4, "max-notes is 1..4"),
            (0 <= self.chaos <= 100, "chaos is 0..100"),
            (1 <= self.length <= 64, "length is 1..64"),
            (self.ppqn is None or self.ppqn in CLOCK_PPQN, "ppqn is 1, 2, 4 or 24"),
            (40 <= self.bpm <= 240, "bpm is 40..240"),
            (0 <= self.groove <= 200, "groove is 0..200"),
            (0 <= self.swing <= 75, "swing is 0..75"),
            (len(self.model_path.encode()) < 64, "the model path is longer than 63 bytes"),
        ]
        return [message for ok, message in checks if not ok]

    def to_bytes(self) -> bytes:
        if self.problems():
            raise SimulateError(f"settings: {'; '.join(self.problems())}")
        clock = CLOCK_INTERNAL if self.ppqn is None else CLOCK_PPQN.index(self.ppqn)
        return SETTINGS_LAYOUT.pack(
            SETTINGS_MAGIC,
            self.model_path.encode(),
            *self.density,
            self.note_density,
            self.max_notes,
            self.chaos,
            self.length,
            clock,
            self.bpm,
            self.groove,
            self.swing,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ModuleSettings | None:
        """The settings a blob restores, or None where the module ignores it (size, magic, a value)."""
        if len(data) != SETTINGS_LAYOUT.size:
            return None
        magic, path, *density, note_density, max_notes, chaos, length, clock, bpm, groove, swing = (
            SETTINGS_LAYOUT.unpack(data)
        )
        if magic != SETTINGS_MAGIC or clock > CLOCK_INTERNAL:
            return None
        settings = cls(
            path.split(b"\0")[0].decode(errors="replace"),
            tuple(density),
            note_density,
            max_notes,
            chaos,
            length,
            None if clock == CLOCK_INTERNAL else CLOCK_PPQN[clock],
            bpm,
            groove,
            swing,
        )
        return None if settings.problems() else settings

    def with_option(self, option: str) -> ModuleSettings:
        """``NAME=VALUE`` (``rackvae simulate --set``): densityG (G 0-4), note-density, max-notes, chaos,
        length, ppqn (external clock), bpm (internal clock), groove (%), swing (%)."""
        name, _, text = option.partition("=")
        try:
            value = int(text)
        except ValueError:
            raise SimulateError(f"--set {option}: expected NAME=INTEGER") from None
        if name.startswith("density") and name[7:].isdigit() and int(name[7:]) < PERC_GROUPS_WITH_JACKS:
            density = list(self.density)
            density[int(name[7:])] = value
            changed = replace(self, density=tuple(density))
        elif name == "bpm":
            changed = replace(self, ppqn=None, bpm=value)
        elif name in ("note-density", "max-notes", "chaos", "length", "ppqn", "groove", "swing"):
            changed = replace(self, **{name.replace("-", "_"): value})
        else:
            raise SimulateError(
                f"--set {option}: unknown setting "
                "(density0-4, note-density, max-notes, chaos, length, ppqn, bpm, groove, swing)"
            )
        if changed.problems():
            raise SimulateError(f"--set {option}: {'; '.join(changed.problems())}")
        return changed


def default_build_root() -> Path:
    """Where builds go by default: the per-user cache ($XDG_CACHE_HOME/rackvae, else ~/.cache/rackvae),
    never site-packages or the current directory; one folder per version and source tree, since a CMake
    build folder belongs to one source tree."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    cache_root = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    key = hashlib.sha256(str(SOURCE_ROOT).encode()).hexdigest()[:12]
    return cache_root / "rackvae" / f"firmware-{__version__}-{key}"


def build_firmware(
    target: Target, build_root: Path | None = None, default_model_c: Path | None = None, product: str = ""
) -> Path:
    """Configure and build the firmware with CMake; return the built ``product`` (default: the
    simulator executable or the QEMU image of the virtual module)."""
    if shutil.which("cmake") is None:
        raise SimulateError("building the module firmware needs cmake and a C compiler: cmake is not on PATH")
    build_root = build_root or default_build_root()
    build_dir = build_root / ("firmware-host" if target == "host" else "firmware-m7")
    configure = ["cmake", "-S", str(FIRMWARE_DIR), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"]
    if target == "qemu":
        configure.append(f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_FILE}")
    # Always given, so a build directory never keeps another run's built-in model.
    default_model_c = default_model_c or FIRMWARE_DIR / "app" / "default_model.c"
    configure.append(f"-DRV_DEFAULT_MODEL_C={default_model_c}")
    product = product or ("rackvae-sim" if target == "host" else "rackvae-qemu.elf")
    for command in (configure, ["cmake", "--build", str(build_dir), "--target", product, "-j2"]):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SimulateError(f"firmware build failed: {' '.join(command)}\n{result.stdout}{result.stderr}")
    return build_dir / product


def model_metadata(tflite: bytes, name: str) -> XenMetadata:
    """The file's xen metadata; a file without it (damaged, not a TFLite model) refused naming ``name``."""
    from rackvae.export.metadata import MetadataError, read_xen_metadata

    try:
        return read_xen_metadata(tflite)
    except MetadataError as error:
        raise SimulateError(f"{name}: {error}") from error


def prepare_card(models: Iterable[Path], card_dir: Path) -> Path:
    """An SD card directory with each .tflite in models/note or models/perc by its metadata."""
    for model in models:
        data = Path(model).read_bytes()
        destination = card_dir / MODEL_DIRS[model_metadata(data, str(model)).kind]
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, destination / Path(model).name)
    return card_dir


def write_card_image(card_dir: Path, image_path: Path) -> None:
    """Pack the card directory for the QEMU build: the magic line, then per file (sorted by path)
    ``<size> /<path>\\n<bytes>\\n``."""
    with atomic_open(image_path, "wb") as image:
        image.write(CARD_MAGIC)
        for path in sorted(p for p in card_dir.rglob("*") if p.is_file()):
            data = path.read_bytes()
            name = "/" + path.relative_to(card_dir).as_posix()
            image.write(f"{len(data)} {name}\n".encode() + data + b"\n")


def run_module(
    executable: Path,
    script: str,
    target: Target,
    card_dir: Path | None = None,
    settings: Path | None = None,
    timeout: float = 120.0,
) -> str:
    """Replay ``script`` on the built firmware; return its log (raises on a non-zero exit)."""
    with tempfile.TemporaryDirectory(prefix="rackvae-sim-") as tmp:
        run_dir = Path(tmp)
        (run_dir / "events.txt").write_text(script)
        if target == "host":
            command = [str(executable), "--script", str(run_dir / "events.txt")]
            if card_dir is not None:
                command += ["--card", str(card_dir)]
            if settings is not None:
                command += ["--settings", str(settings)]
        else:
            if card_dir is not None:
                write_card_image(card_dir, run_dir / "card.img")
            if settings is not None and settings.exists():
                shutil.copyfile(settings, run_dir / "settings.bin")
            command = [*QEMU_COMMAND, "-kernel", str(executable)]
        try:
            result = subprocess.run(
                command, cwd=run_dir, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise SimulateError(f"{target}: the module did not finish within {timeout:.0f} s") from error
        if target == "qemu" and settings is not None and (run_dir / "settings.bin").exists():
            shutil.copyfile(run_dir / "settings.bin", settings)
    if result.returncode != 0:
        raise SimulateError(
            f"{target}: exit status {result.returncode}\n{result.stdout[-2000:]}{result.stderr}"
        )
    return result.stdout


@dataclass(frozen=True)
class LogEvent:
    """One log line: time in microseconds, what happened, its arguments."""

    time_us: int
    what: str
    args: tuple[str, ...]


def parse_log(text: str) -> list[LogEvent]:
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split(" ")
        if len(fields) < 2 or not fields[0].isdigit():
            raise SimulateError(f"log line {number} is not '<us> <what> ...': {line!r}")
        events.append(LogEvent(int(fields[0]), fields[1], tuple(fields[2:])))
    return events


def with_screen_event(script: str) -> str:
    """The script plus a ``screen`` event at its last instant."""
    lines = (line.split("#")[0].split() for line in script.splitlines())
    times = [float(fields[0]) for fields in lines if fields]
    return script + f"{max(times, default=0.0):.3f} screen\n"


def clock_script(
    bars: int,
    ticks_per_bar: int,
    bpm: float,
    knob_paths: Sequence[np.ndarray] = (),
    threshold_volts: float = 0.0,
    gate_ms: float = 5.0,
) -> str:
    """An event script: a reset, then a clock of ``ticks_per_bar`` steps per 4/4 bar at ``bpm``.

    ``knob_paths[k]`` gives latent pot k's voltage (-5..5 V) for each bar, set just before the bar's
    first step (the module samples the pots when it computes the next bar).
    """
    step_ms = 60_000.0 / bpm * 4 / ticks_per_bar
    lines = [f"0 knob 3 {threshold_volts:.6f}", "1 reset 1", f"{1 + gate_ms:.3f} reset 0"]
    start_ms = 10.0
    for bar in range(bars):
        for step in range(ticks_per_bar):
            time_ms = start_ms + (bar * ticks_per_bar + step) * step_ms
            if step == 0:
                for knob, path in enumerate(knob_paths):
                    lines.append(f"{time_ms - 1:.3f} knob {knob} {float(path[bar]):.6f}")
            lines.append(f"{time_ms:.3f} clock 1")
            lines.append(f"{time_ms + gate_ms:.3f} clock 0")
    return "\n".join(lines) + "\n"


def played_notes(events: Sequence[LogEvent]) -> list[tuple[int, int, int, int, int]]:
    """What the module played as (start_us, end_us, channel 0-15, note, velocity), from the USB MIDI
    lines of its log: each note-on at the time its output fired (the groove's offsets and swing
    included) with its velocity, until its note-off (notes still on at the log's end: until then, at
    least 0.1 s)."""
    sounding: dict[tuple[int, int], tuple[int, int]] = {}
    notes = []
    end_of_log = events[-1].time_us if events else 0
    for event in events:
        if event.what != "midi":
            continue
        channel, note, velocity = (int(arg) for arg in event.args)
        key = (channel - 1, note)
        if key in sounding:
            start, on_velocity = sounding.pop(key)
            notes.append((start, event.time_us, key[0], note, on_velocity))
        if velocity > 0:
            sounding[key] = (event.time_us, velocity)
    for (channel, note), (start, velocity) in sounding.items():
        notes.append((start, max(end_of_log, start + 100_000), channel, note, velocity))
    return sorted(notes)


def write_midi(events: Sequence[LogEvent], path: Path) -> int:
    """Write what the module played (its USB MIDI out) as a one-track MIDI file; returns the number of
    notes."""
    import mido

    def midi_ticks(time_us: int) -> int:
        return round(time_us * MIDI_TICKS_PER_BEAT / MIDI_TEMPO_US)

    notes = played_notes(events)
    messages = []
    for start, end, channel, note, velocity in notes:
        messages.append(
            (midi_ticks(start), 1, mido.Message("note_on", channel=channel, note=note, velocity=velocity))
        )
        messages.append(
            (midi_ticks(end), 0, mido.Message("note_off", channel=channel, note=note, velocity=0))
        )
    messages.sort(key=lambda item: (item[0], item[1]))  # offs before ons at the same time
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=MIDI_TEMPO_US, time=0)])
    now = 0
    for when, _, message in messages:
        track.append(message.copy(time=when - now))
        now = when
    midi = mido.MidiFile(ticks_per_beat=MIDI_TICKS_PER_BEAT, tracks=[track])
    with atomic_open(path, "wb") as handle:
        midi.save(file=handle)
    return len(notes)


def last_screen(events: Sequence[LogEvent]) -> tuple[str, str, int, list[str]]:
    """The last ``screen`` snapshot: title, message, cursor and rows (top row first)."""
    starts = [i for i, event in enumerate(events) if event.what == "screen" and event.args[:1] == ("title",)]
    if not starts:
        raise SimulateError("the log has no screen snapshot (add a 'screen' event to the script)")
    title, message, cursor, rows = "", "", -1, []
    for event in events[starts[-1] :]:
        if event.what != "screen":
            break
        kind, rest = event.args[0], event.args[1:]
        if kind == "title":
            if title:
                break
            title = " ".join(rest)
        elif kind == "message":
            message = " ".join(rest)
        elif kind == "cursor":
            cursor = int(rest[0])
        elif kind == "row":  # row <n> <label> <cells>
            rows.append(rest[-1] if len(rest) > 2 else "")
    return title, message, cursor, rows


def render_screen(events: Sequence[LogEvent], path: Path) -> None:
    """Draw the module's last screen snapshot (title, status line, rows x ticks with the cursor) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title, message, cursor, rows = last_screen(events)
    ticks = max((len(row) for row in rows), default=0)
    grid = np.zeros((len(rows), ticks))
    for r, row in enumerate(rows):
        for t, mark in enumerate(row):
            grid[r, t] = 0 if mark == "." else 1 + (int(mark) if mark.isdigit() else 9)
    figure, axes = plt.subplots(figsize=(4.8, 3.2), facecolor="black")
    axes.set_facecolor("black")
    if cursor >= 0:
        axes.axvspan(cursor - 0.5, cursor + 0.5, color="maroon", zorder=0)
    masked = np.ma.masked_equal(grid, 0)
    axes.imshow(masked, cmap="tab10", vmin=1, vmax=10, aspect="auto", interpolation="nearest", zorder=1)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title, color="orange", fontsize=11, loc="left")
    axes.set_xlabel(message, color="white", fontsize=8)
    figure.tight_layout()
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", facecolor="black")
    plt.close(figure)


def find_tflite(model: Path) -> Path:
    """MODEL as given on the command line: a .tflite file, or a model directory holding one (the
    float32 export, NAME_dec.tflite, when there are several). A model folder written by ``rackvae
    train`` whose NAME_dec.tflite is not the export of its current parameters (trained again after
    ``rackvae export``, which leaves the old file) is refused: the module plays exported files only."""
    if model.is_file():
        return model
    if not model.is_dir():
        raise SimulateError(f"{model}: no such file or directory")
    candidates = sorted(model.rglob("*.tflite"))
    if not candidates:
        raise SimulateError(f"{model}: the model directory has no .tflite file (export it first)")
    float32 = [path for path in candidates if path.name.endswith("_dec.tflite")]
    tflite = (float32 or candidates)[0]
    if (model / "model.json").is_file():
        stale = stale_export(model, tflite)
        if stale:
            raise SimulateError(
                f"{tflite} is not the export of {model}'s current parameters ({stale}), and the module "
                f"plays exported files only: run rackvae export {model} again"
            )
    return tflite


def stale_export(folder: Path, tflite: Path) -> str:
    """Why ``tflite``, the NAME_dec.tflite of the model folder ``folder``, does not decode as the folder's
    current parameters do (rackvae.generate.export_staleness), or "" (also for any other file)."""
    from rackvae import generate
    from rackvae.core import CoreError
    from rackvae.train import ModelError, load_model

    try:
        trained = load_model(folder)
    except ModelError as error:
        raise SimulateError(str(error)) from error
    if tflite != folder / f"{trained.name}_dec.tflite":
        return ""
    model_metadata(tflite.read_bytes(), str(tflite))  # a damaged file: refused as any other
    try:
        exported = generate.decoder_from_file(tflite)
    except (generate.GenerateError, CoreError) as error:
        raise SimulateError(str(error)) from error
    return generate.export_staleness(exported, generate.parameters_decoder(trained))


def qemu_available() -> bool:
    return shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None
