"""``rackvae interpolate MODEL A.mid B.mid``: morph from a bar of A to a bar of B, as one MIDI file of
consecutive bars (``interpolate.mid``) and a PNG sheet (``interpolate.png``).

Each file is encoded with the model's own settings; ``--bar-a``/``--bar-b`` pick the bar (0-based, as
``rackvae encode`` lists them; default the first usable one). The endpoints are the encoder means of
the two bars, the steps between them straight lines (or great circles with ``--slerp``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rackvae.commands.music import (
    add_model_argument,
    add_play_options,
    check_bar_count,
    load,
    play_options,
    run_music_command,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "interpolate", help="morph between a bar of two MIDI files: MIDI and a PNG", description=__doc__
    )
    add_model_argument(parser)
    parser.add_argument("a", type=Path, metavar="A.mid", help="the MIDI file to start from")
    parser.add_argument("b", type=Path, metavar="B.mid", help="the MIDI file to end at")
    parser.add_argument("--bar-a", type=int, help="bar of A (default: its first usable bar)")
    parser.add_argument("--bar-b", type=int, help="bar of B (default: its first usable bar)")
    parser.add_argument("--steps", type=int, default=8, help="bars from A to B, both included (default 8)")
    parser.add_argument("--slerp", action="store_true", help="spherical instead of straight interpolation")
    add_play_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_music_command("interpolate", interpolate, args)


def interpolate(args: argparse.Namespace) -> int:
    from rackvae.generate import GenerateError

    check_bar_count("--steps", args.steps, args.steps)
    model = load(args)
    ends = []
    for path, bar, argument in ((args.a, args.bar_a, "--bar-a"), (args.b, args.bar_b, "--bar-b")):
        found = model.read_midi(path)
        if not len(found.bars):
            raise GenerateError(f"{path}: no bar the model can encode")
        ends.append(found.roll_at(found.bars[0] if bar is None else bar, argument))
    bars = model.interpolate(ends[0], ends[1], args.steps, slerp=args.slerp, **play_options(args))
    titles = [f"{index + 1}/{args.steps}" for index in range(args.steps)]
    titles[0] += f" = {args.a.name}"
    titles[-1] += f" = {args.b.name}"
    for path in (
        model.to_midi(bars.rolls, args.output / "interpolate.mid", bpm=args.bpm),
        model.save_sheet(bars, args.output / "interpolate.png", titles),
    ):
        print(f"wrote {path}")
    return 0
