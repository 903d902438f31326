"""Post-processing on hand-made probabilities and the sequencer engine on clock scripts, through
rackvae.core (the C core)."""

from __future__ import annotations

import numpy as np
import pytest

from rackvae.core import Decoder, Engine, Note, latent_from_controls, threshold_from_controls
from rackvae.export.metadata import XenMetadata
from rackvae.model import random_decoder_layers

NOTE_META = XenMetadata("note", rows=6, ticks=4, latent_scale=2, base_note=57)
PERC_META = XenMetadata("perc", rows=6, ticks=4, latent_scale=3, group_sizes=(1, 3, 2))


def decoder(meta: XenMetadata, seed: int = 0) -> Decoder:
    layers = random_decoder_layers((3, 10, meta.rows * meta.ticks), seed=seed)
    # sharpen so that some rows sound and some do not
    layers[-1] = (layers[-1][0] * 8.0, layers[-1][1] - 1.0)
    return Decoder.from_layers(layers, meta)


def test_notes_threshold_top_k_and_pitch_order() -> None:
    probabilities = np.array(
        [
            [0.9, 0.2, 0.8, 0.7, 0.95, 0.6],  # 5 above 0.5, the 4 best in pitch order: rows 0 2 3 4
            [0.1, 0.1, 0.1, 0.1, 0.1, 0.1],  # nothing
            [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],  # ties: the lowest rows win
            [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        ],
        np.float32,
    )
    notes = decoder(NOTE_META).notes(probabilities, threshold=0.5, max_notes=4, zero_volt_note=60)
    assert [[n.row for n in step] for step in notes] == [[0, 2, 3, 4], [], [0, 1, 2, 3], [5]]
    first = notes[0][0]
    # a hits-only model: the default velocity (RV_DEFAULT_VELOCITY), on the grid
    assert first == Note(
        row=0,
        midi_note=57,
        group=-1,
        probability=first.probability,
        accent=1.0,
        volts=-0.25,
        velocity=100,
        offset=0.0,
    )
    assert notes[3][0].midi_note == 62 and notes[3][0].volts == pytest.approx(2 / 12)


def test_post_processing_settings_out_of_range_are_refused_by_name() -> None:
    probabilities = np.zeros((4, 6), np.float32)
    model = decoder(NOTE_META)
    for settings, message in (
        ({"max_notes": 0}, "max_notes must be 1..8, got 0"),
        ({"max_notes": 300}, "max_notes must be 1..8, got 300"),
        ({"zero_volt_note": 128}, "zero_volt_note must be a MIDI note 0..127, got 128"),
        ({"zero_volt_note": -1}, "zero_volt_note must be a MIDI note 0..127, got -1"),
    ):
        with pytest.raises(ValueError, match=f"^{message}$"):
            model.notes(probabilities, **settings)
        with pytest.raises(ValueError, match=f"^{message}$"):
            model.engine(**settings)
    assert model.notes(probabilities, max_notes=8, zero_volt_note=127) == [[], [], [], []]


def test_percussion_groups_and_accents() -> None:
    probabilities = np.zeros((4, 6), np.float32)
    probabilities[0] = [1, 1, 1, 1, 1, 1]
    notes = decoder(PERC_META).notes(probabilities, threshold=0.5, max_notes=6)
    assert [(n.row, n.group, n.accent) for n in notes[0]] == [
        (0, 0, 0.0),
        (1, 1, 0.0),
        (2, 1, 0.5),
        (3, 1, 1.0),
        (4, 2, 0.0),
        (5, 2, 1.0),
    ]


def test_controls_map_onto_the_latent_scale_and_clamp() -> None:
    assert latent_from_controls(2.5, 0.0, 2.0) == 1.0
    assert latent_from_controls(5.0, 5.0, 2.0) == 2.0  # the original would have given 10
    assert latent_from_controls(-4.0, -3.0, 3.0) == -3.0
    assert threshold_from_controls(-5.0, 0.0) == 0.0
    assert threshold_from_controls(5.0, 0.0) == pytest.approx(0.3)
    assert threshold_from_controls(0.0, -5.0) == 0.0


def expected_sequence(dec: Decoder, latent: list[float], threshold: float) -> list[list[Note]]:
    probabilities = dec.decode(np.array([latent], np.float32))[0]
    return dec.notes(probabilities, threshold=threshold)


def play(engine: Engine, clocks: int) -> list[tuple[int, list[Note]] | None]:
    return [engine.clock() for _ in range(clocks)]


def test_engine_clock_script_automatic_mode() -> None:
    dec = decoder(NOTE_META, seed=3)
    a, b = [1.5, -1.0, 0.5], [-2.0, 2.0, -1.0]
    seq_a, seq_b = expected_sequence(dec, a, 0.3), expected_sequence(dec, b, 0.3)
    assert seq_a != seq_b
    engine = dec.engine()
    assert engine.inference_pending
    assert play(engine, 1) == [None]  # no sequence yet; the clock still counts
    engine.run_inference(np.array(a), 0.3)
    assert engine.clock() == (1, seq_a[1])  # the first sequence starts at once
    assert engine.inference_pending  # and the next one is wanted during this cycle
    engine.run_inference(np.array(b), 0.3)
    assert play(engine, 2) == [(2, seq_a[2]), (3, seq_a[3])]  # b waits for step 0
    assert play(engine, 4) == [(t, seq_b[t]) for t in range(4)]
    assert engine.sequence() == seq_b
    # pause until reset, then reset: back to before step 0
    engine.pause_until_reset()
    assert play(engine, 3) == [None, None, None]
    engine.reset()
    assert engine.clock() == (0, seq_b[0])


def test_engine_manual_mode() -> None:
    dec = decoder(PERC_META, seed=4)
    a, b = [1.0, 1.0, 1.0], [-3.0, 0.0, 3.0]
    seq_a, seq_b = expected_sequence(dec, a, 0.2), expected_sequence(dec, b, 0.2)
    engine = dec.engine()
    engine.run_inference(np.array(a), 0.2)
    engine.set_manual(True)
    assert play(engine, 8) == [(t % 4, seq_a[t % 4]) for t in range(8)]
    assert not engine.inference_pending  # no automatic requests in manual mode
    engine.request_inference()
    assert engine.inference_pending
    engine.run_inference(np.array(b), 0.2)
    assert engine.clock() == (0, seq_b[0])  # swapped in at the next edge
    engine.set_manual(False)
    assert engine.inference_pending
