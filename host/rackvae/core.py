"""The C decoder core from Python: load a model, decode latents, turn probabilities into notes, and
drive the sequencer engine, through the cffi extension ``rackvae._core`` (compiled from ``core/``).

A decode gives the model's whole output vector per latent, as ``[channels * ticks, rows]``: the
channel blocks (hits first, then a groove model's velocity and offset; rackvae.h's layout) stacked
along the ticks, so a hits-only model's decode is its ``[ticks, rows]`` probabilities as always.
``Decoder.split`` names the channels and scales them (``rackvae.model.split_outputs``).

Arrays cross the boundary without copies: ``decode`` writes straight into the numpy array it returns.
A status from C becomes a ``CoreError`` carrying the C reason and the file it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rackvae import isa
from rackvae._core import ffi, lib
from rackvae.export.metadata import XenMetadata

if TYPE_CHECKING:
    from rackvae.model import DecoderLayers

isa.cap_from_environment()  # before any decode (RACKVAE_ISA)

DType = Literal["float32", "float16", "int8"]
_rv_decode = lib.rv_decode
_rv_py_invoke = lib.rv_py_invoke
_from_buffer = ffi.from_buffer
_DTYPE_NAMES: dict[int, DType] = {lib.RV_F32: "float32", lib.RV_F16: "float16", lib.RV_S8: "int8"}


class CoreError(RuntimeError):
    """A status from the C core: ``status`` (the C enum value), ``reason`` (rv_status_str) and source."""

    def __init__(self, status: int, source: str, action: str) -> None:
        self.status = int(status)
        self.reason = ffi.string(lib.rv_status_str(status)).decode()
        self.source = source
        super().__init__(f"{source}: {action}: {self.reason} (status {self.status})")


def _check(status: int, source: str, action: str) -> None:
    if status != lib.RV_OK:
        raise CoreError(status, source, action)


def _aligned_bytes(size: int) -> np.ndarray:
    """Zeroed memory for the core, 8-byte aligned (numpy allocations are at least 16-byte aligned);
    never empty, so it always has an address."""
    return np.zeros(max(1, (size + 7) // 8), np.uint64).view(np.uint8)[: max(size, 1)]


def _pointer(array: np.ndarray) -> Any:
    return ffi.from_buffer(array, require_writable=False)


@dataclass(frozen=True)
class Note:
    """One note of one tick after post-processing (see rv_note in rackvae.h)."""

    row: int
    midi_note: int  # notes: base_note + row; percussion: the row's General MIDI note (255: accent row)
    group: int  # percussion group, -1 for note models
    probability: float
    accent: float  # percussion: position in the group 0..1; notes: 1
    volts: float  # notes: 1 V/octave from zero_volt_note; percussion: 0
    velocity: int  # 1..127 from the velocity channel; RV_DEFAULT_VELOCITY (100) without one
    offset: float  # steps, -0.5..0.5 (positive: late) from the offset channel; 0 without one


def _notes_of_step(step: Any) -> list[Note]:
    return [
        Note(
            row=n.row,
            midi_note=n.midi_note,
            group=n.group,
            probability=n.probability,
            accent=n.accent,
            volts=n.volts,
            velocity=n.velocity,
            offset=n.offset,
        )
        for n in (step.notes[i] for i in range(step.count))
    ]


def _post_config(meta: Any, threshold: float | None, max_notes: int, zero_volt_note: int) -> Any:
    """rv_post_config_for_model: the model's thresholds; ``threshold`` replaces the global one (the
    percussion groups keep their offsets from it)."""
    # Checked here: cffi raises OverflowError, not a message, for a value beyond the C fields' uint8
    if not 1 <= max_notes <= lib.RV_MAX_NOTES:
        raise ValueError(f"max_notes must be 1..{lib.RV_MAX_NOTES}, got {max_notes}")
    if not 0 <= zero_volt_note <= 127:
        raise ValueError(f"zero_volt_note must be a MIDI note 0..127, got {zero_volt_note}")
    config = ffi.new("rv_post_config *", lib.rv_post_config_for_model(meta))
    if threshold is not None:
        config.threshold = threshold
    config.max_notes = max_notes
    config.zero_volt_note = zero_volt_note
    return config


class Decoder:
    """A decoder model held by the C core (from a .tflite file or from decoder layers)."""

    def __init__(self, model: Any, keep: list[Any], source: str) -> None:
        # `keep` owns the memory the model points into (file bytes, aux constants, repacked weights).
        self._model = model
        self._keep = keep
        self.source = source
        _check(lib.rv_model_check(model), source, "checking the model")
        self._scratch = _aligned_bytes(lib.rv_scratch_size(model))
        # what every decode needs, looked up once (a single decode is a few microseconds)
        self._scratch_pointer = _pointer(self._scratch)
        self._scratch_len = len(self._scratch)
        meta = model.metadata
        # latent in; the outputs [channels * ticks, rows] out (channels 0: C arrays before version 3)
        self._shape = (
            int(lib.rv_model_latent_dim(model)),
            max(int(meta.channels), 1) * meta.ticks,
            int(meta.rows),
        )
        # an interpreter's tensors: one latent in, its outputs out, wrapped for C once
        self._input = np.zeros(self._shape[0], np.float32)
        self._output = np.zeros(self._shape[1:], np.float32)
        # invoke()'s arguments in one C struct: one pointer crosses per call instead of six values
        self._invocation = ffi.new("rv_py_invocation *")
        self._invocation.model = model
        self._invocation.latent = _from_buffer("float[]", self._input)
        self._invocation.probabilities = _from_buffer("float[]", self._output)
        self._invocation.scratch = self._scratch_pointer
        self._invocation.scratch_len = self._scratch_len

    # ---- construction ----

    @classmethod
    def from_file(cls, path: str | Path, repack: bool = True) -> Decoder:
        return cls.from_bytes(Path(path).read_bytes(), source=str(path), repack=repack)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>", repack: bool = True) -> Decoder:
        """Load .tflite bytes. ``repack`` copies float weights into the IN_OUT layout (faster, same
        results); without it the model reads the weights in place, as a module reading its SD card."""
        file = _aligned_bytes(len(data))
        file[: len(data)] = np.frombuffer(data, np.uint8)
        model = ffi.new("rv_model *")
        needed = ffi.new("size_t *")
        status = lib.rv_model_load_tflite(model, _pointer(file), len(data), ffi.NULL, 0, needed)
        aux = _aligned_bytes(needed[0])
        if status == lib.RV_ERR_BUFFER_TOO_SMALL:  # int8: derived constants need aux memory
            status = lib.rv_model_load_tflite(
                model, _pointer(file), len(data), _pointer(aux), len(aux), needed
            )
        _check(status, source, "loading the .tflite model")
        keep: list[Any] = [file, aux]
        if repack:
            model, repacked = _repacked(model, source)
            keep.append(repacked)
        return cls(model, keep, source)

    @classmethod
    def from_layers(
        cls, layers: DecoderLayers, metadata: XenMetadata, dtype: Literal["float32", "float16"] = "float32"
    ) -> Decoder:
        """A float model straight from ``(kernel[in, out], bias[out])`` pairs, laid out as the
        C-array exporter lays it out (IN_OUT); float16 rounds the weights and biases to half."""
        if dtype not in ("float32", "float16"):
            raise ValueError(f"from_layers builds float32 or float16 models, got {dtype!r}")
        np_dtype = np.float32 if dtype == "float32" else np.float16
        model = ffi.new("rv_model *")
        keep: list[Any] = []
        model.dtype = lib.RV_F32 if dtype == "float32" else lib.RV_F16
        model.n_layers = len(layers)
        if len(layers) > lib.RV_MAX_LAYERS:
            raise ValueError(f"{len(layers)} layers, the core holds at most {lib.RV_MAX_LAYERS}")
        for index, (kernel, bias) in enumerate(layers):
            weights = np.ascontiguousarray(kernel, np_dtype)
            biases = np.ascontiguousarray(bias, np_dtype)
            keep += [weights, biases]
            layer = model.layers[index]
            setattr(layer, "in", weights.shape[0])  # a Python keyword as field name
            layer.out = weights.shape[1]
            layer.dtype = layer.bias_dtype = model.dtype
            layer.activation = 1 if index < len(layers) - 1 else 0
            layer.layout = lib.RV_LAYOUT_IN_OUT
            layer.weights = _pointer(weights)
            layer.bias = _pointer(biases)
        _set_metadata(ffi.addressof(model, "metadata"), metadata)
        return cls(model, keep, f"<{dtype} layers>")

    # ---- what the model is ----

    @property
    def dtype(self) -> DType:
        return _DTYPE_NAMES[self._model.dtype]

    @property
    def latent_dim(self) -> int:
        return int(lib.rv_model_latent_dim(self._model))

    @property
    def ticks(self) -> int:
        return int(self._model.metadata.ticks)

    @property
    def rows(self) -> int:
        return int(self._model.metadata.rows)

    @property
    def latent_scale(self) -> int:
        return int(self._model.metadata.latent_scale)

    @property
    def channels(self) -> tuple[str, ...]:
        """The output channels in their order, e.g. ``("hits",)`` or ``("hits", "velocity", "offset")``."""
        return self.metadata.channel_names

    def split(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """Decoded outputs (``decode``'s ``[N, channels * ticks, rows]``, or one sequence's) as channels
        ``[N, ticks, rows]``: ``hits`` probabilities, ``velocity`` 0..127, ``offset`` in steps."""
        from rackvae.model import ModelConfig, split_outputs  # imported on use: it brings JAX

        config = ModelConfig(self.ticks, self.rows, self.latent_dim, outputs=self.channels)
        return split_outputs(config, outputs)

    @property
    def metadata(self) -> XenMetadata:
        return _metadata_of(self._model.metadata)

    @property
    def c_model(self) -> Any:
        """The ``rv_model *`` (for the C-array exporter); valid while this Decoder lives."""
        return self._model

    # ---- decoding ----

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Outputs ``[N, channels * ticks, rows]`` (float32; hits-only models: the probabilities
        ``[N, ticks, rows]``) for latents ``[N, latent_dim]``: the C core
        reads the latents in place (when float32 and contiguous) and writes into the returned array.
        (Kept lean: for a small model the Python around the call costs more than the decode.)"""
        source = np.ascontiguousarray(latents, np.float32)
        shape = source.shape
        if len(shape) != 2 or shape[1] != self._shape[0]:
            raise ValueError(f"latents must be [N, {self._shape[0]}], got {list(shape)}")
        out = np.empty((shape[0], *self._shape[1:]), np.float32)
        status = _rv_decode(
            self._model,
            _from_buffer("float[]", source),
            shape[0],
            _from_buffer("float[]", out),
            self._scratch_pointer,
            self._scratch_len,
        )
        if status:
            raise CoreError(status, self.source, "decoding")
        return out

    @property
    def input(self) -> np.ndarray:
        """The latent ``[latent_dim]`` (float32) the next ``invoke()`` decodes; write into it."""
        return self._input

    @property
    def output(self) -> np.ndarray:
        """Outputs ``[channels * ticks, rows]`` of the last ``invoke()``, overwritten by the next one."""
        return self._output

    def invoke(self) -> np.ndarray:
        """Decodes ``input`` into ``output`` and returns ``output``: no allocation, no wrapping per
        call (a single decode of the demo model takes well under a microsecond in C)."""
        status = _rv_py_invoke(self._invocation)
        if status:
            raise CoreError(status, self.source, "decoding")
        return self._output

    def decode_quantized(self, latents: np.ndarray) -> np.ndarray:
        """int8 models: quantised latents ``[N, latent_dim]`` -> quantised outputs
        ``[N, channels * ticks, rows]`` (int8), the integer graph alone (bit-exact with TFLite-Micro)."""
        source = self._latents(latents, np.int8)
        out = np.empty((len(source), *self._shape[1:]), np.int8)
        status = lib.rv_decode_s8(
            self._model,
            ffi.from_buffer("int8_t[]", source),
            len(source),
            ffi.from_buffer("int8_t[]", out),
            self._scratch_pointer,
            len(self._scratch),
        )
        _check(status, self.source, "decoding int8")
        return out

    def _latents(self, latents: np.ndarray, dtype: type) -> np.ndarray:
        source = np.ascontiguousarray(latents, dtype)  # no copy when already contiguous of this dtype
        if source.ndim != 2 or source.shape[1] != self._shape[0]:
            raise ValueError(f"latents must be [N, {self._shape[0]}], got {list(source.shape)}")
        return source

    # ---- music ----

    @property
    def threshold(self) -> float:
        """The model's own threshold (metadata version 2), else ``RV_DEFAULT_THRESHOLD``."""
        return float(lib.rv_post_config_for_model(ffi.addressof(self._model.metadata)).threshold)

    def notes(
        self,
        outputs: np.ndarray,
        threshold: float | None = None,
        max_notes: int = 4,
        zero_volt_note: int = 60,
    ) -> list[list[Note]]:
        """Per tick of one sequence's outputs ``[channels * ticks, rows]`` (one item of ``decode``): the
        notes that sound (rv_postprocess) with their velocities and offsets, at the model's thresholds
        unless ``threshold`` replaces the global one (percussion groups keep their offsets from it)."""
        probs = np.ascontiguousarray(outputs, np.float32)
        if probs.shape != self._shape[1:]:
            raise ValueError(f"outputs must be {list(self._shape[1:])}, got {list(probs.shape)}")
        sequence = ffi.new("rv_sequence *")
        status = lib.rv_postprocess(
            ffi.addressof(self._model.metadata),
            ffi.cast("const float *", _pointer(probs)),
            _post_config(ffi.addressof(self._model.metadata), threshold, max_notes, zero_volt_note),
            sequence,
        )
        _check(status, self.source, "post-processing")
        return [_notes_of_step(sequence.steps[t]) for t in range(sequence.ticks)]

    def engine(self, max_notes: int = 4, zero_volt_note: int = 60) -> Engine:
        return Engine(self, max_notes, zero_volt_note)


