"""Training the VAE with Optax: one compiled function per epoch, reduce-on-plateau, early stopping.

A model directory (``models/NAME/``) holds everything needed to use or resume a model:

- ``model.json``: name, model config, roll layout, the dataset's encoding settings, where the data came
  from and how it was split, training settings, a history summary, the model's thresholds (chosen on
  the validation split after training, ``rackvae.calibrate``) and (after ``rackvae eval``) metrics;
- ``params.msgpack``: the best parameters (``flax.serialization.to_bytes``);
- ``history.json``: one value per epoch for each of ``HISTORY_KEYS``;
- ``checkpoints/latest.msgpack`` and ``checkpoints/best.msgpack``: parameters, Adam state, schedule
  state and history, enough for ``--resume``.

Every file is written atomically, so an interrupted run leaves the previous complete checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rackvae.atomic import atomic_write_bytes, atomic_write_text
from rackvae.calibrate import DEFAULT_THRESHOLD, Thresholds, fit_thresholds
from rackvae.dataset import Dataset, RollLayout
from rackvae.model import (
    DecoderLayers,
    ModelConfig,
    Params,
    decode,
    decoder_layers,
    encode,
    groove_inputs,
    init_params,
    loss_terms,
    loss_terms_at_mean,
    split_outputs,
)

MODEL_FORMAT = "rackvae-model"
MODEL_FORMAT_VERSION = 1
HISTORY_KEYS = (
    "loss",
    "reconstruction",
    "kl",
    "val_loss",
    "val_reconstruction",
    "val_kl",
    "learning_rate",
    "seconds",
)


class ModelError(Exception):
    """A model directory that cannot be read or resumed, named with the reason."""


@dataclass(frozen=True)
class TrainSettings:
    """Training hyper-parameters; defaults are the original trainer's."""

    batch_size: int = 32
    epochs: int = 500
    learning_rate: float = 0.005
    patience: int = 100  # epochs without improvement before the rate is multiplied by ``factor``
    factor: float = 0.5
    min_learning_rate: float = 1e-6  # stop once the rate would fall below this
    stop_patience: int = 500  # early stopping: epochs without improvement (the original used 500)
    min_delta: float = 1e-4  # an improvement must lower the monitored loss by more than this
    beta: float = 1.0  # weight of the KL term
    free_bits: float = 0.0  # nats per latent dimension below which its (batch mean) KL is not penalised
    kl_warmup: int = 0  # epochs over which the KL weight rises linearly from beta / kl_warmup to beta
    weight_decay: float = 0.0  # decoupled (AdamW): each step also subtracts learning_rate * weight_decay * p
    seed: int = 0
    checkpoint_every: int = 10  # epochs between checkpoints (also written at the end and on Ctrl-C)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 0 or self.patience < 1 or self.stop_patience < 1:
            raise ValueError(f"batch_size, patience and stop_patience must be >= 1, epochs >= 0: {self}")
        if not 0.0 < self.factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {self.factor}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.learning_rate <= 0.0 or self.min_learning_rate < 0.0:
            raise ValueError("learning_rate must be > 0 and min_learning_rate >= 0")
        if self.beta < 0.0 or self.free_bits < 0.0 or self.kl_warmup < 0 or self.weight_decay < 0.0:
            raise ValueError(f"beta, free_bits, kl_warmup and weight_decay must be >= 0: {self}")

    def beta_at(self, epoch: int) -> float:
        """The KL weight of ``epoch`` (0-based): ``beta``, ramped up over the first ``kl_warmup`` epochs."""
        return self.beta * min(1.0, (epoch + 1) / self.kl_warmup) if self.kl_warmup else self.beta

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# --- the schedule: pure bookkeeping over one monitored loss per epoch --------------------------------


@dataclass(frozen=True)
class Schedule:
    """Reduce-on-plateau and early-stopping state (like Keras' ReduceLROnPlateau + EarlyStopping)."""

    learning_rate: float
    best_loss: float = math.inf
    best_epoch: int = -1
    since_best: int = 0  # epochs since the last improvement: drives early stopping
    since_change: int = 0  # epochs since the last improvement or rate reduction: drives the plateau


