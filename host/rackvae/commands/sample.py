"""``rackvae sample MODEL``: bars drawn from the prior, as MIDI files and a PNG sheet of their rolls.

Latents are normal draws times ``--temperature``, kept inside the knobs' range (±latent_scale). Writes
``sample_01.mid`` ... (or one ``sample.mid`` of consecutive bars with ``--join``) and ``sample.png``.
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
        "sample", help="draw bars from the prior: MIDI and a PNG", description=__doc__
    )
    add_model_argument(parser)
    parser.add_argument("-n", "--count", type=int, default=8, help="number of bars (default 8)")
    parser.add_argument("--temperature", type=float, default=1.0, help="spread of the prior (default 1)")
    parser.add_argument("--join", action="store_true", help="one MIDI file of consecutive bars")
    add_play_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_music_command("sample", sample, args)


def sample(args: argparse.Namespace) -> int:
    check_bar_count("-n", args.count, args.count)
    model = load(args)
    bars = model.sample(args.count, temperature=args.temperature, **play_options(args))
    if args.join:
        written = [model.to_midi(bars, args.output / "sample.mid", bpm=args.bpm)]
    else:
        written = [
            model.to_midi(bars.take(index), args.output / f"sample_{index + 1:02d}.mid", bpm=args.bpm)
            for index in range(len(bars.rolls))
        ]
    titles = [f"sample {index + 1}" for index in range(len(bars.rolls))]
    written.append(model.save_sheet(bars, args.output / "sample.png", titles))
    for path in written:
        print(f"wrote {path}")
    return 0
