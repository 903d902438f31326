"""The module firmware on the desktop and on the emulated Cortex-M7, against a Python model of the module.

One event script drives the app (clock, reset, knobs and CVs, pause, manual-inference mode). The test
asserts that the desktop build's log and the QEMU build's log are byte-identical, and that both equal
the log a Python model of the module predicts: the JAX decoder (rackvae.model.decode_layers) on the
latents the knobs give, thresholds and the 4 most probable rows per tick, the panel's jacks, and the
sequencer's double buffering as documented in core/include/rackvae.h.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from rackvae.export.metadata import XenMetadata
from rackvae.model import decode_layers, random_decoder_layers
from rackvae.simulate import (
    NOTE_PITCH_JACKS,
    NOTE_TRIGGER_JACKS,
    PERC_ACCENT_JACKS,
    PERC_TRIGGER_JACKS,
    build_firmware,
    clock_script,
    parse_log,
    prepare_card,
    run_module,
    write_card_image,
)

PERC_META = XenMetadata("perc", 12, 16, 3, (1, 1, 6, 2, 2))
NOTE_META = XenMetadata("note", 24, 16, 3, base_note=48)
MAX_NOTES = 4
HOLD_MS = 1000
# Probabilities this close to the threshold, or to each other at the 4-note cut, could fall either
# way between JAX and C (they agree to ~1e-7 here): the scripts must keep clear of them.
DECISION_MARGIN = 1e-6


def require_cross_tools() -> None:
    """The QEMU tests run wherever the tools are; CI installs them, so there they must be present."""
    missing = [tool for tool in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(tool) is None]
    if missing:
        packages = "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
        message = f"{', '.join(missing)} not installed (apt install {packages})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def build_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("firmware-build")


@pytest.fixture(scope="session")
def host_sim(build_root: Path) -> Path:
    return build_firmware("host", build_root)


@pytest.fixture(scope="session")
def qemu_elf(build_root: Path) -> Path:
    require_cross_tools()
    return build_firmware("qemu", build_root)


def module_build(request: pytest.FixtureRequest, target: str) -> Path:
    """The desktop simulator or the QEMU image, built once per session."""
    return request.getfixturevalue("host_sim" if target == "host" else "qemu_elf")


def sparse_layers(sizes: tuple[int, ...], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A random decoder whose output biases are lowered, so probabilities spread across the
    threshold range (0..0.3 and beyond) instead of sitting near 0.5."""
    layers = random_decoder_layers(sizes, seed)
    kernel, bias = layers[-1]
    layers[-1] = (kernel, (bias - 1.5).astype(np.float32))
    return layers


@dataclass
class DecoderFile:
    meta: XenMetadata
    layers: list[tuple[np.ndarray, np.ndarray]]
    tflite: bytes


@pytest.fixture(scope="session")
def perc_model() -> DecoderFile:
    from rackvae.export.tflite import tflite_bytes

    layers = sparse_layers((3, 12, 48, 192), seed=3)
    return DecoderFile(PERC_META, layers, tflite_bytes(layers, PERC_META, "float32", model_name="perc"))


@pytest.fixture(scope="session")
def note_model() -> DecoderFile:
    from rackvae.export.tflite import tflite_bytes

    layers = sparse_layers((3, 16, 64, 384), seed=4)
    return DecoderFile(NOTE_META, layers, tflite_bytes(layers, NOTE_META, "float32", model_name="note"))


def card_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    card = tmp_path / "card"
    for path, data in files.items():
        (card / path).parent.mkdir(parents=True, exist_ok=True)
        (card / path).write_bytes(data)
    return card


# ---- the Python model of the module ----


def f32(value: float) -> np.float32:
    return np.float32(value)


def milli(value: np.float32) -> int:
    """value * 1000 rounded half up, in float32 (as the firmware's log prints it)."""
    return int(np.floor(f32(value) * f32(1000) + f32(0.5)))


