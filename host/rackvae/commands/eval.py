"""``rackvae eval models/NAME [DATA...]``: metrics of a trained model, as a table or JSON, and plots.

Without DATA the model is measured on the train and validation splits of the dataset it was trained on
(and the metrics are stored in its model.json). DATA may be ``.npz`` datasets or MIDI files and folders,
which are encoded with the model's own dataset settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rackvae.commands import output_problem, run_model_command

if TYPE_CHECKING:
    from rackvae.dataset import RollLayout


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure a trained model (reconstruction, baseline, generation) and plot it",
        description=__doc__,
    )
    parser.add_argument("model", type=Path, help="model folder written by rackvae train")
    parser.add_argument(
        "data", nargs="*", type=Path, help=".npz datasets or MIDI files/folders (default: its own)"
    )
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots into DIR (default: none)")
    parser.add_argument(
        "--json", action="store_true", help="print the metrics as one JSON object, not a table"
    )
    parser.add_argument(
        "--prior-samples",
        type=int,
        default=1000,
        help="latents drawn from the prior for the generation statistics",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the prior samples")
    parser.set_defaults(func=run)


def load_rolls(paths: list[Path], dataset_settings: dict[str, Any], layout: RollLayout) -> np.ndarray:
    """Rolls of ``.npz`` datasets and of MIDI files/folders (ingested with ``dataset_settings``; pitched
    rolls cut to the model's rows, not trimmed to the pitches these files use)."""
    from rackvae import dataset as datasets

    rolls = [datasets.load(path).rolls for path in paths if path.suffix == ".npz"]
    midi = [path for path in paths if path.suffix != ".npz"]
    if midi:
        from rackvae.codec import EncodingError, EncodingSettings
        from rackvae.percussion import PercussionMapError

        try:
            settings = EncodingSettings.from_dict({**dataset_settings, "trim": False})
        except (EncodingError, PercussionMapError) as error:  # e.g. its map file moved since ingest
            raise SystemExit(f"eval: the model's encoding settings: {error}") from error
        result = datasets.ingest(midi, settings=settings, progress=False)
        # As ingest does: each file that could not be read, with the reason (eval goes on without it).
        for file, reason in result.report.failures:
            print(f"eval: skipped {file}: {reason}", file=sys.stderr)
        if len(result.dataset):
            midi_rolls = result.dataset.rolls
            if layout.kind == "note":  # 128 pitch rows -> the model's
                midi_rolls = midi_rolls[:, :, layout.base_note : layout.base_note + layout.rows]
            rolls.append(midi_rolls)
    if not any(len(r) for r in rolls):
        raise SystemExit("eval: no sequences to evaluate in DATA")
    shapes = {r.shape[1:] for r in rolls}
    if len(shapes) > 1:
        raise SystemExit(f"eval: the data have different roll shapes {sorted(shapes)}")
    return np.concatenate(rolls)


def run(args: argparse.Namespace) -> int:
    return run_model_command("eval", eval_command, args)


def eval_command(args: argparse.Namespace) -> int:
    from rackvae import dataset as datasets
    from rackvae.evaluate import evaluate, format_table, write_plots
    from rackvae.groove import fit_baselines, format_groove_table, groove_metrics
    from rackvae.train import load_model, save_metrics

    # Before the metrics are computed, not after (the table would be lost to a traceback)
    problem = output_problem(args.plots, folder=True) if args.plots is not None else ""
    if problem:
        raise SystemExit(f"eval: --plots {args.plots}: {problem}")
    model = load_model(args.model)
    source = model.data.get("path")
    training = None
    splits: dict[str, np.ndarray] = {}
    inputs: dict[str, np.ndarray] = {}  # what a groove model encodes: hits, velocities and offsets
    groove = model.config.channels > 1
    if source and Path(source).exists():
        train_set, validation_set = datasets.load(source).split(
            model.data["validation_fraction"], model.data["split_seed"]
        )
        training = train_set.rolls
        splits = {"train": train_set.rolls, "validation": validation_set.rolls}
        if groove:
            inputs = {"train": model.inputs(train_set), "validation": model.inputs(validation_set)}
    elif not args.data:
        raise SystemExit(f"eval: {args.model} was trained on {source!r}, which is not there; give DATA")
    if args.data and groove:
        raise SystemExit(
            f"eval: {args.model} is a groove model: it is measured on its training data, give no DATA"
        )
    if args.data:
        splits = {"data": load_rolls(args.data, model.dataset_settings, model.layout)}
    expected = (model.config.ticks, model.config.rows)
    for name, rolls in splits.items():
        if rolls.shape[1:] != expected:
            raise SystemExit(f"eval: {name} rolls are {rolls.shape[1:]}, the model expects {expected}")
    baseline = np.asarray(model.data["constant_roll"], np.uint8) if "constant_roll" in model.data else None
    metrics = evaluate(
        model,
        splits,
        training,
        baseline=baseline,
        prior_samples=args.prior_samples,
        seed=args.seed,
        inputs=inputs,
    )
    if groove:
        held_out = validation_set if len(validation_set) else train_set
        steps_per_quarter = int(model.dataset_settings.get("steps_per_quarter", 4))
        metrics["groove"] = groove_metrics(model, held_out, fit_baselines(train_set), steps_per_quarter)
    if not args.data:
        save_metrics(args.model, metrics)
    if args.plots is not None:
        primary = splits[metrics["primary_split"]]
        primary_inputs = inputs.get(metrics["primary_split"])
        for path in write_plots(model, primary, args.plots, inputs=primary_inputs):
            if not args.json:
                print(f"wrote {path}")
    print(json.dumps(metrics) if args.json else format_table(metrics))
    if groove and not args.json:
        print(format_groove_table(metrics["groove"]))
    return 0
