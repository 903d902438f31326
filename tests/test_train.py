"""Training on real groove bars: it learns, it is deterministic, it saves, resumes and stops as promised."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rackvae.codec import EncodingSettings
from rackvae.dataset import Dataset, ingest
from rackvae.evaluate import evaluate, reconstruction_metrics
from rackvae.model import ModelConfig, decoder_layers
from rackvae.train import (
    Checkpoint,
    ModelError,
    Schedule,
    TrainedModel,
    TrainSettings,
    _adam_step,
    checkpoint_paths,
    epoch_plan,
    load_model,
    new_model,
    schedule_step,
    train,
)
from rackvae.trainer import Trainer

DEMO_SETTINGS = EncodingSettings(percussion_map="extended")  # 1 bar of 16ths, 12 rows


@pytest.fixture(scope="session")
def groove(corpora: Path) -> Dataset:
    """Every 4/4 bar of the groove corpus, Extended percussion map (about 19.5k sequences)."""
    return ingest([corpora / "groove"], settings=DEMO_SETTINGS, progress=False).dataset


@pytest.fixture(scope="session")
def groove_npz(groove: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "groove.npz"
    groove.save(path)
    return path


@pytest.fixture(scope="session")
def small(groove: Dataset) -> tuple[Dataset, Dataset]:
    """A real subset split by file: about 1,200 training and 150 validation bars."""
    train_set, validation_set = groove.split(0.1, seed=0)
    return train_set.subset(np.arange(0, len(train_set), 14)), validation_set.subset(
        np.arange(0, len(validation_set), 13)
    )


def params_equal(a: object, b: object) -> bool:
    same = jax.tree.map(lambda x, y: np.array_equal(np.asarray(x), np.asarray(y)), a, b)
    return all(jax.tree.leaves(same))


def fresh(data: Dataset, seed: int = 0, **config: object) -> TrainedModel:
    return new_model("test", ModelConfig(data.ticks, data.rows, **config), data, seed=seed)


# --- the schedule, on scripted losses ---------------------------------------------------------------


def run_schedule(
    losses: list[float], settings: TrainSettings
) -> tuple[list[float], list[bool], str | None, int]:
    """Feed losses epoch by epoch; returns the rate used in each epoch, improvements, stop reason, epochs."""
    schedule = Schedule(settings.learning_rate)
    rates, improved = [], []
    for epoch, loss in enumerate(losses):
        rates.append(schedule.learning_rate)
        schedule, better, stop = schedule_step(schedule, epoch, loss, settings)
        improved.append(better)
        if stop:
            return rates, improved, stop, epoch + 1
    return rates, improved, None, len(losses)


def test_plateau_halves_the_rate_after_patience_epochs_without_improvement() -> None:
    settings = TrainSettings(learning_rate=0.01, patience=2, factor=0.5, min_delta=0.0, stop_patience=100)
    losses = [5.0, 4.0, 4.0, 4.5, 3.0, 3.0, 3.0, 3.0, 3.0]
    rates, improved, stop, epochs = run_schedule(losses, settings)
    assert improved == [True, True, False, False, True, False, False, False, False]
    # epochs 2 and 3 do not improve: the rate halves from epoch 4; epoch 4 improves and resets the count;
    # 5, 6 without improvement halve it again from 7; 7, 8 count afresh after a reduction.
    assert rates == [0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025]
    assert stop is None and epochs == 9


def test_min_delta_decides_what_counts_as_improvement() -> None:
    settings = TrainSettings(learning_rate=0.01, patience=100, min_delta=0.1, stop_patience=100)
    _, improved, _, _ = run_schedule([1.0, 0.95, 0.91, 0.89], settings)
    assert improved == [True, False, False, True]  # 0.89 < 1.0 - 0.1


def test_stops_when_the_rate_would_fall_below_the_minimum() -> None:
    settings = TrainSettings(
        learning_rate=1e-3, patience=2, factor=0.5, min_learning_rate=3e-4, min_delta=0.0
    )
    rates, _, stop, epochs = run_schedule([1.0] * 20, settings)
    # 1e-3 -> 5e-4 after epochs 1, 2; the next halving (2.5e-4) would go below 3e-4: stop after epoch 4.
    assert stop == "min_learning_rate" and epochs == 5
    assert rates == [1e-3, 1e-3, 1e-3, 5e-4, 5e-4]


def test_early_stopping_counts_epochs_since_the_best_across_rate_changes() -> None:
    settings = TrainSettings(learning_rate=0.01, patience=2, factor=0.5, stop_patience=5, min_delta=0.0)
    rates, _, stop, epochs = run_schedule([2.0, 1.0] + [1.5] * 10, settings)
    assert stop == "early_stopping" and epochs == 7  # best at epoch 1, five more without improvement
    assert rates == [0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.0025]


def test_a_non_finite_loss_stops_at_once() -> None:
    _, _, stop, epochs = run_schedule([1.0, float("nan"), 0.5], TrainSettings())
    assert stop == "non_finite" and epochs == 2


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="factor"):
        TrainSettings(factor=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        TrainSettings(batch_size=0)
    with pytest.raises(ValueError, match="weight_decay"):
        TrainSettings(weight_decay=-0.1)


def test_kl_warmup_ramps_beta_linearly() -> None:
    settings = TrainSettings(beta=0.2, kl_warmup=4)
    assert [settings.beta_at(e) for e in range(6)] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    assert TrainSettings(beta=0.2).beta_at(0) == 0.2


def test_adam_step_matches_optax_adam() -> None:
    """The hand-folded Adam step against optax.adam over several steps (same state layout)."""
    rng = np.random.default_rng(0)
    params = {"a": jnp.asarray(rng.normal(size=(5, 4)), jnp.float32), "b": jnp.zeros(4, jnp.float32)}
    reference = optax.adam(0.01)
    ours_params, ours_state = params, optax.scale_by_adam().init(params)
    ref_params, ref_state = params, reference.init(params)
    for _ in range(5):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        ours_params, ours_state = _adam_step(ours_params, grads, ours_state, jnp.float32(0.01))
        updates, ref_state = reference.update(grads, ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, updates)
    for ours, ref in zip(jax.tree.leaves(ours_params), jax.tree.leaves(ref_params), strict=True):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)
    assert int(ours_state.count) == 5


def test_weight_decay_is_adamws() -> None:
    rng = np.random.default_rng(1)
    params = {"a": jnp.asarray(rng.normal(size=(5, 4)), jnp.float32), "b": jnp.ones(4, jnp.float32)}
    reference = optax.adamw(0.01, weight_decay=0.1)
    ours_params, ours_state = params, optax.scale_by_adam().init(params)
    ref_params, ref_state = params, reference.init(params)
    for _ in range(5):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        ours_params, ours_state = _adam_step(ours_params, grads, ours_state, jnp.float32(0.01), 0.1)
        updates, ref_state = reference.update(grads, ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, updates)
    for ours, ref in zip(jax.tree.leaves(ours_params), jax.tree.leaves(ref_params), strict=True):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)


def test_epoch_plan_visits_every_sequence_once_and_depends_on_seed_and_epoch() -> None:
    order, noise = epoch_plan(3, 7, 10, 4, 2)
    assert order.shape == (3, 4) and noise.shape == (3, 4, 2) and noise.dtype == np.float32
    assert sorted(order.ravel()[:10]) == list(range(10)) and list(order.ravel()[10:]) == [0, 0]
    again, same_noise = epoch_plan(3, 7, 10, 4, 2)
    np.testing.assert_array_equal(order, again)
    np.testing.assert_array_equal(noise, same_noise)
    assert not np.array_equal(noise, epoch_plan(3, 8, 10, 4, 2)[1])
    assert not np.array_equal(noise, epoch_plan(4, 7, 10, 4, 2)[1])


# --- the loop on real data --------------------------------------------------------------------------


def test_overfits_64_real_sequences(groove: Dataset) -> None:
    _, first = np.unique(groove.rolls.reshape(len(groove), -1), axis=0, return_index=True)
    few = groove.subset(np.sort(first)[:64])  # 64 distinct real bars
    model = fresh(few)
    settings = TrainSettings(batch_size=8, epochs=2000, beta=0.1, patience=100, stop_patience=10**6)
    train(model, few, None, settings, log=None)
    metrics = reconstruction_metrics(few.rolls, model.reconstruct(few.rolls))
    assert metrics["exact_recall"] >= 0.9, metrics


def test_validation_loss_falls_well_below_its_start_and_below_independent_cells(
    small: tuple[Dataset, Dataset],
) -> None:
    train_set, validation_set = small
    model = fresh(train_set)
    train(model, train_set, validation_set, TrainSettings(epochs=25, patience=5), log=None)
    val_loss = np.array(model.history["val_loss"])
    untrained = fresh(train_set).loss_terms(validation_set.rolls)[0].mean()  # about 192 * ln 2 = 133
    assert val_loss.min() < 0.35 * untrained
    assert val_loss.min() < 0.8 * val_loss[0]  # and still falling well after the first epoch
    # Better than coding each cell independently with its training frequency (the entropy of the cells).
    p = train_set.rolls.mean(axis=0).clip(1e-6, 1 - 1e-6)
    cells = validation_set.rolls
    independent = -(cells * np.log(p) + (1 - cells) * np.log(1 - p)).sum(axis=(1, 2)).mean()
    reconstruction, _ = model.loss_terms(validation_set.rolls)
    assert reconstruction.mean() < 0.9 * independent


def test_calibration_on_the_groove_validation_split(groove: Dataset) -> None:
    """The demo model (3-D, beta 1, Extended map): ~0.5 step accuracy held out, ~0.28 for the baseline."""
    train_set, validation_set = groove.split(0.1, seed=0)
    model = fresh(train_set)
    train(model, train_set, validation_set, TrainSettings(epochs=60, patience=10, stop_patience=20), log=None)
    metrics = evaluate(model, {"validation": validation_set.rolls}, train_set.rolls, prior_samples=100)
    assert metrics["step_accuracy"] >= 0.45, metrics
    assert metrics["element_accuracy"] >= 0.93
    assert 0.2 < metrics["baseline_step_accuracy"] < 0.35
    assert metrics["note_f1"] > metrics["splits"]["validation"]["baseline_note_f1"] + 0.3


def kernel_norm(params: object) -> float:
    return float(sum(np.sum(np.square(leaf)) for leaf in jax.tree.leaves(params)))


def test_free_bits_warmup_and_weight_decay_change_training_as_documented(
    small: tuple[Dataset, Dataset],
) -> None:
    """On real bars, 4 epochs each from the same start: free bits buy latent information (more KL),
    a KL warm-up starts with more KL, weight decay keeps the parameters smaller."""
    train_set, validation_set = small
    base = TrainSettings(epochs=4, beta=1.0)
    runs = {}
    for name, settings in {
        "plain": base,
        "free_bits": dataclasses.replace(base, free_bits=2.0),
        "warmup": dataclasses.replace(base, kl_warmup=4),
        "decay": dataclasses.replace(base, weight_decay=0.5),
    }.items():
        runs[name] = train(fresh(train_set), train_set, validation_set, settings, log=None)
    plain = runs["plain"].history
    assert runs["free_bits"].history["kl"][-1] > 1.2 * plain["kl"][-1]
    assert runs["warmup"].history["kl"][0] > 1.2 * plain["kl"][0]
    assert kernel_norm(runs["decay"].params) < 0.9 * kernel_norm(runs["plain"].params)
    # The reported loss is reconstruction + beta * KL whatever the options (free bits shape the gradient).
    history = runs["free_bits"].history
    assert history["loss"][-1] == pytest.approx(history["reconstruction"][-1] + history["kl"][-1], rel=1e-5)


def test_same_seed_same_parameters_other_seed_other_parameters(small: tuple[Dataset, Dataset]) -> None:
    train_set, validation_set = small
    settings = TrainSettings(epochs=3)
    runs = []
    for seed in (0, 0, 1):
        model = fresh(train_set, seed=seed)
        train(model, train_set, validation_set, dataclasses.replace(settings, seed=seed), log=None)
        runs.append(model)
    assert params_equal(runs[0].params, runs[1].params)
    assert runs[0].history["loss"] == runs[1].history["loss"]
    assert not params_equal(runs[0].params, runs[2].params)


def test_loop_stops_on_the_minimum_rate_and_keeps_the_best_epoch(
    small: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    train_set, validation_set = small
    # A huge min_delta: only the first epoch counts as an improvement, every later one is a plateau.
    settings = TrainSettings(epochs=50, patience=2, factor=0.5, min_learning_rate=0.002, min_delta=1e9)
    model = train(fresh(train_set), train_set, validation_set, settings, tmp_path / "m", log=None)
    assert model.summary["stop_reason"] == "min_learning_rate"
    assert model.history["learning_rate"] == [0.005, 0.005, 0.005, 0.0025, 0.0025]
    assert model.summary["best_epoch"] == 1 and model.summary["epochs_run"] == 5
    latest_path, best_path = checkpoint_paths(tmp_path / "m")
    best = Checkpoint.from_bytes(best_path.read_bytes(), model.config, best_path)
    latest = Checkpoint.from_bytes(latest_path.read_bytes(), model.config, latest_path)
    assert best.epoch == 1 and latest.epoch == 5
    assert params_equal(model.params, best.params) and not params_equal(model.params, latest.params)
    assert params_equal(load_model(tmp_path / "m").params, best.params)


def test_the_returned_parameters_are_those_of_the_lowest_validation_loss(
    small: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    train_set, validation_set = small
    settings = TrainSettings(epochs=12, learning_rate=0.02, min_delta=0.0)
    model = train(fresh(train_set), train_set, validation_set, settings, tmp_path / "m", log=None)
    best_epoch = int(np.argmin(model.history["val_loss"])) + 1
    assert model.summary["best_epoch"] == best_epoch
    _, best_path = checkpoint_paths(tmp_path / "m")
    assert Checkpoint.from_bytes(best_path.read_bytes(), model.config, best_path).epoch == best_epoch
    assert params_equal(
        model.params, Checkpoint.from_bytes(best_path.read_bytes(), model.config, best_path).params
    )


def test_early_stopping_in_the_loop(small: tuple[Dataset, Dataset]) -> None:
    train_set, validation_set = small
    settings = TrainSettings(epochs=50, patience=100, stop_patience=3, min_delta=1e9)
    model = train(fresh(train_set), train_set, validation_set, settings, log=None)
    assert model.summary["stop_reason"] == "early_stopping" and model.summary["epochs_run"] == 4


def test_save_and_load_give_back_the_same_model(small: tuple[Dataset, Dataset], tmp_path: Path) -> None:
    train_set, validation_set = small
    model = fresh(train_set, latent_dim=4, latent_scale=2.0)
    train(model, train_set, validation_set, TrainSettings(epochs=2), tmp_path / "m", log=None)
    loaded = load_model(tmp_path / "m")
    assert params_equal(loaded.params, model.params)
    assert loaded.name == "test" and loaded.config == model.config and loaded.layout == train_set.layout
    assert (
        loaded.dataset_settings == train_set.settings
        and loaded.dataset_settings["percussion_map"] == "extended"
    )
    assert loaded.history == model.history and len(loaded.history["loss"]) == 2
    assert loaded.training == TrainSettings(epochs=2).to_dict()
    for (k1, b1), (k2, b2) in zip(loaded.decoder_layers(), decoder_layers(model.params), strict=True):
        np.testing.assert_array_equal(k1, k2)
        np.testing.assert_array_equal(b1, b2)
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    assert info["summary"]["epochs_run"] == 2 and info["layout"]["rows"] == 12
    rolls = validation_set.rolls[:5]
    np.testing.assert_array_equal(loaded.reconstruct(rolls), model.reconstruct(rolls))


def test_resume_continues_exactly_where_it_stopped(small: tuple[Dataset, Dataset], tmp_path: Path) -> None:
    train_set, validation_set = small
    settings = TrainSettings(epochs=6, checkpoint_every=1)
    straight = train(fresh(train_set), train_set, validation_set, settings, tmp_path / "a", log=None)

    def interrupt_after_three(line: str) -> None:
        if line.startswith("epoch 3/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            fresh(train_set), train_set, validation_set, settings, tmp_path / "b", log=interrupt_after_three
        )
    latest_path, _ = checkpoint_paths(tmp_path / "b")
    assert Checkpoint.from_bytes(latest_path.read_bytes(), straight.config, latest_path).epoch == 3
    assert len(load_model(tmp_path / "b").history["loss"]) == 3  # the model files were written on Ctrl-C

    resumed = train(
        fresh(train_set, seed=99), train_set, validation_set, settings, tmp_path / "b", resume=True, log=None
    )
    assert resumed.history["loss"] == straight.history["loss"]
    assert resumed.history["val_loss"] == straight.history["val_loss"]
    assert params_equal(resumed.params, straight.params)
    a_latest, _ = checkpoint_paths(tmp_path / "a")
    b_latest, _ = checkpoint_paths(tmp_path / "b")
    a = Checkpoint.from_bytes(a_latest.read_bytes(), straight.config, a_latest)
    b = Checkpoint.from_bytes(b_latest.read_bytes(), straight.config, b_latest)
    assert params_equal(a.params, b.params) and params_equal(a.opt_state, b.opt_state)


def test_damaged_model_directories_are_rejected_with_the_file_named(
    small: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    train_set, _ = small
    with pytest.raises(ModelError, match=r"model\.json: missing"):
        load_model(tmp_path / "nothing")
    directory = tmp_path / "m"
    train(fresh(train_set), train_set, None, TrainSettings(epochs=1), directory, log=None)
    (directory / "params.msgpack").write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match=r"params\.msgpack"):
        load_model(directory)
    (directory / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"model\.json: unreadable"):
        load_model(directory)
    with pytest.raises(ModelError, match=r"latest\.msgpack: missing"):
        train(
            fresh(train_set),
            train_set,
            None,
            TrainSettings(epochs=1),
            tmp_path / "empty",
            resume=True,
            log=None,
        )


def test_data_and_model_shapes_must_agree(small: tuple[Dataset, Dataset]) -> None:
    train_set, _ = small
    with pytest.raises(ValueError, match="do not match"):
        new_model("x", ModelConfig(16, 13), train_set)


# --- the command line and the notebook workflow ------------------------------------------------------


def rackvae(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rackvae.cli", *map(str, args)], capture_output=True, text=True, check=False
    )


def test_cli_trains_resumes_and_refuses_to_overwrite(small: tuple[Dataset, Dataset], tmp_path: Path) -> None:
    train_set, _ = small
    data = tmp_path / "small.npz"
    train_set.save(data)
    models = tmp_path / "models"
    first = rackvae("train", data, "--name", "drums", "-o", models, "--epochs", "2", "--patience", "7")
    assert first.returncode == 0, first.stderr
    assert "epoch 1/2" in first.stdout and "epoch 2/2" in first.stdout and "saved" in first.stdout
    again = rackvae("train", data, "--name", "drums", "-o", models, "--epochs", "2")
    assert again.returncode != 0 and "already holds a model" in again.stderr
    missing = rackvae("train", tmp_path / "missing.npz", "--name", "other", "-o", models)
    assert missing.returncode != 0 and "missing.npz: not a rackvae dataset" in missing.stderr
    assert "Traceback" not in missing.stderr
    resumed = rackvae("train", data, "--name", "drums", "-o", models, "--epochs", "4", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 3/4" in resumed.stdout and "epoch 1/" not in resumed.stdout
    model = load_model(models / "drums")
    assert len(model.history["loss"]) == 4
    assert (
        model.training["patience"] == 7 and model.training["epochs"] == 4
    )  # stored settings, overridden epochs
    assert model.data["path"] == str(data.resolve()) and model.data["validation_fraction"] == 0.1


def test_cli_refuses_an_output_through_a_file_before_training(
    small: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    train_set, _ = small
    data = tmp_path / "small.npz"
    train_set.save(data)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "taken").write_text("a file where the model folder would go")
    # -o a file (the folder NAME would be inside it), and NAME a file inside -o.
    for output, name, problem in (
        (data, "q", f"{data.resolve()} is a file, not a folder"),
        (tmp_path / "models", "taken", "is a file, not a folder"),
    ):
        refused = rackvae("train", data, "--name", name, "-o", output, "--epochs", "1")
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert refused.stderr.strip().splitlines() == [f"train: {output / name}: {problem}"]
        assert "epoch 1/1" not in refused.stdout  # refused before any training
    assert data.is_file() and (tmp_path / "models" / "taken").read_text().startswith("a file")


def test_cli_narrows_the_default_widths_to_the_mac_budget(
    small: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    train_set, _ = small
    data = tmp_path / "small.npz"
    train_set.save(data)
    narrowed = rackvae(
        "train",
        data,
        "--name",
        "n",
        "--epochs",
        "1",
        "-q",
        "-o",
        tmp_path / "models",
        "--max-decoder-macs",
        "5000",
    )
    assert narrowed.returncode == 0, narrowed.stderr
    # The rule's 48,12 (decoder 9,828 MACs) at 54 %: 3*6 + 6*25 + 25*192 = 4,968 (55 %: 26,6 needs 5,166)
    assert (
        "train: the default hidden sizes 48,12 need 9,828 decoder MACs, more than --max-decoder-macs 5,000:"
        " narrowed to 25,6"
    ) in narrowed.stdout.splitlines()
    assert "decoder 3-6-25-192 (4,968 MACs per decode)" in narrowed.stdout
    assert load_model(tmp_path / "models" / "n").config.hidden_sizes == (25, 6)


def test_cli_prints_the_decoder_macs_and_refuses_a_bigger_decoder(
    small: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    train_set, _ = small
    data = tmp_path / "small.npz"
    train_set.save(data)
    wide = ("--hidden-sizes", "320,192,64", "--epochs", "1", "-q", "-o", tmp_path / "models")
    refused = rackvae("train", data, "--name", "wide", *wide, "--max-decoder-macs", "100000")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    # One line, with the way out: the 192 outputs cost 192 MACs per unit of the first width (320).
    assert refused.stderr.strip().splitlines()[-1] == (
        "train: decoder 3-64-192-320-192 needs 135,360 MACs per decode, more than --max-decoder-macs 100,000:"
        " narrow it with --hidden-sizes (the output layer alone costs 192 MACs per unit of the first width:"
        " 520 units take the whole budget) or raise --max-decoder-macs"
    )
    assert not (tmp_path / "models" / "wide").exists()
    accepted = rackvae(
        "train", data, "--name", "wide", *wide, "--log-var-bound", "6", "--weight-decay", "0.1"
    )
    assert accepted.returncode == 0, accepted.stderr
    assert "decoder 3-64-192-320-192 (135,360 MACs per decode)" in accepted.stdout
    # The model's thresholds and the F1 there, on the held-out split (here none: the training split).
    model = load_model(tmp_path / "models" / "wide")
    line = accepted.stdout.strip().splitlines()[-1]
    assert line.startswith(f"threshold {model.thresholds.threshold:.3f} (per group ")
    assert ": training notes per bar as the data's, F1 0." in line and "(at 0.5: 0." in line
    assert model.config.log_var_bound == 6.0 and model.training["weight_decay"] == 0.1
    assert model.thresholds is not None


def test_trainer_follows_the_original_workflow(groove_npz: Path, tmp_path: Path) -> None:
    trainer = Trainer("perc_model_16", model_path=tmp_path)
    trainer.load_dataset(groove_npz)
    trainer.create_model(latent_dim=3, hidden_layers=2, latent_scale=3.0)
    assert trainer.model is not None and trainer.model.config.decoder_sizes() == (3, 12, 48, 192)
    history = trainer.train(batch_size=32, epochs=2, learning_rate=0.005, patience=100, factor=0.5)
    assert len(history["loss"]) == 2 and history["val_loss"][0] is not None
    trainer.save()
    again = Trainer("perc_model_16", model_path=tmp_path)
    again.load()  # finds the dataset through model.json
    assert params_equal(again.model.params, trainer.model.params)
    recall = again.recall()
    assert 0.8 < recall["train"]["element_accuracy"] <= 1.0 and "validation" in recall
    for figure in (
        again.plot_latent_space(),
        again.plot_output_distribution(),
        again.plot_input_output(1, 0.5),
    ):
        assert figure.axes
