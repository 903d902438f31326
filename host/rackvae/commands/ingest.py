"""``rackvae ingest PATH... -o data.npz``: MIDI files and folders → an encoded dataset, with a summary."""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

from rackvae.commands import output_problem


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="encode MIDI files into a dataset (.npz)",
        description="Cut MIDI files (and folders, recursively) into fixed-grid sequences and save them as "
        "a dataset. Prints files read/failed, bars kept and discarded by reason, and the shape.",
    )
    parser.add_argument("paths", nargs="+", help="MIDI files and folders")
    parser.add_argument("-o", "--output", required=True, help="dataset file to write (.npz)")
    grid = parser.add_argument_group("grid")
    grid.add_argument("--time-signature", default="4/4", help="meter of the bars to use")
    grid.add_argument(
        "--steps-per-quarter",
        type=int,
        default=4,
        help="grid steps per quarter note: 4 → 16ths, 12 → 16th triplets",
    )
    grid.add_argument(
        "--quarters-per-bar",
        type=Fraction,
        help="bar length in quarters (default: the time signature's: 4/4 → 4, 6/8 → 3, 3/8 → 3/2)",
    )
    grid.add_argument("--bars-per-sequence", type=int, default=1, help="bars per sequence")
    grid.add_argument(
        "--timing",
        choices=("strict", "drop", "snap"),
        default="snap",
        help="onsets off the grid: discard the bar, drop the onset, or snap to the nearest step",
    )
    grid.add_argument(
        "--max-offset",
        type=float,
        default=0.5,
        help="snap: discard bars with an onset further than this from the grid, in steps; 0.5 keeps all",
    )
    parts = parser.add_argument_group("parts")
    parts.add_argument(
        "--percussion-map",
        metavar="NAME|FILE",
        help="encode percussion parts with this map (simple, extended, accented, gm, or a JSON/YAML file) "
        "(default: none, pitched parts are encoded)",
    )
    parts.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="REGEX",
        help="keep parts whose track, instrument or GM program name matches (any case; repeatable) "
        "(default: every part)",
    )
    parts.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="REGEX",
        help="drop parts whose names match (repeatable) (default: none)",
    )
    parts.add_argument(
        "--percussion-name",
        action="append",
        default=[],
        metavar="REGEX",
        help="treat parts with matching names as percussion, besides channel 10 (default: none)",
    )
    parts.add_argument("--merge-parts", action="store_true", help="one roll per file from all selected parts")
    parts.add_argument(
        "--accent-velocity", type=int, default=100, help="accent rows light up from this velocity"
    )
    pitch = parser.add_argument_group("pitched parts")
    pitch.add_argument("--no-normalise-octave", action="store_true", help="keep pitches where they are")
    pitch.add_argument("--no-trim", action="store_true", help="keep all 128 pitch rows")
    sequences = parser.add_argument_group("sequences")
    sequences.add_argument("--min-notes", type=int, default=2, help="minimum onsets per sequence")
    sequences.add_argument("--dedupe", action="store_true", help="drop sequences identical to an earlier one")
    parser.add_argument("--jobs", type=int, help="worker processes (default: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rackvae.codec import EncodingError, EncodingSettings, parse_time_signature
    from rackvae.dataset import ingest
    from rackvae.percussion import PercussionMapError

    try:
        quarters_per_bar = args.quarters_per_bar
        if quarters_per_bar is None:
            numerator, denominator = parse_time_signature(args.time_signature)
            quarters_per_bar = Fraction(4 * numerator, denominator)
        settings = EncodingSettings(
            steps_per_quarter=args.steps_per_quarter,
            quarters_per_bar=int(quarters_per_bar)
            if quarters_per_bar.denominator == 1
            else float(quarters_per_bar),
            bars_per_sequence=args.bars_per_sequence,
            time_signature=args.time_signature,
            timing=args.timing,
            max_offset=args.max_offset,
            include=tuple(args.include),
            exclude=tuple(args.exclude),
            percussion_map=args.percussion_map,
            percussion_names=tuple(args.percussion_name),
            merge_parts=args.merge_parts,
            normalise_octave=not args.no_normalise_octave,
            trim=not args.no_trim,
            min_notes_per_sequence=args.min_notes,
            dedupe=args.dedupe,
            accent_velocity=args.accent_velocity,
        )
    except (EncodingError, PercussionMapError) as error:
        print(f"rackvae ingest: {error}", file=sys.stderr)
        return 2
    problem = output_problem(Path(args.output), folder=False)
    if problem:  # found before reading the files, not after a long load
        print(f"rackvae ingest: -o {args.output}: {problem}", file=sys.stderr)
        return 2

    result = ingest(args.paths, settings, jobs=args.jobs, progress=not args.quiet)
    print(result.report.summary())
    if len(result.dataset) == 0:
        print("rackvae ingest: no sequences; nothing written", file=sys.stderr)
        return 1
    try:
        result.dataset.save(args.output)
    except OSError as error:  # e.g. no permission, a full disk: nothing half-written (atomic)
        print(f"rackvae ingest: cannot write {args.output}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0