class Engine:
    """The sequencer engine (rv_engine) on a decoder: clock, reset, pause, manual/automatic inference."""

    def __init__(self, decoder: Decoder, max_notes: int = 4, zero_volt_note: int = 60) -> None:
        self.decoder = decoder
        self._engine = ffi.new("rv_engine *")
        self._scratch = _aligned_bytes(lib.rv_engine_scratch_size(decoder.c_model))
        config = _post_config(ffi.addressof(decoder.c_model.metadata), None, max_notes, zero_volt_note)
        status = lib.rv_engine_init(
            self._engine, decoder.c_model, _pointer(self._scratch), len(self._scratch), config
        )
        _check(status, decoder.source, "starting the engine")

    def clock(self) -> tuple[int, list[Note]] | None:
        """A clock edge: (step index, its notes), or None when nothing plays."""
        tick = ffi.new("int *")
        step = lib.rv_engine_clock(self._engine, tick)
        return None if step == ffi.NULL else (int(tick[0]), _notes_of_step(step))

    def reset(self) -> None:
        lib.rv_engine_reset(self._engine)

    def pause_until_reset(self) -> None:
        lib.rv_engine_pause_until_reset(self._engine)

    def set_manual(self, manual: bool) -> None:
        lib.rv_engine_set_manual(self._engine, int(manual))

    def request_inference(self) -> None:
        lib.rv_engine_request_inference(self._engine)

    @property
    def inference_pending(self) -> bool:
        return bool(lib.rv_engine_inference_pending(self._engine))

    @property
    def tick(self) -> int:
        return int(self._engine.tick)

    def run_inference(self, latent: np.ndarray, threshold: float | None = None) -> None:
        """Decode ``latent`` into the back buffer at ``threshold`` (default: the model's)."""
        if threshold is None:
            threshold = self.decoder.threshold
        values = np.ascontiguousarray(latent, np.float32).reshape(-1)
        if len(values) != self.decoder.latent_dim:
            raise ValueError(f"latent must have {self.decoder.latent_dim} values, got {len(values)}")
        status = lib.rv_engine_run_inference(
            self._engine, ffi.cast("const float *", _pointer(values)), threshold
        )
        _check(status, self.decoder.source, "inference")

    def sequence(self) -> list[list[Note]] | None:
        """The sequence playing now, per tick (None before the first one)."""
        sequence = lib.rv_engine_sequence(self._engine)
        if sequence == ffi.NULL:
            return None
        return [_notes_of_step(sequence.steps[t]) for t in range(sequence.ticks)]


