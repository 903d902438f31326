"""Music from a trained model, as the module plays it: sample the prior, interpolate between two bars,
encode bars into latents and the knob voltages that play them, decode latents, write MIDI and PNGs.

``load(path)`` takes a model folder written by ``rackvae train`` (exported or not) or an exported
``.tflite`` file. Latents become probabilities on one of two engines:

- ``"c"``: the C core (``rackvae.core``) on the given file or the folder's exported ``NAME_dec.tflite``,
  bit for bit what the module plays (a folder without an export: the core on the model's float32
  weights);
- ``"jax"``: the model's own JAX decoder (model folders only).

The default is ``"c"`` where there is an exported file of the folder's current parameters, else
``"jax"`` (a file exported before the model was trained again plays no more, with a
``StaleExportWarning``; asked for with ``"c"``, it is refused). On either engine the C core's
post-processing (``rv_postprocess``, the module's rules) turns probabilities into notes: a cell plays when
its probability reaches the threshold (the model's own by default), at most ``max_notes`` per step.
Encoding needs the encoder, so a model folder.

Rolls are uint8 ``[N, ticks, rows]`` (1 where a note starts), latents float32 ``[N, latent_dim]``.

A groove model (trained with velocity and offset outputs) decodes all its channels on either engine;
the C core's post-processing picks the notes from the hits and gives each its velocity and offset, and
the bars carry them (as the module plays them); ``to_midi`` writes each note at them. Encoding music
into a groove model is not offered yet (it needs the velocities and offsets of the bars).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rackvae import core, plots, sheets
from rackvae.codec import EncodingError, EncodingSettings, encode_song, roll_to_midi, save_midi
from rackvae.dataset import RollLayout
from rackvae.export.metadata import ACCENT_ROW, MetadataError, XenMetadata
from rackvae.midi import MidiError, read
from rackvae.percussion import ACCENT_ROW_NOTE, GM_DRUM_NAMES, PercussionMapError
from rackvae.train import TrainedModel, load_model

EngineName = Literal["c", "jax"]
ENGINES: tuple[EngineName, ...] = ("c", "jax")
KNOB_VOLTS = 5.0  # knob + CV of ±5 V span ±latent_scale (RV_CONTROL_FULL_SCALE_VOLTS)
DEFAULT_MAX_NOTES = 4  # the module's (RV_DEFAULT_MAX_NOTES)
# A MIDI tempo is 1..0xFFFFFF µs per quarter note (3 bytes; 0 would be no time at all).
MIN_BPM, MAX_BPM = 60e6 / 0xFFFFFF, 60e6
# A model folder's float32 NAME_dec.tflite decodes as its parameters within this (rackvae export checks
# it, C core against LiteRT and LiteRT against JAX); beyond it the file is from an earlier training.
EXPORT_TOLERANCE = 1e-5
# A .tflite file does not say its grid: its steps are taken as 16ths.
TFLITE_STEPS_PER_QUARTER = 4


class GenerateError(ValueError):
    """Input that cannot be used; the message names the argument (or file) and the reason."""


@dataclass(frozen=True)
class Bars:
    """Decoded bars: the latent of each and the roll it plays."""

    latents: np.ndarray  # float32 [N, latent_dim]
    rolls: np.ndarray  # uint8 [N, ticks, rows]
    velocities: np.ndarray | None = None  # groove models: uint8 [N, ticks, rows], 0 where no note
    offsets: np.ndarray | None = None  # groove models: float32 [N, ticks, rows] in steps, 0 where no note

    def take(self, index: int) -> Bars:
        """Bar ``index`` alone."""
        pick = slice(index, index + 1)

        def part(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[pick]

        return Bars(self.latents[pick], self.rolls[pick], part(self.velocities), part(self.offsets))


@dataclass(frozen=True)
class Encoding:
    """The encoder's posterior of each roll: mean and standard deviation, ``[N, latent_dim]``."""

    mean: np.ndarray
    sigma: np.ndarray


