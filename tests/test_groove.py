"""Groove models: hits, velocity and offset decoded through one sigmoid, the loss on hit cells only,
the metrics and their baselines, and a synthetic feel learned to the issue's tolerances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rackvae.dataset import Dataset, RollLayout
from rackvae.groove import fit_baselines, format_groove_table, groove_metrics, step_milliseconds
from rackvae.model import (
    OUTPUTS,
    VAE,
    ModelConfig,
    decode_layers,
    groove_inputs,
    init_params,
    loss_terms,
    split_outputs,
)
from rackvae.train import TrainSettings, load_model, new_model, train

TICKS, ROWS = 16, 4
GROOVE = ModelConfig(TICKS, ROWS, hidden_sizes=(32, 16), outputs=OUTPUTS)


def synthetic_feel(count: int = 400, seed: int = 0) -> Dataset:
    """16th patterns (each sequence one of 8 random ones) in which every off-beat is 1/3 step late and
    soft (60), every downbeat (the even steps) on time and loud (120); 40 files."""
    rng = np.random.default_rng(seed)
    patterns = (rng.random((8, TICKS, ROWS)) < 0.35).astype(np.uint8)
    rolls = patterns[rng.integers(0, len(patterns), count)]
    off_beat = (np.arange(TICKS) % 2 == 1)[None, :, None]
    velocities = (rolls * np.where(off_beat, 60, 120)).astype(np.uint8)
    offsets = (rolls * np.where(off_beat, 1 / 3, 0.0)).astype(np.float32)
    index = np.arange(count, dtype=np.int32)
    return Dataset(
        rolls,
        velocities,
        RollLayout("perc", ROWS, group_sizes=(ROWS,), row_notes=(36, 38, 42, 46)),
        files=[f"song{i}.mid" for i in range(40)],
        file_index=index % 40,
        track=np.zeros(count, np.int32),
        bar=index,
        offsets=offsets,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    data = synthetic_feel()
    train_set, validation_set = data.split(0.2)
    model = new_model("feel", GROOVE, data)
    directory = tmp_path_factory.mktemp("feel")
    train(model, train_set, validation_set, TrainSettings(epochs=200), directory, log=None)
    return model, train_set, validation_set, directory


def test_the_synthetic_feel_is_learned_to_0_05_step_and_8_velocity(trained) -> None:
    model, _, validation_set, _ = trained
    outputs = model.decode_outputs(model.encode(model.inputs(validation_set))[0])
    hit = validation_set.rolls > 0
    played = hit & (outputs["hits"] >= model.cell_thresholds())
    assert played.sum() > 0.9 * hit.sum()
    assert np.abs(outputs["offset"] - validation_set.timing)[played].max() < 0.05
    assert np.abs(outputs["velocity"] - validation_set.velocities)[played].max() < 8


def test_groove_metrics_beat_straight_and_match_the_template_on_a_fixed_feel(trained) -> None:
    model, train_set, validation_set, _ = trained
    metrics = groove_metrics(model, validation_set, fit_baselines(train_set))
    # The feel is a template: the template baseline is exact, straight is off by the mean error.
    assert metrics["template"] == {"velocity_mae": 0.0, "timing_mae_steps": 0.0, "timing_mae_ms": 0.0}
    assert metrics["straight"]["velocity_mae"] == pytest.approx(30.0, abs=3.0)  # mean velocity ~90
    assert metrics["straight"]["timing_mae_steps"] == pytest.approx(1 / 6, abs=0.02)
    assert metrics["model"]["velocity_mae"] < 4 and metrics["model"]["timing_mae_steps"] < 0.02
    assert metrics["model"]["timing_mae_ms"] == pytest.approx(metrics["model"]["timing_mae_steps"] * 125)
    table = format_groove_table(metrics)
    assert "velocity MAE" in table and len(table.splitlines()) == 5


def test_a_groove_model_saves_and_loads_with_its_channels(trained) -> None:
    model, _, _, directory = trained
    loaded = load_model(directory)
    assert loaded.config == model.config and loaded.config.outputs == OUTPUTS
    latents = np.random.default_rng(1).uniform(-3, 3, (50, 3)).astype(np.float32)
    for name, channel in model.decode_outputs(latents).items():
        assert np.array_equal(loaded.decode_outputs(latents)[name], channel), name
    assert loaded.thresholds == model.thresholds


def test_generated_bars_play_each_note_at_its_velocity_and_offset(trained, tmp_path: Path) -> None:
    import mido

    from rackvae import generate
    from rackvae.export import tflite

    model, _, _, directory = trained
    music = generate.load(directory)
    bars = music.sample(6, seed=1)
    outputs = model.decode_outputs(bars.latents)
    played = bars.rolls > 0
    assert played.sum() > 20 and bars.velocities is not None and bars.offsets is not None
    velocities = np.clip(np.rint(outputs["velocity"]), 1, 127)
    assert np.array_equal(bars.velocities, np.where(played, velocities, 0))
    assert np.array_equal(bars.offsets, np.where(played, outputs["offset"], 0).astype(np.float32))
    # The C core on the same float32 weights, from the folder and from an exported file (no JAX at
    # all): the same notes at the same velocities, offsets within float32 rounding.
    exported = tmp_path / "g_dec.tflite"
    exported.write_bytes(tflite.tflite_bytes(model.decoder_layers(), music.decoder.metadata, "float32"))
    for on_core in (generate.load(directory, "c"), generate.load(exported)):
        assert on_core.decoder.channels == OUTPUTS
        assert on_core.probabilities(bars.latents).shape == (6, TICKS, ROWS)
        played_on_core = on_core.decode(bars.latents)
        assert np.array_equal(played_on_core.rolls, bars.rolls)
        assert played_on_core.velocities is not None and played_on_core.offsets is not None
        assert np.abs(played_on_core.velocities.astype(int) - bars.velocities).max() <= 1
        assert np.abs(played_on_core.offsets - bars.offsets).max() < 1e-5
    with pytest.raises(generate.GenerateError, match="groove model"):
        music.encode(bars.rolls)
    path = music.to_midi(bars, tmp_path / "feel.mid")
    heard, now = [], 0
    for message in mido.MidiFile(path).tracks[0]:
        now += message.time
        if message.type == "note_on" and message.velocity:
            heard.append((now, message.note, message.velocity))
    bar, tick, row = np.nonzero(played)
    steps = bar * TICKS + tick + np.maximum(bars.offsets[bar, tick, row], -0.5)
    expected = [
        (int(np.rint(step * 120)), (36, 38, 42, 46)[r], int(bars.velocities[b, t, r]))
        for step, r, b, t in zip(steps, row, bar, tick, strict=True)
    ]
    assert sorted(heard) == sorted(expected)
    # Prior samples lie beside the training bars' latents, yet keep the feel: late off-beats.
    off_beat = (np.arange(TICKS) % 2 == 1)[None, :, None]
    assert (
        bars.offsets[played & off_beat].min() > 0.2 and np.abs(bars.offsets[played & ~off_beat]).max() < 0.1
    )


def test_the_decoder_is_one_sigmoid_over_channel_major_blocks_hits_first() -> None:
    params = init_params(GROOVE, seed=3)
    layers = [
        (np.asarray(p["kernel"]), np.asarray(p["bias"]))
        for p in (params["decoder"][k] for k in ("dec_0", "dec_1", "dec_out"))
    ]
    assert layers[-1][0].shape == (32, 3 * TICKS * ROWS)
    latents = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    outputs = decode_layers(layers, latents)  # the reference every exporter and the C core match
    h = latents
    for kernel, bias in layers[:-1]:
        h = np.maximum(h @ kernel + bias, 0)
    logits = h @ layers[-1][0] + layers[-1][1]
    channels = split_outputs(GROOVE, outputs)
    cells = TICKS * ROWS
    assert np.allclose(channels["hits"].reshape(20, -1), 1 / (1 + np.exp(-logits[:, :cells])), atol=1e-6)
    assert np.allclose(
        channels["velocity"].reshape(20, -1), 127 / (1 + np.exp(-logits[:, cells : 2 * cells])), atol=1e-4
    )
    # sigmoid(x) - 0.5 = 0.5 tanh(x / 2): a tanh scaled to half a step.
    assert np.allclose(
        channels["offset"].reshape(20, -1), 0.5 * np.tanh(logits[:, 2 * cells :] / 2), atol=1e-6
    )
    assert channels["hits"].shape == (20, TICKS, ROWS)


@pytest.mark.parametrize(
    ("velocity_error", "offset_error", "powers"),
    [("squared", "squared", (2, 2)), ("absolute", "absolute", (1, 1)), ("squared", "absolute", (2, 1))],
)
def test_the_loss_is_bce_plus_weighted_errors_on_hit_cells_only(
    velocity_error: str, offset_error: str, powers: tuple[int, int]
) -> None:
    config = ModelConfig(
        TICKS,
        ROWS,
        hidden_sizes=(32, 16),
        outputs=OUTPUTS,
        velocity_weight=3.0,
        offset_weight=7.0,
        velocity_error=velocity_error,  # type: ignore[arg-type]
        offset_error=offset_error,  # type: ignore[arg-type]
    )
    data = synthetic_feel(8, seed=2)
    inputs = groove_inputs(config, data.rolls, data.velocities, data.timing)
    params = init_params(config, seed=1)
    noise = np.zeros((8, 3), np.float32)
    reconstruction, _ = loss_terms(config, params, inputs, noise)
    # By hand from the decoder's logits at the encoder mean (noise 0): the errors count only where the
    # target hits (a target's velocity and offset channels are 0 elsewhere, its sigmoid not).
    logits, _, _ = VAE(config).apply({"params": params}, inputs, None)
    logits = np.asarray(logits, np.float64)
    cells = TICKS * ROWS
    hit = inputs[:, :cells]
    p = 1 / (1 + np.exp(-logits))
    bce = -(hit * np.log(p[:, :cells]) + (1 - hit) * np.log(1 - p[:, :cells])).sum(axis=1)
    velocity_errors = (hit * np.abs(p[:, cells : 2 * cells] - inputs[:, cells : 2 * cells]) ** powers[0]).sum(
        axis=1
    )
    offset_errors = (hit * np.abs(p[:, 2 * cells :] - inputs[:, 2 * cells :]) ** powers[1]).sum(axis=1)
    assert np.allclose(reconstruction, bce + 3 * velocity_errors + 7 * offset_errors, rtol=1e-5)


def test_inputs_channels_and_config_round_trip() -> None:
    data = synthetic_feel(4)
    inputs = groove_inputs(GROOVE, data.rolls, data.velocities, data.timing)
    cells = TICKS * ROWS
    hit = data.rolls.reshape(4, -1) > 0
    assert np.array_equal(inputs[:, :cells], hit)
    assert np.allclose(inputs[:, cells : 2 * cells], np.where(hit, data.velocities.reshape(4, -1) / 127, 0))
    assert np.allclose(inputs[:, 2 * cells :], np.where(hit, data.timing.reshape(4, -1) + 0.5, 0))
    assert ModelConfig.from_dict(GROOVE.to_dict()) == GROOVE
    old = {k: v for k, v in ModelConfig(TICKS, ROWS).to_dict().items() if k not in ("outputs",)}
    assert ModelConfig.from_dict(old).outputs == ("hits",)
    assert ModelConfig(TICKS, ROWS, outputs=("hits", "offset")).output_size == 2 * cells
    for bad in (("velocity",), ("hits", "offset", "velocity"), ("hits", "pitch")):
        with pytest.raises(ValueError, match="outputs"):
            ModelConfig(TICKS, ROWS, outputs=bad)


def test_baselines_are_the_training_hits_means() -> None:
    rolls = np.zeros((2, TICKS, ROWS), np.uint8)
    velocities = np.zeros_like(rolls)
    offsets = np.zeros(rolls.shape, np.float32)
    for sequence, velocity, offset in ((0, 100, 0.25), (1, 50, -0.125)):
        rolls[sequence, 4, 1] = 1
        velocities[sequence, 4, 1] = velocity
        offsets[sequence, 4, 1] = offset
    rolls[0, 0, 0], velocities[0, 0, 0] = 1, 30
    zeros = np.zeros(2, np.int32)
    data = Dataset(rolls, velocities, RollLayout("perc", ROWS), {}, [], zeros, zeros, zeros, offsets)
    baselines = fit_baselines(data)
    assert np.all(baselines.straight_velocity == pytest.approx(60.0)) and not baselines.straight_offset.any()
    assert baselines.template_velocity[4, 1] == 75 and baselines.template_offset[4, 1] == pytest.approx(
        0.0625
    )
    assert baselines.template_velocity[0, 0] == 30 and baselines.template_velocity[9, 3] == pytest.approx(
        60.0
    )
    assert step_milliseconds(4) == 125.0 and step_milliseconds(12) == pytest.approx(125 / 3)


def test_a_hits_only_model_has_no_groove_to_measure(tmp_path: Path) -> None:
    data = synthetic_feel(40)
    model = new_model("plain", ModelConfig(TICKS, ROWS, hidden_sizes=(8,)), data)
    assert model.inputs(data) is data.rolls
    with pytest.raises(ValueError, match="decodes hits only"):
        groove_metrics(model, data, fit_baselines(data))


def test_train_and_eval_a_groove_model_from_the_command_line(
    corpora: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rackvae import dataset as datasets
    from rackvae.cli import main

    data = tmp_path / "groove.npz"
    files = sorted((corpora / "groove" / "drummer1").rglob("*.mid"))[:40]
    assert main(["ingest", *map(str, files), "--percussion-map", "extended", "-o", str(data), "--quiet"]) == 0
    old = tmp_path / "old.npz"  # the same data as written before ingest kept offsets
    archive = dict(np.load(data))
    del archive["offsets"]
    np.savez(old, **archive)
    train = [
        "train",
        "--name",
        "g",
        "-o",
        str(tmp_path / "models"),
        "--epochs",
        "3",
        "-q",
        "--validation-fraction",
        "0.25",
    ]
    groove = ["--outputs", "hits,velocity,offset", "--velocity-weight", "10", "--offset-weight", "10"]
    groove += ["--offset-error", "absolute"]
    with pytest.raises(SystemExit, match=r"old\.npz holds no offsets"):
        main([*train, str(old), *groove])
    with pytest.raises(SystemExit, match=r"--outputs.*velocity, offset in that order"):
        main([*train, str(data), "--outputs", "velocity,hits"])
    assert main([*train, str(data), *groove]) == 0
    model = load_model(tmp_path / "models" / "g")
    assert model.config.outputs == OUTPUTS and model.config.decoder_sizes()[-1] == 3 * 16 * 12
    assert (model.config.velocity_weight, model.config.offset_weight) == (10.0, 10.0)
    assert (model.config.velocity_error, model.config.offset_error) == ("squared", "absolute")
    capsys.readouterr()
    model_dir = str(tmp_path / "models" / "g")
    assert main(["eval", model_dir, "--plots", str(tmp_path / "plots"), "--prior-samples", "100"]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "plots" / "groove_rolls.png").stat().st_size > 10_000
    assert "velocity MAE" in printed and "template" in printed and "straight" in printed
    stored = json.loads((tmp_path / "models" / "g" / "model.json").read_text())["metrics"]["groove"]
    _, validation_set = datasets.load(data).split(0.25, 0)
    assert stored["target_hits"] == int(validation_set.rolls.sum()) > 0
    assert stored["template"]["velocity_mae"] < stored["straight"]["velocity_mae"]
    with pytest.raises(SystemExit, match="groove model"):
        main(["eval", str(tmp_path / "models" / "g"), str(files[0])])
    from rackvae.export.metadata import read_xen_metadata

    assert main(["export", model_dir, "--formats", "f32", "-o", str(tmp_path / "export")]) == 0
    assert read_xen_metadata((tmp_path / "export" / "g_dec.tflite").read_bytes()).channel_names == OUTPUTS
