"""Pictures of generated music: a sheet of rolls and the latent map, rows named by instrument or pitch.

Like ``rackvae.plots``, every function takes numpy arrays and returns a ``matplotlib.figure.Figure``
(no pyplot); ``rackvae.plots.save_png`` writes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

NOTE_COLOUR = "Blues"


def _draw(axes: Any, roll: np.ndarray, steps_per_beat: int) -> None:
    """One roll, time left to right and row 0 at the bottom, a line at every beat."""
    ticks, rows = roll.shape
    axes.imshow(
        roll.T, origin="lower", aspect="auto", cmap=NOTE_COLOUR, vmin=0, vmax=1.4, interpolation="nearest"
    )
    for beat in range(steps_per_beat, ticks, steps_per_beat):
        axes.axvline(beat - 0.5, color="0.6", linewidth=0.6)
    axes.set_xlim(-0.5, ticks - 0.5)
    axes.set_ylim(-0.5, rows - 0.5)


def roll_sheet(
    rolls: np.ndarray, labels: Sequence[str], titles: Sequence[str], steps_per_beat: int = 4, columns: int = 2
) -> Figure:
    """Rolls ``[N, ticks, rows]`` in a grid of ``columns``, each titled, the rows named by ``labels``."""
    count, ticks, rows = rolls.shape
    columns = min(columns, count)
    lines = -(-count // columns)
    figure = Figure(figsize=(5.5 * columns, (0.9 + 0.16 * rows) * lines + 0.3))
    for index, (roll, title) in enumerate(zip(rolls, titles, strict=True)):
        axes = figure.add_subplot(lines, columns, index + 1)
        _draw(axes, roll, steps_per_beat)
        axes.set_yticks(range(rows), labels, fontsize=6 if rows <= 24 else 4)
        axes.set_xticks(
            range(0, ticks, steps_per_beat), [str(t + 1) for t in range(0, ticks, steps_per_beat)]
        )
        axes.tick_params(axis="x", labelsize=7)
        axes.set_title(title, fontsize=8, loc="left")
    figure.tight_layout()
    return figure


def map_sheet(
    rolls: np.ndarray,
    labels: Sequence[str],
    values: np.ndarray,
    axes_pair: tuple[int, int],
    at: float,
    volts_per_unit: float,
    latent_dim: int,
) -> Figure:
    """The latent map: rolls ``[points * points, ticks, rows]`` (cell ``i * points + j`` at ``values[i]``
    on the first axis, left to right, and ``values[j]`` on the second, bottom to top), like Grids' drum map.
    Axis values are given in latent units and in knob volts; the left column names the rows."""
    points = len(values)
    _, ticks, rows = rolls.shape
    a, b = axes_pair
    figure = Figure(figsize=(2.0 * points + 1.6, (0.35 + 0.075 * rows) * points + 1.0))
    grid = figure.add_gridspec(points, points, wspace=0.06, hspace=0.1)
    for i in range(points):
        for j in range(points):
            axes = figure.add_subplot(grid[points - 1 - j, i])
            _draw(axes, rolls[i * points + j], max(1, ticks // 4))
            axes.set_xticks([])
            axes.set_yticks([])
            if i == 0:
                axes.set_yticks(range(rows), labels, fontsize=4 if rows <= 16 else 3)
                axes.set_ylabel(f"z{b} {values[j]:+.2f}\n({values[j] * volts_per_unit:+.1f} V)", fontsize=7)
            if j == 0:
                axes.set_xlabel(f"z{a} {values[i]:+.2f} ({values[i] * volts_per_unit:+.1f} V)", fontsize=7)
    others = ", ".join(f"z{d}" for d in range(latent_dim) if d not in axes_pair)
    suffix = f"; {others} at {at:+.2f}" if others else ""
    figure.suptitle(f"latent map: z{a} left to right, z{b} bottom to top{suffix}", fontsize=10)
    return figure
