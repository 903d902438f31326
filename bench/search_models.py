"""A small, focused search for the default model: sizes, depth, beta / free bits, weight decay, learning
rate and warm-up, three seeds per candidate, on the groove corpus split by file (as ``rackvae train``).

Each run trains with a capped epoch budget (reduce-on-plateau and early stopping on the validation
loss), is calibrated on the validation split (``rackvae.calibrate``) and measured there: step accuracy
and note F1 at 0.5 and at the model's own thresholds, and the density of the 17³ knob grid and of prior
samples at those thresholds against the data's. Runs are appended to a JSON-lines file as they finish
(a restarted search skips the runs it has), then the table of means ± sd over seeds is printed.

``--style STYLE --only NAME`` measures a bank before building one (issue 14, item 4): the candidate
trained on the bars of one Groove style only (the style is in the file name, e.g. ``1_rock_120_beat``)
against the same candidate trained on every style, both measured on that style's validation bars.
``reconstruction_figures`` and ``generation_figures`` measure any trained model as the search does, so an
experiment kept out of the tree (the phrase position of docs/model_search.md) is compared like for like.

    .venv/bin/rackvae ingest data/midi/groove --percussion-map extended --timing snap -o /tmp/groove.npz
    nohup .venv/bin/python bench/search_models.py /tmp/groove.npz --runs out/search/runs.jsonl \\
        > out/search/search.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rackvae.dataset import Dataset
    from rackvae.train import TrainedModel

# name: (model config fields, training settings fields); the rest are ModelConfig's and TrainSettings'.
WIDE = (320, 192, 64)  # decoder 3-64-192-320-192: 135,360 MACs
CANDIDATES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "original (48,12; log-var in ±3; β 1)": ({"log_var_bound": 3.0}, {"beta": 1.0}),
    "original, log-var unbounded": ({}, {"beta": 1.0}),
    "wide 320,192,64; β 0.2; wd 0.1": ({"hidden_sizes": WIDE}, {"beta": 0.2, "weight_decay": 0.1}),
    "wide; β 0.5; wd 0.1": ({"hidden_sizes": WIDE}, {"beta": 0.5, "weight_decay": 0.1}),
    "wide; β 0.2; wd 0.01": ({"hidden_sizes": WIDE}, {"beta": 0.2, "weight_decay": 0.01}),
    "wide; β 0.2; wd 0.1; lr 0.002": (
        {"hidden_sizes": WIDE},
        {"beta": 0.2, "weight_decay": 0.1, "learning_rate": 0.002},
    ),
    "wide; β 0.2; wd 0.3; lr 0.002": (
        {"hidden_sizes": WIDE},
        {"beta": 0.2, "weight_decay": 0.3, "learning_rate": 0.002},
    ),
    "wide; β 0.1; wd 0.1; lr 0.002": (
        {"hidden_sizes": WIDE},
        {"beta": 0.1, "weight_decay": 0.1, "learning_rate": 0.002},
    ),
    "wide; β 0.2; wd 0.1; warm-up 10": (
        {"hidden_sizes": WIDE},
        {"beta": 0.2, "weight_decay": 0.1, "kl_warmup": 10},
    ),
    "wide; β 0.5; free bits 1; wd 0.1": (
        {"hidden_sizes": WIDE},
        {"beta": 0.5, "free_bits": 1.0, "weight_decay": 0.1},
    ),
    "wide; β 0.5; wd 0.1; latent scale 2": (
        {"hidden_sizes": WIDE, "latent_scale": 2.0},
        {"beta": 0.5, "weight_decay": 0.1},
    ),
    "wide; β 1; wd 0.1; latent scale 2": (
        {"hidden_sizes": WIDE, "latent_scale": 2.0},
        {"beta": 1.0, "weight_decay": 0.1},
    ),
    "2 layers 384,128; β 0.2; wd 0.1": ({"hidden_sizes": (384, 128)}, {"beta": 0.2, "weight_decay": 0.1}),
    "4 layers 256,192,128,32; β 0.2; wd 0.1": (
        {"hidden_sizes": (256, 192, 128, 32)},
        {"beta": 0.2, "weight_decay": 0.1},
    ),
}
BUDGET = {"epochs": 60, "patience": 8, "stop_patience": 16}  # the capped epoch budget of every run
METRICS = (
    "step_accuracy_05",
    "step_accuracy",
    "note_f1_05",
    "note_f1",
    "note_f1_global",
    "grid_density_ratio",
    "prior_density_ratio",
    "neighbour_changes",
    "epochs",
    "seconds",
)


def trained(name: str, seed: int, train_set: Dataset, validation_set: Dataset) -> TrainedModel:
    """Candidate ``name`` trained with ``seed`` under the capped budget, calibrated on ``validation_set``."""
    from rackvae.model import ModelConfig
    from rackvae.train import TrainSettings, new_model, train

    config_fields, settings_fields = CANDIDATES[name]
    config = ModelConfig(train_set.ticks, train_set.rows, **config_fields)
    settings = TrainSettings(**BUDGET, **settings_fields, seed=seed)
    model = new_model(name, config, train_set, seed=seed)
    return train(model, train_set, validation_set, settings, log=None)


def style_of(data: Dataset) -> np.ndarray:
    """The Groove style of each sequence, from its file name (``12_funk_95_beat_4-4.mid`` → funk)."""
    names = [Path(data.files[i]).name for i in data.file_index]
    return np.array([name.split("_")[1] if "_" in name else "" for name in names])


def style_check(data_path: Path, name: str, style: str, seed: int) -> dict[str, Any]:
    """Step accuracy and F1 (model's thresholds) on ``style``'s validation bars: one model for every style
    against one trained on ``style`` only."""
    from rackvae import dataset as datasets

    train_set, validation_set = datasets.load(data_path).split(0.1, 0)
    mine = validation_set.subset(np.flatnonzero(style_of(validation_set) == style))
    own = train_set.subset(np.flatnonzero(style_of(train_set) == style))
    result: dict[str, Any] = {"style": style, "seed": seed, "train": len(own), "validation": len(mine)}
    for label, model in (
        ("pooled", trained(name, seed, train_set, validation_set)),
        ("style", trained(name, seed, own, mine)),
    ):
        metrics = reconstruction_figures(model, mine.rolls)
        result[f"{label}_step_accuracy"] = metrics["step_accuracy"]
        result[f"{label}_note_f1"] = metrics["note_f1"]
    return result


def reconstruction_figures(
    model: TrainedModel, rolls: np.ndarray, inputs: np.ndarray | None = None
) -> dict[str, float]:
    """Step accuracy and note F1 of the reconstructions of ``rolls`` (encoded from ``inputs``, default the
    rolls) at 0.5, at the model's thresholds (per group) and at its global threshold."""
    from rackvae.evaluate import reconstruction_metrics

    assert model.thresholds is not None
    probs = model.reconstruct(rolls if inputs is None else inputs)
    at_half = reconstruction_metrics(rolls, probs, 0.5)
    at_model = reconstruction_metrics(rolls, probs, model.cell_thresholds())
    at_global = reconstruction_metrics(rolls, probs, model.thresholds.threshold)
    return {
        "step_accuracy_05": at_half["step_accuracy"],
        "step_accuracy": at_model["step_accuracy"],
        "note_f1_05": at_half["note_f1"],
        "note_f1": at_model["note_f1"],
        "note_f1_global": at_global["note_f1"],
    }


def generation_figures(model: TrainedModel, rolls: np.ndarray) -> dict[str, float]:
    """The 17³ knob grid's and 2,000 prior samples' notes at the model's thresholds over ``rolls``' (the
    validation data's), and the cells that change between neighbouring grid points."""
    from rackvae.evaluate import generation_metrics

    generation = generation_metrics(model, rolls, prior_samples=2000, threshold=model.cell_thresholds())
    return {
        "grid_density_ratio": generation["grid_density"] / generation["data_density"],
        "prior_density_ratio": generation["prior_density"] / generation["data_density"],
        "neighbour_changes": generation["grid_neighbour_changes"],
    }


def run(data_path: Path, name: str, seed: int) -> dict[str, Any]:
    """Train one candidate with one seed; its validation metrics."""
    from rackvae import dataset as datasets

    train_set, validation_set = datasets.load(data_path).split(0.1, 0)
    began = time.perf_counter()
    model = trained(name, seed, train_set, validation_set)
    seconds = time.perf_counter() - began
    assert model.thresholds is not None
    return {
        "candidate": name,
        "seed": seed,
        "decoder_macs": model.config.decoder_macs(),
        **reconstruction_figures(model, validation_set.rolls),
        **generation_figures(model, validation_set.rolls),
        "threshold": model.thresholds.threshold,
        "group_thresholds": list(model.thresholds.group_thresholds),
        "epochs": model.summary["epochs_run"],
        "best_epoch": model.summary["best_epoch"],
        "seconds": seconds,
    }


def table(
    runs: list[dict[str, Any]], names: Iterable[str] = CANDIDATES, metrics: Sequence[str] = METRICS
) -> str:
    """Markdown: one row per candidate of ``names`` that has runs, mean ± sd over its seeds for each of
    ``metrics``."""
    header = ["candidate", "MACs", "seeds", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        mine = [r for r in runs if r["candidate"] == name]
        if not mine:
            continue
        cells = [name, f"{mine[0]['decoder_macs']:,}", str(len(mine))]
        for key in metrics:
            values = [float(r[key]) for r in mine]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            digits = 0 if key in ("epochs", "seconds") else 3
            cells.append(f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="the groove dataset (.npz from rackvae ingest)")
    parser.add_argument(
        "--runs", type=Path, required=True, help="JSON-lines file of finished runs (appended)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per candidate (default: 3)")
    parser.add_argument("--only", action="append", help="run only candidates containing this text")
    parser.add_argument("--table", action="store_true", help="print the table of the runs file and stop")
    parser.add_argument("--style", help="measure a bank: the --only candidate on this style vs on all")
    args = parser.parse_args()

    if args.style:
        names = [n for n in CANDIDATES if any(o in n for o in args.only or ())]
        if len(names) != 1:
            parser.error(f"--style needs --only to name one candidate; it matches {names or 'none'}")
        (name,) = names
        for seed in range(args.seeds):
            result = {"candidate": name, **style_check(args.data, name, args.style, seed)}
            with args.runs.open("a") as file:
                file.write(json.dumps(result) + "\n")
            print(json.dumps(result), flush=True)
        return 0

    args.runs.parent.mkdir(parents=True, exist_ok=True)
    runs = [json.loads(line) for line in args.runs.read_text().splitlines()] if args.runs.exists() else []
    if not args.table:
        done = {(r["candidate"], r["seed"]) for r in runs}
        for seed in range(args.seeds):  # seed-major: every candidate gets a first result early
            for name in CANDIDATES:
                if (name, seed) in done or (args.only and not any(o in name for o in args.only)):
                    continue
                result = run(args.data, name, seed)
                runs.append(result)
                with args.runs.open("a") as file:
                    file.write(json.dumps(result) + "\n")
                shown = ", ".join(f"{k} {result[k]:.3f}" for k in METRICS)
                print(f"{name} seed {seed}: {shown}", flush=True)
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