def latent_from(knob: np.float32, cv: np.float32, scale: float) -> np.float32:
    scale32 = f32(scale)
    return np.clip((knob + cv) / f32(5) * scale32, -scale32, scale32)


def threshold_from(knob: np.float32, cv: np.float32) -> np.float32:
    knob_part = np.clip((knob + f32(5)) / (f32(2) * f32(5)), f32(0), f32(1)) * f32(0.3)
    cv_part = np.clip(cv / f32(5), f32(-1), f32(1)) * f32(0.3)
    return np.clip(knob_part + cv_part, f32(0), f32(1))


@dataclass
class ModuleModel:
    """What the module does for a script, as documented: returns the expected log lines."""

    model: DecoderFile
    name: str
    knobs: list[np.float32] = field(default_factory=lambda: [f32(0)] * 4)
    cvs: list[np.float32] = field(default_factory=lambda: [f32(0)] * 4)
    lines: list[str] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tick, self.paused, self.manual, self.pending = -1, False, False, True
        self.front: list | None = None
        self.back: list | None = None
        self.leds = [False] * 3
        self.button_since: int | None = None
        self.button_held = False

    def emit(self, now_us: int, text: str) -> None:
        self.lines.append(f"{now_us} {text}")

    def set_led(self, now_us: int, led: int, on: bool) -> None:
        if self.leds[led] != on:
            self.leds[led] = on
            self.emit(now_us, f"led {led} {int(on)}")

    def sequence(self, latent: np.ndarray, threshold: np.float32) -> list[list[tuple[int, float]]]:
        meta = self.model.meta
        probabilities = decode_layers(self.model.layers, latent[None, :])[0].reshape(meta.ticks, meta.rows)
        steps = []
        for tick_p in probabilities:
            above = [(float(p), r) for r, p in enumerate(tick_p) if p >= threshold]
            self.margins.extend(abs(float(p) - float(threshold)) for p in tick_p)
            ranked = sorted(above, key=lambda item: (-item[0], item[1]))
            if len(ranked) > MAX_NOTES:
                self.margins.append(ranked[MAX_NOTES - 1][0] - ranked[MAX_NOTES][0])
            steps.append(sorted((r, p) for p, r in ranked[:MAX_NOTES]))
        return steps

    def poll(self, now_us: int) -> None:
        now_ms = now_us // 1000
        if self.button_since is not None and not self.button_held and now_ms - self.button_since >= HOLD_MS:
            self.button_held = True
            self.manual = not self.manual
            self.pending = self.pending or not self.manual
            self.set_led(now_us, 2, self.manual)
        if self.pending:
            self.pending = False
            scale = self.model.meta.latent_scale
            latent = np.array([latent_from(self.knobs[k], self.cvs[k], scale) for k in range(3)], np.float32)
            threshold = threshold_from(self.knobs[3], self.cvs[3])
            self.back = self.sequence(latent, threshold)
            zs = " ".join(str(milli(z)) for z in latent)
            self.emit(now_us, f"infer latent {zs} threshold {milli(threshold)}")

    def play(self, now_us: int, step: list[tuple[int, float]]) -> None:
        meta = self.model.meta
        if meta.kind == "perc":
            best: dict[int, tuple[float, float]] = {}
            for row, p in step:
                group = meta.group_of_row(row)
                start = sum(meta.group_sizes[:group])
                size = meta.group_sizes[group]
                accent = f32(row - start) / f32(size - 1) if size > 1 else f32(0)
                if group not in best or p > best[group][0]:
                    best[group] = (p, accent)
            for group in sorted(best):
                if group in PERC_ACCENT_JACKS:
                    self.emit(now_us, f"cv {PERC_ACCENT_JACKS[group]} {milli(best[group][1] * f32(3))}")
            for group in sorted(best):
                self.emit(now_us, f"trig {PERC_TRIGGER_JACKS[group]}")
        else:
            for voice, (row, _) in enumerate(step):
                volts = f32(meta.base_note + row - 60) / f32(12)
                self.emit(now_us, f"cv {NOTE_PITCH_JACKS[voice]} {milli(volts)}")
            for voice in range(len(step)):
                self.emit(now_us, f"trig {NOTE_TRIGGER_JACKS[voice]}")

    def clock(self, now_us: int) -> None:
        if self.paused:
            return
        self.tick = (self.tick + 1) % self.model.meta.ticks
        if self.back is not None and (self.front is None or self.manual or self.tick == 0):
            self.front, self.back = self.back, None
            self.pending = self.pending or not self.manual
        if self.front is not None:
            self.emit(now_us, f"tick {self.tick}")
            self.play(now_us, self.front[self.tick])

    def event(self, now_us: int, name: str, args: list[str]) -> None:
        if name in ("knob", "cv"):
            microvolts = int(Decimal(args[1]) * 1_000_000)
            (self.knobs if name == "knob" else self.cvs)[int(args[0])] = f32(microvolts) / f32(1e6)
        elif name == "clock" and args == ["1"]:
            self.clock(now_us)
        elif (name == "reset" and args == ["1"]) or (name == "button" and args == ["1", "1"]):
            self.tick, self.paused = -1, False
            self.set_led(now_us, 0, False)
        elif name == "button" and args == ["0", "1"]:
            self.paused = True
            self.set_led(now_us, 0, True)
        elif name == "trigger" and args == ["1"] and self.manual:
            self.pending = True
        elif name == "button" and args == ["2", "1"]:
            self.button_since, self.button_held = now_us // 1000, False
        elif name == "button" and args == ["2", "0"]:
            if not self.button_held and self.manual:
                self.pending = True
            self.button_since = None

    def run(self, script: str) -> list[str]:
        kind = "DRUM" if self.model.meta.kind == "perc" else "NOTE"
        meta = self.model.meta
        for led in range(3):
            self.emit(0, f"led {led} 0")
        self.emit(0, f"load {kind} rows {meta.rows} ticks {meta.ticks} zero 60 name {self.name}")
        now_us = 0
        for line in script.splitlines():
            fields = line.split("#")[0].split()
            if not fields:
                continue
            time_us = int(Decimal(fields[0]) * 1000)
            if time_us > now_us:
                self.poll(now_us)
                now_us = time_us
            self.event(now_us, fields[1], fields[2:])
        self.poll(now_us)
        return self.lines


