"""Training speed and quality: this trainer (JAX, one compiled function per epoch) against the original
architecture in TensorFlow Keras (``tf_keras`` ``model.fit``), same layer sizes, batch size and data.

Data: the groove corpus encoded like the demo (1 bar of 16ths, Extended percussion map), cached in
``out/bench/groove.npz``. Per seed, both train for the same number of epochs on the same sequences;
seconds per epoch are the median over epochs after the first (which includes compilation / tracing),
the loss is the last epoch's mean training loss (BCE summed over outputs + KL, as the original).
Medians over 3 seeds. Keras runs in its own process per run, three ways: graph mode as the original
ran it (``disable_eager_execution``), today's default ``fit`` (``tf.function``), and with XLA
(``jit_compile=True``). Seconds are wall-clock; CPU seconds (all threads) show the work done, which
matters on a shared machine (Keras spreads over both cores, this trainer uses one). ``--hidden-sizes``
runs another architecture on both sides (e.g. the default model's 320,192,64; the log-variance
squashed like the original's on both, so the losses compare).

    .venv/bin/python bench/bench_train.py [--epochs 20] [--seeds 3] [--limit N] [--hidden-sizes 320,192,64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rackvae.model import ModelConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "out" / "bench" / "groove.npz"


def groove_rolls() -> np.ndarray:
    """Flattened uint8 rolls of the groove corpus, ingested once and cached."""
    from rackvae import dataset as datasets
    from rackvae.codec import EncodingSettings

    if not CACHE.exists():
        midi = Path(os.environ.get("RACKVAE_MIDI", REPO / "data" / "midi")) / "groove"
        result = datasets.ingest([midi], settings=EncodingSettings(percussion_map="extended"), progress=False)
        result.dataset.save(CACHE)
    data = datasets.load(CACHE)
    return data.rolls.reshape(len(data), -1)


class EpochClock:
    """Wall and CPU seconds of each epoch (CPU time counts every thread of the process)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.start()

    def start(self) -> None:
        self.began = (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        self.wall.append(time.perf_counter() - self.began[0])
        self.cpu.append(time.process_time() - self.began[1])

    def medians(self) -> tuple[float, float]:
        """Medians over the epochs after the first (which includes compilation or tracing)."""
        return statistics.median(self.wall[1:]), statistics.median(self.cpu[1:])


def run_jax(rolls: np.ndarray, config: ModelConfig, epochs: int, batch_size: int, seed: int) -> dict:
    from rackvae.dataset import Dataset, RollLayout
    from rackvae.train import TrainSettings, new_model, train

    n = len(rolls)
    zeros = np.zeros(n, np.int32)
    cube = rolls.reshape(n, config.ticks, config.rows)
    data = Dataset(cube, cube, RollLayout("perc", config.rows), {}, [], zeros, zeros, zeros)
    model = new_model("bench", config, data, seed=seed)
    never = 10**6  # no plateau, no early stop: a fixed number of epochs like model.fit
    settings = TrainSettings(
        batch_size=batch_size, epochs=epochs, seed=seed, patience=never, stop_patience=never
    )
    clock = EpochClock()

    def epoch_done(line: str) -> None:  # called once per epoch, right after it
        clock.stop()
        clock.start()

    train(model, data, None, settings, log=epoch_done)
    wall, cpu = clock.medians()
    return {"seconds": wall, "cpu": cpu, "loss": model.history["loss"][-1]}


def run_keras(
    rolls: np.ndarray, sizes: tuple[int, ...], epochs: int, batch_size: int, seed: int, mode: str
) -> dict:
    """The original VariationalAutoEncoder (dense ReLU encoder, scaled-tanh mean and log-variance,
    sampling, mirrored decoder, sigmoid output; loss = BCE * inputs + KL, Adam 0.005) trained by fit.

    ``mode``: "graph" (``disable_eager_execution``, as the original), "function" (default) or "xla".
    """
    import tensorflow as tf

    if mode == "graph":
        tf.compat.v1.disable_eager_execution()
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

    optimizer = keras.optimizers.legacy.Adam(learning_rate=0.005)  # the original's optimizer
    options = {"jit_compile": True} if mode == "xla" else {}  # graph mode knows no jit_compile
    model.compile(optimizer=optimizer, loss=reconstruction, **options)
    clock = EpochClock()

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            clock.start()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            clock.stop()

    clock.wall.clear()
    clock.cpu.clear()
    data = rolls.astype(np.float32)
    history = model.fit(data, data, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[EpochTimer()])
    wall, cpu = clock.medians()
    return {"seconds": wall, "cpu": cpu, "loss": float(history.history["loss"][-1])}


KERAS_MODES = {"graph": "Keras, graph (original)", "function": "Keras fit", "xla": "Keras fit, XLA"}


def keras_in_subprocess(args: argparse.Namespace, mode: str, seed: int) -> dict:
    """One Keras run in a fresh process (graph mode is process-wide; TensorFlow keeps thread pools)."""
    command = [sys.executable, __file__, "--keras", mode, "--seed", str(seed), "--epochs", str(args.epochs)]
    command += ["--batch-size", str(args.batch_size), "--limit", str(args.limit)]
    if args.hidden_sizes:
        command += ["--hidden-sizes", args.hidden_sizes]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N sequences (0: all)")
    parser.add_argument("--hidden-sizes", help="encoder widths, widest first (default: the original's 48,12)")
    parser.add_argument("--keras", choices=KERAS_MODES, help=argparse.SUPPRESS)  # internal: one Keras run
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    rolls = groove_rolls()
    if args.limit:
        rolls = rolls[: args.limit]
    ticks, rows = 16, rolls.shape[1] // 16
    hidden = tuple(int(s) for s in args.hidden_sizes.split(",")) if args.hidden_sizes else None
    # The original squashed the log-variance into the mean's ±3, as Keras does here.
    config = ModelConfig(ticks, rows, hidden_sizes=hidden, log_var_bound=3.0)
    encoder = (config.input_size, *config.encoder_sizes(), config.latent_dim)
    if args.keras:
        print(json.dumps(run_keras(rolls, encoder, args.epochs, args.batch_size, args.seed, args.keras)))
        return 0

    layers = "-".join(map(str, encoder))
    print(f"data: {len(rolls)} groove bars of {ticks}x{rows}; layers {layers} (decoder mirrored)")
    print(f"batch {args.batch_size}, {args.epochs} epochs, seeds 0..{args.seeds - 1}; {os.cpu_count()} CPUs")
    runs: dict[str, list[dict]] = {"rackvae (JAX)": [], **{name: [] for name in KERAS_MODES.values()}}
    for seed in range(args.seeds):
        runs["rackvae (JAX)"].append(run_jax(rolls, config, args.epochs, args.batch_size, seed))
        for mode, name in KERAS_MODES.items():
            runs[name].append(keras_in_subprocess(args, mode, seed))
        done = (
            f"{name} {r[-1]['seconds']:.3f} s/epoch, loss {r[-1]['loss']:.3f}" for name, r in runs.items()
        )
        print(f"seed {seed}: " + "; ".join(done), flush=True)

    medians = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in runs.items()
    }
    ours = medians["rackvae (JAX)"]
    keras_loss = medians["Keras fit"]["loss"]
    print()
    columns = ("s/epoch", "x slower", "CPU s/epoch", "x CPU", "loss", "/ Keras fit")
    print(
        f"{'trainer':<24} "
        + " ".join(f"{c:>{w}}" for c, w in zip(columns, (8, 9, 12, 7, 8, 12), strict=True))
    )
    for name, m in medians.items():
        print(
            f"{name:<24} {m['seconds']:>8.4f} {m['seconds'] / ours['seconds']:>8.1f}x {m['cpu']:>12.4f}"
            f" {m['cpu'] / ours['cpu']:>6.1f}x {m['loss']:>8.3f} {m['loss'] / keras_loss:>12.3f}"
        )
    print("medians over seeds; 'x slower' = that trainer's seconds per epoch / rackvae's;")
    print("loss = mean training loss of the last epoch (BCE summed over outputs + KL), ratio to Keras fit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
