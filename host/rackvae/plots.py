"""PNG plots of a model: latent pairs, output histogram, input vs output rolls (and, for groove models,
their velocities and offsets), loss curves, latent map.

Every function takes numpy arrays and returns a ``matplotlib.figure.Figure`` (no pyplot, no display, no
global backend state); ``save_png`` writes one atomically. In a notebook a returned figure shows itself.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from rackvae.atomic import atomic_write_bytes
from rackvae.dataset import RollLayout

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def save_png(figure: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Render ``figure`` as PNG and write it atomically to ``path``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def row_labels(layout: RollLayout) -> list[str]:
    """Names for the rows of a roll: instrument names, or note names from ``base_note`` up."""
    if layout.row_names:
        return list(layout.row_names)
    if layout.kind == "note":
        return [
            f"{NOTE_NAMES[(layout.base_note + r) % 12]}{(layout.base_note + r) // 12 - 1}"
            for r in range(layout.rows)
        ]
    return [str(r) for r in range(layout.rows)]


def latent_pairs(means: np.ndarray, scale: float) -> Figure:
    """A scatter plot of every pair of latent dimensions of encoder means ``[N, latent_dim]``."""
    pairs = list(itertools.combinations(range(means.shape[1]), 2)) or [(0, 0)]
    figure = Figure(figsize=(4 * len(pairs), 4))
    for i, (a, b) in enumerate(pairs):
        axes = figure.add_subplot(1, len(pairs), i + 1)
        axes.scatter(means[:, a], means[:, b], s=2, alpha=0.3, color="tab:blue", linewidths=0)
        axes.set(xlim=(-scale, scale), ylim=(-scale, scale), xlabel=f"z{a}", ylabel=f"z{b}", aspect="equal")
    figure.suptitle(f"encoder means of {len(means)} sequences")
    return figure


def output_histogram(probs: np.ndarray) -> Figure:
    """Histogram of output probabilities: a good model piles them near 0 and 1 with a dip between."""
    figure = Figure(figsize=(8, 4))
    axes = figure.add_subplot()
    axes.hist(probs.ravel(), bins=100, range=(0.0, 1.0), color="tab:blue", log=True)
    axes.set(xlabel="output probability", ylabel="cells (log)", title="output value distribution")
    return figure


def _draw_roll(axes: Any, roll: np.ndarray, labels: Sequence[str], title: str) -> None:
    axes.imshow(
        roll.T, origin="lower", aspect="auto", cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest"
    )
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xticks(range(0, roll.shape[0], 4))
    axes.set(title=title, xlabel="tick")


def input_output(
    targets: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    threshold: float | np.ndarray = 0.5,
    indices: Sequence[int] = (),
) -> Figure:
    """Input rolls beside the model's probabilities and thresholded output, one row per sequence
    (``threshold``: one for every cell, or one per row: the model's own)."""
    indices = list(indices) or list(range(len(targets)))
    figure = Figure(figsize=(12, 3 * len(indices)))
    for row, (target, prob, index) in enumerate(zip(targets, probs, indices, strict=True)):
        panels = (
            (target, f"input #{index}"),
            (prob, "output probability"),
            (
                prob >= threshold,
                f"output >= {threshold}" if np.ndim(threshold) == 0 else "output (model's thresholds)",
            ),
        )
        for col, (roll, title) in enumerate(panels):
            _draw_roll(
                figure.add_subplot(len(indices), 3, 3 * row + col + 1), np.asarray(roll, float), labels, title
            )
    figure.tight_layout()
    return figure


def groove_rolls(
    inputs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    outputs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    labels: Sequence[str],
    indices: Sequence[int] = (),
) -> Figure:
    """Velocity/offset rolls of groove sequences, input beside output: each hit ``(hits, velocities,
    offsets)``, all ``[ticks, rows]``, drawn as a mark on its row at step + offset, coloured by its
    velocity (0..127)."""
    indices = list(indices) or list(range(len(inputs)))
    figure = Figure(figsize=(12, 3 * len(indices)))
    colours = None
    for row, (source, result, index) in enumerate(zip(inputs, outputs, indices, strict=True)):
        for col, ((hits, velocities, offsets), title) in enumerate(
            ((source, f"input #{index}"), (result, "output (model's thresholds)"))
        ):
            axes = figure.add_subplot(len(indices), 2, 2 * row + col + 1)
            tick, cell = np.nonzero(np.asarray(hits) > 0)
            start = tick + np.asarray(offsets, float)[tick, cell]
            colours = axes.scatter(
                start, cell, c=np.asarray(velocities, float)[tick, cell], cmap="viridis", vmin=0, vmax=127,
                marker="|", s=160, linewidths=3,
            )  # fmt: skip
            for step in range(hits.shape[0]):  # the grid: a hit on its step sits on the line
                axes.axvline(step, color="0.6" if step % 4 == 0 else "0.88", lw=0.5, zorder=0)
            axes.set_yticks(range(len(labels)), labels, fontsize=7)
            axes.set(
                title=title,
                xlabel="step (+ offset)",
                xlim=(-0.6, hits.shape[0]),
                ylim=(-0.5, len(labels) - 0.5),
            )
    if colours is not None:
        figure.colorbar(colours, ax=figure.axes, label="velocity", fraction=0.02)
    return figure


def loss_curves(history: dict[str, list[Any]]) -> Figure:
    """Loss (train and validation), its reconstruction and KL parts, and the learning rate per epoch."""
    epochs = np.arange(1, len(history["loss"]) + 1)

    def series(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in history.get(key, [])], float)

    figure = Figure(figsize=(14, 4))
    loss, parts, rate = (figure.add_subplot(1, 3, i) for i in (1, 2, 3))
    loss.plot(epochs, series("loss"), label="train")
    if np.isfinite(series("val_loss")).any():
        loss.plot(epochs, series("val_loss"), label="validation")
    loss.set(xlabel="epoch", ylabel="loss", title="loss")
    loss.legend()
    for key, style in (("reconstruction", "-"), ("kl", "-"), ("val_reconstruction", "--"), ("val_kl", "--")):
        if np.isfinite(series(key)).any():
            parts.plot(epochs, series(key), style, label=key)
    parts.set(xlabel="epoch", title="reconstruction and KL")
    if parts.lines:
        parts.legend()
    rate.semilogy(epochs, series("learning_rate"))
    rate.set(xlabel="epoch", title="learning rate")
    figure.tight_layout()
    return figure


