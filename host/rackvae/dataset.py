"""Encoded datasets: rolls + velocities + provenance, saved as ``.npz``, split by file.

``Dataset`` is the boundary between ingestion (``rackvae ingest``) and training: everything the
trainer, the evaluator and the exporter need to know about the rows and the grid travels with it.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import multiprocessing
import os
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from tqdm import tqdm

from rackvae.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from rackvae.codec import EncodedSong, EncodingCounts, EncodingSettings

RollKind = Literal["note", "perc"]


def core_limit_problem(ticks: int, rows: int, groups: int = 0) -> str:
    """Why the C core could not decode rolls of this shape (the limit of core/include/rv_limits.h they
    exceed, by name), or "" when it can."""
    from rackvae._core import lib

    for name, value, limit, what in (
        ("RV_MAX_TICKS", ticks, lib.RV_MAX_TICKS, "steps per sequence"),
        ("RV_MAX_ROWS", rows, lib.RV_MAX_ROWS, "rows"),
        ("RV_MAX_GROUPS", groups, lib.RV_MAX_GROUPS, "percussion groups"),
    ):
        if value > limit:
            return f"{value} {what} exceed the C core's limit {name} = {limit} (core/include/rv_limits.h)"
    return ""


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

    ``offsets`` (float32, same shape) holds each onset's timing: its distance from its step, in steps
    (-0.5..0.5, positive = late; 0 where no onset). ``None``: not known (files written before ingest
    kept them); ``timing`` gives zeros then.

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
    offsets: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.rolls)
        if self.rolls.ndim != 3 or self.velocities.shape != self.rolls.shape:
            raise ValueError(
                f"rolls {self.rolls.shape} and velocities {self.velocities.shape} must match [N, ticks, rows]"
            )
        if self.offsets is not None and self.offsets.shape != self.rolls.shape:
            raise ValueError(f"offsets {self.offsets.shape} must match rolls {self.rolls.shape}")
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

    @property
    def timing(self) -> np.ndarray:
        """float32 ``[n, ticks, rows]``: the offsets, or zeros (straight) when they are not known."""
        return np.zeros(self.rolls.shape, np.float32) if self.offsets is None else self.offsets

    def subset(self, index: np.ndarray) -> Dataset:
        """The sequences at ``index`` (indices or a boolean mask), provenance kept."""
        return dataclasses.replace(
            self,
            rolls=self.rolls[index],
            velocities=self.velocities[index],
            file_index=self.file_index[index],
            track=self.track[index],
            bar=self.bar[index],
            offsets=None if self.offsets is None else self.offsets[index],
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
        """Write an ``.npz`` atomically (rolls, velocities, offsets when known, provenance, settings and
        layout as JSON)."""
        buffer = io.BytesIO()
        timing = {} if self.offsets is None else {"offsets": self.offsets.astype(np.float32)}
        np.savez_compressed(
            buffer,
            **timing,
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
                offsets=archive["offsets"] if "offsets" in archive.files else None,
            )
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, zlib.error) as error:
        # BadZipFile and zlib.error: a truncated or corrupted archive (a copy cut short, a bad disk)
        raise DatasetError(f"{path}: not a rackvae dataset ({error})") from error


# --- Ingestion: MIDI files → Dataset ------------------------------------------------------------
# rackvae.codec imports RollLayout from this module, so the codec is imported inside the functions.

MIDI_SUFFIXES = (".mid", ".midi")


def find_midi_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files named directly, and ``.mid``/``.midi`` files (any case) under folders, recursively.

    Returns (files in a stable order, [(path, reason)] for paths that do not exist).
    """
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found = (p for p in entry.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
            files.extend(sorted(found))
        elif entry.is_file():
            files.append(entry)
        else:
            missing.append((str(entry), "no such file or folder"))
    return files, missing


@dataclass
class IngestReport:
    """What ``ingest`` read, what failed and why, and what became of the bars."""

    settings: EncodingSettings
    counts: EncodingCounts
    files_read: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    files_without_parts: int = 0  # read, but no part matched the selection
    sequences: int = 0
    shape: tuple[int, ...] = ()
    layout: RollLayout | None = None

    def summary(self) -> str:
        """A human-readable summary, as ``rackvae ingest`` prints it."""
        from rackvae.codec import DISCARD_REASONS

        settings, counts, offsets = self.settings, self.counts, self.counts.offsets
        selection = f"percussion, map {settings.percussion_map}" if settings.percussion_map else "pitched"
        timing = settings.timing + (
            f", max offset {settings.max_offset:g} step" if settings.timing == "snap" else ""
        )
        lines = [
            f"files: {self.files_read + len(self.failures):,} found, {self.files_read:,} read, "
            f"{len(self.failures):,} failed, {self.files_without_parts:,} without matching parts",
            f"parts: {counts.parts:,} {selection}" + (", merged per file" if settings.merge_parts else ""),
            f"grid: {settings.time_signature} bars, {settings.steps_per_quarter} steps per quarter, "
            f"{settings.bars_per_sequence} bar(s) per sequence, timing {timing}",
            f"bars with notes: {counts.bars_seen:,} seen, {counts.bars_kept:,} kept, "
            f"{sum(counts.bars_discarded.values()):,} discarded",
        ]
        lines += [
            f"  {reason.replace('_', ' ')}: {counts.bars_discarded[reason]:,}"
            for reason in DISCARD_REASONS
            if counts.bars_discarded.get(reason)
        ]
        if offsets.onsets:
            lines.append(
                f"onsets in {settings.time_signature} bars: {offsets.onsets:,}; "
                f"{offsets.exact / offsets.onsets:.1%} on the grid, "
                f"{offsets.within_eighth / offsets.onsets:.1%} within 1/8 step, "
                f"{offsets.within_quarter / offsets.onsets:.1%} within 1/4 step, "
                f"mean distance {offsets.mean_abs:.3f} step"
            )
        if counts.onsets_dropped_off_grid:
            lines.append(f"onsets dropped off the grid: {counts.onsets_dropped_off_grid:,}")
        if counts.onsets_merged:
            lines.append(f"onsets merged onto an occupied step: {counts.onsets_merged:,}")
        if counts.stray_messages:
            lines.append(f"stray system messages skipped in tracks: {counts.stray_messages:,}")
        if counts.unmapped_notes:
            notes = ", ".join(f"{note} ({n:,})" for note, n in sorted(counts.unmapped_notes.items()))
            lines.append(f"notes not in the percussion map, dropped: {notes}")
        if self.layout is None or self.layout.kind == "perc":
            rows = f"groups {','.join(map(str, self.layout.group_sizes))}" if self.layout else ""
        else:
            rows = f"row 0 = MIDI note {self.layout.base_note}"
            rows += ", octave-normalised" if settings.normalise_octave else ""
        lines.append(f"sequences: {self.sequences:,}, shape {list(self.shape)} ({rows})")
        if self.failures:
            lines.append("failed files:")
            lines.extend(f"  {file}: {reason}" for file, reason in self.failures)
        return "\n".join(lines)


@dataclass
class IngestResult:
    dataset: Dataset
    report: IngestReport


@dataclass
class _FileOutcome:
    path: str
    encoded: EncodedSong | None = None  # None when the file failed
    error: str = ""


def _read_and_encode(path: str, settings: EncodingSettings) -> _FileOutcome:
    """One file, in a worker: every failure becomes a reason in the outcome, never an exception."""
    from rackvae.codec import EncodingError, encode_song
    from rackvae.midi import MidiError, read

    try:
        return _FileOutcome(path, encoded=encode_song(read(path), settings))
    except (MidiError, EncodingError) as error:
        return _FileOutcome(path, error=getattr(error, "reason", str(error)))
    except Exception as error:  # a bug or an unforeseen file: report it against the file, go on
        return _FileOutcome(path, error=f"{type(error).__name__}: {error}")


def _start_method() -> str:
    """fork starts workers fastest and needs no ``if __name__ == "__main__"`` guard in scripts, but
    forking a process that runs JAX's threads can deadlock: then a fresh forkserver forks them."""
    if "jax" in sys.modules or "fork" not in multiprocessing.get_all_start_methods():
        return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return "fork"


def _outcomes(
    files: list[str], settings: EncodingSettings, jobs: int, progress: bool
) -> Iterator[_FileOutcome]:
    with tqdm(total=len(files), unit="file", desc="ingest", file=sys.stderr, disable=not progress) as bar:
        if jobs <= 1 or len(files) <= 1:
            for path in files:
                yield _read_and_encode(path, settings)
                bar.update()
            return
        context = multiprocessing.get_context(_start_method())
        chunk = max(1, min(32, len(files) // (jobs * 8)))
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            for outcome in pool.map(_read_and_encode, files, itertools.repeat(settings), chunksize=chunk):
                yield outcome
                bar.update()


def ingest(
    paths: Iterable[str | Path],
    settings: EncodingSettings | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> IngestResult:
    """Encode MIDI files and folders (recursively) into a ``Dataset``, in parallel on ``jobs`` processes.

    ``settings`` is a ``rackvae.codec.EncodingSettings`` (default: its defaults). A file that cannot be
    read or encoded is listed in ``report.failures`` with the reason and skipped.
    """
    from rackvae.codec import EncodingCounts, EncodingSettings, layout_for

    settings = settings or EncodingSettings()
    files, missing = find_midi_files(paths)
    jobs = jobs or os.cpu_count() or 1
    report = IngestReport(settings, EncodingCounts(), failures=list(missing))

    read_files: list[str] = []
    encoded: list[EncodedSong] = []
    for outcome in _outcomes([str(f) for f in files], settings, jobs, progress):
        if outcome.encoded is None:
            report.failures.append((outcome.path, outcome.error))
            continue
        report.files_read += 1
        report.files_without_parts += outcome.encoded.counts.parts == 0
        report.counts.add(outcome.encoded.counts)
        encoded.append(outcome.encoded)
        read_files.append(outcome.path)

    rows = layout_for(settings).rows

    def joined(values: Iterable[np.ndarray], empty_shape: tuple[int, ...], dtype: type) -> np.ndarray:
        return np.concatenate([np.zeros(empty_shape, dtype), *values])

    velocities = joined((e.velocities for e in encoded), (0, settings.ticks, rows), np.uint8)
    offsets = joined((e.offsets for e in encoded), (0, settings.ticks, rows), np.float32)
    file_index = joined((np.full(len(e.track), i, np.int32) for i, e in enumerate(encoded)), (0,), np.int32)
    track = joined((e.track for e in encoded), (0,), np.int32)
    bar = joined((e.bar for e in encoded), (0,), np.int32)
    sequence_bars = joined((e.sequence_bars for e in encoded), (0,), np.int32)

    keep = np.ones(len(velocities), bool)
    if settings.dedupe:
        keep = _first_occurrences(velocities > 0)
        duplicate_bars = int(sequence_bars[~keep].sum())
        report.counts.bars_kept -= duplicate_bars
        report.counts.bars_discarded["duplicate"] += duplicate_bars
    velocities, offsets = velocities[keep], offsets[keep]

    base_note = 0
    if not settings.is_percussion and settings.trim and len(velocities):
        used = np.flatnonzero(velocities.any(axis=(0, 1)))
        base_note, rows = int(used[0]), int(used[-1] - used[0] + 1)
        velocities = velocities[:, :, base_note : base_note + rows]
        offsets = offsets[:, :, base_note : base_note + rows]
    layout = layout_for(settings, base_note=base_note, rows=rows)

    dataset = Dataset(
        rolls=(velocities > 0).astype(np.uint8),
        velocities=velocities,
        layout=layout,
        settings=settings.to_dict(),
        files=read_files,
        file_index=file_index[keep],
        track=track[keep],
        bar=bar[keep],
        offsets=offsets,
    )
    report.sequences, report.shape, report.layout = len(dataset), tuple(dataset.rolls.shape), layout
    return IngestResult(dataset, report)


def _first_occurrences(rolls: np.ndarray) -> np.ndarray:
    """Mask of the rolls not equal to an earlier one (a hash set: linear time)."""
    seen: set[bytes] = set()
    keep = np.zeros(len(rolls), bool)
    for index, roll in enumerate(np.packbits(rolls.reshape(len(rolls), -1), axis=1)):
        key = roll.tobytes()
        if key not in seen:
            seen.add(key)
            keep[index] = True
    return keep
