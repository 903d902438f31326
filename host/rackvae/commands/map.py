"""``rackvae map MODEL``: the learned drum map, a grid of decoded bars over two latent axes across the
knobs' range (the other dimensions at ``--at``), the counterpart of Grids' 5x5 map.

Writes ``map.png`` (axis values in latent units and knob volts, rows named) and a MIDI file per cell,
``map_I_J.mid`` (I along the first axis, J along the second, from 0 at -latent_scale), or one
``map.mid`` of every cell in that order with ``--join``.
"""

from __future__ import annotations

import argparse

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
        "map", help="a grid of bars over two latent axes: PNG and MIDI", description=__doc__
    )
    add_model_argument(parser)
    parser.add_argument("--axes", default="0,1", help="the two latent dimensions (default 0,1)")
    parser.add_argument("--points", type=int, default=5, help="points per axis (default 5)")
    parser.add_argument("--at", type=float, default=0.0, help="value of the other dimensions (default 0)")
    parser.add_argument("--join", action="store_true", help="one MIDI file of all cells")
    add_play_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_music_command("map", latent_map, args)


def latent_map(args: argparse.Namespace) -> int:
    from rackvae.generate import GenerateError

    check_bar_count("--points", args.points, args.points**2)
    model = load(args)
    try:
        axes = [int(part) for part in args.axes.split(",")]
    except ValueError:  # "0.5", "inf", "x": not dimension numbers
        axes = []
    if len(axes) != 2:
        raise GenerateError(f"--axes: two dimension numbers like 0,1, got {args.axes!r}")
    grid = model.map((axes[0], axes[1]), args.points, args.at, **play_options(args))
    if args.join:
        written = [model.to_midi(grid.bars, args.output / "map.mid", bpm=args.bpm)]
    else:
        written = [
            model.to_midi(grid.bars.take(i * args.points + j), args.output / f"map_{i}_{j}.mid", bpm=args.bpm)
            for i in range(args.points)
            for j in range(args.points)
        ]
    written.append(model.save_map(grid, args.output / "map.png"))
    print(f"wrote {written[-1]} and {len(written) - 1} MIDI file(s) in {args.output}")
    return 0
