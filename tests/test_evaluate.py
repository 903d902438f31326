"""Metrics on hand-made arrays with known answers, a hand-set model, and ``rackvae eval`` on real data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from rackvae.calibrate import Thresholds
from rackvae.dataset import RollLayout
from rackvae.evaluate import (
    evaluate,
    format_table,
    generation_metrics,
    grid_points_for,
    hits_per_bar,
    latent_grid,
    neighbour_changes,
    novelty,
    reconstruction_metrics,
    write_plots,
)
from rackvae.model import ModelConfig, init_params
from rackvae.train import TrainedModel, constant_roll

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_reconstruction_metrics_known_answers() -> None:
    targets = np.array(
        [
            [[1, 0, 0], [0, 1, 0]],  # reproduced exactly
            [[1, 1, 0], [0, 0, 1]],  # one note added in tick 0, one missed in tick 1
        ],
        np.uint8,
    )
    probs = np.array(
        [
            [[0.9, 0.1, 0.0], [0.2, 0.5, 0.4]],  # 0.5 counts as on
            [[0.7, 0.8, 0.6], [0.0, 0.3, 0.49]],
        ]
    )
    metrics = reconstruction_metrics(targets, probs)
    assert metrics["sequences"] == 2
    assert metrics["exact_recall"] == 0.5
    assert metrics["step_accuracy"] == 0.5  # 2 of 4 (sequence, tick) steps right
    assert metrics["element_accuracy"] == pytest.approx(10 / 12)
    # 4 true positives, 5 predicted, 5 true notes
    assert metrics["note_precision"] == pytest.approx(0.8)
    assert metrics["note_recall"] == pytest.approx(0.8)
    assert metrics["note_f1"] == pytest.approx(0.8)


def test_reconstruction_metrics_with_nothing_predicted_and_a_custom_threshold() -> None:
    targets = np.zeros((3, 4, 2), np.uint8)
    targets[0, 0, 0] = 1
    silent = reconstruction_metrics(targets, np.zeros(targets.shape))
    assert silent["note_precision"] == 0.0 and silent["note_recall"] == 0.0 and silent["note_f1"] == 0.0
    assert silent["exact_recall"] == pytest.approx(2 / 3)
    assert silent["element_accuracy"] == pytest.approx(23 / 24)
    probs = np.full(targets.shape, 0.3)
    assert reconstruction_metrics(targets, probs, threshold=0.25)["note_recall"] == 1.0
    with pytest.raises(ValueError, match="must both be"):
        reconstruction_metrics(targets, probs[:2])


def test_constant_roll_needs_more_than_half() -> None:
    rolls = np.zeros((4, 1, 3), np.uint8)
    rolls[:3, 0, 0] = 1  # 3 of 4: on
    rolls[:2, 0, 1] = 1  # exactly half: off
    rolls[:1, 0, 2] = 1
    np.testing.assert_array_equal(constant_roll(rolls), [[1, 0, 0]])


def test_latent_grid_and_points_budget() -> None:
    grid = latent_grid(2, 3.0, 3)
    assert grid.shape == (9, 2)
    np.testing.assert_array_equal(grid[0], [-3.0, -3.0])
    np.testing.assert_array_equal(grid[1], [-3.0, 0.0])  # the last dimension varies fastest
    np.testing.assert_array_equal(grid[-1], [3.0, 3.0])
    assert grid_points_for(3, 4096) == 16
    assert grid_points_for(2, 4096) == 64
    assert grid_points_for(8, 4096) == 2


def test_neighbour_changes_and_novelty() -> None:
    a = np.zeros((2, 2), np.uint8)
    b = a.copy()
    b[0, :] = 1  # 2 cells differ from a
    c = 1 - b  # all 4 cells differ from b
    assert neighbour_changes(np.stack([a, b, c]), 3, 1) == 3.0
    # 2x2 grid: pairs along the first axis (a,b),(c,c) and the second (a,c),(b,c)
    square = np.stack([a, c, b, c])
    assert neighbour_changes(square, 2, 2) == pytest.approx((2 + 0 + 2 + 4) / 4)
    training = np.stack([a, b])
    assert novelty(np.stack([a, c, c, 1 - a]), training) == 0.75


def constant_model(roll: np.ndarray, latent_dim: int = 2) -> TrainedModel:
    """A model whose decoder ignores the latent and always gives ``roll`` (saturated probabilities)."""
    ticks, rows = roll.shape
    config = ModelConfig(ticks, rows, latent_dim=latent_dim, hidden_sizes=(4,))
    params = jax.tree.map(np.asarray, init_params(config))
    params["decoder"]["dec_0"]["kernel"] = np.zeros_like(params["decoder"]["dec_0"]["kernel"])
    params["decoder"]["dec_out"]["kernel"] = np.zeros_like(params["decoder"]["dec_out"]["kernel"])
    params["decoder"]["dec_out"]["bias"] = np.where(roll.ravel() > 0, 20.0, -20.0).astype(np.float32)
    return TrainedModel("constant", config, params, RollLayout("perc", rows))


def test_a_model_that_outputs_the_constant_roll_scores_exactly_the_baseline() -> None:
    rng = np.random.default_rng(1)
    training = (rng.random((50, 4, 3)) < 0.5).astype(np.uint8)
    held_out = (rng.random((20, 4, 3)) < 0.5).astype(np.uint8)
    model = constant_model(constant_roll(training))
    metrics = evaluate(model, {"train": training, "validation": held_out}, training, prior_samples=64)
    assert metrics["primary_split"] == "validation"
    for split in ("train", "validation"):
        for key in ("exact_recall", "step_accuracy", "element_accuracy", "note_f1"):
            assert metrics["splits"][split][key] == metrics["splits"][split]["baseline_" + key]
    assert metrics["step_accuracy"] == metrics["baseline_step_accuracy"]
    generation = metrics["generation"]
    assert generation["grid_neighbour_changes"] == 0.0
    assert generation["grid_distinct"] == 1 / generation["grid_points_per_dim"] ** 2
    assert generation["prior_distinct"] == 1 / 64
    assert generation["grid_density"] == generation["prior_density"] == constant_roll(training).mean()
    assert generation["data_density"] == pytest.approx(training.mean())
    in_training = any((t == constant_roll(training)).all() for t in training)
    assert generation["prior_novel"] == float(not in_training)
    json.dumps(metrics)  # JSON-able as printed by --json
    table = format_table(metrics)
    assert "validation (20)" in table and "constant roll validation" in table and "step_accuracy" in table


def test_hits_per_bar_overall_and_per_group() -> None:
    rolls = np.zeros((2, 4, 3), np.uint8)
    rolls[0, :, 0] = 1  # 4 kicks in the first bar
    rolls[1, 0, 1:] = 1  # one note on each of the two rows of the second group
    assert hits_per_bar(rolls, (1, 2)) == {"all": 3.0, "groups": [2.0, 1.0]}
    assert hits_per_bar(rolls, (), bars=2) == {"all": 1.5, "groups": []}


def test_the_model_thresholds_apply_per_group() -> None:
    roll = np.zeros((4, 3), np.uint8)
    model = constant_model(roll)
    probs = np.tile([0.25, 0.2, 0.2], 4)
    model.params["decoder"]["dec_out"]["bias"] = np.log(probs / (1 - probs)).astype(np.float32)
    model.layout = RollLayout("perc", 3, group_sizes=(1, 2))
    rolls = np.ones((5, 4, 3), np.uint8)
    # Uncalibrated: the C core's default threshold (0.3) for every row, so nothing plays.
    assert (
        evaluate(model, {"validation": rolls}, rolls, prior_samples=8)["at_model_threshold"]["note_recall"]
        == 0.0
    )
    model.thresholds = Thresholds(0.2, (0.2, 0.1))  # every cell plays
    metrics = evaluate(model, {"validation": rolls}, rolls, prior_samples=8)
    assert metrics["at_model_threshold"]["note_recall"] == 1.0 and metrics["note_recall"] == 0.0
    assert metrics["splits"]["validation"]["hits_per_bar"]["reconstruction"] == {
        "all": 12.0,
        "groups": [4.0, 8.0],
    }
    assert metrics["generation"]["grid_density"] == 1.0
    model.thresholds = Thresholds(0.1, (0.22, 0.22))  # the group thresholds rule: only the first row plays
    metrics = evaluate(model, {"validation": rolls}, rolls, prior_samples=8)
    assert metrics["at_model_threshold"]["note_recall"] == pytest.approx(1 / 3)
    assert "@ model: at the model's thresholds (0.100, per group 0.220 0.220)" in format_table(metrics)


def test_generation_without_training_data_reports_no_novelty() -> None:
    roll = np.zeros((4, 3), np.uint8)
    roll[0, 1] = 1
    generation = generation_metrics(constant_model(roll, latent_dim=3), None, prior_samples=10)
    assert generation["prior_novel"] is None and "data_density" not in generation
    assert generation["grid_points_per_dim"] == 17  # the module's 17^3 knob grid
    assert generation["grid_empty"] == 0.0 and generation["grid_density"] == pytest.approx(1 / 12)


def test_write_plots_writes_pngs(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rolls = (rng.random((30, 16, 4)) < 0.3).astype(np.uint8)
    model = constant_model(constant_roll(rolls))
    model.history = {"loss": [3.0, 2.0], "val_loss": [None, None], "learning_rate": [1e-3, 1e-3]}
    written = write_plots(model, rolls, tmp_path / "plots")
    names = sorted(path.name for path in written)
    assert names == [
        "input_output.png",
        "latent_map.png",
        "latent_pairs.png",
        "loss_curves.png",
        "output_histogram.png",
    ]
    for path in written:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2000


def rackvae(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rackvae.cli", *map(str, args)], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def trained(corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A briefly trained model on real groove bars, saved as ``rackvae train`` does: (model dir, data)."""
    from rackvae.codec import EncodingSettings
    from rackvae.dataset import ingest
    from rackvae.train import TrainSettings, data_record, new_model, train

    root = tmp_path_factory.mktemp("eval")
    data = ingest(
        [corpora / "groove"], settings=EncodingSettings(percussion_map="extended"), progress=False
    ).dataset
    data.save(root / "groove.npz")
    train_set, validation_set = data.split(0.1, 0)
    model = new_model("drums", ModelConfig(16, 12), data)
    model.data = data_record(root / "groove.npz", train_set, validation_set, 0.1, 0)
    train(model, train_set, validation_set, TrainSettings(epochs=4), root / "models" / "drums", log=None)
    return root / "models" / "drums", root / "groove.npz"


