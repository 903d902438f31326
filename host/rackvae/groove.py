"""Groove metrics: how well a model's velocities and timing match held-out playing, beside two baselines.

Errors are counted on the cells where both the target and the reconstruction hit (the reconstruction
at the model's own thresholds), so a metric says how a played hit sounds, not whether it is played.
The baselines, fitted on the training split, answer the same cells:

- ``straight``: offset 0 and the training hits' mean velocity (a sequencer without feel);
- ``template``: each row x step's mean velocity and offset over the training hits (what a DAW's groove
  quantise applies); cells without a training hit fall back to ``straight``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rackvae.dataset import Dataset

if TYPE_CHECKING:
    from rackvae.train import TrainedModel

REFERENCE_BPM = 120.0  # timing errors in milliseconds are quoted at this tempo


@dataclass(frozen=True)
class GrooveBaselines:
    """Velocity (0..127) and offset (steps) per cell ``[ticks, rows]`` of the two baselines."""

    straight_velocity: np.ndarray
    straight_offset: np.ndarray
    template_velocity: np.ndarray
    template_offset: np.ndarray


def fit_baselines(train_set: Dataset) -> GrooveBaselines:
    """The straight and groove-template baselines of ``train_set``'s hits."""
    hits = train_set.rolls > 0
    shape = hits.shape[1:]
    velocities = np.where(hits, train_set.velocities, 0).astype(np.float64)
    offsets = np.where(hits, train_set.timing, 0).astype(np.float64)
    mean_velocity = velocities.sum() / max(1, hits.sum())
    counts = hits.sum(axis=0)
    seen = counts > 0
    template_velocity = np.where(seen, velocities.sum(axis=0) / np.maximum(counts, 1), mean_velocity)
    template_offset = np.where(seen, offsets.sum(axis=0) / np.maximum(counts, 1), 0.0)
    return GrooveBaselines(
        straight_velocity=np.full(shape, mean_velocity, np.float32),
        straight_offset=np.zeros(shape, np.float32),
        template_velocity=template_velocity.astype(np.float32),
        template_offset=template_offset.astype(np.float32),
    )


def step_milliseconds(steps_per_quarter: int, bpm: float = REFERENCE_BPM) -> float:
    """The length of one step in milliseconds at ``bpm``."""
    return 60_000.0 / bpm / steps_per_quarter


def groove_metrics(
    model: TrainedModel, data: Dataset, baselines: GrooveBaselines, steps_per_quarter: int = 4
) -> dict[str, Any]:
    """Velocity MAE (0..127) and timing MAE (steps, ms at ``REFERENCE_BPM``) of ``model``'s
    reconstructions of ``data`` and of both baselines, on the cells where target and reconstruction hit.
    """
    if model.config.channels == 1:
        raise ValueError(f"model {model.name} decodes hits only: no velocity or timing to measure")
    means, _ = model.encode(model.inputs(data))
    outputs = model.decode_outputs(means)
    both = (data.rolls > 0) & (outputs["hits"] >= model.cell_thresholds())
    target_velocity = data.velocities[both].astype(np.float64)
    target_offset = data.timing[both].astype(np.float64)
    step_ms = step_milliseconds(steps_per_quarter)

    def errors(velocity: np.ndarray | None, offset: np.ndarray | None) -> dict[str, float]:
        result: dict[str, float] = {}
        if velocity is not None:
            result["velocity_mae"] = _mean_abs(velocity - target_velocity)
        if offset is not None:
            result["timing_mae_steps"] = _mean_abs(offset - target_offset)
            result["timing_mae_ms"] = result["timing_mae_steps"] * step_ms
        return result

    def at_cells(per_cell: np.ndarray) -> np.ndarray:
        return np.broadcast_to(per_cell, both.shape)[both].astype(np.float64)

    return {
        "cells": int(np.count_nonzero(both)),
        "target_hits": int(np.count_nonzero(data.rolls)),
        "step_ms": step_ms,
        "model": errors(
            outputs["velocity"][both].astype(np.float64) if "velocity" in outputs else None,
            outputs["offset"][both].astype(np.float64) if "offset" in outputs else None,
        ),
        "straight": errors(at_cells(baselines.straight_velocity), at_cells(baselines.straight_offset)),
        "template": errors(at_cells(baselines.template_velocity), at_cells(baselines.template_offset)),
    }


def _mean_abs(errors: np.ndarray) -> float:
    return float(np.abs(errors).mean()) if len(errors) else 0.0


def format_groove_table(metrics: dict[str, Any]) -> str:
    """The groove metrics as a small table: one line per source."""
    lines = [
        f"groove on {metrics['cells']:,} cells where target and reconstruction hit"
        f" (of {metrics['target_hits']:,} target hits); a step is {metrics['step_ms']:g} ms at"
        f" {REFERENCE_BPM:g} BPM",
        f"  {'':10}{'velocity MAE':>14}{'timing MAE (steps)':>20}{'timing MAE (ms)':>17}",
    ]
    for source in ("model", "template", "straight"):
        values = metrics[source]

        def cell(key: str, digits: int, values: dict[str, float] = values) -> str:
            return f"{values[key]:.{digits}f}" if key in values else "-"

        lines.append(
            f"  {source:10}{cell('velocity_mae', 2):>14}{cell('timing_mae_steps', 4):>20}"
            f"{cell('timing_mae_ms', 2):>17}"
        )
    return "\n".join(lines)