def performance_script(bars: int = 4) -> str:
    """Clock with knob sweeps and CVs, then: pause until reset, manual-inference mode (hold 1 s) with
    inferences from the trigger gate and the button, back to automatic mode."""
    rng = np.random.default_rng(7)
    knobs = [rng.uniform(-5, 5, bars) for _ in range(3)]
    script = clock_script(bars, 16, 120, knobs, threshold_volts=-2.5).splitlines()
    end = 10 + bars * 2000  # ms after the last bar
    script += [
        "15 cv 0 1.25",
        "15 cv 3 0.5",
    ]
    script += [f"{end + 125 * k} clock 1" for k in range(4)]
    script += [f"{end + 125 * k + 5} clock 0" for k in range(4)]
    script += [
        f"{end + 600} button 0 1",  # pause until reset: the next clocks play nothing
        f"{end + 610} button 0 0",
        f"{end + 625} clock 1",
        f"{end + 630} clock 0",
        f"{end + 700} reset 1",
        f"{end + 705} reset 0",
        f"{end + 750} clock 1",
        f"{end + 755} clock 0",
        f"{end + 800} knob 0 4.5",
        f"{end + 800} button 2 1",  # hold 1 s: manual-inference mode
        f"{end + 875} clock 1",
        f"{end + 880} clock 0",
        f"{end + 1900} clock 1",
        f"{end + 1905} clock 0",
        f"{end + 1950} button 2 0",
        f"{end + 2000} knob 1 -4",
        f"{end + 2000} trigger 1",  # inference on the gate; played from the next clock
        f"{end + 2005} trigger 0",
        f"{end + 2100} clock 1",
        f"{end + 2105} clock 0",
        f"{end + 2200} knob 2 3.3",
        f"{end + 2200} button 2 1",  # a short press: one inference
        f"{end + 2300} button 2 0",
        f"{end + 2400} clock 1",
        f"{end + 2405} clock 0",
        f"{end + 2500} button 2 1",  # hold again: back to automatic
        f"{end + 3600} button 2 0",
        f"{end + 3700} clock 1",
        f"{end + 3705} clock 0",
    ]
    timed = sorted(script, key=lambda line: Decimal(line.split()[0]))
    return "\n".join(timed) + "\n"