@dataclass(frozen=True)
class MidiBars:
    """The sequences of a MIDI file in the model's encoding, with where each starts in the file."""

    path: Path
    rolls: np.ndarray  # uint8 [N, ticks, rows]
    bars: np.ndarray  # int32 [N]: the file's bar (0-based) where each sequence starts
    tracks: np.ndarray  # int32 [N]

    def roll_at(self, bar: int, argument: str) -> np.ndarray:
        """The roll starting at the file's ``bar`` (its first part's); ``argument`` names the option."""
        found = np.flatnonzero(self.bars == bar)
        if not len(found):
            usable = ", ".join(map(str, self.bars[:12])) + (" ..." if len(self.bars) > 12 else "")
            raise GenerateError(
                f"{argument} {bar}: {self.path} has no usable bar {bar} (usable: {usable or 'none'})"
            )
        return self.rolls[found[0]]


@dataclass(frozen=True)
class LatentMap:
    """A ``points x points`` grid over two latent axes, the other dimensions at ``at``.

    Cell ``(i, j)`` (``bars`` index ``i * points + j``) has ``values[i]`` on ``axes[0]`` and
    ``values[j]`` on ``axes[1]``."""

    axes: tuple[int, int]
    values: np.ndarray
    at: float
    bars: Bars


def interpolation(start: np.ndarray, end: np.ndarray, steps: int, slerp: bool = False) -> np.ndarray:
    """``steps`` latents from ``start`` to ``end`` (both included exactly): straight, or along the great
    circle (``slerp``, as MusicVAE), which keeps the norm of prior samples."""
    if steps < 2:
        raise GenerateError(f"--steps must be at least 2, got {steps}")
    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    cosine = np.dot(start, end) / max(np.linalg.norm(start) * np.linalg.norm(end), 1e-12)
    omega = math.acos(float(np.clip(cosine, -1.0, 1.0)))
    if slerp and math.sin(omega) > 1e-6:
        latents = (np.sin((1 - t) * omega) * start + np.sin(t * omega) * end) / math.sin(omega)
    else:  # straight, also where slerp is undefined (parallel endpoints)
        latents = (1 - t) * start + t * end
    latents[0], latents[-1] = start, end
    return latents.astype(np.float32)


def random_draws(seed: int) -> np.random.Generator:
    """The generator of ``seed``'s draws; numpy takes no negative seed, refused here naming --seed."""
    if seed < 0:
        raise GenerateError(f"--seed must be 0 or more, got {seed}")
    return np.random.default_rng(seed)


def percussion_layout(metadata: XenMetadata) -> RollLayout:
    """The rows of an exported percussion model, from its metadata's row notes (General MIDI names)."""
    stored = metadata.row_notes or tuple(range(metadata.rows))  # files before version 2: the row
    notes = tuple(ACCENT_ROW_NOTE if note == ACCENT_ROW else note for note in stored)
    names = tuple(
        "accent" if note == ACCENT_ROW_NOTE else GM_DRUM_NAMES.get(note, f"note {note}") for note in notes
    )
    return RollLayout(
        "perc", metadata.rows, group_sizes=metadata.group_sizes, row_names=names, row_notes=notes
    )


