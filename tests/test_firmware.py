"""The module firmware on the desktop and on the emulated Cortex-M7, against a Python model of the module.

One event script drives the app (clock, reset, knobs and CVs, pause, manual-inference mode). The test
asserts that the desktop build's log and the QEMU build's log are byte-identical, and that both equal
the log a Python model of the module predicts: the JAX decoder (rackvae.model.decode_layers) on the
latents the knobs give, thresholds and the 4 most probable rows per tick, the panel's jacks, and the
sequencer's double buffering as documented in core/include/rackvae.h.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from rackvae.export.metadata import DEFAULT_THRESHOLD, XenMetadata, threshold_byte
from rackvae.model import decode_layers, random_decoder_layers
from rackvae.simulate import (
    CLOCK_PPQN,
    NOTE_PITCH_JACKS,
    NOTE_TRIGGER_JACKS,
    PERC_ACCENT_JACKS,
    PERC_TRIGGER_JACKS,
    ModuleSettings,
    build_firmware,
    clock_script,
    parse_log,
    prepare_card,
    run_module,
    write_card_image,
)

PERC_META = XenMetadata("perc", 12, 16, 3, (1, 1, 6, 2, 2))
NOTE_META = XenMetadata("note", 24, 16, 3, base_note=48)
MAX_NOTES = 4  # note models: one per voice
PERC_MAX_NOTES = 8  # percussion: RV_MAX_NOTES, so that each group's density acts on its own
HOLD_MS = 1000
# The module's constants (firmware/app/app.c).
THRESHOLD_SPAN = 0.25
DENSITY_STEP = 0.0025
MUTE_OFFSET = 2.0
CATCH_VOLTS = 0.1
SAVE_DELAY_MS = 2000
CHAOS_SEED = 0x9E3779B9
TAP_MS = (250, 1500)
# Issue 17 open: the 16 KB guard vs the panel + groove features. What core + app exceed 16 KB by on the
# M7 (test_the_m7_meets_the_...), measured at the commit that set it; any growth fails.
OVER_16KB_BYTES = 2_757
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


def clip(value: np.float32, low: float, high: float) -> np.float32:
    return f32(min(max(value, f32(low)), f32(high)))


def threshold_from(centre: np.float32, knob: np.float32, cv: np.float32) -> np.float32:
    """The threshold pot's centre is the model's threshold; pot and CV each add +-THRESHOLD_SPAN."""
    knob_part = clip(knob / f32(5), -1, 1) * f32(THRESHOLD_SPAN)
    cv_part = clip(cv / f32(5), -1, 1) * f32(THRESHOLD_SPAN)
    return clip(centre + knob_part + cv_part, 0, 1)


def pot_value(volts: np.float32, shift: float, scale: np.float32, low: int, high: int) -> int:
    """floor((volts + shift) * scale + 0.5), clamped: the value a pot position selects on a layer."""
    x = (f32(volts) + f32(shift)) * f32(scale) + f32(0.5)
    return int(min(max(int(np.floor(x)), low), high))


def density_offset(percent: int) -> np.float32:
    return f32(MUTE_OFFSET) if percent == -100 else f32(-percent) * f32(DENSITY_STEP)


def model_thresholds(meta: XenMetadata) -> tuple[np.float32, list[np.float32]]:
    """The module's threshold pot centre and per-group offsets, as the C core reads the metadata
    (version 2: byte / 255; else RV_DEFAULT_THRESHOLD and no offsets)."""
    if meta.extension_version < 2:
        return f32(DEFAULT_THRESHOLD), [f32(0)] * len(meta.group_sizes)
    centre = f32(threshold_byte(meta.threshold)) / f32(255)
    groups = [f32(threshold_byte(t)) / f32(255) - centre for t in meta.group_thresholds]
    return centre, groups


@dataclass
class Settings:
    """The module's settings as it holds them (firmware/app/app.c ``settings``)."""

    density: list[int]
    note_density: int
    max_notes: int
    chaos: int
    length: int
    clock: int  # 0-3: external at CLOCK_PPQN[clock]; 4: internal
    bpm: int
    groove: int
    swing: int

    @classmethod
    def of(cls, saved: ModuleSettings) -> Settings:
        clock = 4 if saved.ppqn is None else CLOCK_PPQN.index(saved.ppqn)
        return cls(
            list(saved.density),
            saved.note_density,
            saved.max_notes,
            saved.chaos,
            saved.length,
            clock,
            saved.bpm,
            saved.groove,
            saved.swing,
        )

    def frozen(self, model_path: str) -> ModuleSettings:
        ppqn = None if self.clock == 4 else CLOCK_PPQN[self.clock]
        return ModuleSettings(
            model_path,
            tuple(self.density),
            self.note_density,
            self.max_notes,
            self.chaos,
            self.length,
            ppqn,
            self.bpm,
            self.groove,
            self.swing,
        )


