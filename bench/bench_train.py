"""Training speed and quality: this trainer (JAX, one compiled function per epoch) against the original
architecture in TensorFlow Keras (``tf_keras`` ``model.fit``), same layer sizes, batch size and data.

Data: the groove corpus encoded like the demo (1 bar of 16ths, Extended percussion map), cached in
``out/bench/groove.npz``. Per seed, both train for the same number of epochs on the same sequences;
seconds per epoch are the median over epochs after the first (which includes compilation / tracing),
the loss is the last epoch's mean training loss (BCE summed over outputs + KL, as the original).
Medians over 3 seeds. Keras is measured twice: as the original ran it (default ``fit``) and with XLA
(``jit_compile=True``), its fastest setting.

    .venv/bin/python bench/bench_train.py [--epochs 20] [--seeds 3] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "out" / "bench" / "groove.npz"


def groove_rolls() -> np.ndarray:
    """Flattened uint8 rolls of the groove corpus, ingested once and cached."""
    from rackvae import dataset as datasets
    from rackvae.codec import EncodingSettings

    if not CACHE.exists():
        midi = Path(os.environ.get("RACKVAE_MIDI", REPO.parent / "shared" / "midi")) / "groove"
        result = datasets.ingest([midi], settings=EncodingSettings(percussion_map="extended"), progress=False)
        result.dataset.save(CACHE)
    data = datasets.load(CACHE)
    return data.rolls.reshape(len(data), -1)


def run_jax(
    rolls: np.ndarray, ticks: int, rows: int, epochs: int, batch_size: int, seed: int
) -> tuple[float, float]:
    from rackvae.dataset import Dataset, RollLayout
    from rackvae.model import ModelConfig
    from rackvae.train import TrainSettings, new_model, train

    n = len(rolls)
    zeros = np.zeros(n, np.int32)
    cube = rolls.reshape(n, ticks, rows)
    data = Dataset(cube, cube, RollLayout("perc", rows), {}, [], zeros, zeros, zeros)
    model = new_model("bench", ModelConfig(ticks, rows), data, seed=seed)
    never = 10**6  # no plateau, no early stop: a fixed number of epochs like model.fit
    settings = TrainSettings(
        batch_size=batch_size, epochs=epochs, seed=seed, patience=never, stop_patience=never
    )
    train(model, data, None, settings, log=None)
    return statistics.median(model.history["seconds"][1:]), model.history["loss"][-1]


def run_keras(
    rolls: np.ndarray, sizes: tuple[int, ...], epochs: int, batch_size: int, seed: int, jit: bool
) -> tuple[float, float]:
    """The original VariationalAutoEncoder (dense ReLU encoder, scaled-tanh mean and log-variance,
    sampling, mirrored decoder, sigmoid output; loss = BCE * inputs + KL, Adam 0.005) trained by fit."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    inputs, *hidden, latent = sizes  # encoder widths, e.g. 192, 48, 12, 3
    scale = 3.0

    def scaled_tanh(x: tf.Tensor) -> tf.Tensor:
        return scale * tf.tanh(x)  # the original: latentScale * tanh(x)

    class Sampling(keras.layers.Layer):
        def call(self, args: list[tf.Tensor]) -> tf.Tensor:
            mean, log_var = args
            kl = -0.5 * tf.reduce_sum(1 + log_var - tf.square(mean) - tf.exp(log_var), axis=-1)
            self.add_loss(tf.reduce_mean(kl))
            return mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))

    x = keras.Input((inputs,))
    h = x
    for i, width in enumerate(hidden):
        h = keras.layers.Dense(width, activation="relu", name=f"encoder_internal_{i}")(h)
    mean = keras.layers.Dense(latent, activation=scaled_tanh, name="encoder_mean")(h)
    log_var = keras.layers.Dense(latent, activation=scaled_tanh, name="encoder_logvar")(h)
    h = Sampling()([mean, log_var])
    for i, width in enumerate(reversed(hidden)):
        h = keras.layers.Dense(width, activation="relu", name=f"decoder_internal_{i}")(h)
    y = keras.layers.Dense(inputs, activation="sigmoid", name="decoder_output")(h)
    model = keras.Model(x, y)

    def reconstruction(target: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
        return keras.metrics.binary_crossentropy(target, output) * inputs

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.005), loss=reconstruction, jit_compile=jit)

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds.append(time.perf_counter() - self.began)

    seconds: list[float] = []
    data = rolls.astype(np.float32)
    history = model.fit(data, data, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[EpochTimer()])
    return statistics.median(seconds[1:]), float(history.history["loss"][-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N sequences (0: all)")
    args = parser.parse_args()

    from rackvae.model import ModelConfig

    rolls = groove_rolls()
    if args.limit:
        rolls = rolls[: args.limit]
    ticks, rows = 16, rolls.shape[1] // 16
    config = ModelConfig(ticks, rows)
    encoder = (config.input_size, *config.encoder_sizes(), config.latent_dim)
    layers = "-".join(map(str, encoder))
    print(f"data: {len(rolls)} groove bars of {ticks}x{rows}; layers {layers} (decoder mirrored)")
    print(f"batch {args.batch_size}, {args.epochs} epochs, seeds 0..{args.seeds - 1}; {os.cpu_count()} CPUs")

    runs: dict[str, list[tuple[float, float]]] = {"rackvae (JAX)": [], "Keras fit": [], "Keras fit, XLA": []}
    for seed in range(args.seeds):
        runs["rackvae (JAX)"].append(run_jax(rolls, ticks, rows, args.epochs, args.batch_size, seed))
        runs["Keras fit"].append(run_keras(rolls, encoder, args.epochs, args.batch_size, seed, jit=False))
        runs["Keras fit, XLA"].append(run_keras(rolls, encoder, args.epochs, args.batch_size, seed, jit=True))
        done = (
            f"{name} {results[-1][0]:.3f} s/epoch, loss {results[-1][1]:.3f}"
            for name, results in runs.items()
        )
        print(f"seed {seed}: " + "; ".join(done), flush=True)

    medians = {
        name: (statistics.median(s for s, _ in results), statistics.median(loss for _, loss in results))
        for name, results in runs.items()
    }
    ours_seconds = medians["rackvae (JAX)"][0]
    keras_loss = medians["Keras fit"][1]
    print()
    print(f"{'trainer':<16} {'s/epoch':>9} {'rackvae faster':>15} {'loss':>9} {'loss / Keras fit':>17}")
    for name, (seconds, loss) in medians.items():
        speed_up = seconds / ours_seconds
        print(f"{name:<16} {seconds:>9.4f} {speed_up:>14.1f}x {loss:>9.3f} {loss / keras_loss:>17.3f}")
    print("medians over seeds; loss = mean training loss of the last epoch (BCE summed over outputs + KL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
