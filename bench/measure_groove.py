"""Groove vs hits-only on a dataset's validation split: the same architecture trained both ways.

    python bench/measure_groove.py out/demo/groove.npz --epochs 150 --seeds 0 1 --weights 1,1 10,10

Prints, per seed and run, the hit metrics at each model's own thresholds (step accuracy, F1) and the
groove table (velocity and timing MAE of the model beside the straight and template baselines).
"""

from __future__ import annotations

import argparse
import json
import time

from rackvae import dataset as datasets
from rackvae.evaluate import reconstruction_metrics
from rackvae.groove import fit_baselines, format_groove_table, groove_metrics
from rackvae.model import OUTPUTS, ModelConfig
from rackvae.train import TrainSettings, new_model, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--weights", nargs="+", default=["1,1"], help="velocity,offset loss weights")
    parser.add_argument("--hits-only", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--hidden-sizes", help="encoder widths, e.g. 128,32 (default: ModelConfig's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a TrainSettings field, e.g. beta=0.2",
    )
    args = parser.parse_args()
    data = datasets.load(args.data)
    train_set, validation_set = data.split(0.1, 0)
    baselines = fit_baselines(train_set)
    spq = int(data.settings.get("steps_per_quarter", 4))
    hidden = tuple(int(s) for s in args.hidden_sizes.split(",")) if args.hidden_sizes else None
    runs = [("hits", None)] if args.hits_only else []
    runs += [("groove", tuple(float(w) for w in weights.split(","))) for weights in args.weights]
    results = []
    for seed in args.seeds:
        for kind, weights in runs:
            config = ModelConfig(data.ticks, data.rows, hidden_sizes=hidden)
            if weights is not None:
                velocity_weight, offset_weight = weights
                config = ModelConfig(
                    data.ticks,
                    data.rows,
                    hidden_sizes=hidden,
                    outputs=OUTPUTS,
                    velocity_weight=velocity_weight,
                    offset_weight=offset_weight,
                )
            model = new_model(kind, config, data, seed=seed)
            given = {"epochs": args.epochs, "patience": 40, "stop_patience": 120, "seed": seed}
            for key, value in (item.split("=") for item in args.set):
                given[key] = int(value) if value.isdigit() else float(value)
            settings = TrainSettings.from_dict(given)
            began = time.perf_counter()
            train(model, train_set, validation_set, settings, log=None)
            seconds = time.perf_counter() - began
            probs = model.reconstruct(model.inputs(validation_set))
            hits = reconstruction_metrics(validation_set.rolls, probs, model.cell_thresholds())
            row = {
                "seed": seed,
                "run": kind if weights is None else f"groove w={weights[0]:g},{weights[1]:g}",
                "epochs": model.summary["epochs_run"],
                "seconds": round(seconds),
                "step_accuracy": hits["step_accuracy"],
                "note_f1": hits["note_f1"],
            }
            print(json.dumps(row), flush=True)
            if weights is not None:
                metrics = groove_metrics(model, validation_set, baselines, spq)
                row["groove"] = metrics
                print(format_groove_table(metrics), flush=True)
            results.append(row)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
