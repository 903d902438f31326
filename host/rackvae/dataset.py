"""Encoded datasets: rolls + velocities + provenance, saved as ``.npz``, split by file.

``Dataset`` is the boundary between ingestion (``rackvae ingest``) and training: everything the
trainer, the evaluator and the exporter need to know about the rows and the grid travels with it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rackvae.atomic import atomic_write_bytes

RollKind = Literal["note", "perc"]


class DatasetError(Exception):
    """A dataset file that cannot be read, named with the reason."""


@dataclass(frozen=True)
class RollLayout:
    """What the rows of a roll mean.

    Note rolls: row ``r`` is MIDI note ``base_note + r``. Percussion rolls: rows are instrument slots,
    consecutive per group (``group_sizes``, summing to the row count); ``row_notes`` holds each row's
    representative MIDI note, used when decoding back to MIDI.
    """

    kind: RollKind
    rows: int
    base_note: int = 0
    group_sizes: tuple[int, ...] = ()
    row_names: tuple[str, ...] = ()
    row_notes: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RollLayout:
        return cls(
            kind=data["kind"],
            rows=int(data["rows"]),
            base_note=int(data.get("base_note", 0)),
            group_sizes=tuple(int(s) for s in data.get("group_sizes", ())),
            row_names=tuple(data.get("row_names", ())),
            row_notes=tuple(int(n) for n in data.get("row_notes", ())),
        )


@dataclass
class Dataset:
    """Sequences as ``rolls[n, tick, row]`` (0/1) and ``velocities`` (0..127) of the same shape.

    ``settings`` are the encoding settings that produced it (JSON-able), so the same encoding can be
    applied to new files. Provenance: ``files[file_index[n]]``, ``track[n]``, ``bar[n]`` (first bar).
    """

    rolls: np.ndarray
    velocities: np.ndarray
    layout: RollLayout
    settings: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    file_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    track: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    bar: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __post_init__(self) -> None:
        n = len(self.rolls)
        if self.rolls.ndim != 3 or self.velocities.shape != self.rolls.shape:
            raise ValueError(f"rolls {self.rolls.shape} and velocities {self.velocities.shape} must match [N, ticks, rows]")
        if self.rolls.shape[2] != self.layout.rows:
            raise ValueError(f"rolls have {self.rolls.shape[2]} rows, layout says {self.layout.rows}")
        for name in ("file_index", "track", "bar"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} sequences")

    def __len__(self) -> int:
        return len(self.rolls)

    @property
    def ticks(self) -> int:
        return int(self.rolls.shape[1])

    @property
    def rows(self) -> int:
        return int(self.rolls.shape[2])

    def subset(self, index: np.ndarray) -> Dataset:
        """The sequences at ``index`` (indices or a boolean mask), provenance kept."""
        return dataclasses.replace(
            self,
            rolls=self.rolls[index],
            velocities=self.velocities[index],
            file_index=self.file_index[index],
            track=self.track[index],
            bar=self.bar[index],
        )

    def split(self, validation_fraction: float = 0.1, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Train/validation split by file: every sequence of one file lands on the same side.

        A file's side depends only on its path and ``seed`` (a hash), so adding files to a folder does
        not move the others between sides.
        """
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        threshold = int(validation_fraction * 2**32)
        on_validation = np.array(
            [zlib.crc32(f"{seed}:{Path(name).name}".encode()) < threshold for name in self.files], dtype=bool
        )
        mask = on_validation[self.file_index] if len(self.files) else np.zeros(len(self), bool)
        return self.subset(~mask), self.subset(mask)

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` atomically (rolls, velocities, provenance, settings and layout as JSON)."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            rolls=self.rolls.astype(np.uint8),
            velocities=self.velocities.astype(np.uint8),
            files=np.array(self.files, dtype=np.str_),
            file_index=self.file_index.astype(np.int32),
            track=self.track.astype(np.int32),
            bar=self.bar.astype(np.int32),
            settings=np.array(json.dumps(self.settings, sort_keys=True)),
            layout=np.array(json.dumps(self.layout.to_dict(), sort_keys=True)),
        )
        atomic_write_bytes(path, buffer.getvalue())


def load(path: str | Path) -> Dataset:
    """Read a dataset written by ``Dataset.save`` (``rackvae ingest -o``)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return Dataset(
                rolls=archive["rolls"],
                velocities=archive["velocities"],
                layout=RollLayout.from_dict(json.loads(str(archive["layout"]))),
                settings=json.loads(str(archive["settings"])),
                files=[str(name) for name in archive["files"]],
                file_index=archive["file_index"],
                track=archive["track"],
                bar=archive["bar"],
            )
    except (OSError, KeyError, ValueError) as error:
        raise DatasetError(f"{path}: not a rackvae dataset ({error})") from error
