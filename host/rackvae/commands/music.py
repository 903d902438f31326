"""What the music commands (sample, interpolate, decode, map, encode) share: the model argument, the
playing options, and one-line errors."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_BPM = 120.0
# Bars one command writes (MIDI files, the picture of them all): a typo such as --points 10000 would
# otherwise fill memory and the disk. rackvae.generate's API takes any count.
MAX_WRITTEN_BARS = 1024


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model folder (rackvae train) or an exported .tflite")


def add_play_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that decodes: engine, threshold, notes per step, tempo, output."""
    play = parser.add_argument_group("playing")
    play.add_argument(
        "--engine",
        choices=("c", "jax"),
        help="c: the C core on the exported NAME_dec.tflite (what the module plays; default when"
        " exported), jax: the model's JAX decoder (default otherwise)",
    )
    play.add_argument(
        "--threshold", type=float, help="a cell plays from this probability (default: the model's)"
    )
    play.add_argument(
        "--max-notes", type=int, default=4, help="at most this many notes per step, as the module"
    )
    play.add_argument("--bernoulli", action="store_true", help="draw each note with its probability instead")
    play.add_argument("--bpm", type=float, default=DEFAULT_BPM, help="tempo written in the MIDI files")
    play.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    play.add_argument("-o", "--output", type=Path, default=Path("."), help="output folder (default: here)")


def play_options(args: argparse.Namespace) -> dict[str, Any]:
    """``rackvae.generate.Model.decode``'s keyword arguments from the parsed options."""
    return {
        "threshold": args.threshold,
        "max_notes": args.max_notes,
        "bernoulli": args.bernoulli,
        "seed": args.seed,
    }


def load(args: argparse.Namespace) -> Any:
    """The model; a stale export's warning (the parameters play instead) as one line of the command's."""
    from rackvae.generate import StaleExportWarning
    from rackvae.generate import load as load_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StaleExportWarning)
        model = load_model(args.model, getattr(args, "engine", None))
    for warning in caught:
        if issubclass(warning.category, StaleExportWarning):
            print(f"{args.command}: warning: {warning.message}", file=sys.stderr)
        else:  # anything else as it would have been shown
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return model


def check_bar_count(argument: str, given: int, bars: int) -> None:
    """A one-line error naming ``argument`` when the command would write more than MAX_WRITTEN_BARS."""
    from rackvae.generate import GenerateError

    if bars > MAX_WRITTEN_BARS:
        raise GenerateError(
            f"{argument} {given} writes {bars:,} bars, at most {MAX_WRITTEN_BARS:,} per command "
            "(the rackvae.generate API has no limit)"
        )


def parse_numbers(text: str, argument: str) -> list[float]:
    """``"0.5,-1,2"`` -> [0.5, -1.0, 2.0]; anything else is an error naming ``argument``."""
    from rackvae.generate import GenerateError

    try:
        return [float(part) for part in text.split(",")]
    except ValueError as error:
        raise GenerateError(f"{argument}: expected comma-separated numbers, got {text!r}") from error


def run_music_command(
    name: str, command: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """Run a music command: bad input ends it with one line naming the command and the reason."""
    from rackvae.core import CoreError
    from rackvae.export.metadata import MetadataError
    from rackvae.generate import GenerateError
    from rackvae.train import ModelError

    try:
        return command(args)
    except (GenerateError, ModelError, CoreError, MetadataError, OSError) as error:
        raise SystemExit(f"{name}: {error}") from error
