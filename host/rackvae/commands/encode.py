"""``rackvae encode MODEL FILES...``: every bar of the files that the model can encode, with its latent
(encoder mean and sigma) and the knob voltages that play it on the module.

The files are encoded with the model's own settings. The knob voltages (CV at 0 V) are the inverse of
the panel's mapping (``rv_latent_from_controls``: latent = (knob + cv) / 5 V * latent_scale, clamped);
a bar whose voltages fall outside ±5 V cannot be dialled in and is flagged. A file that cannot be read
is reported on stderr and the others still encoded (exit status 1).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rackvae.commands.music import add_model_argument, load, run_music_command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode", help="latents and knob voltages of the bars of MIDI files", description=__doc__
    )
    add_model_argument(parser)
    parser.add_argument("files", type=Path, nargs="+", metavar="FILES", help="MIDI files")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON list of bars")
    output.add_argument("--csv", action="store_true", help="CSV, one line per bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_music_command("encode", encode, args)


def encode(args: argparse.Namespace) -> int:
    from rackvae.generate import KNOB_VOLTS, GenerateError

    model = load(args)
    if not model.can_encode:
        raise GenerateError(f"{args.model} is an exported decoder: encoding needs the model folder")
    records: list[dict[str, Any]] = []
    failures = 0
    for path in args.files:
        try:
            found = model.read_midi(path)
        except GenerateError as error:
            print(f"encode: {error}", file=sys.stderr)
            failures += 1
            continue
        if not len(found.bars):
            continue
        encoding = model.encode(found.rolls)
        knobs = model.knobs_for(encoding.mean)
        for index, bar in enumerate(found.bars):
            records.append(
                {
                    "file": str(path),
                    "bar": int(bar),
                    "track": int(found.tracks[index]),
                    "mean": [float(v) for v in encoding.mean[index]],
                    "sigma": [float(v) for v in encoding.sigma[index]],
                    "knob_volts": [float(v) for v in knobs[index]],
                    "in_knob_range": bool(np.all(np.abs(knobs[index]) <= KNOB_VOLTS)),
                }
            )
    print(format_records(records, "json" if args.json else "csv" if args.csv else "table"), end="")
    return 1 if failures else 0


def format_records(records: list[dict[str, Any]], style: str) -> str:
    if style == "json":
        return json.dumps(records) + "\n"
    if style == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        dims = len(records[0]["mean"]) if records else 0
        writer.writerow(
            ["file", "bar", "track"]
            + [f"{name}_{d}" for name in ("mean", "sigma", "knob_volts") for d in range(dims)]
            + ["in_knob_range"]
        )
        for r in records:
            writer.writerow(
                [
                    r["file"],
                    r["bar"],
                    r["track"],
                    *r["mean"],
                    *r["sigma"],
                    *r["knob_volts"],
                    r["in_knob_range"],
                ]
            )
        return buffer.getvalue()
    lines: list[str] = []
    current = None
    for r in records:
        if r["file"] != current:
            current = r["file"]
            lines += [current, f"{'bar':>5}  {'latent mean':<20}  {'sigma':<20}  knob volts (CV 0 V)"]
        flag = "" if r["in_knob_range"] else "  OUTSIDE the knobs' range"
        numbers = [" ".join(f"{v:+.2f}" for v in r[key]) for key in ("mean", "sigma", "knob_volts")]
        lines.append(f"{r['bar']:>5}  {numbers[0]:<20}  {numbers[1]:<20}  {numbers[2]}{flag}")
    outside = sum(not r["in_knob_range"] for r in records)
    lines.append(f"{len(records)} bars, {outside} outside the knobs' range")
    return "\n".join(lines) + "\n"