@dataclass
class ModuleModel:
    """What the module does for a script, as documented: returns the expected log lines."""

    model: DecoderFile
    name: str
    saved: ModuleSettings | None = None  # the settings restored at power-on (None: none or invalid)
    knobs: list[np.float32] = field(default_factory=lambda: [f32(0)] * 4)
    cvs: list[np.float32] = field(default_factory=lambda: [f32(0)] * 4)
    lines: list[str] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)

    def power_on(self, now_us: int) -> None:
        meta = self.model.meta
        self.tick, self.paused, self.manual, self.pending = -1, False, False, True
        self.front: list | None = None
        self.back: list | None = None
        self.leds = [False] * 3
        self.button_down, self.button_since, self.button_held = False, 0, False
        self.layer, self.layer_used, self.turned, self.held = 0, False, set(), list(self.knobs)
        self.dirty, self.changed_ms = False, 0
        self.tapped, self.last_tap_ms = False, 0
        self.played: tuple[int, list] | None = None
        self.midi_on: list[int] = []
        self.timer_left, self.pulse_skip, self.pulse_seen, self.last_pulse_us = 0, 0, False, 0
        for led in range(3):
            self.emit(now_us, f"led {led} 0")
        self.settings = Settings.of(self.saved or ModuleSettings())
        self.emit(now_us, "settings restored" if self.saved is not None else "settings default")
        self.reset(now_us)
        self.centre, self.model_offsets = model_thresholds(meta)
        kind = "DRUM" if meta.kind == "perc" else "NOTE"
        self.emit(now_us, f"load {kind} rows {meta.rows} ticks {meta.ticks} zero 60 name {self.name}")
        self.length = min(self.settings.length, meta.ticks)

    def emit(self, now_us: int, text: str) -> None:
        self.lines.append(f"{now_us} {text}")

    def set_led(self, now_us: int, led: int, on: bool) -> None:
        if self.leds[led] != on:
            self.leds[led] = on
            self.emit(now_us, f"led {led} {int(on)}")

    # ---- clock ----

    def reset(self, now_us: int) -> None:
        self.tick, self.paused = -1, False
        self.set_led(now_us, 0, False)
        self.restart_clock(now_us)
        self.rng = CHAOS_SEED

    def restart_clock(self, now_us: int) -> None:
        self.pulse_skip, self.timer_left, self.pulse_seen = 0, 0, False
        self.timer_period = 15_000_000 // self.settings.bpm
        self.timer_due = now_us

    def pulse(self, now_us: int) -> None:
        clock = self.settings.clock
        if clock >= 4:
            return
        if self.pulse_skip > 0:
            self.pulse_skip -= 1
            return
        self.pulse_skip = 5 if CLOCK_PPQN[clock] == 24 else 0
        if clock < 2:
            if self.pulse_seen:
                self.timer_period = (now_us - self.last_pulse_us) >> (2 - clock)
                self.timer_due = now_us + self.timer_period
                self.timer_left = (1 << (2 - clock)) - 1
            self.last_pulse_us, self.pulse_seen = now_us, True
        self.play_step(now_us)

    def timer_wanted(self) -> bool:
        return self.settings.clock >= 4 or self.timer_left > 0

    def timer(self, now_us: int) -> None:
        if self.settings.clock < 4:
            if self.timer_left == 0:
                return
            self.timer_left -= 1
        self.timer_due = now_us + self.timer_period
        self.play_step(now_us)

    def play_step(self, now_us: int) -> None:
        if self.tick + 1 >= self.length:
            self.tick = -1
        if self.paused:
            return
        self.tick = (self.tick + 1) % self.model.meta.ticks
        if self.back is not None and (self.front is None or self.manual or self.tick == 0):
            self.front, self.back = self.back, None
            self.pending = self.pending or not self.manual
        if self.front is not None:
            self.play(now_us, self.front[self.tick])
            self.played = (self.tick, self.front[self.tick])

    # ---- layers and settings ----

    def changed(self, now_ms: int) -> None:
        self.dirty, self.changed_ms = True, now_ms

    def set_value(self, now_us: int, name: str, index: int | None, value: int) -> None:
        attribute = "density" if name == "density" and index is not None else name.replace("-", "_")
        if name == "density" and index is None:
            attribute = "note_density"
        current = (
            self.settings.density[index] if attribute == "density" else getattr(self.settings, attribute)
        )
        if current != value:
            if attribute == "density":
                self.settings.density[index] = value
            else:
                setattr(self.settings, attribute, value)
            self.changed(now_us // 1000)
            self.emit(now_us, f"set {name}{'' if index is None else f' {index}'} {value}")

    def set_clock(self, now_us: int, clock: int, bpm: int) -> None:
        if clock == self.settings.clock and bpm == self.settings.bpm:
            return
        was_internal = self.settings.clock >= 4
        self.settings.clock, self.settings.bpm = clock, bpm
        self.changed(now_us // 1000)
        if clock < 4:
            self.restart_clock(now_us)
            self.emit(now_us, f"set ppqn {CLOCK_PPQN[clock]}")
            return
        self.timer_period = 15_000_000 // bpm
        if not was_internal:
            self.timer_due = now_us
        self.emit(now_us, f"set bpm {bpm}")

    def turn(self, now_us: int, k: int, volts: np.float32) -> None:
        perc = self.model.meta.kind == "perc"
        ticks = self.model.meta.ticks
        if self.layer == 1 and (perc or k == 0):
            self.set_value(now_us, "density", k if perc else None, pot_value(volts, 0, f32(20), -100, 100))
        elif self.layer == 1:
            if k == 1:
                self.set_value(now_us, "max-notes", None, pot_value(volts, 5, f32(0.35), 1, MAX_NOTES))
        elif self.layer == 3:
            if k == 0:
                self.set_value(now_us, "groove", None, pot_value(volts, 5, f32(20), 0, 200))
            elif k == 1:
                self.set_value(now_us, "swing", None, pot_value(volts, 5, f32(7.5), 0, 75))
        elif k == 0:
            self.set_value(now_us, "chaos", None, pot_value(volts, 5, f32(10), 0, 100))
        elif k == 1:
            if perc:
                self.set_value(now_us, "density", 4, pot_value(volts, 0, f32(20), -100, 100))
        elif k == 2:
            self.set_value(now_us, "length", None, pot_value(volts, 5, f32(ticks) * f32(0.1), 1, ticks))
            self.length = self.settings.length
        elif volts < f32(-3):
            self.set_clock(now_us, pot_value(volts, 4.75, f32(2), 0, 3), self.settings.bpm)
        else:
            self.set_clock(now_us, 4, 40 + pot_value(volts, 3, f32(25), 0, 200))

    def set_layer(self, now_us: int, layer: int) -> None:
        self.layer, self.layer_used, self.turned, self.held = layer, False, set(), list(self.knobs)
        self.set_led(now_us, 1, layer != 0)

    def knob_volts(self, k: int) -> np.float32:
        return self.held[k] if self.layer else self.knobs[k]

    # ---- the main loop ----

    def sequence(self, latent: np.ndarray, threshold: np.float32) -> list[list[tuple[int, float]]]:
        meta = self.model.meta
        probabilities = decode_layers(self.model.layers, latent[None, :])[0].reshape(meta.ticks, meta.rows)
        limits, max_notes = [], PERC_MAX_NOTES
        if meta.kind == "perc":
            for group, size in enumerate(meta.group_sizes):
                offset = self.model_offsets[group]
                if group < 5:
                    offset = f32(offset + density_offset(self.settings.density[group]))
                limits += [f32(threshold + offset)] * size
        else:
            threshold = f32(threshold + density_offset(self.settings.note_density))
            limits, max_notes = [threshold] * meta.rows, self.settings.max_notes
        steps = []
        for tick_p in probabilities:
            # percussion rows past the last group have no limit: they never play
            rows = list(zip(tick_p, limits, strict=False))
            above = [(float(p), r) for r, (p, limit) in enumerate(rows) if p >= limit]
            self.margins.extend(abs(float(p) - float(limit)) for p, limit in rows)
            ranked = sorted(above, key=lambda item: (-item[0], item[1]))
            if len(ranked) > max_notes:
                self.margins.append(ranked[max_notes - 1][0] - ranked[max_notes][0])
            steps.append(sorted((r, p) for p, r in ranked[:max_notes]))
        return steps

    def chaos_draw(self) -> np.float32:
        x = self.rng
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.rng = x
        return f32(x >> 8) * f32(2 / 16777216) - f32(1)

    def infer(self, now_us: int) -> None:
        scale = f32(self.model.meta.latent_scale)
        amount = f32(self.settings.chaos) * f32(0.01) * scale
        latent = []
        for k in range(3):
            z = latent_from(self.knob_volts(k), self.cvs[k], self.model.meta.latent_scale)
            if self.settings.chaos > 0:
                z = clip(z + amount * self.chaos_draw(), -scale, scale)
            latent.append(z)
        threshold = threshold_from(self.centre, self.knob_volts(3), self.cvs[3])
        self.back = self.sequence(np.array(latent, np.float32), threshold)
        zs = " ".join(str(milli(z)) for z in latent)
        self.emit(now_us, f"infer latent {zs} threshold {milli(threshold)}")

    def midi_note(self, row: int) -> int:
        meta = self.model.meta
        return min(meta.base_note + row, 127) if meta.kind == "note" else meta.row_notes[row]

    def poll(self, now_us: int) -> None:
        now_ms = now_us // 1000
        if (
            self.button_down
            and not self.button_held
            and not self.layer_used
            and now_ms - self.button_since >= HOLD_MS
        ):
            self.button_held = True
            self.manual = not self.manual
            self.pending = self.pending or not self.manual
            self.set_led(now_us, 2, self.manual)
        if self.layer:
            for k in range(4):
                moved = f32(self.knobs[k] - self.held[k])
                if moved > f32(CATCH_VOLTS) or moved < -f32(CATCH_VOLTS):
                    self.turned.add(k)
                if k in self.turned:
                    self.layer_used = True
                    self.turn(now_us, k, self.knobs[k])
        if self.dirty and now_ms - self.changed_ms >= SAVE_DELAY_MS:
            self.dirty, self.saved_now = False, self.settings.frozen(self.name)
        if self.played is not None:
            tick, step = self.played
            self.played = None
            self.emit(now_us, f"tick {tick}")
            channel = 10 if self.model.meta.kind == "perc" else 1
            for note in self.midi_on:
                self.emit(now_us, f"midi {channel} {note} 0")
            self.midi_on = [self.midi_note(row) for row, _ in step if self.midi_note(row) <= 127]
            for note in self.midi_on:
                self.emit(now_us, f"midi {channel} {note} 100")
        if self.pending:
            self.pending = False
            self.infer(now_us)

    def play(self, now_us: int, step: list[tuple[int, float]]) -> None:
        meta = self.model.meta
        if meta.kind == "perc":
            best: dict[int, tuple[float, float]] = {}
            starts = np.cumsum((0, *meta.group_sizes))
            for row, p in step:
                group = int(np.searchsorted(starts, row, side="right")) - 1
                size = meta.group_sizes[group]
                accent = f32(row - starts[group]) / f32(size - 1) if size > 1 else f32(0)
                if group not in best or p > best[group][0]:
                    best[group] = (p, accent)
            # each group's accent (hits-only: the row's position in its group, 0-3 V), then its trigger
            for group in sorted(best):
                if group in PERC_ACCENT_JACKS:
                    self.emit(now_us, f"cv {PERC_ACCENT_JACKS[group]} {milli(best[group][1] * f32(3))}")
                self.emit(now_us, f"trig {PERC_TRIGGER_JACKS[group]}")
        else:
            for voice, (row, _) in enumerate(step):
                volts = f32(meta.base_note + row - 60) / f32(12)
                self.emit(now_us, f"cv {NOTE_PITCH_JACKS[voice]} {milli(volts)}")
                self.emit(now_us, f"trig {NOTE_TRIGGER_JACKS[voice]}")

    def event(self, now_us: int, name: str, args: list[str]) -> None:
        now_ms = now_us // 1000
        if name in ("knob", "cv"):
            microvolts = int(Decimal(args[1]) * 1_000_000)
            (self.knobs if name == "knob" else self.cvs)[int(args[0])] = f32(microvolts) / f32(1e6)
        elif name == "clock" and args == ["1"]:
            self.pulse(now_us)
        elif name == "reset" and args == ["1"]:
            self.reset(now_us)
        elif name == "button" and args == ["1", "1"]:
            self.reset(now_us)
            self.set_layer(now_us, 3)
        elif name == "button" and args == ["1", "0"] and self.layer == 3:
            self.set_layer(now_us, 0)
        elif name == "button" and args == ["0", "1"]:
            self.set_layer(now_us, 1)
        elif name == "button" and args == ["0", "0"] and self.layer == 1:
            if not self.layer_used:
                self.paused = True
                self.set_led(now_us, 0, True)
            self.set_layer(now_us, 0)
        elif name == "trigger" and args == ["1"] and self.manual:
            self.pending = True
        elif name == "button" and args == ["2", "1"]:
            self.button_down, self.button_since, self.button_held = True, now_ms, False
            if self.settings.clock >= 4:
                since = now_ms - self.last_tap_ms
                if self.tapped and TAP_MS[0] <= since <= TAP_MS[1]:
                    self.set_clock(now_us, 4, (60000 + since // 2) // since)
                self.tapped, self.last_tap_ms = True, now_ms
            self.set_layer(now_us, 2)
        elif name == "button" and args == ["2", "0"] and self.button_down:
            self.button_down = False
            if not self.button_held and not self.layer_used and self.manual:
                self.pending = True
            if self.layer == 2:
                self.set_layer(now_us, 0)
        elif name == "power":
            if self.saved_now is not None:
                self.saved = self.saved_now
            self.power_on(now_us)

    def run_until(self, now_us: int, end_us: int) -> int:
        self.poll(now_us)
        while self.timer_wanted() and self.timer_due < end_us:
            now_us = max(now_us, self.timer_due)
            self.timer(now_us)
            self.poll(now_us)
        return end_us

    def run(self, script: str) -> list[str]:
        self.saved_now: ModuleSettings | None = None
        self.power_on(0)
        now_us = 0
        for line in script.splitlines():
            fields = line.split("#")[0].split()
            if not fields:
                continue
            time_us = int(Decimal(fields[0]) * 1000)
            if time_us > now_us:
                now_us = self.run_until(now_us, time_us)
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


# ---- the panel's performance controls: both builds against the Python model ----

STEP_MS = 125  # 16 steps per bar at 120 BPM (clock_script)
START_MS = 10  # clock_script's first step
GM_ROW_NOTES = (36, 38, 41, 43, 45, 47, 48, 50, 42, 46, 49, 57)
CALIBRATED_META = XenMetadata(
    "perc",
    12,
    16,
    3,
    (1, 1, 6, 2, 2),
    threshold=0.12,
    group_thresholds=(0.1, 0.2, 0.15, 0.08, 0.12),
    row_notes=GM_ROW_NOTES,
)
V1_META = XenMetadata("perc", 12, 16, 3, (1, 1, 6, 2, 2), extension_version=1)


@pytest.fixture(scope="session")
def calibrated_model() -> DecoderFile:
    """The percussion decoder with its own thresholds and General MIDI row notes (metadata version 2)."""
    from rackvae.export.tflite import tflite_bytes

    layers = sparse_layers((3, 12, 48, 192), seed=3)
    return DecoderFile(CALIBRATED_META, layers, tflite_bytes(layers, CALIBRATED_META, "float32"))


def step_ms(step: int) -> Decimal:
    return Decimal(START_MS + STEP_MS * step)


def layer_turn(at_ms: Decimal, button: int, knob: int, volts: float, back_volts: float = 0.0) -> list[str]:
    """Hold a shift button, turn a pot, release the button, and put the pot back where it was."""
    return [
        f"{at_ms} button {button} 1",
        f"{at_ms + 1} knob {knob} {volts:.6f}",
        f"{at_ms + 2} button {button} 0",
        f"{at_ms + 3} knob {knob} {back_volts:.6f}",
    ]


def merged(*parts: str | list[str]) -> str:
    """Script lines of several parts in time order (equal times keep their order)."""
    lines = [line for part in parts for line in (part.splitlines() if isinstance(part, str) else part)]
    return "\n".join(sorted(lines, key=lambda line: Decimal(line.split()[0]))) + "\n"


@dataclass
class Played:
    events: list
    settings: dict[str, Path]


def play_on_both(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    model: DecoderFile,
    script: str,
    saved: bytes | None = None,
    check_model: bool = True,
) -> Played:
    """Replays script on the desktop and QEMU builds with model on the card (and the settings blob
    saved in the EEPROM); asserts identical logs equal to the Python model's; returns the events."""
    path = f"models/perc/{model.meta.kind}.tflite" if model.meta.kind == "perc" else "models/note/n.tflite"
    card = card_with(tmp_path, {path: model.tflite})
    logs, settings = [], {}
    for target in ("host", "qemu"):
        settings[target] = tmp_path / f"{target}-settings.bin"
        if saved is not None:
            settings[target].write_bytes(saved)
        logs.append(run_module(module_build(request, target), script, target, card, settings[target]))
    assert logs[0] == logs[1]
    if check_model:
        restored = ModuleSettings.from_bytes(saved) if saved is not None else None
        reference = ModuleModel(model, "/" + path, restored)
        expected = reference.run(script)
        assert min(reference.margins) > DECISION_MARGIN, "the script sits on a decision boundary"
        assert comparable(logs[0]) == expected
    return Played(parse_log(logs[0]), settings)


def lines_of(events: list, what: str, since_us: int = 0) -> list[str]:
    return [
        f"{e.time_us} {e.what} {' '.join(e.args)}" for e in events if e.what == what and e.time_us >= since_us
    ]


def test_a_group_at_lowest_density_plays_nothing_and_the_others_play_on(
    request: pytest.FixtureRequest, host_sim: Path, calibrated_model: DecoderFile, tmp_path: Path
) -> None:
    # The threshold 0.05 above the model's: at most 8 rows pass per tick (the core's cap), which
    # would otherwise couple the groups.
    base = clock_script(4, 16, 120, threshold_volts=1.0)
    # Bar 1: hold the density button, turn pot 2 (toms, group 2 -> trigger jack 1) fully down.
    muted = merged(base, layer_turn(step_ms(20), 0, 2, -5.0))
    events = play_on_both(request, tmp_path, calibrated_model, muted).events
    assert lines_of(events, "set") == [f"{step_ms(20) * 1000 + 1000} set density 2 -100"]
    assert [e.args for e in events if e.what == "led" and e.args[0] == "1" and e.time_us > 0] == [
        ("1", "1"),
        ("1", "0"),
    ]
    card = card_with(tmp_path / "baseline", {"models/perc/perc.tflite": calibrated_model.tflite})
    baseline = parse_log(run_module(host_sim, base, "host", card))
    # Bar 2 was computed (after bar 1's first step) before the turn; from bar 3 on the toms are silent
    # and nothing else changed.
    bar3 = int(step_ms(48) * 1000)
    toms = lambda ev: [line for line in lines_of(ev, "trig", bar3) if line.endswith(" 1")]  # noqa: E731
    assert toms(baseline) and not toms(events)

    def others(events: list) -> list[tuple[int, str, tuple[str, ...]]]:
        """What bar 3 on played except the toms' trigger (jack 1) and accent (jack 5)."""
        toms = (("trig", "1"), ("cv", "5"))
        played = [e for e in events if e.time_us >= bar3 and e.what in ("trig", "cv", "tick")]
        return [(e.time_us, e.what, e.args) for e in played if (e.what, e.args[0]) not in toms]

    assert others(events) == others(baseline) and len(others(events)) > 50


def test_a_note_model_takes_a_density_and_a_max_notes_setting(
    request: pytest.FixtureRequest, note_model: DecoderFile, tmp_path: Path
) -> None:
    # Density layer: pot 1 to 2 notes per tick in bar 0, pot 0 to -60 % density (+0.15) in bar 1; a
    # turn during bar b plays from bar b + 2 (bar b + 1 was computed at bar b's first step).
    script = merged(
        clock_script(4, 16, 120, threshold_volts=-4.0),
        layer_turn(step_ms(2) + 30, 0, 1, 0.5),
        layer_turn(step_ms(18) + 30, 0, 0, -3.0),
    )
    events = play_on_both(request, tmp_path, note_model, script).events
    assert [line.split(" ", 1)[1] for line in lines_of(events, "set")] == [
        "set max-notes 2",
        "set density -60",
    ]
    gates = {}
    for e in events:
        if e.what == "trig":
            gates.setdefault((e.time_us - START_MS * 1000) // (16 * STEP_MS * 1000), []).append(e.args[0])
    assert "2" in gates[0] + gates[1] and "2" not in gates[2] + gates.get(3, [])  # bar 2 on: 2 voices
    assert len(gates.get(3, [])) < len(gates[2])  # bar 3: sparser


def bar_patterns(events: list) -> list[list[tuple[str, tuple[str, ...]]]]:
    """What each bar played (trig and cv lines by bar, without times)."""
    bars: dict[int, list] = {}
    for e in events:
        if e.what in ("trig", "cv") and e.time_us >= START_MS * 1000:
            bars.setdefault((e.time_us - START_MS * 1000) // (16 * STEP_MS * 1000), []).append(
                (e.what, e.args)
            )
    return [bars.get(b, []) for b in range(max(bars) + 1)]


def test_chaos_zero_repeats_exactly(
    request: pytest.FixtureRequest, perc_model: DecoderFile, tmp_path: Path
) -> None:
    script = merged(["0 knob 0 1.5", "0 knob 1 -2.0"], clock_script(3, 16, 120, threshold_volts=-4.0))
    events = play_on_both(request, tmp_path, perc_model, script, ModuleSettings(chaos=0).to_bytes()).events
    patterns = bar_patterns(events)
    assert len(patterns) == 3 and patterns[0] and patterns[0] == patterns[1] == patterns[2]
    assert len({line.split(" ", 1)[1] for line in lines_of(events, "infer")}) == 1


def test_chaos_is_a_seeded_sequence_that_a_reset_restarts(
    request: pytest.FixtureRequest, host_sim: Path, perc_model: DecoderFile, tmp_path: Path
) -> None:
    bars = 6
    script = clock_script(bars, 16, 120, threshold_volts=-4.0)
    # Chaos 60 % on the play layer's pot 0 (1 V); a reset at the start of bar 3.
    script = merged(
        script, layer_turn(Decimal(2), 2, 0, 1.0), [f"{step_ms(48) - 2} reset 1", f"{step_ms(48)} reset 0"]
    )
    played = play_on_both(request, tmp_path, perc_model, script)
    assert lines_of(played.events, "set") == ["3000 set chaos 60"]
    latents = [tuple(int(z) for z in e.args[1:4]) for e in played.events if e.what == "infer"]
    # The first inference (power-on) had chaos 0; each bar draws new jitter, clamped to the knob
    # range; the reset before bar 3 restarts the sequence.
    assert len(latents) == bars + 1 and len(set(latents[1:4])) == 3 and latents[0] == (0, 0, 0)
    assert all(abs(z) <= 3000 for latent in latents for z in latent)
    assert latents[4:7] == latents[1:4]
    card = card_with(tmp_path / "again", {"models/perc/perc.tflite": perc_model.tflite})
    again = run_module(host_sim, script, "host", card)
    assert parse_log(again) == played.events  # the same performance again


def pulses(steps: int, per_step: int, first_step: int = 0) -> list[str]:
    """A clock of per_step pulses per step (5 ms gates, at most half the pulse period)."""
    lines = []
    for step in range(first_step, first_step + steps):
        for pulse in range(per_step):
            at = step_ms(step) + Decimal(STEP_MS * pulse) / per_step
            at = at.quantize(Decimal("0.001"))
            lines += [f"{at} clock 1", f"{at + Decimal('2.5')} clock 0"]
    return lines


def step_lines(events: list) -> list[tuple[int, str, tuple[str, ...]]]:
    return [(e.time_us, e.what, e.args) for e in events if e.what in ("tick", "trig", "cv", "midi")]


@pytest.mark.parametrize("ppqn", [24, 4])
def test_a_ppqn_clock_plays_the_steps_of_a_one_per_step_clock(
    ppqn: int, request: pytest.FixtureRequest, host_sim: Path, perc_model: DecoderFile, tmp_path: Path
) -> None:
    setup = ["0 knob 3 -4.0", "0 knob 0 2.5", "1 reset 1", "6 reset 0"]
    one_per_step = merged(setup, pulses(32, 1))
    card = card_with(tmp_path / "steps", {"models/perc/perc.tflite": perc_model.tflite})
    expected = step_lines(parse_log(run_module(host_sim, one_per_step, "host", card)))
    script = merged(setup, pulses(32, ppqn // 4))
    played = play_on_both(request, tmp_path, perc_model, script, ModuleSettings(ppqn=ppqn).to_bytes())
    assert step_lines(played.events) == expected and sum(what == "tick" for _, what, _ in expected) == 32


@pytest.mark.parametrize("ppqn", [2, 1])
def test_a_slow_clock_is_multiplied_to_steps(
    ppqn: int, request: pytest.FixtureRequest, perc_model: DecoderFile, tmp_path: Path
) -> None:
    quarter = 4 * STEP_MS
    lines = ["0 knob 3 -4.0"]
    for pulse in range(8 * ppqn):
        at = START_MS + pulse * quarter // ppqn
        lines += [f"{at} clock 1", f"{at + 5} clock 0"]
    script = merged(lines, [f"{START_MS + 8 * quarter} knob 3 -4.0"])
    played = play_on_both(request, tmp_path, perc_model, script, ModuleSettings(ppqn=ppqn).to_bytes())
    ticks = [e.time_us for e in played.events if e.what == "tick"]
    # The first pulse plays one step; from the second on, each pulse plays 4 / ppqn evenly spaced.
    assert len(ticks) == 1 + (8 * ppqn - 1) * 4 // ppqn
    assert set(np.diff(ticks[1:])) == {STEP_MS * 1000}


@pytest.mark.parametrize("bpm", [120, 90])
def test_the_internal_clock_steps_at_its_tempo(
    bpm: int, request: pytest.FixtureRequest, perc_model: DecoderFile, tmp_path: Path
) -> None:
    # External clock edges are ignored while the internal clock runs.
    script = merged(["0 knob 3 -4.0", "700 clock 1", "705 clock 0", "4000 knob 3 -4.0"])
    played = play_on_both(
        request, tmp_path, perc_model, script, ModuleSettings(ppqn=None, bpm=bpm).to_bytes()
    )
    ticks = [e.time_us for e in played.events if e.what == "tick"]
    period = 15_000_000 // bpm
    assert ticks == [k * period for k in range(len(ticks))] and len(ticks) == -(-4_000_000 // period)
    assert [int(e.args[0]) for e in played.events if e.what == "tick"][:18] == [*range(16), 0, 1]


def test_tap_tempo_sets_the_internal_clock(
    request: pytest.FixtureRequest, perc_model: DecoderFile, tmp_path: Path
) -> None:
    taps = [f"{at} button 2 {level}" for at in (1000, 1600) for level in (1, 0)]
    taps = [
        f"{Decimal(line.split()[0]) + (20 if line.endswith(' 0') else 0)} {line.split(' ', 1)[1]}"
        for line in taps
    ]
    script = merged(["0 knob 3 -4.0", "4000 knob 3 -4.0"], taps)
    played = play_on_both(request, tmp_path, perc_model, script, ModuleSettings(ppqn=None).to_bytes())
    assert lines_of(played.events, "set") == ["1600000 set bpm 100"]
    ticks = [e.time_us for e in played.events if e.what == "tick"]
    later = [t for t in ticks if t > 1_625_000]
    assert set(np.diff(later)) == {150_000} and ticks[:5] == [0, 125_000, 250_000, 375_000, 500_000]


def test_pattern_length_wraps_the_steps(
    request: pytest.FixtureRequest, perc_model: DecoderFile, tmp_path: Path
) -> None:
    # Play layer pot 2: length 5 of 16 steps (floor((-2 + 5) * 1.6 + 0.5)).
    script = merged(clock_script(3, 16, 120, threshold_volts=-4.0), layer_turn(step_ms(7) + 30, 2, 2, -2.0))
    played = play_on_both(request, tmp_path, perc_model, script)
    assert lines_of(played.events, "set") == [f"{(step_ms(7) + 31) * 1000} set length 5"]
    ticks = [int(e.args[0]) for e in played.events if e.what == "tick"]
    assert ticks[:8] == list(range(8)) and ticks[8:23] == [0, 1, 2, 3, 4] * 3


def test_settings_are_saved_after_a_pause_and_restored_at_power_on(
    request: pytest.FixtureRequest, perc_model: DecoderFile, tmp_path: Path
) -> None:
    bar = clock_script(1, 16, 120, threshold_volts=-4.0)
    # Chaos, length and a 24-ppqn clock, saved 2 s after the last turn; a change 0.5 s before the
    # power cut is lost (not saved yet).
    turns = [*layer_turn(Decimal(100), 2, 0, -1.0), *layer_turn(Decimal(110), 2, 2, -0.2)]
    turns += layer_turn(Decimal(120), 0, 1, 2.5)
    after = [f"{t} knob 3 -4.0" for t in (3000, 3500)] + layer_turn(Decimal(4000), 2, 3, -3.25)
    script = merged(bar, turns, after, ["4500 power"], shifted(bar, Decimal(4600)))
    played = play_on_both(request, tmp_path, perc_model, script)
    sets = [line.split(" ", 1)[1] for line in lines_of(played.events, "set")]
    assert sets == ["set chaos 40", "set length 8", "set density 1 50", "set ppqn 24"]
    assert [e.what + " " + e.args[0] for e in played.events if e.what == "settings"] == [
        "settings default",
        "settings restored",
    ]
    expected = ModuleSettings("/models/perc/perc.tflite", (0, 50, 0, 0, 0), chaos=40, length=8)
    for target in ("host", "qemu"):
        assert ModuleSettings.from_bytes(played.settings[target].read_bytes()) == expected
    # A new power-on restores them too.
    again = play_on_both(request, tmp_path / "again", perc_model, bar, expected.to_bytes())
    assert [e.args[0] for e in again.events if e.what == "settings"] == ["restored"]


@pytest.mark.parametrize("blob", ["random", "bad value", "old layout", "empty"])
def test_a_corrupt_settings_blob_is_ignored(
    blob: str, request: pytest.FixtureRequest, perc_model: DecoderFile, tmp_path: Path
) -> None:
    good = bytearray(ModuleSettings(chaos=30).to_bytes())
    if blob == "random":
        data = np.random.default_rng(5).integers(0, 256, len(good), dtype=np.uint8).tobytes()
    elif blob == "bad value":
        good[4 + 64 + 5 + 1 + 2] = 101  # chaos above 100
        data = bytes(good)
    elif blob == "old layout":
        data = b"RVS1" + bytes(64)
    else:
        data = b""
    assert ModuleSettings.from_bytes(data) is None
    played = play_on_both(request, tmp_path, perc_model, clock_script(2, 16, 120, threshold_volts=-4.0), data)
    assert [e.args[0] for e in played.events if e.what == "settings"] == ["default"]
    assert sum(e.what == "tick" for e in played.events) == 32


def test_a_model_without_the_threshold_extension_plays_at_the_default_threshold(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from rackvae.export.tflite import tflite_bytes

    layers = sparse_layers((3, 12, 48, 192), seed=3)
    model = DecoderFile(V1_META, layers, tflite_bytes(layers, V1_META, "float32"))
    script = clock_script(2, 16, 120, threshold_volts=-4.0) + "4100 screen\n"
    played = play_on_both(request, tmp_path, model, script)
    assert next(e.args[-1] for e in played.events if e.what == "infer") == str(milli(f32(0.3) - f32(0.2)))
    labels = [e.args[2] for e in played.events if e.what == "screen" and e.args[0] == "row"]
    assert labels == [f"R{row}" for row in reversed(range(12))]


def test_the_screen_names_the_rows_and_shows_latent_and_layer(
    request: pytest.FixtureRequest, calibrated_model: DecoderFile, note_model: DecoderFile, tmp_path: Path
) -> None:
    script = clock_script(1, 16, 120, [np.array([1.0]), np.array([-1.5])], threshold_volts=-1.0)
    script = merged(script, ["2100 button 0 1", "2101 screen", "2102 button 0 0"])
    events = play_on_both(request, tmp_path, calibrated_model, script).events
    rows = [e.args for e in events if e.what == "screen" and e.args[0] == "row"]
    assert [args[2] for args in rows] == [
        "CR2",
        "CR1",
        "OHH",
        "CHH",
        "HTM",
        "HMT",
        "LMT",
        "LTM",
        "HFT",
        "LFT",
        "SD1",
        "BD1",
    ]
    status = [e.args[1:] for e in events if e.what == "screen" and e.args[0] == "status"]
    assert status == [("z", "0.60", "-0.90", "0.00", "DENS")]
    notes = play_on_both(request, tmp_path / "notes", note_model, "0 knob 3 0\n5 clock 1\n10 screen\n").events
    labels = [e.args[2] for e in notes if e.what == "screen" and e.args[0] == "row"]
    assert labels[-1] == "C3" and labels[-2] == "C#3" and labels[0] == "B4"


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
    # USB MIDI: every note ends at the next step, across the model change too (no hung notes).
    sounding: dict[tuple[str, str], int] = {}
    last_tick = 0
    for event in events:
        if event.what == "tick":
            assert all(on == last_tick for on in sounding.values()), (event, sounding)
            last_tick = event.time_us
        elif event.what == "midi":
            key = (event.args[0], event.args[1])
            if event.args[2] == "0":
                del sounding[key]
            else:
                sounding[key] = last_tick


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
    bar = clock_script(1, 16, 120, threshold_volts=-4.0)  # the threshold 0.1 below the centre
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


def midi_ons(path: Path) -> list[tuple[int, int, int, int]]:
    """(time in MIDI ticks, channel, note, velocity) of each note-on in a MIDI file."""
    import mido

    now, ons = 0, []
    for message in mido.merge_tracks(mido.MidiFile(path).tracks):
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            ons.append((now, message.channel, message.note, message.velocity))
    return ons


def midi_ticks(time_us: int) -> int:
    """A log time in the MIDI file's ticks (480 per 0.5 s beat, rackvae.simulate)."""
    return round(time_us * 480 / 500_000)


def test_simulate_command_writes_log_midi_and_screen(perc_model: DecoderFile, tmp_path: Path) -> None:
    from rackvae.cli import main
    from rackvae.simulate import DRUM_CHANNEL

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
    ons = midi_ons(out["module.mid"])
    # The MIDI file is the module's USB MIDI: each note-on at its line's time with its velocity; a
    # hits-only model plays every note at 100. This model's rows play notes 0-11 (no row notes in its
    # metadata), one or more per trigger.
    logged = [
        (e.time_us, int(e.args[1]), int(e.args[2])) for e in events if e.what == "midi" and e.args[2] != "0"
    ]
    assert [(t, n, v) for t, _, n, v in ons] == [(midi_ticks(t), n, v) for t, n, v in logged]
    assert {channel for _, channel, _, _ in ons} == {DRUM_CHANNEL} and {v for *_, v in ons} == {100}
    assert len(ons) >= len(triggers) > 0 and {t for t, _, _ in logged} <= {e.time_us for e in triggers}
    assert out["module.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_command_plays_note_models_as_pitched_notes(note_model: DecoderFile, tmp_path: Path) -> None:
    import mido

    from rackvae.cli import main

    model = tmp_path / "keys.tflite"
    model.write_bytes(note_model.tflite)
    midi_path, log_path = tmp_path / "keys.mid", tmp_path / "keys.log"
    argv = [
        "simulate",
        str(model),
        "--sweep",
        "2",
        "--threshold-volts",
        "-4",
        "--midi",
        str(midi_path),
        "--log",
        str(log_path),
    ]
    assert main(argv) == 0
    ons = [m for m in mido.merge_tracks(mido.MidiFile(midi_path).tracks) if m.type == "note_on"]
    # The model's rows are MIDI notes base_note .. base_note + rows - 1.
    assert ons and all(NOTE_META.base_note <= m.note < NOTE_META.base_note + NOTE_META.rows for m in ons)
    assert len({m.note for m in ons}) > 3


def test_simulate_command_sets_panel_settings(perc_model: DecoderFile, tmp_path: Path) -> None:
    from rackvae.cli import main

    model = tmp_path / "drums.tflite"
    model.write_bytes(perc_model.tflite)
    log = tmp_path / "module.log"
    argv = ["simulate", str(model), "--sweep", "2", "--threshold-volts", "-4", "--log", str(log)]
    assert main([*argv, "--set", "bpm=90", "--set", "density2=-100"]) == 0
    events = parse_log(log.read_text())
    assert [e.args[0] for e in events if e.what == "settings"] == ["restored"]
    ticks = [e.time_us for e in events if e.what == "tick"]
    # The internal clock at 90 BPM (a step every 166,666 us) plays until the script's end, restarted by
    # the script's reset at 1 ms; the toms (jack 1) stay silent.
    assert ticks[:4] == [0, 1000, 167_666, 334_332] and len(ticks) > 16
    trigs = {e.args[0] for e in events if e.what == "trig"}
    assert "1" not in trigs and len(trigs) >= 2
    for option, reason in (("chaos=101", "chaos is 0..100"), ("tempo=3", "unknown setting")):
        with pytest.raises(SystemExit, match=reason):
            main([*argv, "--set", option])


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
    # 16 clock steps were measured after the inference, then the step timer's check (an external clock:
    # no step due, a few instructions).
    assert len(marks) == 8 + 2 * 16 + 2 and values["timer_wanted"] == 0 and marks[41][0] < 40


def test_the_m7_meets_the_issues_instruction_and_code_size_goals(build_root: Path) -> None:
    """Exact counts, not timings: a demo-size decode (3-12-48-192) costs <= 2.0 instructions per
    multiply-accumulate in float32 and <= 1.0 in int8 on the emulated Cortex-M7, and core + app code
    linked into the module image grows no further than OVER_16KB_BYTES past 16 KB (bench/bench_mcu.py
    prints the whole table)."""
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
    # Issue 17's panel (clock divider/multiplier, internal clock and tap tempo, shift layers, saved
    # settings, chaos, the model-centred threshold and group densities, USB MIDI out, row labels and the
    # status line) and issue 16's groove (velocity and offset channels in the core; timed triggers, the
    # groove amount and swing, velocity accents and MIDI in the app) hold core + app at 16,384 +
    # OVER_16KB_BYTES (core 12,373 + app 6,768 = 19,141 B at the commit that set it), held exactly.
    assert 8_000 < parts["core"] + parts["app"] <= 16_384 + OVER_16KB_BYTES, parts


# ---- groove: velocity and timing offsets, the groove amount and swing ----

GROOVE_META = XenMetadata("perc", 12, 16, 3, (1, 1, 6, 2, 2), row_notes=GM_ROW_NOTES, channel_ids=(0, 1, 2))
PERIOD_US = STEP_MS * 1000  # clock_script's 120 BPM, one pulse per step
KICK, SNARE, HAT = 0, 1, 8  # rows: groups 0 (jack 0), 1 (jack 4), 3 (jack 2, accent on jack 6)
KICK_TICKS, SNARE_TICKS = (0, 4, 8, 12), (0, 2, 6, 10, 14)
KICK_OFFSET, SNARE_OFFSET = 0.2, -0.25  # steps: the kick late, the snare early
KICK_VELOCITY, SNARE_VELOCITY = 100, 40


def hat_velocity(tick: int) -> int:
    return 20 + 6 * tick


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


@pytest.fixture(scope="session")
def groove_model() -> DecoderFile:
    """A groove decoder (hits, velocity, offset) that plays the same bar whatever the latent: kicks
    late, snares early, a closed hi-hat on every step on time, louder step by step."""
    from rackvae.export.tflite import tflite_bytes

    ticks, rows = GROOVE_META.ticks, GROOVE_META.rows
    bias = np.zeros((3, ticks, rows))
    bias[0] = -12.0  # silent but for the hits below
    for row, hit_ticks, velocity, offset in (
        (KICK, KICK_TICKS, KICK_VELOCITY, KICK_OFFSET),
        (SNARE, SNARE_TICKS, SNARE_VELOCITY, SNARE_OFFSET),
    ):
        for tick in hit_ticks:
            bias[:, tick, row] = (12.0, logit(velocity / 127), logit(offset + 0.5))
    for tick in range(ticks):
        bias[:, tick, HAT] = (12.0, logit(hat_velocity(tick) / 127), 0.0)
    layers = random_decoder_layers((3, 12, 48, 3 * ticks * rows), seed=5)
    kernel, _ = layers[-1]
    layers[-1] = (np.zeros_like(kernel), bias.reshape(-1).astype(np.float32))
    return DecoderFile(GROOVE_META, layers, tflite_bytes(layers, GROOVE_META, "float32"))


def groove_script(bars: int) -> str:
    """clock_script's bars at 120 BPM, and 200 ms after its last step, time for what was late to fire."""
    return merged(clock_script(bars, 16, 120), [f"{START_MS + bars * 16 * STEP_MS + 200} knob 3 0"])


def times_of(events: list, what: str, first: str) -> list[int]:
    return [e.time_us for e in events if e.what == what and e.args[0] == first]


def edges_of(script: str) -> list[int]:
    return [int(Decimal(line.split()[0]) * 1000) for line in script.splitlines() if line.endswith("clock 1")]


def assert_near(actual: list[int], expected: list[float]) -> None:
    """Fire times within one tick of the virtual module's microsecond clock."""
    assert len(actual) == len(expected) and all(
        abs(a - e) <= 1 for a, e in zip(actual, expected, strict=True)
    ), (
        actual,
        expected,
    )


def test_groove_notes_fire_at_their_offsets_and_early_ones_ahead_of_the_next_edge(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    # Four bars, with a reset 60 ms after the edge of step 37 (tick 5): the next edge plays step 0.
    script = groove_script(4)
    edges = edges_of(script)
    reset_ms = Decimal(edges[37] + 60_000) / 1000
    script = merged(script, [f"{reset_ms} reset 1", f"{reset_ms + 5} reset 0"])
    events = play_on_both(request, tmp_path, groove_model, script, check_model=False).events
    ticks = [(e.time_us, int(e.args[0])) for e in events if e.what == "tick"]
    after_reset = 38
    assert [t for _, t in ticks] == [*range(16), *range(16), *range(6), *range(16), *range(10)]
    assert [t for t, _ in ticks] == edges
    played = list(zip(edges, [t for _, t in ticks], strict=True))
    # Late: the kick fires 0.2 step after its edge, once a period is known (the first edge after power-on
    # has none and plays it on the edge; a reset keeps the period).
    kicks = [
        edge + (KICK_OFFSET * PERIOD_US if k else 0) for k, (edge, t) in enumerate(played) if t in KICK_TICKS
    ]
    assert_near(times_of(events, "trig", "0"), kicks)
    # Early: the snare fires 0.25 step before the edge of its step, predicted at the edge before; on the
    # edge itself where there was no prediction: the first edge after power-on and the first after the
    # reset (the reset ends the tempo; the step after it is predicted from the interval that follows).
    # The snare the edge before the reset queued for tick 6 (at 93.75 ms) never plays; the one the last
    # edge queued for tick 10 does (the module cannot know that the clock stopped).
    expected = [
        edge + (0 if k in (0, after_reset) else SNARE_OFFSET * PERIOD_US)
        for k, (edge, t) in enumerate([*played, (edges[-1] + PERIOD_US, 10)])
        if t in SNARE_TICKS
    ]
    snares = times_of(events, "trig", "4")
    assert_near(snares, expected)
    assert (
        sum(t < edge for t, edge in zip(snares[:-1], [e for e, t in played if t in SNARE_TICKS], strict=True))
        == len(expected) - 3
        == 18
    )
    assert not [t for t in snares if edges[37] < t < edges[after_reset]]
    early = [(e.time_us, " ".join(e.args)) for e in events if e.what == "early"]
    assert early == [
        (edges[0], "notes on the edge: no tempo yet"),
        (edges[after_reset], "notes on the edge: no tempo yet"),
    ]
    # On time: the hi-hat on every edge.
    assert times_of(events, "trig", "2") == edges


def test_a_clock_stopped_and_started_again_keeps_its_period(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    """The clock stops for 2 s before step 24 (tick 8 of bar 2, a late kick) and starts again without a
    reset: the pause is no period. The kick fires 0.2 of the old period after its edge (timed by the
    pause it would have waited until the next edge), the next step is predicted again at the old
    tempo, and every kick and snare sits where it sits without the pause."""
    pause_ms, cut_ms = 2000, START_MS + 24 * STEP_MS
    lines = groove_script(2).splitlines()
    shifted = [
        f"{Decimal(time) + (pause_ms if Decimal(time) >= cut_ms else 0)} {rest}"
        for time, rest in (line.split(" ", 1) for line in lines)
    ]
    script = merged(shifted)
    edges = edges_of(script)
    assert edges[24] - edges[23] == (pause_ms + STEP_MS) * 1000
    events = play_on_both(request, tmp_path, groove_model, script, check_model=False).events
    played = list(zip(edges, [*range(16), *range(16)], strict=True))
    kicks = [
        edge + (KICK_OFFSET * PERIOD_US if k else 0) for k, (edge, t) in enumerate(played) if t in KICK_TICKS
    ]
    assert_near(times_of(events, "trig", "0"), kicks)
    # (and the next bar's first snare, which the last edge queued: the module cannot know the clock stops)
    snares = [
        edge + (SNARE_OFFSET * PERIOD_US if k else 0)
        for k, (edge, t) in enumerate([*played, (edges[-1] + PERIOD_US, 0)])
        if t in SNARE_TICKS
    ]
    assert_near(times_of(events, "trig", "4"), snares)


def test_groove_velocities_drive_the_accent_cvs_and_the_midi_notes(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    script = groove_script(2)
    events = play_on_both(request, tmp_path, groove_model, script, check_model=False).events
    # The hi-hat's accent jack (6): velocity / 127 * 5 V, set just before its trigger.
    cvs = [(e.time_us, int(e.args[1])) for e in events if e.what == "cv" and e.args[0] == "6"]
    expected = [milli(f32(hat_velocity(tick)) * (f32(5) / f32(127))) for tick in range(16)] * 2
    assert [mv for _, mv in cvs] == expected
    assert all(abs(mv - hat_velocity(k % 16) / 127 * 5000) < 1 for k, (_, mv) in enumerate(cvs))
    assert [t for t, _ in cvs] == times_of(events, "trig", "2")
    # USB MIDI: each note at its trigger's time with its velocity, ended at the next step.
    ons = [
        (e.time_us, int(e.args[1]), int(e.args[2])) for e in events if e.what == "midi" and e.args[2] != "0"
    ]
    for note, jack, velocity in ((36, "0", KICK_VELOCITY), (38, "4", SNARE_VELOCITY)):
        assert [(t, v) for t, n, v in ons if n == note] == [
            (t, velocity) for t in times_of(events, "trig", jack)
        ]
    hats = [(t, v) for t, n, v in ons if n == 42]
    assert hats == list(
        zip(times_of(events, "trig", "2"), [hat_velocity(t) for t in range(16)] * 2, strict=True)
    )
    assert all(e.args[0] == "10" for e in events if e.what == "midi")


@pytest.mark.parametrize("groove", [0, 200])
def test_the_groove_amount_straightens_or_exaggerates_the_offsets(
    groove: int, request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    script = groove_script(2)
    saved = ModuleSettings(groove=groove).to_bytes()
    events = play_on_both(request, tmp_path, groove_model, script, saved, check_model=False).events
    edges = edges_of(script)
    amount = groove / 100
    kicks = [
        edge + (KICK_OFFSET * amount * PERIOD_US if k else 0)
        for k, edge in enumerate(edges)
        if k % 16 in KICK_TICKS
    ]
    assert_near(times_of(events, "trig", "0"), kicks)
    # the snare of the step after the last edge too, when early
    snares = [
        edge + (SNARE_OFFSET * amount * PERIOD_US if k else 0)
        for k, edge in enumerate([*edges, edges[-1] + PERIOD_US] if groove else edges)
        if k % 16 in SNARE_TICKS
    ]
    assert_near(times_of(events, "trig", "4"), snares)
    if groove == 0:  # straight: every trigger on an edge, and no early note to report
        assert {e.time_us for e in events if e.what == "trig"} == set(edges)
        assert not [e for e in events if e.what == "early"]


def test_swing_delays_the_odd_steps(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    script = groove_script(2)
    saved = ModuleSettings(groove=0, swing=50).to_bytes()
    events = play_on_both(request, tmp_path, groove_model, script, saved, check_model=False).events
    edges = edges_of(script)
    # The hi-hat on every step: the odd ones half a step late (from the second edge on, with a period).
    hats = [edge + (0.5 * PERIOD_US if k % 2 and k > 0 else 0) for k, edge in enumerate(edges)]
    assert_near(times_of(events, "trig", "2"), hats)
    assert times_of(events, "trig", "0") == [edges[k] for k in range(32) if k % 16 in KICK_TICKS]


def test_groove_and_swing_are_set_on_the_groove_layer_and_kept(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    # Hold button 1 (a reset, then the groove layer): pot 0 to 2 V (groove 140 %), pot 1 to -1 V
    # (swing floor(4 * 7.5 + 0.5) = 30 %); saved 2 s after (by the main loop at 4.2 s), restored after a
    # power cycle.
    bar = groove_script(1)
    turns = ["2100 button 1 1", "2101 knob 0 2.0", "2102 knob 1 -1.0", "2103 button 1 0"]
    script = merged(
        bar,
        turns,
        ["2104 knob 0 0", "2104 knob 1 0", "4200 knob 3 0", "4500 power"],
        shifted(bar, Decimal(4600)),
    )
    played = play_on_both(request, tmp_path, groove_model, script, check_model=False)
    assert [line.split(" ", 1)[1] for line in lines_of(played.events, "set")] == [
        "set groove 140",
        "set swing 30",
    ]
    leds = [
        e.args for e in played.events if e.what == "led" and e.args[0] == "1" and 0 < e.time_us < 4_500_000
    ]
    assert leds == [("1", "1"), ("1", "0")]
    expected = ModuleSettings("/models/perc/perc.tflite", groove=140, swing=30)
    for target in ("host", "qemu"):
        assert ModuleSettings.from_bytes(played.settings[target].read_bytes()) == expected
    assert [e.args[0] for e in played.events if e.what == "settings"] == ["default", "restored"]
    # After the power cycle the kick plays 0.2 * 1.4 step late.
    edges = edges_of(shifted(bar, Decimal(4600)))
    late = [t - edges[k] for k, t in zip((4, 8, 12), times_of(played.events, "trig", "0")[-3:], strict=True)]
    assert all(abs(d - KICK_OFFSET * 1.4 * PERIOD_US) <= 1 for d in late), late


def test_groove_settings_round_trip_and_the_simulate_options(
    groove_model: DecoderFile, tmp_path: Path
) -> None:
    from rackvae.cli import main
    from rackvae.simulate import SimulateError

    settings = ModuleSettings(groove=0, swing=75)
    assert ModuleSettings.from_bytes(settings.to_bytes()) == settings
    assert ModuleSettings().with_option("groove=200").with_option("swing=20") == ModuleSettings(
        groove=200, swing=20
    )
    for option, reason in (("groove=201", "groove is 0..200"), ("swing=76", "swing is 0..75")):
        with pytest.raises(SimulateError, match=reason):
            ModuleSettings().with_option(option)
    model, midi, log = tmp_path / "feel.tflite", tmp_path / "feel.mid", tmp_path / "feel.log"
    model.write_bytes(groove_model.tflite)
    assert (
        main(
            [
                "simulate",
                str(model),
                "--sweep",
                "2",
                "--set",
                "groove=200",
                "--midi",
                str(midi),
                "--log",
                str(log),
            ]
        )
        == 0
    )
    events = parse_log(log.read_text())
    edges = [e.time_us for e in events if e.what == "tick"]
    kicks = times_of(events, "trig", "0")
    assert kicks[1] - edges[4] == pytest.approx(2 * KICK_OFFSET * 125_000, abs=1)
    ons = midi_ons(midi)
    assert [(t, v) for t, _, n, v in ons if n == 36] == [(midi_ticks(t), KICK_VELOCITY) for t in kicks]


def test_groove_on_the_internal_clock_and_after_a_tempo_change(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    # The internal clock at 120 BPM, tapped to 100 BPM at 1.6 s: its steps come from the app's timer,
    # the snare early before them; the step after the tempo change is measured anew, so the first snare
    # after it (tick 14) plays on its edge, and the log says so again.
    taps = ["1000 button 2 1", "1020 button 2 0", "1600 button 2 1", "1620 button 2 0"]
    script = merged(["0 knob 3 0", "3000 knob 3 0"], taps)
    saved = ModuleSettings(ppqn=None, bpm=120).to_bytes()
    events = play_on_both(request, tmp_path, groove_model, script, saved, check_model=False).events
    assert lines_of(events, "set") == ["1600000 set bpm 100"]
    ticks = [(e.time_us, int(e.args[0])) for e in events if e.what == "tick"]
    edges = [t for t, _ in ticks]
    assert edges == [125_000 * k for k in range(14)] + [1_625_000 + 150_000 * k for k in range(1, 10)]
    changed = 14  # the first step measured at the new tempo
    expected = [
        edge + (0 if k in (0, changed) else SNARE_OFFSET * (edge - edges[k - 1]))
        for k, (edge, tick) in enumerate(ticks)
        if tick in SNARE_TICKS
    ]
    assert_near(times_of(events, "trig", "4"), expected)
    assert [e.time_us for e in events if e.what == "early"] == [0, edges[changed]]
    # Late: the kick 0.2 step after its edge, at the period measured so far.
    kicks = [
        edge + (KICK_OFFSET * (edge - edges[k - 1]) if k else 0)
        for k, (edge, t) in enumerate(ticks)
        if t in KICK_TICKS
    ]
    assert_near(times_of(events, "trig", "0"), kicks)


# ---- groove timing under load: the fired ring, model changes, inference, one jack's order ----

GROOVE_NOTES = {"0": 36, "4": 38, "2": 42}  # trigger jack -> the GM note of kick, snare, closed hi-hat


def note_ons(events: list, note: int | None = None) -> list[tuple[int, int, int]]:
    """(time, note, velocity) of the USB MIDI note-ons, of one note or all."""
    return [
        (e.time_us, int(e.args[1]), int(e.args[2]))
        for e in events
        if e.what == "midi" and e.args[2] != "0" and note in (None, int(e.args[1]))
    ]


def groove_fired(events: list, edges: list[int], start: int, end: int) -> list[tuple[int, int, int]]:
    """(time, note, velocity) of the groove model's triggers fired in [start, end): what MIDI should play."""
    fired = []
    for e in events:
        if e.what == "trig" and start <= e.time_us < end:
            velocity = {"0": KICK_VELOCITY, "4": SNARE_VELOCITY}.get(e.args[0])
            if velocity is None:  # the hi-hat: on its edge, louder step by step
                velocity = hat_velocity(edges.index(e.time_us) % 16)
            fired.append((e.time_us, GROOVE_NOTES[e.args[0]], velocity))
    return fired


def test_a_main_loop_held_up_drops_the_midi_of_what_overflows_the_fired_ring(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    """The main loop is held up for 2 s (16 steps) from just after step 17: the jacks play on (25
    outputs fire), and when it is free the MIDI of the first 16 (the ring's size) is sent, in the order
    they fired; the other 9 play without MIDI, none twice. From then on every trigger has its note."""
    busy_from_ms, busy_ms = START_MS + 17 * STEP_MS + 3, 2000
    script = merged(groove_script(3), [f"{busy_from_ms} busy {busy_ms}"])
    edges = edges_of(script)
    events = play_on_both(request, tmp_path, groove_model, script, check_model=False).events
    busy_from, free = busy_from_ms * 1000, (busy_from_ms + busy_ms) * 1000
    held = groove_fired(events, edges, busy_from, free)
    assert len(held) == 25 and [t for t, _, _ in held] == sorted(t for t, _, _ in held)
    # nothing but the jacks while the main loop is held up
    assert {e.what for e in events if busy_from <= e.time_us < free} == {"trig", "cv"}
    assert note_ons([e for e in events if busy_from <= e.time_us <= free]) == [
        (free, note, velocity) for _, note, velocity in held[:16]
    ]
    after = groove_fired(events, edges, free + 1, 1 << 32)
    assert len(after) > 20 and note_ons([e for e in events if e.time_us > free]) == after


def test_a_model_change_drops_the_old_models_waiting_notes_and_sends_the_midi_of_what_fired(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    """The encoder selects the built-in model at the edge of step 17 (tick 1), at the same instant: the
    main loop sends the MIDI of the hi-hat that edge fired, from the groove model's sequence, and loads
    the new model on its next pass (the gate's fall, 5 ms later); the snare of tick 2, queued early at
    that edge, never fires (the new model plays from the next edge)."""
    script = merged(groove_script(2), [f"{step_ms(17)} select 1"])
    edges = edges_of(script)
    events = play_on_both(request, tmp_path, groove_model, script, check_model=False).events
    (load,) = [k for k, e in enumerate(events) if e.what == "load" and e.time_us > 0]
    assert events[load].time_us == edges[17] + 5000 and events[load].args[-1] == "built-in"
    before = [e for e in events[:load] if e.time_us == edges[17]]
    assert [e.args for e in before if e.what in ("trig", "tick")] == [("2",), ("1",)]
    assert note_ons(before) == [(edges[17], 42, hat_velocity(1))]
    assert not [e for e in events if e.what == "trig" and edges[17] < e.time_us < edges[18]]
    # every groove-model trigger before the change has its note, at its time
    assert note_ons(events[:load]) == groove_fired(events[:load], edges, 0, edges[17] + 1)


def test_an_inference_waits_for_the_early_notes_planned_from_the_sequence_it_rewrites(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    """Automatic mode: the edge of step 31 (tick 15) plans the snare of the next bar's tick 0 (early, at
    3978.75 ms) from the finished back buffer. Then, within that step, manual mode (button 2 held since
    2890 ms) and a short press ask for an inference with the snare group muted (density layer at
    2100 ms). It would rewrite that buffer while the snare waits: the inference waits for the edge of
    step 32, which plays the planned sequence (the snare with its MIDI note), and the muted sequence
    plays from step 33 (the next edge in manual mode)."""
    script = merged(
        groove_script(3),
        layer_turn(Decimal(2100), 0, 1, -5.0),
        ["2890 button 2 1", "3895 button 2 0", "3900 button 2 1", "3905 button 2 0"],
    )
    edges = edges_of(script)
    events = play_on_both(request, tmp_path, groove_model, script, check_model=False).events
    assert lines_of(events, "set") == ["2101000 set density 1 -100"]
    assert [(e.time_us, e.args) for e in events if e.what == "led" and e.args[0] == "2"][-1] == (
        3_890_000,
        ("2", "1"),
    )  # manual mode, after the edge of step 31 (3885 ms)
    snares = [
        edge + (SNARE_OFFSET * PERIOD_US if k else 0)
        for k, edge in enumerate(edges[:33])
        if k % 16 in SNARE_TICKS
    ]
    assert snares[-1] == 3_978_750
    assert_near(times_of(events, "trig", "4"), snares)
    assert note_ons(events, 38) == [(t, 38, SNARE_VELOCITY) for t in times_of(events, "trig", "4")]
    assert [e.time_us for e in events if e.what == "infer"][-2:] == [edges[16], edges[32]]


CROSSING_VELOCITY = (100, 40)  # even steps (early), odd steps (late)
CROSSING_OFFSET = (-0.2, 0.2)


@pytest.fixture(scope="session")
def crossing_model() -> DecoderFile:
    """A groove decoder with a snare on every step: the even steps early and loud, the odd ones late and
    soft. At groove 200 % and swing 50 % an odd step's note (0.9 step late) would fire after the next
    step's (0.4 step early) on the same jack."""
    from rackvae.export.tflite import tflite_bytes

    ticks, rows = GROOVE_META.ticks, GROOVE_META.rows
    bias = np.full((3, ticks, rows), -12.0)
    for tick in range(ticks):
        velocity, offset = CROSSING_VELOCITY[tick % 2], CROSSING_OFFSET[tick % 2]
        bias[:, tick, SNARE] = (12.0, logit(velocity / 127), logit(offset + 0.5))
    layers = random_decoder_layers((3, 12, 48, 3 * ticks * rows), seed=5)
    kernel, _ = layers[-1]
    layers[-1] = (np.zeros_like(kernel), bias.reshape(-1).astype(np.float32))
    return DecoderFile(GROOVE_META, layers, tflite_bytes(layers, GROOVE_META, "float32"))


def test_an_early_note_waits_for_the_late_note_of_the_step_before_on_its_jack(
    request: pytest.FixtureRequest, crossing_model: DecoderFile, tmp_path: Path
) -> None:
    """Groove 200 %, swing 50 %: an odd step's snare is due 0.9 step after its edge, the next step's
    0.4 step before the next edge, 0.5 step earlier. The jack plays them in step order: the early one
    waits and fires right after the late one, at its time; MIDI plays the soft note, ends it and plays
    the loud one, which the step after next ends."""
    script = groove_script(2)
    saved = ModuleSettings(groove=200, swing=50).to_bytes()
    events = play_on_both(request, tmp_path, crossing_model, script, saved, check_model=False).events
    edges = edges_of(script)
    late = 2 * CROSSING_OFFSET[1] + 0.5  # steps
    expected = [(edges[0], CROSSING_VELOCITY[0])]  # step 0: no tempo yet, on its edge
    for k in range(1, 32, 2):
        t = edges[k] + late * PERIOD_US
        expected += [(edges[k], 0), (t, CROSSING_VELOCITY[1]), (t, 0), (t, CROSSING_VELOCITY[0])]
    played = [(e.time_us, int(e.args[2])) for e in events if e.what == "midi" and e.args[1] == "38"]
    assert [v for _, v in played] == [v for _, v in expected]
    assert_near([t for t, _ in played], [t for t, _ in expected])
    snares = times_of(events, "trig", "4")
    assert snares == [t for t, v in played if v]  # each trigger with its note, at its time
    assert snares[1::2] == snares[2::2]  # the pairs at one time: the late note first, then the early one


def test_a_late_note_still_waiting_at_the_next_edge_fires_before_that_steps_notes(
    request: pytest.FixtureRequest, groove_model: DecoderFile, tmp_path: Path
) -> None:
    """The app's timer serviced late (every 130 ms; the board's interrupt polls it every 50 us): swing 75 %
    puts the odd steps' hi-hat 93.75 ms after its edge. Where no poll comes before the next edge, that
    edge fires it first, then its own hi-hat: the jack (and its accent CV) plays the steps in order."""
    poll_us, late_us = 130_000, 0.75 * PERIOD_US
    script = merged(["0 timer 130"], groove_script(2))
    saved = ModuleSettings(groove=0, swing=75).to_bytes()
    events = play_on_both(request, tmp_path, groove_model, script, saved, check_model=False).events
    edges = edges_of(script)
    expected = []
    for k, edge in enumerate(edges):
        poll = -(-(edge + late_us) // poll_us) * poll_us  # the first poll at or after its due time
        expected.append(edge if k % 2 == 0 else min(poll, edges[k + 1]) if k < 31 else poll)
    assert times_of(events, "trig", "2") == expected
    assert sum(t == edges[k + 1] for k, t in enumerate(expected[:-1]) if k % 2) >= 10
    cvs = [int(e.args[1]) for e in events if e.what == "cv" and e.args[0] == "6"]
    assert cvs == [milli(f32(hat_velocity(k % 16)) * (f32(5) / f32(127))) for k in range(32)]


def test_simulate_refuses_a_damaged_or_empty_tflite_in_one_line_naming_it(
    perc_model: DecoderFile, tmp_path: Path
) -> None:
    from rackvae.cli import main

    truncated, empty, log = tmp_path / "cut.tflite", tmp_path / "empty.tflite", tmp_path / "module.log"
    truncated.write_bytes(perc_model.tflite[:100])
    empty.write_bytes(b"")
    script = tmp_path / "events.txt"
    script.write_text(clock_script(1, 16, 120.0))
    for model, reason in ((truncated, "damaged TFLite flatbuffer: "), (empty, "not a TFLite model ")):
        # --sweep reads the file's metadata (its ticks) for the clock; a script plays it from the card
        for how in (["--sweep", "1"], [str(script)]):
            with pytest.raises(SystemExit) as refused:
                main(["simulate", str(model), *how, "--log", str(log)])
            message = str(refused.value.code)
            assert message.startswith(f"simulate: {model}: {reason}") and "\n" not in message
    assert not log.exists()


def test_simulate_refuses_a_model_folder_trained_again_after_its_export(
    corpora: Path, tmp_path: Path
) -> None:
    from rackvae.cli import main

    data, folder, log = tmp_path / "drums.npz", tmp_path / "drums", tmp_path / "module.log"
    session = corpora / "groove" / "drummer1" / "session1"
    assert main(["ingest", str(session), "--percussion-map", "extended", "-o", str(data)]) == 0
    train = ["train", str(data), "--name", "drums", "-o", str(tmp_path), "--epochs", "1", "-q"]
    assert main(train) == 0
    assert main(["export", str(folder), "--formats", "f32"]) == 0
    sweep = ["simulate", str(folder), "--sweep", "1", "--log", str(log)]
    assert main(sweep) == 0  # the export of the current parameters plays
    exported = (folder / "drums_dec.tflite").read_bytes()
    assert main([*train, "--seed", "7", "--overwrite"]) == 0
    assert (folder / "drums_dec.tflite").read_bytes() == exported  # training leaves the old file
    log.unlink()
    with pytest.raises(SystemExit) as refused:
        main(sweep)
    message = str(refused.value.code)
    # the retrained model's thresholds (metadata) or its outputs differ from the file's
    reason = r"its metadata differs|its outputs differ by up to [0-9.e-]+"
    assert re.fullmatch(
        f"simulate: {re.escape(str(folder / 'drums_dec.tflite'))} is not the export of "
        f"{re.escape(str(folder))}'s current parameters \\(({reason})\\), and the module plays exported "
        f"files only: run rackvae export {re.escape(str(folder))} again",
        message,
    ), message
    assert "\n" not in message and not log.exists()
    # the file named itself is a .tflite like any other: it plays, as the music commands play it
    assert main(["simulate", str(folder / "drums_dec.tflite"), "--sweep", "1", "--log", str(log)]) == 0
    assert main(["export", str(folder), "--formats", "f32"]) == 0
    assert (folder / "drums_dec.tflite").read_bytes() != exported
    assert main(sweep) == 0
    assert sum(event.what == "tick" for event in parse_log(log.read_text())) == 16