class Model:
    """A model ready to play: use ``load``."""

    def __init__(
        self,
        name: str,
        layout: RollLayout,
        decoder: core.Decoder,
        engine: EngineName,
        trained: TrainedModel | None,
        encoding: EncodingSettings | None,
    ) -> None:
        self.name = name
        self.layout = layout
        self.decoder = decoder  # the C core: decodes (engine "c") and post-processes (both engines)
        self.engine = engine
        self.trained = trained  # the model folder's model (encoder, JAX decoder); None for a .tflite
        self.encoding = encoding  # how MIDI becomes rolls for this model; None for a .tflite

    # ---- what the model is ----

    @property
    def latent_dim(self) -> int:
        return self.decoder.latent_dim

    @property
    def ticks(self) -> int:
        return self.decoder.ticks

    @property
    def rows(self) -> int:
        return self.decoder.rows

    @property
    def latent_scale(self) -> float:
        """The knobs' range: latents span ±latent_scale (the exported scale, as the module reads it)."""
        return float(self.decoder.latent_scale)

    @property
    def threshold(self) -> float:
        """The model's own threshold (percussion groups have their own, applied by the C core)."""
        return self.decoder.threshold

    @property
    def tflite_meter(self) -> str:
        """The meter a .tflite's bars are written in (its file does not say): quarters of its 16th steps,
        else sixteenths (5/8 of 16ths: 10/16), so that each bar of the MIDI file is one sequence."""
        steps = TFLITE_STEPS_PER_QUARTER
        return f"{self.ticks // steps}/4" if self.ticks % steps == 0 else f"{self.ticks}/16"

    @property
    def can_encode(self) -> bool:
        """Whether the encoder is at hand (a model folder; an exported file is the decoder alone)."""
        return self.trained is not None

    @property
    def row_labels(self) -> list[str]:
        return plots.row_labels(self.layout)

    # ---- latents to music ----

    def check_latents(self, latents: np.ndarray, argument: str = "latents") -> np.ndarray:
        """``latents`` as float32 ``[N, latent_dim]`` (one latent may be given flat)."""
        values = np.asarray(latents, np.float32)
        values = values.reshape(1, -1) if values.ndim == 1 else values
        if values.ndim != 2 or values.shape[1] != self.latent_dim:
            given = values.shape[-1] if values.ndim else 1
            raise GenerateError(f"{argument}: {given} values, the model's latent has {self.latent_dim}")
        if not np.isfinite(values).all():
            raise GenerateError(f"{argument}: not finite")
        return values

    def outputs(self, latents: np.ndarray) -> np.ndarray:
        """The decoder's outputs float32 ``[N, channels * ticks, rows]`` of ``latents`` on this model's
        engine: the hit probabilities, then a groove model's velocity and offset blocks (sigmoids)."""
        values = self.check_latents(latents)
        if self.engine == "jax":
            assert self.trained is not None  # load() gives JAX only to model folders
            return self.trained.decode_all(values).astype(np.float32)
        return self.decoder.decode(values)

    def probabilities(self, latents: np.ndarray) -> np.ndarray:
        """Hit probabilities float32 ``[N, ticks, rows]`` of ``latents`` on this model's engine."""
        return self.outputs(latents)[:, : self.ticks]

    def decode(
        self,
        latents: np.ndarray,
        *,
        threshold: float | None = None,
        max_notes: int = DEFAULT_MAX_NOTES,
        bernoulli: bool = False,
        seed: int = 0,
    ) -> Bars:
        """The bars ``latents`` play: cells at or above ``threshold`` (default: the model's own; percussion
        groups keep their offsets from it, as on the module), at most ``max_notes`` per step. With
        ``bernoulli`` each cell plays with its probability instead (drawn with ``seed``)."""
        values = self.check_latents(latents)
        if not 1 <= max_notes <= core.lib.RV_MAX_NOTES:
            raise GenerateError(f"--max-notes must be 1..{core.lib.RV_MAX_NOTES}, got {max_notes}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise GenerateError(f"--threshold must be in 0..1, got {threshold}")
        outputs = self.outputs(values)
        if bernoulli:
            hits = outputs[:, : self.ticks]
            drawn = random_draws(seed).random(hits.shape) < hits
            # Drawn cells pass any threshold (group offsets are within ±1), the others none; the most
            # probable still win when more than max_notes are drawn.
            outputs[:, : self.ticks] = np.where(drawn, 2.0 + hits, -2.0)
            threshold = 0.0
        shape = (len(values), self.ticks, self.rows)
        rolls, velocities, offsets = (
            np.zeros(shape, np.uint8),
            np.zeros(shape, np.uint8),
            np.zeros(shape, np.float32),
        )
        for index, sequence in enumerate(outputs):
            for tick, notes in enumerate(self.decoder.notes(sequence, threshold, max_notes)):
                for note in notes:
                    rolls[index, tick, note.row] = 1
                    velocities[index, tick, note.row] = note.velocity
                    offsets[index, tick, note.row] = note.offset
        if self.decoder.channels == ("hits",):
            return Bars(values, rolls)
        return Bars(values, rolls, velocities, offsets)

    def sample(self, n: int = 8, *, temperature: float = 1.0, seed: int = 0, **play: Any) -> Bars:
        """``n`` bars from the prior: normal latents times ``temperature``, kept within the knobs' range.
        ``play`` takes ``decode``'s options."""
        if n < 1 or not temperature > 0:
            raise GenerateError(f"need n >= 1 and a temperature > 0, got n {n}, temperature {temperature}")
        latents = random_draws(seed).standard_normal((n, self.latent_dim)) * temperature
        scale = self.latent_scale
        return self.decode(np.clip(latents, -scale, scale), seed=seed, **play)

    def interpolate(
        self, start: np.ndarray, end: np.ndarray, steps: int = 8, *, slerp: bool = False, **play: Any
    ) -> Bars:
        """``steps`` bars morphing from roll ``start`` to roll ``end`` (``[ticks, rows]`` each), between their
        encoder means. ``play`` takes ``decode``'s options."""
        means = self.encode(np.stack([start, end])).mean
        return self.decode(interpolation(means[0], means[1], steps, slerp), **play)

    def map(self, axes: tuple[int, int] = (0, 1), points: int = 5, at: float = 0.0, **play: Any) -> LatentMap:
        """The learned drum map: a ``points x points`` grid over ``axes`` across the knobs' range, the other
        latent dimensions at ``at``. ``play`` takes ``decode``'s options."""
        a, b = axes
        if a == b or not (0 <= a < self.latent_dim and 0 <= b < self.latent_dim):
            raise GenerateError(f"--axes: two different dimensions of 0..{self.latent_dim - 1}, got {a},{b}")
        if points < 2:
            raise GenerateError(f"--points must be at least 2, got {points}")
        scale = self.latent_scale
        if not -scale <= at <= scale:
            raise GenerateError(f"--at {at} is outside the knobs' range ±{scale:g}")
        values = np.linspace(-scale, scale, points, dtype=np.float32)
        latents = np.full((points * points, self.latent_dim), at, np.float32)
        latents[:, a] = np.repeat(values, points)
        latents[:, b] = np.tile(values, points)
        return LatentMap((a, b), values, at, self.decode(latents, **play))

    # ---- music to latents ----

    def encode(self, rolls: np.ndarray) -> Encoding:
        """Encoder mean and sigma ``[N, latent_dim]`` of rolls ``[N, ticks, rows]``."""
        model = self._trained("encoding")
        if model.config.channels > 1:
            raise GenerateError(f"{self.name} is a groove model: encoding music into it is not offered yet")
        values = np.asarray(rolls)
        if values.ndim != 3 or values.shape[1:] != (self.ticks, self.rows):
            raise GenerateError(f"rolls must be [N, {self.ticks}, {self.rows}], got {list(values.shape)}")
        mean, log_var = model.encode(values.astype(np.float32))
        return Encoding(mean.astype(np.float32), np.exp(0.5 * log_var).astype(np.float32))

    def read_midi(self, path: str | Path) -> MidiBars:
        """The sequences of a MIDI file, encoded with the model's own settings (as it was trained)."""
        self._trained("reading MIDI")
        assert self.encoding is not None
        path = Path(path)
        try:
            encoded = encode_song(read(path), self.encoding)
        except MidiError as error:
            raise GenerateError(str(error)) from error
        except EncodingError as error:
            raise GenerateError(f"{path}: {error}") from error
        rolls = encoded.rolls
        if self.layout.kind == "note":  # 128 pitches -> the model's rows
            rolls = rolls[:, :, self.layout.base_note : self.layout.base_note + self.rows]
        return MidiBars(path, rolls, encoded.bar, encoded.track)

    # ---- knobs ----

    def knobs_for(self, latents: np.ndarray) -> np.ndarray:
        """The knob voltages (CV at 0 V) that play ``latents`` on the module: the inverse of the panel's
        mapping (``rv_latent_from_controls``). Outside ±5 V a latent cannot be dialled in."""
        return self.check_latents(latents) / self.latent_scale * KNOB_VOLTS

    def latents_for_knobs(self, volts: np.ndarray, argument: str = "knobs") -> np.ndarray:
        """The latents the module plays at knob voltages ``volts`` (CV at 0 V), as its C code maps them."""
        values = self.check_latents(volts, argument)
        outside = np.abs(values) > KNOB_VOLTS
        if outside.any():
            raise GenerateError(
                f"{argument}: {values[outside][0]:g} V is outside the knobs' ±{KNOB_VOLTS:g} V"
            )
        mapping = np.vectorize(
            lambda v: core.latent_from_controls(v, 0.0, self.latent_scale), otypes=[np.float32]
        )
        return mapping(values)

    # ---- files ----

    def to_midi(self, rolls: np.ndarray | Bars, path: str | Path, *, bpm: float = 120.0) -> Path:
        """Write rolls ``[N, ticks, rows]`` (or one ``[ticks, rows]``, or ``Bars``) as one MIDI file of
        consecutive bars: percussion rows as their General MIDI notes on channel 10, pitched rows as
        ``base_note + row``, velocity 90 (accented percussion 127), one step long, with the model's tempo
        and meter. Bars of a groove model play at their own velocities and offsets."""
        velocities = offsets = None
        if isinstance(rolls, Bars):
            rolls, velocities, offsets = rolls.rolls, rolls.velocities, rolls.offsets
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise GenerateError(
                f"--bpm must be a tempo a MIDI file can hold, {MIN_BPM:.2f}..{MAX_BPM:,.0f}, got {bpm}"
            )
        encoding = self.encoding
        steps_per_quarter = encoding.steps_per_quarter if encoding else TFLITE_STEPS_PER_QUARTER
        meter = encoding.time_signature if encoding else self.tflite_meter
        midi = roll_to_midi(
            rolls,
            self.layout,
            velocities,
            tempo_bpm=bpm,
            steps_per_quarter=steps_per_quarter,
            time_signature=meter,
            offsets=offsets,
        )
        save_midi(midi, path)
        return Path(path)

    def save_sheet(self, bars: Bars, path: str | Path, titles: list[str] | None = None) -> Path:
        """A PNG of the rolls, instruments (or pitches) named on the rows, each titled by its knob volts."""
        knobs = self.knobs_for(bars.latents)
        titles = titles or [f"{i + 1}" for i in range(len(bars.rolls))]
        titles = [
            f"{t}  knobs {' '.join(f'{v:+.2f}' for v in k)} V" for t, k in zip(titles, knobs, strict=True)
        ]
        steps = self.encoding.steps_per_quarter if self.encoding else TFLITE_STEPS_PER_QUARTER
        return plots.save_png(sheets.roll_sheet(bars.rolls, self.row_labels, titles, steps), path)

    def save_map(self, latent_map: LatentMap, path: str | Path) -> Path:
        """A PNG of the latent map: the grid of rolls, axis values in latent units and knob volts."""
        figure = sheets.map_sheet(
            latent_map.bars.rolls,
            self.row_labels,
            latent_map.values,
            latent_map.axes,
            latent_map.at,
            KNOB_VOLTS / self.latent_scale,
            self.latent_dim,
        )
        return plots.save_png(figure, path)

    def _trained(self, what: str) -> TrainedModel:
        if self.trained is None:
            raise GenerateError(
                f"{what} needs the model folder (the encoder), {self.decoder.source} is a decoder"
            )
        return self.trained


def decoder_from_file(path: Path) -> core.Decoder:
    """The C core on an exported file whose metadata Python reads too: the core plays some bytes that
    no exporter writes (a row note above 127, an empty group), refused here with the file named."""
    decoder = core.Decoder.from_file(path)
    try:
        decoder.metadata  # noqa: B018 (read to check it)
    except MetadataError as error:
        raise GenerateError(f"{path}: {error}") from error
    return decoder


class StaleExportWarning(UserWarning):
    """A model folder's NAME_dec.tflite is older than its parameters: the parameters play instead."""


def parameters_decoder(trained: TrainedModel) -> core.Decoder:
    """The C core on a model folder's current parameters (float32), with the metadata an export of
    them carries."""
    config = trained.config
    metadata = XenMetadata.from_layout(
        trained.layout,
        config.ticks,
        config.latent_scale,
        config.latent_dim,
        trained.thresholds,
        config.outputs,
    )
    return core.Decoder.from_layers(trained.decoder_layers(), metadata)


def export_staleness(exported: core.Decoder, weights: core.Decoder) -> str:
    """Why ``exported`` (a folder's NAME_dec.tflite) does not decode as the folder's parameters
    (``weights``) do, or "": a model trained again after ``rackvae export`` keeps its old file."""
    if exported.metadata != weights.metadata:  # shape, channels, thresholds
        return "its metadata differs"
    scale = float(weights.latent_scale)
    latents = np.random.default_rng(0).uniform(-scale, scale, (8, weights.latent_dim)).astype(np.float32)
    difference = float(np.abs(exported.decode(latents) - weights.decode(latents)).max())
    return f"its outputs differ by up to {difference:.3g}" if difference > EXPORT_TOLERANCE else ""


def load(path: str | Path, engine: EngineName | None = None) -> Model:
    """A model folder (written by ``rackvae train``, exported or not) or an exported ``.tflite`` file,
    ready to play on ``engine`` (default: ``"c"`` on the exported file where there is one of the folder's
    current parameters, else ``"jax"``)."""
    path = Path(path)
    if engine is not None and engine not in ENGINES:
        raise GenerateError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if path.is_file():
        if engine == "jax":
            raise GenerateError(f"--engine jax: {path} is an exported decoder, JAX needs the model folder")
        decoder = decoder_from_file(path)
        metadata = decoder.metadata
        layout = (
            percussion_layout(metadata)
            if metadata.kind == "perc"
            else RollLayout("note", metadata.rows, base_note=metadata.base_note)
        )
        return Model(path.stem, layout, decoder, "c", None, None)
    if not path.is_dir():
        raise GenerateError(f"{path}: no such model folder or .tflite file")
    trained = load_model(path)
    exported = path / f"{trained.name}_dec.tflite"
    asked, engine = engine, engine or ("c" if exported.is_file() else "jax")
    # the C core on the float32 weights: decodes for "c" without an export, post-processes for "jax"
    decoder = parameters_decoder(trained)
    if engine == "c" and exported.is_file():
        from_file = decoder_from_file(exported)
        stale = export_staleness(from_file, decoder)
        if not stale:
            decoder = from_file
        else:
            message = f"{exported} is not the export of {path}'s current parameters ({stale})"
            if asked == "c":
                raise GenerateError(f"--engine c: {message}; run rackvae export again")
            # as before an export: the parameters play (trained after the file, they are the model)
            warnings.warn(
                f"{message}, so the parameters play (--engine jax); run rackvae export again",
                StaleExportWarning,
                stacklevel=2,
            )
            engine = "jax"
    try:
        encoding = EncodingSettings.from_dict(trained.dataset_settings)
    except (EncodingError, PercussionMapError) as error:  # e.g. its map file moved since ingest
        raise GenerateError(f"{path}: the model's encoding settings: {error}") from error
    return Model(trained.name, trained.layout, decoder, engine, trained, encoding)
