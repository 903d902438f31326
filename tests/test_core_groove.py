"""Groove models in the C core (through cffi): every channel of ``[hits][velocity][offset]`` decoded as
JAX decodes it, notes carrying the velocity and offset rackvae.h defines, the engine playing them, and
the "rv" extension version 3 refused whenever it is malformed."""

from __future__ import annotations

import numpy as np
import pytest

from rackvae.core import CoreError, Decoder, ffi, lib
from rackvae.export.metadata import XenMetadata
from rackvae.export.tflite import tflite_bytes
from rackvae.model import OUTPUTS, ModelConfig, decode_layers, random_decoder_layers, split_outputs

TICKS, ROWS = 8, 6
GROOVE_META = XenMetadata("perc", ROWS, TICKS, 3, group_sizes=(1, 2, 3), channel_ids=(0, 1, 2))
CONFIG = ModelConfig(TICKS, ROWS, outputs=OUTPUTS)
N_LATENTS = 300
FLOAT_TOLERANCE = 1e-5


def groove_layers(channel_count: int = 3, seed: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    layers = random_decoder_layers((3, 16, channel_count * TICKS * ROWS), seed=seed)
    # sharpen the hits so that some cells sound and some do not
    kernel, bias = layers[-1]
    layers[-1] = (kernel * 6.0, bias - 0.5)
    return layers


@pytest.fixture(scope="module")
def latents() -> np.ndarray:
    return np.random.default_rng(16).uniform(-3, 3, (N_LATENTS, 3)).astype(np.float32)


def expected_velocity(s: np.ndarray) -> np.ndarray:
    """round(127 s) half up, clamped to 1..127, in float32 as the core computes it."""
    scaled = np.float32(127.0) * np.asarray(s, np.float32) + np.float32(0.5)
    return np.clip(np.floor(scaled), 1, 127).astype(np.int64)


def test_float32_groove_decodes_every_channel_as_jax(latents: np.ndarray) -> None:
    layers = groove_layers()
    reference = decode_layers(layers, latents)
    for decoder in (
        Decoder.from_layers(layers, GROOVE_META),
        Decoder.from_bytes(tflite_bytes(layers, GROOVE_META, "float32"), source="groove f32"),
    ):
        assert decoder.channels == ("hits", "velocity", "offset")
        assert int(decoder.c_model.metadata.channels) == 3
        assert int(lib.rv_model_output_size(decoder.c_model)) == 3 * TICKS * ROWS
        outputs = decoder.decode(latents)
        assert outputs.shape == (N_LATENTS, 3 * TICKS, ROWS)
        errors = np.abs(outputs.reshape(N_LATENTS, -1) - reference).reshape(N_LATENTS, 3, -1).max(axis=(0, 2))
        assert errors.max() <= FLOAT_TOLERANCE, dict(zip(OUTPUTS, errors, strict=True))
        # split names and scales the channels as the host's split_outputs does
        core, jax = decoder.split(outputs), split_outputs(CONFIG, reference)
        assert set(core) == set(OUTPUTS)
        assert np.abs(core["hits"] - jax["hits"]).max() <= FLOAT_TOLERANCE
        assert np.abs(core["velocity"] - jax["velocity"]).max() <= 127 * FLOAT_TOLERANCE
        assert np.abs(core["offset"] - jax["offset"]).max() <= FLOAT_TOLERANCE
        assert core["offset"].min() >= -0.5 and core["offset"].max() <= 0.5
        # invoke() fills the same whole vector
        decoder.input[:] = latents[7]
        assert np.array_equal(decoder.invoke(), outputs[7])


def test_notes_carry_velocity_and_offset(latents: np.ndarray) -> None:
    decoder = Decoder.from_layers(groove_layers(), GROOVE_META)
    outputs = decoder.decode(latents[:40])
    layers = groove_layers()
    kernel, bias = layers[-1]
    cells = TICKS * ROWS  # the hits block alone: a hits-only model of the same hits
    hits_only = Decoder.from_layers(
        [*layers[:-1], (kernel[:, :cells], bias[:cells])],
        XenMetadata("perc", ROWS, TICKS, 3, group_sizes=(1, 2, 3)),
    )
    count = 0
    for sequence in outputs:
        channels = sequence.reshape(3, TICKS, ROWS)
        groove_notes = decoder.notes(sequence, threshold=0.4, max_notes=6)
        plain_notes = hits_only.notes(channels[0], threshold=0.4, max_notes=6)
        for tick, (notes, plain) in enumerate(zip(groove_notes, plain_notes, strict=True)):
            # the hits decide alone: the same notes as the hits-only model's
            assert [(n.row, n.probability, n.accent) for n in notes] == [
                (n.row, n.probability, n.accent) for n in plain
            ]
            assert all(n.velocity == 100 and n.offset == 0.0 for n in plain)
            for note in notes:
                velocity_s, offset_s = channels[1, tick, note.row], channels[2, tick, note.row]
                assert note.velocity == expected_velocity(velocity_s)
                assert note.offset == np.float32(offset_s) - np.float32(0.5)
                count += 1
    assert count > 50


def test_channel_subsets_default_the_missing_one() -> None:
    latent = np.array([[1.0, -2.0, 0.5]], np.float32)
    for ids, names in (((0, 1), ("hits", "velocity")), ((0, 2), ("hits", "offset"))):
        meta = XenMetadata("note", ROWS, TICKS, 3, base_note=40, channel_ids=ids)
        decoder = Decoder.from_layers(groove_layers(2), meta)
        assert decoder.channels == names
        outputs = decoder.decode(latent)[0]
        second = outputs.reshape(2, TICKS, ROWS)[1]
        notes = [(t, n) for t, step in enumerate(decoder.notes(outputs, threshold=0.3)) for n in step]
        assert len(notes) > 5
        for tick, note in notes:
            if names[1] == "velocity":
                assert note.velocity == expected_velocity(second[tick, note.row]) and note.offset == 0.0
            else:
                assert note.velocity == 100 and note.offset == np.float32(
                    second[tick, note.row]
                ) - np.float32(0.5)


def test_int8_groove_notes_from_the_quantised_outputs(latents: np.ndarray) -> None:
    layers = groove_layers()
    decoder = Decoder.from_bytes(tflite_bytes(layers, GROOVE_META, "int8"), source="groove int8")
    assert decoder.dtype == "int8" and decoder.channels == ("hits", "velocity", "offset")
    quant = decoder.c_model.input_quant
    q_latents = np.clip(np.round(latents / quant.scale) + quant.zero_point, -128, 127).astype(np.int8)
    assert decoder.decode_quantized(q_latents).shape == (N_LATENTS, 3 * TICKS, ROWS)
    # one output quantisation for all channels: scale 1/256, zero point -128
    assert decoder.c_model.output_quant.scale == 1 / 256 and decoder.c_model.output_quant.zero_point == -128
    outputs = decoder.decode(latents)
    for sequence in outputs[:20]:
        q = np.round(sequence * 256).astype(np.int64) - 128  # exact: k / 256
        assert np.array_equal((q + 128) / np.float32(256), sequence)
        channels = sequence.reshape(3, TICKS, ROWS)
        for tick, notes in enumerate(decoder.notes(sequence, threshold=0.3, max_notes=6)):
            for note in notes:
                assert note.velocity == expected_velocity(channels[1, tick, note.row])
                assert note.offset == channels[2, tick, note.row] - np.float32(0.5)


def test_engine_plays_velocities_and_offsets() -> None:
    decoder = Decoder.from_layers(groove_layers(), GROOVE_META)
    latent = np.array([0.5, 2.0, -1.0], np.float32)
    engine = decoder.engine(max_notes=6)
    engine.run_inference(latent, threshold=0.4)
    first = engine.clock()
    assert first is not None and first[0] == 0
    played = engine.sequence()
    assert played == decoder.notes(decoder.decode(latent[None])[0], threshold=0.4, max_notes=6)
    assert {n.velocity for step in played for n in step} - {100}  # velocities from the model
    assert any(n.offset != 0.0 for step in played for n in step)


# ---- malformed version 3 metadata ----


def parse(data: bytes) -> tuple[int, object]:
    meta = ffi.new("rv_metadata *")
    buffer = ffi.new("uint8_t[]", data)
    return int(lib.rv_metadata_parse(buffer, len(data), meta)), meta


def test_version_3_fields_parse_and_version_2_gives_one_channel() -> None:
    status, meta = parse(GROOVE_META.to_bytes())
    assert status == lib.RV_OK and meta.extension_version == 3 and meta.channels == 3
    assert list(meta.channel_ids) == [lib.RV_CHANNEL_HITS, lib.RV_CHANNEL_VELOCITY, lib.RV_CHANNEL_OFFSET]
    hits_only = XenMetadata("perc", ROWS, TICKS, 3, group_sizes=(1, 2, 3))
    status, meta = parse(hits_only.to_bytes())
    assert status == lib.RV_OK and meta.extension_version == 2
    assert meta.channels == 1 and meta.channel_ids[0] == lib.RV_CHANNEL_HITS


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        (b"", "no channel count"),
        (b"\x03\x00\x01", "ids cut"),
        (b"\x00", "0 channels"),
        (b"\x04\x00\x01\x02\x02", "4 channels"),
        (b"\x02\x01\x00", "hits not first"),
        (b"\x03\x00\x01\x01", "an id twice"),
        (b"\x02\x00\x00", "hits twice"),
        (b"\x02\x00\x03", "unknown id"),
        (b"\xff\x00", "255 channels"),
    ],
)
def test_malformed_version_3_is_refused(tail: bytes, why: str) -> None:
    declared = XenMetadata("perc", ROWS, TICKS, 3, group_sizes=(1, 2, 3), extension_version=3).to_bytes()
    assert declared.endswith(b"\x01\x00") and parse(declared)[0] == lib.RV_OK  # hits alone, declared
    base = declared[:-2]
    assert parse(base + tail)[0] == lib.RV_ERR_METADATA, why


