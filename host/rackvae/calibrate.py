"""The model's own threshold: where its decoded density equals the data's.

A VAE trained with binary cross-entropy is not calibrated for 0.5: a rare cell (a tom, a crash) almost
never reaches 0.5, so at 0.5 the model plays too few notes, and at a low fixed threshold too many.
After training, the threshold is chosen on held-out bars (the validation split) so that the
reconstructions decoded from the encoder means play as many notes as those bars hold. Percussion
models also get one threshold per output group (``RollLayout.group_sizes``), each matching its own
group's density, so every part plays as often as in the data.

``model.json`` stores them as ``"thresholds": {"threshold": t, "group_thresholds": [t_g, ...]}`` (an
empty list for note models); the exporter writes them into the model's files and the C core plays a
percussion row of group ``g`` when ``p >= group_thresholds[g]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Models and files without calibration play here: the C core's RV_DEFAULT_THRESHOLD (the top of the original
# module's threshold knob; rv_limits.h says why), so JAX, exported files and the module agree.
DEFAULT_THRESHOLD = 0.3


@dataclass(frozen=True)
class Thresholds:
    """The global threshold and, for percussion models, one per output group (empty for note models)."""

    threshold: float
    group_thresholds: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for value in (self.threshold, *self.group_thresholds):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"thresholds must be in [0, 1], got {value}")

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "group_thresholds": list(self.group_thresholds)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        return cls(float(data["threshold"]), tuple(float(t) for t in data.get("group_thresholds", ())))

    def per_row(self, rows: int, group_sizes: tuple[int, ...]) -> np.ndarray:
        """The threshold of each row ``[rows]``: its group's, or the global one (note models, or rows
        past the last group)."""
        result = np.full(rows, self.threshold, np.float32)
        if self.group_thresholds:
            groups = np.repeat(np.arange(len(group_sizes)), group_sizes)[:rows]
            result[: len(groups)] = np.asarray(self.group_thresholds, np.float32)[groups]
        return result


def density_threshold(probs: np.ndarray, count: int) -> float:
    """The threshold at which exactly ``count`` of ``probs`` are on (``p >= threshold``).

    Halfway between the ``count``-th and the next largest probability, so small perturbations (float16,
    the 1/255 steps of the exported byte) move it least. ``count`` 0 gives a threshold just above the
    largest probability, ``count`` = all just at the smallest.
    """
    flat = np.sort(np.asarray(probs, np.float64).ravel())[::-1]
    if flat.size == 0:
        raise ValueError("no probabilities to calibrate on")
    count = int(np.clip(count, 0, flat.size))
    if count == 0:
        return float(min(1.0, flat[0] + 1e-6))
    if count == flat.size:
        return float(flat[-1])
    return float((flat[count - 1] + flat[count]) / 2)


def fit_thresholds(rolls: np.ndarray, probs: np.ndarray, group_sizes: tuple[int, ...] = ()) -> Thresholds:
    """Thresholds at which ``probs`` (reconstructions ``[N, ticks, rows]`` of ``rolls``) hold as many
    notes as ``rolls``: overall, and per group of ``group_sizes`` (percussion). A group without a note in
    ``rolls`` keeps the global threshold (there is nothing to match)."""
    if rolls.shape != probs.shape or rolls.ndim != 3:
        raise ValueError(f"rolls {rolls.shape} and probs {probs.shape} must both be [N, ticks, rows]")
    truth = rolls.astype(bool)
    threshold = density_threshold(probs, int(truth.sum()))
    groups = []
    start = 0
    for size in group_sizes:
        notes = int(truth[..., start : start + size].sum())
        groups.append(density_threshold(probs[..., start : start + size], notes) if notes else threshold)
        start += size
    return Thresholds(threshold, tuple(groups))
