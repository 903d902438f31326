"""Groove vs hits-only on a dataset's validation split: the same decoder trained both ways, over seeds.

    python bench/measure_groove.py out/demo/groove.npz --seeds 0 1 2 --hidden-sizes 160,256,64 \
        --weights 3,6 --velocity-error absolute --offset-error absolute \
        --set beta=0.2 --set weight_decay=0.1 --set learning_rate=0.002 \
        --label "160,256,64 β0.2" --runs out/groove/runs.jsonl
    python bench/measure_groove.py out/demo/groove.npz --runs out/groove/runs.jsonl --table

Each run (seed x hits-only / groove weights) prints and appends one JSON row to ``--runs``: the hit
metrics at the model's own thresholds (step accuracy, F1) and the groove metrics (velocity and timing
MAE of the model beside the straight and template baselines, on the cells where target and
reconstruction hit). Training uses the demo's schedule (150 epochs, plateau patience 10, early stop
after 25) unless ``--set`` says otherwise. ``--table`` prints the rows of ``--runs`` as a markdown
table, mean ± sd over seeds per label and run, with the groove model's step accuracy beside the
hits-only model of the same label (the same decoder widths and training, only the outputs differ).
The measurements that chose the demo's groove recipe, and what they say: ``docs/groove_search.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rackvae import dataset as datasets
from rackvae.evaluate import reconstruction_metrics
from rackvae.groove import fit_baselines, format_groove_table, groove_metrics
from rackvae.model import OUTPUTS, ModelConfig
from rackvae.train import TrainSettings, new_model, train

DEMO_SCHEDULE = {"epochs": 150, "patience": 10, "stop_patience": 25}
# A groove run's label suffix for its (velocity, offset) errors in the loss.
ERRORS = {
    ("squared", "squared"): "",
    ("absolute", "absolute"): " abs",
    ("squared", "absolute"): " sq/abs",
    ("absolute", "squared"): " abs/sq",
}


def parse_weights(text: str) -> tuple[float, float]:
    """``--weights V,O``: the velocity and offset loss weights."""
    try:
        velocity, offset = (float(w) for w in text.split(","))
    except ValueError:
        raise ValueError(f"--weights {text}: expected VELOCITY,OFFSET (two numbers)") from None
    return velocity, offset


def parse_setting(item: str) -> tuple[str, int | float]:
    """``--set FIELD=VALUE``: a TrainSettings field (TrainSettings.from_dict would drop a misspelt one)."""
    key, _, value = item.partition("=")
    fields = sorted(f.name for f in dataclasses.fields(TrainSettings))
    if key not in fields:
        raise ValueError(f"--set {item}: not a TrainSettings field ({', '.join(fields)})")
    try:
        return key, int(value) if value.isdigit() else float(value)
    except ValueError:
        raise ValueError(f"--set {item}: expected FIELD=NUMBER") from None


def measure(args: argparse.Namespace) -> None:
    data = datasets.load(args.data)
    train_set, validation_set = data.split(0.1, 0)
    baselines = fit_baselines(train_set)
    spq = int(data.settings.get("steps_per_quarter", 4))
    hidden = tuple(int(s) for s in args.hidden_sizes.split(",")) if args.hidden_sizes else None
    runs: list[tuple[str, tuple[float, float] | None]] = [("hits", None)] if args.hits_only else []
    runs += [("groove", weights) for weights in args.weights]
    given: dict[str, Any] = {**DEMO_SCHEDULE, **args.set}
    for seed in args.seeds:
        for kind, weights in runs:
            config = ModelConfig(data.ticks, data.rows, hidden_sizes=hidden)
            if weights is not None:
                config = ModelConfig(
                    data.ticks,
                    data.rows,
                    hidden_sizes=hidden,
                    outputs=OUTPUTS,
                    velocity_weight=weights[0],
                    offset_weight=weights[1],
                    velocity_error=args.velocity_error,
                    offset_error=args.offset_error,
                )
            model = new_model(kind, config, data, seed=seed)
            settings = TrainSettings.from_dict({**given, "seed": seed})
            began = time.perf_counter()
            train(model, train_set, validation_set, settings, log=None)
            seconds = time.perf_counter() - began
            probs = model.reconstruct(model.inputs(validation_set))
            hits = reconstruction_metrics(validation_set.rolls, probs, model.cell_thresholds())
            at_half = reconstruction_metrics(validation_set.rolls, probs, 0.5)
            seen = reconstruction_metrics(
                train_set.rolls, model.reconstruct(model.inputs(train_set)), model.cell_thresholds()
            )
            row: dict[str, Any] = {
                "label": args.label,
                "run": kind
                if weights is None
                else f"groove w={weights[0]:g},{weights[1]:g}"
                + ERRORS[args.velocity_error, args.offset_error],
                "seed": seed,
                "decoder": "-".join(map(str, config.decoder_sizes())),
                "decoder_macs": config.decoder_macs(),
                "settings": {k: v for k, v in given.items() if k not in DEMO_SCHEDULE},
                "epochs": model.summary["epochs_run"],
                "seconds": round(seconds),
                "step_accuracy": hits["step_accuracy"],
                "note_f1": hits["note_f1"],
                "step_accuracy_05": at_half["step_accuracy"],
                "note_f1_05": at_half["note_f1"],
                "train_step_accuracy": seen["step_accuracy"],
            }
            if weights is not None:
                row["groove"] = groove_metrics(model, validation_set, baselines, spq)
            print(json.dumps(row), flush=True)
            if weights is not None:
                print(format_groove_table(row["groove"]), flush=True)
            if args.runs:
                with Path(args.runs).open("a") as out:
                    out.write(json.dumps(row) + "\n")


def _mean_sd(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _optional(rows: list[dict[str, Any]], key: str) -> str:
    """Mean ± sd of ``key`` over the rows that have it (rows from before it was measured do not)."""
    values = [r[key] for r in rows if key in r]
    return _mean_sd(values, 3) if values else "-"


def table(path: str) -> str:
    """The runs of ``path`` as a markdown table: mean ± sd over seeds for each label and run."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["label"], row["run"])].append(row)
    lines = [
        "| label | run | decoder MACs | seeds | step acc | vs hits-only | F1 | step acc @0.5 | F1 @0.5"
        " | train step acc | velocity MAE (vs template) | timing MAE, steps (vs template)"
        " | template velocity / timing | epochs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (label, run), members in groups.items():
        seeds = sorted(r["seed"] for r in members)
        reference = {r["seed"]: r["step_accuracy"] for r in groups.get((label, "hits"), [])}
        gap = [r["step_accuracy"] - reference[r["seed"]] for r in members if r["seed"] in reference]
        groove = [r["groove"] for r in members if "groove" in r]
        cells = ["-", "-", "-"]
        if groove:
            velocity = [g["model"]["velocity_mae"] for g in groove]
            timing = [g["model"]["timing_mae_steps"] for g in groove]
            v_ratio = [g["model"]["velocity_mae"] / g["template"]["velocity_mae"] - 1 for g in groove]
            t_ratio = [g["model"]["timing_mae_steps"] / g["template"]["timing_mae_steps"] - 1 for g in groove]
            cells = [
                f"{_mean_sd(velocity, 2)} ({np.mean(v_ratio):+.1%})",
                f"{_mean_sd(timing, 4)} ({np.mean(t_ratio):+.1%})",
                f"{np.mean([g['template']['velocity_mae'] for g in groove]):.2f} / "
                f"{np.mean([g['template']['timing_mae_steps'] for g in groove]):.4f}",
            ]
        lines.append(
            f"| {label} | {run} | {members[0]['decoder_macs']:,} | {','.join(map(str, seeds))}"
            f" | {_mean_sd([r['step_accuracy'] for r in members], 3)}"
            f" | {_mean_sd(gap, 3) if gap and run != 'hits' else '-'}"
            f" | {_mean_sd([r['note_f1'] for r in members], 3)}"
            f" | {_optional(members, 'step_accuracy_05')} | {_optional(members, 'note_f1_05')}"
            f" | {_optional(members, 'train_step_accuracy')} | {cells[0]} | {cells[1]} | {cells[2]}"
            f" | {_mean_sd([r['epochs'] for r in members], 0)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--weights", nargs="*", default=["10,10"], help="velocity,offset loss weights")
    parser.add_argument("--hits-only", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--velocity-error", choices=("squared", "absolute"), default="squared")
    parser.add_argument("--offset-error", choices=("squared", "absolute"), default="squared")
    parser.add_argument("--hidden-sizes", help="encoder widths, e.g. 192,64 (default: ModelConfig's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a TrainSettings field, e.g. beta=0.2 (the schedule defaults to the demo's)",
    )
    parser.add_argument("--label", default="", help="the candidate's name in --runs and the table")
    parser.add_argument("--runs", help="append each run's JSON row to this file")
    parser.add_argument("--table", action="store_true", help="print --runs as a mean ± sd table")
    args = parser.parse_args()
    try:
        args.weights = [parse_weights(weights) for weights in args.weights]
        args.set = dict(parse_setting(item) for item in args.set)
    except ValueError as error:
        parser.error(str(error))
    if args.table and not args.runs:
        parser.error("--table prints the rows of --runs: give --runs FILE")
    if args.table:
        print(table(args.runs))
    else:
        measure(args)


if __name__ == "__main__":
    main()