def test_random_version_3_tails() -> None:
    """Random channel counts and ids: accepted exactly when the format allows them."""
    rng = np.random.default_rng(3)
    base = GROOVE_META.to_bytes()[:-4]  # up to the version 2 fields
    accepted = 0
    for _ in range(3000):
        count = int(rng.integers(0, 6))
        ids = [int(i) for i in rng.integers(0, 5, size=int(rng.integers(0, 6)))]
        status, meta = parse(base + bytes([count, *ids]))
        valid = 1 <= count <= 3 and len(ids) >= count and ids[0] == 0 and len(set(ids[:count])) == count
        valid = valid and all(i < 3 for i in ids[:count])
        assert status == (lib.RV_OK if valid else lib.RV_ERR_METADATA), (count, ids)
        if valid:
            accepted += 1
            assert list(meta.channel_ids)[:count] == ids[:count]
    assert accepted > 100


def test_output_size_must_match_the_channels() -> None:
    hits_meta = XenMetadata("perc", ROWS, TICKS, 3, group_sizes=(1, 2, 3))
    # a hits-only decoder under groove metadata, and a groove decoder under hits-only metadata
    for layers, meta in ((groove_layers(1), GROOVE_META), (groove_layers(3), hits_meta)):
        with pytest.raises(CoreError, match="metadata") as error:
            Decoder.from_layers(layers, meta)
        assert error.value.status == lib.RV_ERR_METADATA
    # a file whose metadata declares 2 channels for a decoder of 3 (the third id left as a later field)
    groove = tflite_bytes(groove_layers(3), GROOVE_META, "float32")
    xen = GROOVE_META.to_bytes()
    assert groove.count(xen) == 1 and xen.endswith(b"\x03\x00\x01\x02")
    damaged = groove.replace(xen, xen[:-4] + b"\x02\x00\x01\x02")
    with pytest.raises(CoreError) as error:
        Decoder.from_bytes(damaged)
    assert error.value.status == lib.RV_ERR_METADATA
    assert Decoder.from_bytes(groove).channels == OUTPUTS
