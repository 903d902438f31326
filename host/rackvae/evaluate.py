"""Is a model any good? Reconstruction metrics per split, a constant-roll baseline, generation statistics.

Reconstructions decode the encoder mean and switch a cell on when its probability is >= a threshold:
0.5 (as the original's recall) and the model's own thresholds (``rackvae.calibrate``: per percussion
group, where the module plays). Generation statistics (the knob grid, prior samples) are taken at the
model's thresholds. A model that does not beat the constant roll (each cell on when it is on in more
than half of the training sequences) on held-out data has learned nothing.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from rackvae import plots
from rackvae.model import split_outputs
from rackvae.train import TrainedModel, constant_roll

THRESHOLD = 0.5
Threshold = float | np.ndarray  # one for every cell, or one per row ``[rows]`` (the model's own)
# Metrics compared between the model and the constant roll, in table order.
RECONSTRUCTION_KEYS = (
    "exact_recall",
    "step_accuracy",
    "element_accuracy",
    "note_precision",
    "note_recall",
    "note_f1",
)


def _ratio(numerator: float, denominator: float) -> float:
    """A share that is 0 when nothing was counted (e.g. precision when nothing was predicted)."""
    return float(numerator / denominator) if denominator else 0.0


def reconstruction_metrics(
    targets: np.ndarray, probs: np.ndarray, threshold: Threshold = THRESHOLD
) -> dict[str, float]:
    """Compare rolls ``[N, ticks, rows]`` (0/1) with predicted probabilities of the same shape, a cell on
    when its probability is >= ``threshold`` (a number, or one per row).

    - ``exact_recall``: share of sequences reproduced cell for cell (the seed text's "recall");
    - ``step_accuracy``: share of (sequence, tick) steps whose whole row is right (MusicVAE's
      per-step reconstruction accuracy);
    - ``element_accuracy``: share of cells right (the original ``calcRecall``);
    - ``note_precision`` / ``note_recall`` / ``note_f1``: over cells that are on.
    """
    if targets.shape != probs.shape or targets.ndim != 3:
        raise ValueError(f"targets {targets.shape} and probs {probs.shape} must both be [N, ticks, rows]")
    truth = targets.astype(bool)
    predicted = probs >= threshold
    right = truth == predicted
    true_pos = int(np.sum(truth & predicted))
    precision = _ratio(true_pos, int(predicted.sum()))
    recall = _ratio(true_pos, int(truth.sum()))
    return {
        "sequences": len(targets),
        "exact_recall": float(right.all(axis=(1, 2)).mean()) if len(targets) else 0.0,
        "step_accuracy": float(right.all(axis=2).mean()) if len(targets) else 0.0,
        "element_accuracy": float(right.mean()) if len(targets) else 0.0,
        "note_precision": precision,
        "note_recall": recall,
        "note_f1": _ratio(2 * precision * recall, precision + recall),
    }


def hits_per_bar(rolls: np.ndarray, group_sizes: tuple[int, ...], bars: int = 1) -> dict[str, Any]:
    """Notes per bar of 0/1 ``rolls`` ``[N, ticks, rows]`` (sequences of ``bars`` bars): all rows, and each
    group of consecutive rows (``group_sizes``; none for note rolls)."""
    per_sequence = rolls.sum(axis=1, dtype=np.float64).mean(axis=0) / bars if len(rolls) else np.zeros(0)
    starts = np.cumsum((0, *group_sizes))
    groups = [float(per_sequence[a:b].sum()) for a, b in itertools.pairwise(starts)]
    return {"all": float(per_sequence.sum()), "groups": groups}


def split_metrics(
    model: TrainedModel, rolls: np.ndarray, baseline: np.ndarray, inputs: np.ndarray | None = None
) -> dict[str, Any]:
    """Reconstruction metrics (at 0.5 and at the model's thresholds), the notes per bar of the data and of
    the reconstructions at the model's thresholds, loss terms at the encoder mean and the baseline's
    metrics for one split. ``inputs``: what the model encodes (a groove model's channels; default the
    rolls)."""
    inputs = rolls if inputs is None else inputs
    probs = model.reconstruct(inputs)
    cells = model.cell_thresholds()
    metrics: dict[str, Any] = reconstruction_metrics(rolls, probs)
    at_model = reconstruction_metrics(rolls, probs, cells)
    metrics["at_model_threshold"] = {key: at_model[key] for key in RECONSTRUCTION_KEYS}
    groups, bars = model.layout.group_sizes, int(model.dataset_settings.get("bars_per_sequence", 1))
    metrics["hits_per_bar"] = {
        "data": hits_per_bar(rolls, groups, bars),
        "reconstruction": hits_per_bar(probs >= cells, groups, bars),
    }
    reconstruction, kl = model.loss_terms(inputs)
    kl_total = kl.sum(axis=1)
    metrics["reconstruction"] = float(reconstruction.mean())
    metrics["kl"] = float(kl_total.mean())
    metrics["kl_per_dim"] = [float(v) for v in kl.mean(axis=0)]
    metrics["elbo"] = float(-(reconstruction + kl_total).mean())
    constant = np.broadcast_to(baseline, rolls.shape).astype(np.float32)
    base = reconstruction_metrics(rolls, constant)
    metrics.update({f"baseline_{key}": base[key] for key in RECONSTRUCTION_KEYS})
    return metrics


def latent_grid(latent_dim: int, scale: float, points: int) -> np.ndarray:
    """``points ** latent_dim`` latents ``[P, latent_dim]`` evenly over the ±``scale`` cube (C order)."""
    axis = np.linspace(-scale, scale, points, dtype=np.float32)
    return np.array(list(itertools.product(axis, repeat=latent_dim)), np.float32).reshape(-1, latent_dim)


def grid_points_for(latent_dim: int, budget: int = 4096) -> int:
    """Points per axis so the grid holds at most ``budget`` latents (at least 2 per axis)."""
    points = 2
    while (points + 1) ** latent_dim <= budget:
        points += 1
    return points


def neighbour_changes(grid_rolls: np.ndarray, points: int, latent_dim: int) -> float:
    """Mean number of cells that differ between neighbouring grid points (along any one axis)."""
    cube = grid_rolls.reshape((points,) * latent_dim + (-1,)).astype(np.int16)
    changes = [np.abs(np.diff(cube, axis=axis)).sum(axis=-1).ravel() for axis in range(latent_dim)]
    return float(np.concatenate(changes).mean())


def novelty(generated: np.ndarray, training: np.ndarray) -> float:
    """Share of generated rolls that are not exactly a training roll."""
    seen = {row.tobytes() for row in training.reshape(len(training), -1).astype(np.uint8)}
    flat = generated.reshape(len(generated), -1).astype(np.uint8)
    return float(np.mean([row.tobytes() not in seen for row in flat])) if len(flat) else 0.0


def generation_metrics(
    model: TrainedModel,
    training: np.ndarray | None,
    *,
    prior_samples: int = 1000,
    grid_budget: int = 17**3,  # 17 points per axis in 3-D: neighbours 1/16 of the range apart
    seed: int = 0,
    threshold: Threshold = THRESHOLD,
) -> dict[str, Any]:
    """What the decoder makes from a grid over the latent cube and from prior samples at ``threshold``.

    Reports notes per step per row (density, overall and per row) and notes per bar (overall and per
    group) against the training data, the share
    of generated rolls not in the training set, the share of distinct and of empty rolls, and the mean
    number of cells changing between neighbouring grid points (smoothness; the grid step is
    ``2 * latent_scale / (points - 1)``).
    """
    config = model.config
    points = grid_points_for(config.latent_dim, grid_budget)
    grid = model.decode(latent_grid(config.latent_dim, config.latent_scale, points)) >= threshold
    prior_latents = np.random.default_rng(seed).standard_normal((prior_samples, config.latent_dim))
    prior = model.decode(prior_latents.astype(np.float32)) >= threshold
    result: dict[str, Any] = {
        "grid_points_per_dim": points,
        "grid_step": 2 * config.latent_scale / (points - 1),
        "grid_neighbour_changes": neighbour_changes(grid, points, config.latent_dim),
        "prior_samples": prior_samples,
        "row_density": {},
        "hits_per_bar": {},
    }
    sources = {"grid": grid, "prior": prior}
    if training is not None:
        sources = {"data": training.astype(bool), **sources}
    for name, rolls in sources.items():
        result[f"{name}_density"] = float(rolls.mean())
        result["row_density"][name] = [float(v) for v in rolls.mean(axis=(0, 1))]
        bars = int(model.dataset_settings.get("bars_per_sequence", 1))
        result["hits_per_bar"][name] = hits_per_bar(rolls, model.layout.group_sizes, bars)
        if name != "data":
            flat = rolls.reshape(len(rolls), -1)
            result[f"{name}_distinct"] = len(np.unique(flat, axis=0)) / len(flat)
            result[f"{name}_empty"] = float((~flat.any(axis=1)).mean())
            result[f"{name}_novel"] = novelty(rolls, training) if training is not None else None
    return result


def evaluate(
    model: TrainedModel,
    splits: dict[str, np.ndarray],
    training: np.ndarray | None,
    *,
    primary: str | None = None,
    baseline: np.ndarray | None = None,
    prior_samples: int = 1000,
    seed: int = 0,
    inputs: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """All metrics of ``model`` on named splits of rolls ``[N, ticks, rows]`` as one JSON-able dict.
    ``inputs`` holds what a groove model encodes of each split (``TrainedModel.inputs``).

    ``training`` holds the training rolls (for the baseline and novelty; may be None when the data is not
    at hand, then ``baseline`` must be given). The ``primary`` split's reconstruction metrics and
    baseline step accuracy are repeated at the top level (default: "validation" if present, else the
    last split).
    """
    if baseline is None:
        if training is None:
            raise ValueError("need the training rolls or a baseline roll")
        baseline = constant_roll(training)
    splits = {name: rolls for name, rolls in splits.items() if len(rolls)}
    if not splits:
        raise ValueError("no sequences to evaluate")
    primary = primary or ("validation" if "validation" in splits else list(splits)[-1])
    inputs = inputs or {}
    per_split = {
        name: split_metrics(model, rolls, baseline, inputs.get(name)) for name, rolls in splits.items()
    }
    headline = {
        key: per_split[primary][key]
        for key in (*RECONSTRUCTION_KEYS, "elbo", "baseline_step_accuracy", "baseline_element_accuracy")
    }
    cells = model.cell_thresholds()
    return {
        "model": model.name,
        "primary_split": primary,
        **headline,
        "at_model_threshold": per_split[primary]["at_model_threshold"],
        "thresholds": model.thresholds.to_dict() if model.thresholds is not None else None,
        "splits": per_split,
        "generation": generation_metrics(
            model, training, prior_samples=prior_samples, seed=seed, threshold=cells
        ),
    }


def write_plots(
    model: TrainedModel,
    rolls: np.ndarray,
    directory: str | Path,
    examples: int = 4,
    threshold: Threshold | None = None,
    inputs: np.ndarray | None = None,
) -> list[Path]:
    """Write the model's PNG plots for ``rolls`` (encoded from ``inputs``, default the rolls) into
    ``directory`` (thresholded at ``threshold``, default the model's own); returns the files written."""
    directory = Path(directory)
    threshold = model.cell_thresholds() if threshold is None else threshold
    means, _ = model.encode(rolls if inputs is None else inputs)
    probs = model.decode(means)
    chosen = np.unique(np.linspace(0, len(rolls) - 1, examples).astype(int))
    scale = model.config.latent_scale
    figures = {
        "latent_pairs.png": plots.latent_pairs(means, scale),
        "output_histogram.png": plots.output_histogram(probs),
        "input_output.png": plots.input_output(
            rolls[chosen], probs[chosen], plots.row_labels(model.layout), threshold, chosen.tolist()
        ),
        "latent_map.png": plots.latent_map(model.decode, model.config.latent_dim, scale, threshold=threshold),
    }
    if model.config.channels > 1 and inputs is not None:
        figures["groove_rolls.png"] = plots.groove_rolls(
            _groove_channels(model, split_outputs(model.config, inputs[chosen])),
            _groove_channels(model, model.decode_outputs(means[chosen]), threshold),
            plots.row_labels(model.layout),
            chosen.tolist(),
        )
    if model.history.get("loss"):
        figures["loss_curves.png"] = plots.loss_curves(model.history)
    return [plots.save_png(figure, directory / name) for name, figure in figures.items()]


def _groove_channels(
    model: TrainedModel, channels: dict[str, np.ndarray], threshold: Threshold = 0.5
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(hits, velocities, offsets) of each sequence; a channel the model lacks plays straight at 90."""
    hits = channels["hits"] >= threshold
    velocities = channels.get("velocity", np.full(hits.shape, 90.0))
    offsets = channels.get("offset", np.zeros(hits.shape))
    return list(zip(hits, velocities, offsets, strict=True))


def _align(rows: list[list[str]]) -> list[str]:
    """Left-align the first column, right-align the others."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def format_hits(hits: dict[str, Any]) -> str:
    """Notes per bar: all rows, then each group in brackets."""
    groups = " ".join(f"{v:.2f}" for v in hits["groups"])
    return f"{hits['all']:.2f}" + (f" ({groups})" if groups else "")


def format_table(metrics: dict[str, Any]) -> str:
    """``evaluate``'s metrics as text: model vs constant roll per split, then the generation statistics."""
    splits = metrics["splits"]
    names = list(splits)
    blank = [""] * len(names)
    rows = [
        [
            "metric",
            *(f"{name} ({splits[name]['sequences']})" for name in names),
            *(f"constant roll {name}" for name in names),
        ]
    ]
    for key in RECONSTRUCTION_KEYS:
        model_cells = [f"{splits[name][key]:.4f}" for name in names]
        rows.append([key, *model_cells, *(f"{splits[name]['baseline_' + key]:.4f}" for name in names)])
    for key in RECONSTRUCTION_KEYS:
        cells = [f"{splits[name]['at_model_threshold'][key]:.4f}" for name in names]
        rows.append([f"{key} @ model", *cells, *blank])
    for source in ("data", "reconstruction"):
        cells = [format_hits(splits[name]["hits_per_bar"][source]) for name in names]
        rows.append([f"notes per bar, {source}" + (" @ model" if source != "data" else ""), *cells, *blank])
    for key in ("reconstruction", "kl", "elbo"):
        rows.append([key, *(f"{splits[name][key]:.3f}" for name in names), *blank])
    rows.append(
        ["kl_per_dim", *(" ".join(f"{v:.2f}" for v in splits[name]["kl_per_dim"]) for name in names), *blank]
    )

    generation = metrics["generation"]
    gen_rows = [["generation", "data", "grid", "prior"]]
    labels = {
        "density": "notes per step per row",
        "distinct": "distinct",
        "empty": "empty",
        "novel": "not in training",
    }
    for key, label in labels.items():
        values = (generation.get(f"{source}_{key}") for source in ("data", "grid", "prior"))
        gen_rows.append([label, *("" if value is None else f"{value:.4f}" for value in values)])
    hits = generation["hits_per_bar"]
    gen_rows.append(
        ["notes per bar", *(format_hits(hits[s]) if s in hits else "" for s in ("data", "grid", "prior"))]
    )
    thresholds = metrics.get("thresholds")
    at = (
        f"{thresholds['threshold']:.3f}, per group "
        + " ".join(f"{t:.3f}" for t in thresholds["group_thresholds"])
        if thresholds
        else f"{THRESHOLD} (the model has no thresholds of its own)"
    )
    return "\n".join(
        [
            f"@ model: at the model's thresholds ({at}); generation at the model's thresholds",
            *_align(rows),
            "",
            *_align(gen_rows),
            f"grid: {generation['grid_points_per_dim']} points per dimension"
            f" (step {generation['grid_step']:.2f}),"
            f" {generation['grid_neighbour_changes']:.2f} cells change between neighbouring points;"
            f" {generation['prior_samples']} prior samples",
        ]
    )
