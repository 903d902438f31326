"""``rackvae decode MODEL (--latent X,Y,Z | --knobs V0,V1,V2)``: what one latent (or knob setting) plays,
as ``decode.mid`` (``--bars`` repeats of it, as the module loops it) and ``decode.png``.

``--knobs`` are the panel's knob voltages (-5..5 V, CV at 0 V), mapped to the latent as the module maps
them (``rv_latent_from_controls``).
"""

from __future__ import annotations

import argparse

import numpy as np

from rackvae.commands.music import (
    add_model_argument,
    add_play_options,
    check_bar_count,
    load,
    parse_numbers,
    play_options,
    run_music_command,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decode", help="play one latent or knob setting: MIDI and a PNG", description=__doc__
    )
    add_model_argument(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--latent", metavar="X,Y,Z", help="the latent, comma-separated")
    where.add_argument("--knobs", metavar="V0,V1,V2", help="knob voltages, comma-separated (-5..5)")
    parser.add_argument("--bars", type=int, default=4, help="bars in the MIDI file (default 4)")
    add_play_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_music_command("decode", decode, args)


def decode(args: argparse.Namespace) -> int:
    from rackvae.generate import Bars, GenerateError

    check_bar_count("--bars", args.bars, args.bars)
    model = load(args)
    if args.bars < 1:
        raise GenerateError(f"--bars must be at least 1, got {args.bars}")
    if args.knobs is not None:
        latent = model.latents_for_knobs(np.array(parse_numbers(args.knobs, "--knobs")), "--knobs")
    else:
        latent = model.check_latents(np.array(parse_numbers(args.latent, "--latent")), "--latent")
        outside = np.abs(latent) > model.latent_scale
        if outside.any():
            raise GenerateError(
                f"--latent: {latent[outside][0]:g} is outside the knobs' range ±{model.latent_scale:g}"
            )
    # Bernoulli draws a new bar each time round, thresholds play the same bar: as the module loops it.
    bars = model.decode(np.repeat(latent, args.bars, axis=0), **play_options(args))
    titles = [f"bar {index + 1}" for index in range(args.bars)]
    shown = bars if args.bernoulli else Bars(bars.latents[:1], bars.rolls[:1])
    for path in (
        model.to_midi(bars, args.output / "decode.mid", bpm=args.bpm),
        model.save_sheet(shown, args.output / "decode.png", titles[: len(shown.rolls)]),
    ):
        print(f"wrote {path}")
    return 0