class Step(NamedTuple):
    """What one epoch's loss decided."""

    schedule: Schedule
    improved: bool
    stop: str | None  # None, "min_learning_rate", "early_stopping" or "non_finite"


def schedule_step(schedule: Schedule, epoch: int, loss: float, settings: TrainSettings) -> Step:
    """Advance the schedule by one epoch whose monitored loss was ``loss``."""
    if not math.isfinite(loss):
        return Step(schedule, False, "non_finite")
    if loss < schedule.best_loss - settings.min_delta:
        return Step(
            dataclasses.replace(schedule, best_loss=loss, best_epoch=epoch, since_best=0, since_change=0),
            True,
            None,
        )
    since_best = schedule.since_best + 1
    since_change = schedule.since_change + 1
    if since_best >= settings.stop_patience:
        return Step(
            dataclasses.replace(schedule, since_best=since_best, since_change=since_change),
            False,
            "early_stopping",
        )
    if since_change >= settings.patience:
        reduced = schedule.learning_rate * settings.factor
        if reduced < settings.min_learning_rate:
            stopped = dataclasses.replace(schedule, since_best=since_best, since_change=since_change)
            return Step(stopped, False, "min_learning_rate")
        return Step(
            dataclasses.replace(schedule, learning_rate=reduced, since_best=since_best, since_change=0),
            False,
            None,
        )
    return Step(dataclasses.replace(schedule, since_best=since_best, since_change=since_change), False, None)


# --- compiled epoch and evaluation -----------------------------------------------------------------

OPTIMIZER = optax.scale_by_adam()  # Adam's state (count, mu, nu); the rate comes per epoch from the schedule
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8  # optax.scale_by_adam's defaults, as Keras' Adam


def _adam_step(
    params: Params,
    grads: Params,
    state: optax.ScaleByAdamState,
    learning_rate: jax.Array,
    weight_decay: jax.Array | float = 0.0,
) -> tuple[Params, optax.ScaleByAdamState]:
    """``OPTIMIZER.update`` and ``params - learning_rate * (update + weight_decay * params)`` (AdamW's
    decoupled decay, as ``optax.adamw``) with the bias corrections folded into two scalars: one division
    and one square root per parameter instead of two divisions and a square root (about 3% of a step on
    a CPU). Same state, so checkpoints are interchangeable."""
    count = optax.safe_increment(state.count)
    t = count.astype(jnp.float32)
    step_size = learning_rate / (1.0 - ADAM_B1**t)
    nu_correction = jax.lax.rsqrt(1.0 - ADAM_B2**t)  # sqrt(nu_hat) = sqrt(nu) * nu_correction
    mu = jax.tree.map(lambda m, g: ADAM_B1 * m + (1.0 - ADAM_B1) * g, state.mu, grads)
    nu = jax.tree.map(lambda v, g: ADAM_B2 * v + (1.0 - ADAM_B2) * g * g, state.nu, grads)
    decay = learning_rate * weight_decay
    params = jax.tree.map(
        lambda p, m, v: p - step_size * m / (jnp.sqrt(v) * nu_correction + ADAM_EPS) - decay * p,
        params,
        mu,
        nu,
    )
    return params, optax.ScaleByAdamState(count, mu, nu)


