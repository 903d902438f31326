"""``rackvae simulate``: play a model on the virtual module (desktop build or emulated Cortex-M7)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

DEFAULT_BPM = 120.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="play a model on the virtual module and write what it played (log, MIDI, screen)",
        description=(
            "Build the module firmware for the desktop (host) or QEMU's Cortex-M7 (qemu), put MODEL on "
            "its SD card, replay an event script (format: firmware/sim/replay.h) and write the output "
            "log; optionally the MIDI of what it played and a PNG of its screen."
        ),
    )
    parser.add_argument(
        "model",
        type=Path,
        help=(
            "a .tflite file or a model directory holding one (a model folder: its NAME_dec.tflite, "
            "refused when the model was trained again after rackvae export)"
        ),
    )
    parser.add_argument("script", type=Path, nargs="?", help="event script (omit with --sweep)")
    parser.add_argument(
        "--target",
        choices=("host", "qemu"),
        default="host",
        help="host: the firmware built for this computer; qemu: for the emulated Cortex-M7",
    )
    parser.add_argument(
        "--sweep",
        type=int,
        metavar="BARS",
        help="no script: clock BARS bars with the latent knobs swept (default: none, give SCRIPT)",
    )
    parser.add_argument(
        "--bpm", type=float, default=DEFAULT_BPM, help="tempo of --sweep, in beats per minute"
    )
    parser.add_argument(
        "--threshold-volts", type=float, default=0.0, help="threshold pot of --sweep, in volts (-5..5)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=(
            "a panel setting the module restores at power-on (its EEPROM): densityG (group G 0-4, "
            "-100..100 %%, -100 silent), note-density, max-notes (1-4), chaos (0-100 %%), length (steps), "
            "ppqn (external clock: 1, 2, 4 = one pulse per step, 24), bpm (internal clock, 40-240), "
            "groove (0-200 %% of a groove model's timing offsets, 100 as learned), swing (0-75 %% of a step "
            "on the off-beat 16ths); repeatable (default: none, the module's defaults)"
        ),
    )
    parser.add_argument(
        "--midi",
        type=Path,
        help="write the module's USB MIDI (notes at their fire times) as a file (default: none)",
    )
    parser.add_argument("--log", type=Path, help="write the output log (default: stdout)")
    parser.add_argument("--screen", type=Path, help="write the module's final screen as PNG (default: none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from rackvae.atomic import atomic_write_text
    from rackvae.simulate import (
        ModuleSettings,
        SimulateError,
        build_firmware,
        clock_script,
        find_tflite,
        model_metadata,
        parse_log,
        prepare_card,
        render_screen,
        run_module,
        with_screen_event,
        write_midi,
    )

    if (args.script is None) == (args.sweep is None):
        raise SystemExit("simulate: give either SCRIPT or --sweep BARS")
    try:
        tflite = find_tflite(args.model)
        settings = ModuleSettings()
        for option in args.set:
            settings = settings.with_option(option)
        if args.script is not None:
            script = args.script.read_text()
        else:
            metadata = model_metadata(tflite.read_bytes(), str(tflite))
            bars = args.sweep
            # Latent pots sweep the knob range in different directions and speeds, one position per bar.
            phase = np.linspace(0.0, 1.0, bars)
            knobs = [-5 + 10 * phase, 5 - 10 * phase, 5 * np.sin(2 * np.pi * phase)]
            script = clock_script(bars, metadata.ticks, args.bpm, knobs, args.threshold_volts)
        if args.screen is not None:
            script = with_screen_event(script)
        print(f"building the firmware for {args.target} ...", file=sys.stderr)
        executable = build_firmware(args.target)
        with tempfile.TemporaryDirectory(prefix="rackvae-card-") as card:
            card_dir = prepare_card([tflite], Path(card) / "card")
            eeprom = None
            if args.set:
                eeprom = Path(card) / "settings.bin"
                eeprom.write_bytes(settings.to_bytes())
            log = run_module(executable, script, args.target, card_dir=card_dir, settings=eeprom)
    except (SimulateError, OSError) as error:
        raise SystemExit(f"simulate: {error}") from error
    if args.log is not None:
        atomic_write_text(args.log, log)
    else:
        sys.stdout.write(log)
    events = parse_log(log)
    triggers = sum(event.what == "trig" for event in events)
    steps = sum(event.what == "tick" for event in events)
    print(f"{tflite.name} on {args.target}: {steps} steps, {triggers} triggers", file=sys.stderr)
    if args.midi is not None:
        notes = write_midi(events, args.midi)
        print(f"wrote {args.midi} ({notes} notes)", file=sys.stderr)
    if args.screen is not None:
        render_screen(events, args.screen)
        print(f"wrote {args.screen}", file=sys.stderr)
    return 0