def test_eval_json_on_the_models_own_splits(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model_dir, _ = trained
    result = rackvae("eval", model_dir, "--json", "--plots", tmp_path / "plots", "--prior-samples", "200")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["primary_split"] == "validation" and set(metrics["splits"]) == {"train", "validation"}
    assert metrics["splits"]["validation"]["sequences"] + metrics["splits"]["train"]["sequences"] > 19000
    for key in ("step_accuracy", "exact_recall", "note_f1", "element_accuracy", "baseline_step_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    # Four epochs already beat the constant roll by far on held-out bars.
    assert metrics["step_accuracy"] > metrics["baseline_step_accuracy"] + 0.1
    assert metrics["note_f1"] > metrics["splits"]["validation"]["baseline_note_f1"]
    assert metrics["generation"]["prior_samples"] == 200
    # The model's thresholds, chosen on this validation split: its reconstructions there play the data's
    # notes per bar, overall and per group (Extended map: kick, snare, toms, hi-hats, cymbals).
    assert metrics["thresholds"]["threshold"] < 0.5 and len(metrics["thresholds"]["group_thresholds"]) == 5
    hits = metrics["splits"]["validation"]["hits_per_bar"]
    assert hits["reconstruction"]["all"] == pytest.approx(hits["data"]["all"], rel=0.001)
    np.testing.assert_allclose(hits["reconstruction"]["groups"], hits["data"]["groups"], rtol=0.01)
    assert metrics["at_model_threshold"]["note_recall"] > metrics["note_recall"]  # 0.5 plays too few
    stored = json.loads((model_dir / "model.json").read_text())["metrics"]
    assert stored["step_accuracy"] == metrics["step_accuracy"]  # kept with the model
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "input_output.png",
        "latent_map.png",
        "latent_pairs.png",
        "loss_curves.png",
        "output_histogram.png",
    ]


def test_eval_refuses_a_plots_folder_it_cannot_make_before_measuring(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    model_dir, _ = trained
    taken = tmp_path / "taken"
    taken.write_bytes(b"a file, not a folder")
    stored = (model_dir / "model.json").read_bytes()
    for plots, reason in (
        (taken, "is a file, not a folder"),
        (taken / "sub", f"{taken} is a file, not a folder"),
    ):
        result = rackvae("eval", model_dir, "--plots", plots)
        assert result.returncode != 0
        # One line, before any metric: no table printed and nothing stored with the model
        assert result.stderr.strip() == f"eval: --plots {plots}: {reason}" and result.stdout == ""
    assert (model_dir / "model.json").read_bytes() == stored
    assert taken.read_bytes() == b"a file, not a folder"


def test_eval_on_midi_files_uses_the_models_encoding(trained: tuple[Path, Path], corpora: Path) -> None:
    from rackvae.codec import EncodingSettings
    from rackvae.dataset import ingest

    model_dir, _ = trained
    folder = corpora / "groove" / "drummer1" / "session3"
    result = rackvae("eval", model_dir, folder, "--prior-samples", "50")
    assert result.returncode == 0, result.stderr
    expected = len(
        ingest([folder], settings=EncodingSettings(percussion_map="extended"), progress=False).dataset
    )
    assert f"data ({expected})" in result.stdout and "constant roll data" in result.stdout
    assert expected > 50


def test_eval_on_midi_with_the_models_map_file_moved_says_so_in_one_line(
    trained: tuple[Path, Path], corpora: Path, tmp_path: Path
) -> None:
    model_dir, _ = trained
    moved = tmp_path / "moved_map"
    shutil.copytree(model_dir, moved)
    record = json.loads((moved / "model.json").read_text())
    record["dataset_settings"]["percussion_map"] = str(tmp_path / "kit.yml")  # not there (any more)
    (moved / "model.json").write_text(json.dumps(record))
    folder = corpora / "groove" / "drummer1" / "session3"
    result = rackvae("eval", moved, folder, "--prior-samples", "50")
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"eval: the model's encoding settings: percussion map '{tmp_path / 'kit.yml'}': neither"
    )


def test_eval_reports_a_missing_model(tmp_path: Path) -> None:
    result = rackvae("eval", tmp_path / "nope")
    assert result.returncode != 0 and "model.json: missing" in result.stderr
    assert "Traceback" not in result.stderr