def shifted(script: str, offset_ms: Decimal) -> str:
    """The script's events, offset_ms later."""
    lines = (line.split(" ", 1) for line in script.splitlines())
    return "".join(f"{Decimal(time) + offset_ms} {rest}\n" for time, rest in lines)


def comparable(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.split()[1] != "screen"]


def test_script_parser_rejects_malformed_lines(host_sim: Path, tmp_path: Path) -> None:
    from rackvae.simulate import SimulateError

    for script, reason in (
        ("10 clock 2\n", "error line 1: gate level must be 0 or 1"),
        ("10 clock 1\n5 clock 0\n", "error line 2: events must come in time order"),
        ("# comment\n10 wobble 1\n", "error line 2: unknown event"),
        ("10 knob 7 1.0\n", "error line 1: expected <0-3> <volts>"),
    ):
        with pytest.raises(SimulateError, match="exit status 2") as error:
            run_module(host_sim, script, "host")
        assert reason in str(error.value)


@pytest.mark.parametrize("target", ["host", "qemu"])
@pytest.mark.parametrize("which", ["perc", "note"])
def test_module_log_matches_python_model(
    which: str,
    target: str,
    request: pytest.FixtureRequest,
    perc_model: DecoderFile,
    note_model: DecoderFile,
    tmp_path: Path,
) -> None:
    model = perc_model if which == "perc" else note_model
    path = f"models/{which}/test.tflite"
    card = card_with(tmp_path, {path: model.tflite})
    script = performance_script()
    log = run_module(module_build(request, target), script, target, card_dir=card)
    reference = ModuleModel(model, "/" + path)
    expected = reference.run(script)
    assert min(reference.margins) > DECISION_MARGIN, "the script sits on a decision boundary: change seeds"
    played = [line for line in expected if " trig " in line]
    assert len(played) > 100, "the script should make the module play"
    assert comparable(log) == expected


def test_qemu_log_identical_to_desktop_log(
    host_sim: Path, qemu_elf: Path, perc_model: DecoderFile, note_model: DecoderFile, tmp_path: Path
) -> None:
    card = card_with(
        tmp_path, {"models/perc/a.tflite": perc_model.tflite, "models/note/b.tflite": note_model.tflite}
    )
    # Both models, one after the other through the model-select encoder, then the screen.
    script = performance_script(bars=2)
    last = max(Decimal(line.split()[0]) for line in script.splitlines())
    follow = clock_script(2, 16, 120, [np.array([1.0, -1.0])] * 3, threshold_volts=-1.0)
    script += f"{last + 10} select 1\n" + shifted(follow, last + 20) + f"{last + 5000} screen\n"
    host_log = run_module(host_sim, script, "host", card_dir=card)
    qemu_log = run_module(qemu_elf, script, "qemu", card_dir=card)
    assert qemu_log == host_log
    events = parse_log(host_log)
    loads = [event.args[-1] for event in events if event.what == "load"]
    assert loads == ["/models/note/b.tflite", "/models/perc/a.tflite"]
    assert sum(event.what == "trig" for event in events) > 100
    assert any(event.what == "screen" and event.args[0] == "row" for event in events)


