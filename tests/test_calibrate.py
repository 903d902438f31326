"""The model's own threshold: chosen so the decoded density equals the data's, overall and per group."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rackvae._core import lib

from rackvae.calibrate import Thresholds, density_threshold, fit_thresholds
from rackvae.codec import EncodingSettings
from rackvae.dataset import Dataset, ingest
from rackvae.model import ModelConfig
from rackvae.train import TrainedModel, TrainSettings, load_model, new_model, train


def test_density_threshold_switches_on_exactly_count_cells() -> None:
    probs = np.array([0.9, 0.1, 0.5, 0.3, 0.7])
    assert density_threshold(probs, 2) == pytest.approx(0.6)  # halfway between 0.7 and 0.5
    assert density_threshold(probs, 5) == pytest.approx(0.1)
    assert density_threshold(probs, 0) > 0.9
    for count in range(6):
        assert int((probs >= density_threshold(probs, count)).sum()) == count


def test_per_group_thresholds_match_each_groups_density() -> None:
    rng = np.random.default_rng(0)
    rolls = np.zeros((50, 4, 3), np.uint8)
    rolls[..., 0] = rng.random((50, 4)) < 0.5  # group 0: row 0, half on
    rolls[..., 1:] = rng.random((50, 4, 2)) < 0.05  # group 1: rows 1-2, rare
    probs = rng.random(rolls.shape) * np.array([1.0, 0.2, 0.2])  # the rare group is under-confident
    thresholds = fit_thresholds(rolls, probs, (1, 2))
    assert (probs >= thresholds.threshold).sum() == rolls.sum()
    assert (probs[..., :1] >= thresholds.group_thresholds[0]).sum() == rolls[..., :1].sum()
    assert (probs[..., 1:] >= thresholds.group_thresholds[1]).sum() == rolls[..., 1:].sum()
    assert thresholds.group_thresholds[1] < 0.2 < thresholds.group_thresholds[0]
    np.testing.assert_array_equal(
        thresholds.per_row(3, (1, 2)), np.float32(thresholds.group_thresholds)[[0, 1, 1]]
    )
    # A group without a note keeps the global threshold; note models have no group thresholds.
    rolls[..., 1:] = 0
    assert fit_thresholds(rolls, probs, (1, 2)).group_thresholds[1] == fit_thresholds(rolls, probs).threshold
    assert fit_thresholds(rolls, probs).group_thresholds == ()
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        Thresholds(1.5)


@pytest.fixture(scope="module")
def session(corpora: Path) -> tuple[Dataset, Dataset]:
    """One Groove session (Extended map), split by file: about 1,000 training and 100 held-out bars."""
    data = ingest(
        [corpora / "groove" / "drummer1" / "session1"],
        settings=EncodingSettings(percussion_map="extended"),
        progress=False,
    ).dataset
    return data.split(0.1, seed=0)


@pytest.fixture(scope="module")
def trained(
    session: tuple[Dataset, Dataset], tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainedModel, Path]:
    train_set, validation_set = session
    directory = tmp_path_factory.mktemp("calibrated") / "m"
    model = new_model("m", ModelConfig(train_set.ticks, train_set.rows), train_set)
    train(model, train_set, validation_set, TrainSettings(epochs=15, beta=0.2), directory, log=None)
    return model, directory


def test_training_ends_with_thresholds_matching_the_validation_density(
    session: tuple[Dataset, Dataset], trained: tuple[TrainedModel, Path]
) -> None:
    _, validation_set = session
    model, _ = trained
    rolls = validation_set.rolls
    assert model.thresholds is not None and len(model.thresholds.group_thresholds) == 5  # Extended: 5 groups
    probs = model.reconstruct(rolls)
    # Overall: exactly the data's number of notes (up to ties) at the global threshold.
    assert abs(int((probs >= model.thresholds.threshold).sum()) - int(rolls.sum())) <= 2
    # Per group: each group of rows plays as often as in the data at its own threshold.
    played = probs >= model.cell_thresholds()
    start = 0
    for size in model.layout.group_sizes:
        want = int(rolls[..., start : start + size].sum())
        assert abs(int(played[..., start : start + size].sum()) - want) <= 2, (start, want)
        start += size
    # At 0.5 the model is under-confident: it plays fewer notes than the data, the calibrated one does not.
    assert (probs >= 0.5).sum() < 0.95 * rolls.sum()
    assert model.thresholds.threshold < 0.5


def test_thresholds_are_saved_with_the_model_and_old_models_load_without(
    trained: tuple[TrainedModel, Path], tmp_path: Path
) -> None:
    model, directory = trained
    stored = json.loads((directory / "model.json").read_text())["thresholds"]
    assert stored == {
        "threshold": model.thresholds.threshold,
        "group_thresholds": list(model.thresholds.group_thresholds),
    }
    assert load_model(directory).thresholds == model.thresholds
    # A model.json written before calibration existed: no thresholds, the C core's default for every row.
    info = json.loads((directory / "model.json").read_text())
    del info["thresholds"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.json").write_text(json.dumps(info))
    (old / "params.msgpack").write_bytes((directory / "params.msgpack").read_bytes())
    loaded = load_model(old)
    assert loaded.thresholds is None
    np.testing.assert_array_equal(loaded.cell_thresholds(), np.full(12, lib.RV_DEFAULT_THRESHOLD, np.float32))