def latent_from_controls(knob_volts: float, cv_volts: float, latent_scale: float) -> float:
    return float(lib.rv_latent_from_controls(knob_volts, cv_volts, latent_scale))


def threshold_from_controls(knob_volts: float, cv_volts: float) -> float:
    return float(lib.rv_threshold_from_controls(knob_volts, cv_volts))


def _repacked(model: Any, source: str) -> tuple[Any, np.ndarray]:
    needed = ffi.new("size_t *")
    packed = ffi.new("rv_model *")
    status = lib.rv_model_repack(model, packed, ffi.NULL, 0, needed)
    memory = _aligned_bytes(needed[0])
    if status == lib.RV_ERR_BUFFER_TOO_SMALL:
        status = lib.rv_model_repack(model, packed, _pointer(memory), len(memory), needed)
    _check(status, source, "repacking the weights")
    return packed, memory


def _metadata_of(meta: Any) -> XenMetadata:
    has_extension = bool(meta.has_extension)
    # channels 0: C arrays from before version 3 (the hits alone)
    channel_ids = tuple(int(meta.channel_ids[k]) for k in range(max(int(meta.channels), 1)))
    # the fields Python knows (as a file of version 2, or 3 with more channels); C arrays from before
    # version 2 leave it 0
    version = 3 if len(channel_ids) > 1 else min(max(int(meta.extension_version), 1), 2)
    perc = meta.kind == lib.RV_KIND_PERC
    stored: dict[str, Any] = {}
    if version >= 2:  # float32 k / 255 back to the byte's value
        stored = {
            "threshold": round(meta.threshold * 255) / 255,
            "group_thresholds": tuple(
                round(meta.group_thresholds[g] * 255) / 255 for g in range(meta.n_groups)
            ),
            "row_notes": tuple(meta.row_notes[r] for r in range(meta.rows)) if perc else (),
        }
    return XenMetadata(
        kind="perc" if perc else "note",
        rows=meta.rows,
        ticks=meta.ticks,
        latent_scale=meta.latent_scale,
        group_sizes=tuple(meta.group_sizes[g] for g in range(meta.n_groups)),
        base_note=meta.base_note,
        latent_dim=meta.latent_dim if has_extension else 3,
        extension_version=version if has_extension else 0,
        channel_ids=channel_ids,
        **stored,
    )


def _set_metadata(target: Any, meta: XenMetadata) -> None:
    raw = np.frombuffer(meta.to_bytes(), np.uint8)
    status = lib.rv_metadata_parse(ffi.cast("const uint8_t *", _pointer(raw)), len(raw), target)
    _check(status, "<metadata>", "parsing metadata")