def test_card_image_lists_files_in_path_order(tmp_path: Path) -> None:
    card = card_with(tmp_path, {"models/perc/b.tflite": b"BB", "models/note/a.tflite": b"A"})
    image = tmp_path / "card.img"
    write_card_image(card, image)
    assert image.read_bytes() == b"RVCARD 1\n1 /models/note/a.tflite\nA\n2 /models/perc/b.tflite\nBB\n"


def test_prepare_card_sorts_models_by_metadata(
    perc_model: DecoderFile, note_model: DecoderFile, tmp_path: Path
) -> None:
    (tmp_path / "drums.tflite").write_bytes(perc_model.tflite)
    (tmp_path / "keys.tflite").write_bytes(note_model.tflite)
    card = prepare_card([tmp_path / "drums.tflite", tmp_path / "keys.tflite"], tmp_path / "card")
    assert (card / "models/perc/drums.tflite").read_bytes() == perc_model.tflite
    assert (card / "models/note/keys.tflite").read_bytes() == note_model.tflite


def core_reason(data: bytes) -> str:
    """Why the C core refuses a file, as rackvae.core reports it."""
    from rackvae.core import CoreError, Decoder

    with pytest.raises(CoreError) as refused:
        Decoder.from_bytes(data)
    return refused.value.reason


@pytest.fixture(scope="session")
def too_long_model() -> bytes:
    """A well-formed decoder of 80 ticks: beyond the core's limit of 64."""
    from rackvae.export.tflite import tflite_bytes

    meta = XenMetadata("perc", 2, 80, 3, (1, 1))
    return tflite_bytes(random_decoder_layers((3, 8, 160), 0), meta, "float32")