def _batch_loss(
    params: Params,
    config: ModelConfig,
    x: jax.Array,
    weight: jax.Array,
    noise: jax.Array,
    beta: jax.Array,
    free_bits: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """The batch's objective (mean reconstruction + beta * KL, each dimension's batch-mean KL counted as
    at least ``free_bits``) and the weighted sums of (loss, reconstruction, KL) for the epoch's report."""
    reconstruction, kl_dims = loss_terms(config, params, x, noise)
    kl = kl_dims.sum(axis=-1)
    count = weight.sum()
    terms = jnp.stack([(reconstruction + beta * kl) @ weight, reconstruction @ weight, kl @ weight])
    penalty = jnp.maximum(weight @ kl_dims / count, free_bits).sum()
    return terms[1] / count + beta * penalty, terms


def epoch_plan(
    seed: int, epoch: int, count: int, batch_size: int, latent_dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """An epoch's shuffled order ``[batches, batch_size]`` (the last batch padded with index 0) and
    latent noise ``[batches, batch_size, latent_dim]``, both fixed by ``(seed, epoch)``.

    Drawn with numpy on the host: JAX's sort-based permutation and threefry noise cost about a sixth
    of an epoch on a CPU, numpy's well under a millisecond.
    """
    rng = np.random.default_rng([seed, epoch])
    batches = -(-count // batch_size)
    order = np.zeros(batches * batch_size, np.int32)
    order[:count] = rng.permutation(count)
    noise = rng.standard_normal((batches, batch_size, latent_dim), np.float32)
    return order.reshape(batches, batch_size), noise


@partial(jax.jit, static_argnums=0)
def _train_epoch(
    config: ModelConfig,
    params: Params,
    opt_state: optax.OptState,
    data: jax.Array,
    order: jax.Array,
    noise: jax.Array,
    learning_rate: jax.Array,
    beta: jax.Array,
    free_bits: jax.Array,
    weight_decay: jax.Array,
) -> tuple[Params, optax.OptState, jax.Array]:
    """One pass over ``data`` (uint8 ``[N, ticks*rows]``) in the batches of ``order``, as one ``lax.scan``.

    ``order`` and ``noise`` come from ``epoch_plan``; the batches are gathered up front, the scan body
    is then only the training step. The last batch's padding is weighted 0, so every sequence counts
    once per epoch as with Keras' ``fit``. Returns the new parameters, Adam state and the epoch means
    of (loss, reconstruction, KL).
    """
    n = data.shape[0]
    shuffled = data[order]
    weights = (jnp.arange(order.size) < n).astype(jnp.float32).reshape(order.shape)
    grad_fn = jax.grad(_batch_loss, has_aux=True)

    def step(carry: tuple[Params, optax.OptState], batch: tuple[jax.Array, ...]) -> tuple[Any, jax.Array]:
        params, opt_state = carry
        x, weight, batch_noise = batch
        grads, terms = grad_fn(params, config, x.astype(jnp.float32), weight, batch_noise, beta, free_bits)
        params, opt_state = _adam_step(params, grads, opt_state, learning_rate, weight_decay)
        return (params, opt_state), terms

    (params, opt_state), terms = jax.lax.scan(step, (params, opt_state), (shuffled, weights, noise))
    return params, opt_state, terms.sum(axis=0) / n


@partial(jax.jit, static_argnums=0)
def _evaluate_loss(
    config: ModelConfig, params: Params, data: jax.Array, rng: jax.Array, beta: jax.Array
) -> jax.Array:
    """Means of (loss, reconstruction, KL) over ``data`` on one sampled latent per sequence."""
    noise = jax.random.normal(rng, (data.shape[0], config.latent_dim))
    reconstruction, kl = loss_terms(config, params, data, noise)
    kl = kl.sum(axis=-1)
    return jnp.stack([(reconstruction + beta * kl).mean(), reconstruction.mean(), kl.mean()])


def flat_rolls(dataset: Dataset) -> jax.Array:
    """The dataset's rolls as uint8 ``[N, ticks*rows]`` (tick-major) on the device."""
    return jnp.asarray(dataset.rolls.reshape(len(dataset), -1), jnp.uint8)


def model_inputs(config: ModelConfig, dataset: Dataset) -> np.ndarray:
    """What the model encodes and reconstructs of ``dataset``: its rolls (hits-only models), else the
    channels of ``rackvae.model.groove_inputs`` (offsets read straight when the dataset has none)."""
    if config.channels == 1:
        return dataset.rolls
    return groove_inputs(config, dataset.rolls, dataset.velocities, dataset.timing)


# --- the trained model and its directory -------------------------------------------------------------


def in_chunks(function: Callable[[jax.Array], Any], inputs: np.ndarray, chunk: int = 4096) -> Any:
    """``function`` over ``inputs`` in fixed-size chunks (the last one zero-padded), outputs as numpy.

    One chunk shape means one compilation, whatever the number of sequences.
    """
    count = len(inputs)
    padding = (-count) % chunk if count else chunk
    padded = np.concatenate(
        [np.asarray(inputs, np.float32), np.zeros((padding, *inputs.shape[1:]), np.float32)]
    )
    outputs = [function(jnp.asarray(padded[start : start + chunk])) for start in range(0, len(padded), chunk)]
    return jax.tree.map(lambda *parts: np.concatenate([np.asarray(p) for p in parts])[:count], *outputs)


@dataclass
class TrainedModel:
    """A model as saved in ``models/NAME/``: what it is, what it was trained on, its parameters."""

    name: str
    config: ModelConfig
    params: Params
    layout: RollLayout
    dataset_settings: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # source path, validation fraction, split seed, sizes
    training: dict[str, Any] = field(default_factory=dict)  # TrainSettings.to_dict()
    history: dict[str, list[float]] = field(default_factory=lambda: {key: [] for key in HISTORY_KEYS})
    summary: dict[str, Any] = field(default_factory=dict)  # epochs run, best epoch and loss, stop reason
    metrics: dict[str, Any] | None = None
    thresholds: Thresholds | None = None  # chosen after training (None: a model saved before calibration)

    def decoder_layers(self) -> DecoderLayers:
        return decoder_layers(self.params)

    def encode(self, rolls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Encoder (mean, log_var) ``[N, latent_dim]`` for rolls ``[N, ticks, rows]`` (a groove model:
        its ``model_inputs``)."""
        return in_chunks(partial(encode, self.config, self.params), rolls.reshape(len(rolls), -1))

    def decode_all(self, latents: np.ndarray) -> np.ndarray:
        """The decoder's sigmoid outputs ``[N, channels * ticks, rows]`` for latents ``[N, latent_dim]``:
        the channel blocks, hits first, as the C core decodes them."""
        outputs = in_chunks(partial(decode, self.config, self.params), latents)
        return outputs.reshape(len(outputs), -1, self.config.rows)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Hit probabilities ``[N, ticks, rows]`` for latents ``[N, latent_dim]``."""
        return self.decode_all(latents)[:, : self.config.ticks]

    def decode_outputs(self, latents: np.ndarray) -> dict[str, np.ndarray]:
        """Every channel ``[N, ticks, rows]`` for latents: hits (probabilities), velocity (0..127),
        offset (steps); see ``rackvae.model.split_outputs``."""
        return split_outputs(self.config, self.decode_all(latents))

    def inputs(self, dataset: Dataset) -> np.ndarray:
        """``dataset`` as this model encodes it (``model_inputs``)."""
        return model_inputs(self.config, dataset)

    def loss_terms(self, rolls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reconstruction ``[N]``, KL per dimension ``[N, latent_dim]``) at the encoder mean."""
        return in_chunks(partial(loss_terms_at_mean, self.config, self.params), rolls.reshape(len(rolls), -1))

    def reconstruct(self, rolls: np.ndarray) -> np.ndarray:
        """Hit probabilities ``[N, ticks, rows]`` decoded from the encoder mean of each roll (a groove
        model: of its ``inputs``)."""
        return self.decode(self.encode(rolls)[0])

    def model_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_FORMAT_VERSION,
            "name": self.name,
            "config": self.config.to_dict(),
            "layout": self.layout.to_dict(),
            "dataset_settings": self.dataset_settings,
            "data": self.data,
            "training": self.training,
            "summary": self.summary,
            "metrics": self.metrics,
            **({"thresholds": self.thresholds.to_dict()} if self.thresholds is not None else {}),
        }

    def calibrate(self, rolls: np.ndarray, inputs: np.ndarray | None = None) -> Thresholds:
        """Set (and return) the thresholds at which the reconstructions of ``rolls`` (encoded from
        ``inputs``, a groove model's channels; default the rolls) match their density."""
        reconstructions = self.reconstruct(rolls if inputs is None else inputs)
        self.thresholds = fit_thresholds(rolls, reconstructions, self.layout.group_sizes)
        return self.thresholds

    def cell_thresholds(self) -> np.ndarray:
        """The threshold of each row ``[rows]`` (the model's own, per group for percussion; else 0.5)."""
        thresholds = self.thresholds or Thresholds(DEFAULT_THRESHOLD)
        return thresholds.per_row(self.config.rows, self.layout.group_sizes)

    def save(self, directory: str | Path) -> None:
        """Write ``model.json``, ``params.msgpack`` and ``history.json`` (each atomically)."""
        directory = Path(directory)
        atomic_write_bytes(directory / "params.msgpack", flax.serialization.to_bytes(self.params))
        atomic_write_text(directory / "history.json", json.dumps(self.history) + "\n")
        atomic_write_text(directory / "model.json", json.dumps(self.model_json(), indent=2) + "\n")


def new_model(name: str, config: ModelConfig, dataset: Dataset, seed: int = 0) -> TrainedModel:
    """An untrained model for ``dataset``'s rolls (layout and encoding settings travel with it)."""
    if (dataset.ticks, dataset.rows) != (config.ticks, config.rows):
        shapes = f"config {config.ticks}x{config.rows}, dataset rolls {dataset.ticks}x{dataset.rows}"
        raise ValueError(f"model and data do not match: {shapes}")
    return TrainedModel(name, config, init_params(config, seed), dataset.layout, dict(dataset.settings))


def constant_roll(rolls: np.ndarray) -> np.ndarray:
    """The best constant roll ``[ticks, rows]``: a cell is on when it is on in more than half of ``rolls``.

    The baseline every model must beat; recorded with the model so it can be used without the data.
    """
    return (rolls.astype(np.float64).mean(axis=0) > 0.5).astype(np.uint8)


def data_record(
    path: str | Path | None,
    train_set: Dataset,
    validation_set: Dataset,
    validation_fraction: float,
    split_seed: int,
) -> dict[str, Any]:
    """What ``model.json`` says about the training data: source, split, sizes and the constant roll."""
    return {
        "path": str(Path(path).resolve()) if path is not None else None,
        "validation_fraction": validation_fraction,
        "split_seed": split_seed,
        "train_sequences": len(train_set),
        "validation_sequences": len(validation_set),
        "constant_roll": constant_roll(train_set.rolls).tolist(),
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ModelError(f"{path}: missing") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path}: unreadable ({error})") from error
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def params_template(config: ModelConfig) -> Params:
    """The parameter tree of ``config`` as shapes only (no initialisation is computed)."""
    return jax.eval_shape(partial(init_params, config))


def restore_state(template: Any, state: Any, path: Path) -> Any:
    """``state`` (a restored msgpack tree) shaped like ``template``; a mismatch names ``path``."""
    try:
        restored = flax.serialization.from_state_dict(template, state)
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{path}: does not match the model's shape ({error})") from error
    shapes = jax.tree.map(lambda t, r: tuple(t.shape) == np.shape(r), template, restored)
    if not all(jax.tree.leaves(shapes)):
        raise ModelError(f"{path}: array shapes do not match the model's config")
    return jax.tree.map(jnp.asarray, restored)


def _msgpack(data: bytes, path: Path) -> Any:
    try:
        return flax.serialization.msgpack_restore(data)
    except Exception as error:  # msgpack raises several unrelated types for damaged bytes
        raise ModelError(f"{path}: not a msgpack file ({type(error).__name__}: {error})") from error


def load_model(path: str | Path) -> TrainedModel:
    """Read a model directory written by ``rackvae train`` (the best parameters)."""
    directory = Path(path)
    info = _read_json(directory / "model.json")
    if info.get("format") != MODEL_FORMAT:
        raise ModelError(f"{directory / 'model.json'}: not a {MODEL_FORMAT} file")
    try:
        config = ModelConfig.from_dict(info["config"])
        layout = RollLayout.from_dict(info["layout"])
        thresholds = Thresholds.from_dict(info["thresholds"]) if info.get("thresholds") else None
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{directory / 'model.json'}: bad config, layout or thresholds ({error})") from error
    params_path = directory / "params.msgpack"
    try:
        params = restore_state(
            params_template(config), _msgpack(params_path.read_bytes(), params_path), params_path
        )
    except OSError as error:
        raise ModelError(f"{params_path}: unreadable ({error})") from error
    history_path = directory / "history.json"
    history = _read_json(history_path) if history_path.exists() else {key: [] for key in HISTORY_KEYS}
    return TrainedModel(
        name=str(info.get("name", directory.name)),
        config=config,
        params=params,
        layout=layout,
        dataset_settings=info.get("dataset_settings") or {},
        data=info.get("data") or {},
        training=info.get("training") or {},
        history=history,
        summary=info.get("summary") or {},
        metrics=info.get("metrics"),
        thresholds=thresholds,
    )


def save_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Record evaluation metrics in an existing model directory's ``model.json``."""
    model_json = Path(path) / "model.json"
    info = _read_json(model_json)
    info["metrics"] = metrics
    atomic_write_text(model_json, json.dumps(info, indent=2) + "\n")


# --- checkpoints -------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """Everything a resumed run needs: parameters, Adam state, schedule and history after ``epoch``."""

    epoch: int  # epochs completed
    params: Params
    opt_state: optax.OptState
    schedule: Schedule
    # A float per epoch (validation entries None without a validation set). The lists are shared with
    # the running loop and may hold later epochs too: only the first ``epoch`` entries belong here.
    history: dict[str, list[Any]]

    def to_bytes(self) -> bytes:
        state = {
            "epoch": self.epoch,
            "params": flax.serialization.to_state_dict(self.params),
            "opt_state": flax.serialization.to_state_dict(self.opt_state),
            "schedule": json.dumps(dataclasses.asdict(self.schedule)),
            "history": json.dumps({key: values[: self.epoch] for key, values in self.history.items()}),
        }
        return flax.serialization.msgpack_serialize(state)

    @classmethod
    def from_bytes(cls, data: bytes, config: ModelConfig, path: Path) -> Checkpoint:
        state = _msgpack(data, path)
        try:
            template = params_template(config)
            params = restore_state(template, state["params"], path)
            opt_state = restore_state(jax.eval_shape(OPTIMIZER.init, template), state["opt_state"], path)
            schedule = Schedule(**json.loads(state["schedule"]))
            history = json.loads(state["history"])
            return cls(int(state["epoch"]), params, opt_state, schedule, history)
        except (ValueError, KeyError, TypeError) as error:
            raise ModelError(f"{path}: not a checkpoint of this model ({error})") from error


def checkpoint_paths(directory: Path) -> tuple[Path, Path]:
    """(latest, best) checkpoint files of a model directory."""
    return directory / "checkpoints" / "latest.msgpack", directory / "checkpoints" / "best.msgpack"


# --- the training loop -------------------------------------------------------------------------------


def format_epoch(epoch: int, epochs: int, history: dict[str, list[float]], improved: bool) -> str:
    """One progress line: loss, reconstruction, KL, validation loss, learning rate; ``*`` marks a new best."""
    line = (
        f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}  loss {history['loss'][-1]:.3f}"
        f"  rec {history['reconstruction'][-1]:.3f}  kl {history['kl'][-1]:.3f}"
    )
    if history["val_loss"][-1] is not None:
        line += f"  val {history['val_loss'][-1]:.3f}"
    line += f"  lr {history['learning_rate'][-1]:.2e}  {history['seconds'][-1]:.2f}s"
    return line + ("  *" if improved else "")


def train(
    model: TrainedModel,
    train_set: Dataset,
    validation_set: Dataset | None,
    settings: TrainSettings,
    directory: str | Path | None = None,
    *,
    resume: bool = False,
    log: Callable[[str], None] | None = print,
) -> TrainedModel:
    """Train ``model`` (its params are the starting point) and return it holding the best parameters.

    The monitored loss is the validation loss when ``validation_set`` has sequences, else the training
    loss. With ``directory`` the model and checkpoints are written there every
    ``settings.checkpoint_every`` epochs, at the end and on Ctrl-C (KeyboardInterrupt is re-raised
    after saving). ``resume`` continues from ``directory``'s latest checkpoint.
    """
    if len(train_set) == 0:
        raise ValueError("training set is empty")
    if (train_set.ticks, train_set.rows) != (model.config.ticks, model.config.rows):
        raise ValueError(
            f"data rolls are {train_set.ticks}x{train_set.rows},"
            f" the model expects {model.config.ticks}x{model.config.rows}"
        )
    directory = Path(directory) if directory is not None else None
    validation_rng = jax.random.PRNGKey(settings.seed)  # one fixed sample: a less noisy monitor

    def device_inputs(dataset: Dataset) -> jax.Array:
        if model.config.channels == 1:
            return flat_rolls(dataset)
        return jnp.asarray(model_inputs(model.config, dataset))

    data = device_inputs(train_set)
    validation = device_inputs(validation_set) if validation_set is not None and len(validation_set) else None
    beta = jnp.float32(settings.beta)  # validation: the full weight, also during a KL warm-up
    free_bits, weight_decay = jnp.float32(settings.free_bits), jnp.float32(settings.weight_decay)

    empty_history: dict[str, list[Any]] = {key: [] for key in HISTORY_KEYS}
    start = Checkpoint(
        0, model.params, OPTIMIZER.init(model.params), Schedule(settings.learning_rate), empty_history
    )
    if resume:
        if directory is None:
            raise ValueError("resume needs the model directory")
        latest_path, _ = checkpoint_paths(directory)
        if not latest_path.exists():
            raise ModelError(f"{latest_path}: missing, nothing to resume")
        start = Checkpoint.from_bytes(latest_path.read_bytes(), model.config, latest_path)
    latest = start
    best = start
    if start.schedule.best_epoch >= 0 and directory is not None:
        _, best_path = checkpoint_paths(directory)
        best = Checkpoint.from_bytes(best_path.read_bytes(), model.config, best_path)

    model.training = settings.to_dict()
    params, opt_state, schedule = start.params, start.opt_state, start.schedule
    history = {key: list(start.history.get(key, [])) for key in HISTORY_KEYS}
    stop: str | None = None
    saved_epoch = start.epoch

    def finish() -> None:
        model.params = best.params
        model.history = latest.history
        model.summary = {
            "epochs_run": latest.epoch,
            "best_epoch": latest.schedule.best_epoch + 1,
            "best_loss": latest.schedule.best_loss,
            "monitored": "val_loss" if validation is not None else "loss",
            "final_learning_rate": latest.schedule.learning_rate,
            "stop_reason": stop or ("epochs" if latest.epoch >= settings.epochs else "interrupted"),
            "train_sequences": len(train_set),
            "validation_sequences": len(validation_set) if validation_set is not None else 0,
            "seconds": float(sum(latest.history["seconds"])),
        }
        if directory is not None:
            latest_path, best_path = checkpoint_paths(directory)
            atomic_write_bytes(best_path, best.to_bytes())
            atomic_write_bytes(latest_path, latest.to_bytes())
            model.save(directory)

    try:
        for epoch in range(start.epoch, settings.epochs):
            began = time.perf_counter()
            learning_rate = schedule.learning_rate
            order, noise = epoch_plan(
                settings.seed, epoch, len(data), settings.batch_size, model.config.latent_dim
            )
            params, opt_state, terms = _train_epoch(
                model.config,
                params,
                opt_state,
                data,
                order,
                noise,
                jnp.float32(learning_rate),
                jnp.float32(settings.beta_at(epoch)),
                free_bits,
                weight_decay,
            )
            loss, reconstruction, kl = (float(v) for v in terms)
            val_loss = val_reconstruction = val_kl = None
            if validation is not None:
                val_terms = _evaluate_loss(model.config, params, validation, validation_rng, beta)
                val_loss, val_reconstruction, val_kl = (float(v) for v in val_terms)
            monitored = val_loss if val_loss is not None else loss
            schedule, improved, stop = schedule_step(schedule, epoch, monitored, settings)
            row = (loss, reconstruction, kl, val_loss, val_reconstruction, val_kl, learning_rate)
            for key, value in zip(HISTORY_KEYS, (*row, time.perf_counter() - began), strict=True):
                history[key].append(value)
            latest = Checkpoint(epoch + 1, params, opt_state, schedule, history)
            if improved:
                best = latest
            if log is not None:
                log(format_epoch(epoch, settings.epochs, history, improved))
            if stop is not None:
                break
            if directory is not None and latest.epoch - saved_epoch >= settings.checkpoint_every:
                finish()
                saved_epoch = latest.epoch
    except KeyboardInterrupt:
        finish()
        raise
    # The thresholds are the best parameters', chosen on held-out bars (the training bars without them).
    model.params = best.params
    held_out = validation_set if validation_set is not None and validation is not None else train_set
    model.calibrate(held_out.rolls, model.inputs(held_out))
    finish()
    if log is not None:
        log(
            f"stopped: {model.summary['stop_reason']} after {latest.epoch} epochs; best epoch"
            f" {model.summary['best_epoch']} ({model.summary['monitored']} {model.summary['best_loss']:.4f})"
        )
    return model