def latent_map(
    decode: Callable[[np.ndarray], np.ndarray],
    latent_dim: int,
    scale: float,
    axes_pair: tuple[int, int] = (0, 1),
    points: int = 7,
    threshold: float | np.ndarray = 0.5,
) -> Figure:
    """A grid of decoded rolls over two latent axes (the others at 0), like Grids' drum map.

    ``decode`` maps latents ``[N, latent_dim]`` to probabilities ``[N, ticks, rows]``.
    """
    values = np.linspace(-scale, scale, points, dtype=np.float32)
    latents = np.zeros((points * points, latent_dim), np.float32)
    a, b = axes_pair
    latents[:, a] = np.repeat(values, points)
    if b < latent_dim:  # a 1-D model repeats its one axis on every row
        latents[:, b] = np.tile(values, points)
    rolls = decode(latents) >= threshold
    ticks, rows = rolls.shape[1:]
    # One image: each cell a roll (time left to right, rows bottom to top), separated by a gap.
    mosaic = np.full((points * (rows + 1), points * (ticks + 1)), 0.25)
    for i, j in itertools.product(range(points), range(points)):
        roll = rolls[i * points + j]
        mosaic[j * (rows + 1) : j * (rows + 1) + rows, i * (ticks + 1) : i * (ticks + 1) + ticks] = roll.T
    figure = Figure(figsize=(1.6 * points, 1.6 * points * (rows + 1) / (ticks + 1) + 0.6))
    axes = figure.add_subplot()
    axes.imshow(mosaic, origin="lower", cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes.set_xticks([i * (ticks + 1) + ticks / 2 for i in range(points)], [f"{v:.1f}" for v in values])
    axes.set_yticks([j * (rows + 1) + rows / 2 for j in range(points)], [f"{v:.1f}" for v in values])
    other = "" if latent_dim <= 2 else " (other dimensions 0)"
    axes.set(xlabel=f"z{a}", ylabel=f"z{b}" if b < latent_dim else "", title=f"latent map{other}")
    return figure