@pytest.mark.parametrize("target", ["host", "qemu"])
def test_corrupt_and_unsupported_models_are_skipped_and_playing_continues(
    target: str,
    request: pytest.FixtureRequest,
    perc_model: DecoderFile,
    too_long_model: bytes,
    tmp_path: Path,
) -> None:
    executable = module_build(request, target)
    truncated = perc_model.tflite[: len(perc_model.tflite) // 2]
    garbage = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    card = card_with(
        tmp_path,
        {
            "models/note/a_truncated.tflite": truncated,
            "models/note/b_garbage.tflite": garbage,
            "models/perc/c_good.tflite": perc_model.tflite,
            "models/perc/d_too_long.tflite": too_long_model,
            "models/perc/notes.txt": b"not a model",
        },
    )
    bar = clock_script(1, 16, 120)
    script = bar + shifted(bar, Decimal(2100)) + "4200 select 1\n" + shifted(bar, Decimal(4300))
    script += "6400 select -1\n" + shifted(bar, Decimal(6500)) + "8600 screen\n"
    events = parse_log(run_module(executable, script, target, card_dir=card))

    skips = [" ".join(event.args) for event in events if event.what == "skip"]
    assert skips == [
        f"/models/note/a_truncated.tflite: {core_reason(truncated)}",
        f"/models/note/b_garbage.tflite: {core_reason(garbage)}",
        f"/models/perc/d_too_long.tflite: {core_reason(too_long_model)}",
        f"/models/perc/d_too_long.tflite: {core_reason(too_long_model)}",
    ]
    loads = [(event.time_us, event.args[-1]) for event in events if event.what == "load"]
    assert [name for _, name in loads] == [
        "/models/perc/c_good.tflite",
        "built-in",
        "/models/perc/c_good.tflite",
    ]
    # Each model plays from the clock edge after it loaded: the module never stopped.
    for start, _ in loads:
        assert any(event.what == "trig" and start < event.time_us < start + 2_100_000 for event in events)
    message = [event for event in events if event.what == "screen" and event.args[0] == "message"][-1]
    assert message.args[1:3] == ("skip", "/models/perc/d_too_long.tflite:")


@pytest.mark.parametrize("target", ["host", "qemu"])
def test_model_selection_is_remembered_across_power_cycles(
    target: str, request: pytest.FixtureRequest, perc_model: DecoderFile, tmp_path: Path
) -> None:
    executable = module_build(request, target)
    card = card_with(
        tmp_path, {"models/perc/x.tflite": perc_model.tflite, "models/perc/y.tflite": perc_model.tflite}
    )
    settings = tmp_path / "settings.bin"

    def loads(script: str) -> list[str]:
        events = parse_log(run_module(executable, script, target, card_dir=card, settings=settings))
        return [event.args[-1] for event in events if event.what == "load"]

    assert loads("10 select 1\n20 power\n") == [
        "/models/perc/x.tflite",
        "/models/perc/y.tflite",
        "/models/perc/y.tflite",
    ]
    assert loads("10 clock 1\n") == ["/models/perc/y.tflite"]  # a new run: the saved selection
    assert loads("10 select 1\n") == ["/models/perc/y.tflite", "built-in"]
    assert loads("10 clock 1\n") == ["built-in"]


def test_module_plays_the_built_in_model_without_a_card(host_sim: Path, qemu_elf: Path) -> None:
    script = clock_script(2, 16, 120, [np.array([-2.0, 2.0])] * 3, threshold_volts=-4.0)
    host_log = run_module(host_sim, script, "host")
    assert run_module(qemu_elf, script, "qemu") == host_log
    events = parse_log(host_log)
    assert [event.args[-1] for event in events if event.what == "load"] == ["built-in"]
    assert sum(event.what == "tick" for event in events) == 32
    assert sum(event.what == "trig" for event in events) > 0


def test_app_and_core_compile_with_the_teensy_flags(build_root: Path) -> None:
    require_cross_tools()
    library = build_firmware("qemu", build_root, product="rv_teensy_check")
    command = ["arm-none-eabi-readelf", "-A", str(library.with_name("librv_teensy_check.a"))]
    members = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    # Every object: Cortex-M7 (ARMv7E-M), double-precision FPv5 registers for arguments (hard float).
    objects = members.count("File: ")
    assert objects >= 10
    assert members.count('Tag_CPU_name: "7E-M"') + members.count('Tag_CPU_name: "cortex-m7"') == objects
    assert members.count("Tag_FP_arch: FPv5/FP-D16 for ARMv8") == objects
    assert members.count("Tag_ABI_VFP_args: VFP registers") == objects


def test_simulate_command_writes_log_midi_and_screen(perc_model: DecoderFile, tmp_path: Path) -> None:
    import mido

    from rackvae.cli import main
    from rackvae.simulate import ACCENT_FULL_SCALE_MV, DRUM_CHANNEL, GROUP_DRUM_NOTES

    model = tmp_path / "drums.tflite"
    model.write_bytes(perc_model.tflite)
    out = {name: tmp_path / name for name in ("module.log", "module.mid", "module.png")}
    argv = [str(model), "--sweep", "3", "--bpm", "100", "--threshold-volts", "-3"]
    argv += [
        "--log",
        str(out["module.log"]),
        "--midi",
        str(out["module.mid"]),
        "--screen",
        str(out["module.png"]),
    ]
    assert main(["simulate", *argv]) == 0

    events = parse_log(out["module.log"].read_text())
    assert sum(event.what == "tick" for event in events) == 3 * 16
    triggers = [event for event in events if event.what == "trig"]
    midi = mido.MidiFile(out["module.mid"])
    ons = [message for message in mido.merge_tracks(midi.tracks) if message.type == "note_on"]
    assert len(ons) == len(triggers) > 0
    assert {message.channel for message in ons} == {DRUM_CHANNEL}
    assert {message.note for message in ons} <= set(GROUP_DRUM_NOTES)
    # Toms (group 2, trigger jack 1): velocity follows the accent CV on jack 5, 0-3 V -> 40..127.
    accent_mv, expected_tom_velocities = 0, []
    for event in events:
        if event.what == "cv" and event.args[0] == "5":
            accent_mv = int(event.args[1])
        if event.what == "trig" and event.args[0] == "1":
            expected_tom_velocities.append(40 + round(87 * accent_mv / ACCENT_FULL_SCALE_MV))
    toms = [message.velocity for message in ons if message.note == GROUP_DRUM_NOTES[2]]
    assert toms == expected_tom_velocities and len(set(toms)) > 1
    assert out["module.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_command_plays_note_models_as_pitched_notes(note_model: DecoderFile, tmp_path: Path) -> None:
    import mido

    from rackvae.cli import main

    model = tmp_path / "keys.tflite"
    model.write_bytes(note_model.tflite)
    midi_path, log_path = tmp_path / "keys.mid", tmp_path / "keys.log"
    argv = ["simulate", str(model), "--sweep", "2", "--midi", str(midi_path), "--log", str(log_path)]
    assert main(argv) == 0
    ons = [m for m in mido.merge_tracks(mido.MidiFile(midi_path).tracks) if m.type == "note_on"]
    # The model's rows are MIDI notes base_note .. base_note + rows - 1.
    assert ons and all(NOTE_META.base_note <= m.note < NOTE_META.base_note + NOTE_META.rows for m in ons)
    assert len({m.note for m in ons}) > 3


def load_bench_mcu():
    import importlib.util

    from rackvae.simulate import REPO_ROOT

    spec = importlib.util.spec_from_file_location("bench_mcu", REPO_ROOT / "bench" / "bench_mcu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_instruction_counts_on_the_emulated_m7_are_exact_and_repeatable(
    build_root: Path, perc_model: DecoderFile
) -> None:
    require_cross_tools()
    bench = load_bench_mcu()
    elf = build_firmware("qemu", build_root, product="rackvae-bench.elf")
    plugin = bench.build_plugin(build_root)
    span = bench.logistic_range(elf)
    first = bench.measure(elf, plugin, perc_model.tflite, span)
    assert bench.measure(elf, plugin, perc_model.tflite, span) == first
    values, marks = first.values, first.marks
    assert values["file_bytes"] == len(perc_model.tflite)
    assert values["macs"] == 3 * 12 + 12 * 48 + 48 * 192
    assert values["outputs"] == 192 and values["ticks"] == 16
    decode, again, logistic = marks[3][0], marks[5][0], marks[3][1]
    assert decode == again  # the same decode twice counts the same
    # A multiply-accumulate takes at least one instruction; the logistic runs once per output.
    assert decode > values["macs"]
    assert values["outputs"] <= logistic < decode
    # 16 clock steps were measured after the inference.
    assert len(marks) == 8 + 2 * 16


def test_the_m7_meets_the_issues_instruction_and_code_size_goals(build_root: Path) -> None:
    """Exact counts, not timings: a demo-size decode (3-12-48-192) costs <= 2.0 instructions per
    multiply-accumulate in float32 and <= 1.0 in int8 on the emulated Cortex-M7, and core + app code
    linked into the module image stays <= 16 KB (bench/bench_mcu.py prints the whole table)."""
    from rackvae.export.tflite import tflite_bytes

    require_cross_tools()
    bench = load_bench_mcu()
    elf = build_firmware("qemu", build_root, product="rackvae-bench.elf")
    plugin = bench.build_plugin(build_root)
    span = bench.logistic_range(elf)
    sizes, metadata = bench.SIZES["demo perc 3-12-48-192"]
    layers = random_decoder_layers(sizes, seed=1)
    for variant, goal in (("float32", 2.0), ("int8", 1.0)):
        measured = bench.measure(elf, plugin, tflite_bytes(layers, metadata, variant), span)
        per_mac = measured.marks[3][0] / measured.values["macs"]
        assert per_mac <= goal, (variant, per_mac)
    parts = bench.code_size(build_firmware("qemu", build_root).with_name("rackvae-qemu.map"))
    assert 8_000 < parts["core"] + parts["app"] <= 16_384, parts
