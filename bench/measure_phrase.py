"""Issue 14 item 4, second route, measured and not built (docs/model_search.md): the winner recipe
with the bar's position in a 4-bar phrase (one-hot of ``bar % 4``) concatenated to the encoder's input
and to the decoder's latent.

The groove ``.npz`` has ``bar`` (the sequence's first bar, 0-based from the file's start, counted through
meter changes, ``rackvae.codec.encode_song``): the position is ``bar % 4``, as the module's bar counter
would count from a reset. The winner is trained beside it with the same seed (``search_models.trained``)
so the two are compared on the same split, budget, calibration and measures
(``search_models.reconstruction_figures`` / ``generation_figures``), on every validation bar and on the
phrase-end bars (position 3). The phrase model's knob grid and prior samples are decoded at each of the 4
positions and their figures averaged (the module plays each position equally often).

Training reuses ``rackvae.train.train`` unchanged, with two of its names patched while a phrase model
trains: ``flat_rolls`` (the device inputs get the one-hot after the roll) and ``loss_terms`` (the phrase
VAE's hits-only loss).

    .venv/bin/python bench/measure_phrase.py /tmp/groove.npz --runs out/search/phrase.jsonl \\
        --seeds 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # search_models
import search_models as search
from rackvae import dataset as datasets
from rackvae import train as training
from rackvae.dataset import Dataset
from rackvae.evaluate import hits_per_bar, latent_grid
from rackvae.model import (
    Decoder,
    Encoder,
    ModelConfig,
    Params,
    binary_cross_entropy,
    kl_per_dim,
)
from rackvae.train import TrainedModel, TrainSettings

WINNER = "wide; β 0.2; wd 0.1; lr 0.002"
PHRASE_NAME = "winner + bar position in a 4-bar phrase (encoder and decoder)"
FILLS_NAME = "winner + phrase position, fill files at the phrase end"
DECODER_NAME = "winner + bar position in a 4-bar phrase (decoder only)"
PHRASE = 4
END = PHRASE - 1  # the phrase-end bar, where fills live
NAMES = (WINNER, PHRASE_NAME, FILLS_NAME, DECODER_NAME)


@dataclass(frozen=True)
class PhraseConfig(ModelConfig):
    """A hits-only ModelConfig whose encoder input and decoder latent also get a one-hot of the bar's
    position in a ``phrase``-bar phrase."""

    phrase: int = PHRASE
    fills_at_end: bool = False  # a fill file's bars count back from its last bar (= position 3)
    encoder_position: bool = True  # False: only the decoder gets the one-hot

    def decoder_macs(self) -> int:
        """The first layer also reads the one-hot (``phrase`` more inputs)."""
        return super().decoder_macs() + self.phrase * self.decoder_sizes()[1]


def one_hot(positions: np.ndarray, phrase: int) -> np.ndarray:
    return np.eye(phrase, dtype=np.float32)[np.asarray(positions) % phrase]


def fill_bars(dataset: Dataset) -> np.ndarray:
    """Mask of the sequences from Groove fill files (``..._fill_4-4.mid``)."""
    return np.array(["_fill_" in Path(dataset.files[i]).name for i in dataset.file_index], bool)


def positions(dataset: Dataset, fills_at_end: bool = False) -> np.ndarray:
    """Each sequence's bar position in the phrase: its first bar's index in its file, modulo PHRASE.
    ``fills_at_end``: a fill file's bars count back from its last kept bar, which is the phrase end
    (most fill files are one bar, bar 0, where ``bar % 4`` would put the fill at the phrase start)."""
    if not fills_at_end:
        return dataset.bar % PHRASE
    last = np.zeros(len(dataset.files), np.int64)
    np.maximum.at(last, dataset.file_index, dataset.bar)
    from_end = END - (last[dataset.file_index] - dataset.bar)
    return np.where(fill_bars(dataset), from_end, dataset.bar) % PHRASE


def phrase_inputs(dataset: Dataset, config: PhraseConfig) -> np.ndarray:
    """float32 ``[N, ticks*rows + PHRASE]``: the flat roll, then the position's one-hot."""
    flat = dataset.rolls.reshape(len(dataset), -1).astype(np.float32)
    return np.concatenate([flat, one_hot(positions(dataset, config.fills_at_end), PHRASE)], axis=1)


class PhraseVAE(nn.Module):
    """The product Encoder and Decoder (same parameter names), wired as a conditional VAE."""

    config: PhraseConfig

    def setup(self) -> None:
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)

    def __call__(self, x: jax.Array, noise: jax.Array | None) -> tuple[jax.Array, jax.Array, jax.Array]:
        mean, log_var = self.encoder(x if self.config.encoder_position else x[:, : self.config.input_size])
        z = mean if noise is None else mean + jnp.exp(0.5 * log_var) * noise
        position = x[:, self.config.input_size :]
        return self.decoder(jnp.concatenate([z, position], axis=1)), mean, log_var


def phrase_loss_terms(
    config: ModelConfig, params: Params, x: jax.Array, noise: jax.Array | None
) -> tuple[jax.Array, jax.Array]:
    """``rackvae.model.loss_terms`` (hits-only) for the phrase VAE: x = [roll | one-hot]."""
    assert isinstance(config, PhraseConfig) and config.channels == 1
    x = x.reshape((x.shape[0], -1)).astype(jnp.float32)
    logits, mean, log_var = PhraseVAE(config).apply({"params": params}, x, noise)
    reconstruction = binary_cross_entropy(logits, x[:, : config.input_size]).sum(axis=-1)
    return reconstruction, kl_per_dim(mean, log_var)


@dataclass
class PhraseModel(TrainedModel):
    """A TrainedModel whose inputs carry the position; latents without one decode at ``position``."""

    position: int = 0

    def inputs(self, dataset: Dataset) -> np.ndarray:
        assert isinstance(self.config, PhraseConfig)
        return phrase_inputs(dataset, self.config)

    def encode(self, rolls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``rolls`` are ``phrase_inputs``; a decoder-only model's encoder reads the roll part."""
        assert isinstance(self.config, PhraseConfig)
        flat = rolls.reshape(len(rolls), -1)
        return super().encode(flat if self.config.encoder_position else flat[:, : self.config.input_size])

    def reconstruct(self, rolls: np.ndarray) -> np.ndarray:
        """``rolls`` are ``phrase_inputs``: decoded from the encoder mean at their own position."""
        flat = rolls.reshape(len(rolls), -1)
        means = self.encode(flat)[0]
        return self.decode(np.concatenate([means, flat[:, self.config.input_size :]], axis=1))

    def decode_all(self, latents: np.ndarray) -> np.ndarray:
        if latents.shape[1] == self.config.latent_dim:
            position = one_hot(np.full(len(latents), self.position), PHRASE)
            latents = np.concatenate([latents, position], axis=1)
        return super().decode_all(latents)


@contextlib.contextmanager
def phrase_training(config: PhraseConfig) -> Iterator[None]:
    """``rackvae.train.train`` feeding ``phrase_inputs`` and the phrase loss (restored afterwards)."""
    saved = training.flat_rolls, training.loss_terms
    training.flat_rolls = lambda dataset: jnp.asarray(phrase_inputs(dataset, config), jnp.uint8)
    training.loss_terms = phrase_loss_terms
    try:
        yield
    finally:
        training.flat_rolls, training.loss_terms = saved


def phrase_trained(
    name: str, seed: int, train_set: Dataset, validation_set: Dataset, fills_at_end: bool, encoder: bool
) -> PhraseModel:
    """The winner's recipe and budget (``search_models``), conditioned on the phrase position."""
    config_fields, settings_fields = search.CANDIDATES[WINNER]
    config = PhraseConfig(
        train_set.ticks, train_set.rows, **config_fields, fills_at_end=fills_at_end, encoder_position=encoder
    )
    settings = TrainSettings(**search.BUDGET, **settings_fields, seed=seed)
    init_rng, _ = jax.random.split(jax.random.PRNGKey(seed))  # as rackvae.model.init_params
    dummy = jnp.zeros((1, config.input_size + PHRASE), jnp.float32)
    params = PhraseVAE(config).init(init_rng, dummy, None)["params"]
    model = PhraseModel(name, config, params, train_set.layout, dict(train_set.settings))
    with phrase_training(config):
        training.train(model, train_set, validation_set, settings, log=None)
    return model


def grid_groups(model: TrainedModel) -> list[float]:
    """Notes per bar per group of the 17³ knob grid at the model's thresholds."""
    grid = latent_grid(model.config.latent_dim, model.config.latent_scale, 17)
    return hits_per_bar(model.decode(grid) >= model.cell_thresholds(), model.layout.group_sizes)["groups"]


def measured(
    model: TrainedModel, name: str, seed: int, seconds: float, validation_set: Dataset
) -> dict[str, Any]:
    """search_models.run's record, plus the figures on the phrase-end bars (``bar % 4 == 3``), on the
    fill files' bars, and the phrase model's generation per position."""
    assert model.thresholds is not None
    rolls = validation_set.rolls
    inputs = model.inputs(validation_set)
    end = positions(validation_set) == END
    fills = fill_bars(validation_set)
    if isinstance(model, PhraseModel):
        per_position = []
        for position in range(PHRASE):
            model.position = position
            per_position.append(
                {**search.generation_figures(model, rolls), "grid_groups": grid_groups(model)}
            )
        generation: dict[str, Any] = {
            key: float(np.mean([p[key] for p in per_position]))
            for key in ("grid_density_ratio", "prior_density_ratio", "neighbour_changes")
        }
        generation["per_position"] = per_position
    else:
        generation = {**search.generation_figures(model, rolls), "grid_groups": grid_groups(model)}
    at_end = search.reconstruction_figures(model, rolls[end], inputs[end])
    at_fills = search.reconstruction_figures(model, rolls[fills], inputs[fills])
    return {
        "candidate": name,
        "seed": seed,
        "decoder_macs": model.config.decoder_macs(),
        **search.reconstruction_figures(model, rolls, inputs),
        **generation,
        **{f"end_{key}": value for key, value in at_end.items()},
        "end_bars": int(end.sum()),
        **{f"fill_{key}": value for key, value in at_fills.items()},
        "fill_bars": int(fills.sum()),
        "threshold": model.thresholds.threshold,
        "group_thresholds": list(model.thresholds.group_thresholds),
        "epochs": model.summary["epochs_run"],
        "best_epoch": model.summary["best_epoch"],
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="the groove dataset (.npz from rackvae ingest)")
    parser.add_argument(
        "--runs", type=Path, required=True, help="JSON-lines file of finished runs (appended)"
    )
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (default: 1)")
    parser.add_argument("--table", action="store_true", help="print the tables of the runs file and stop")
    args = parser.parse_args()

    runs = [json.loads(line) for line in args.runs.read_text().splitlines()] if args.runs.exists() else []
    if not args.table:
        train_set, validation_set = datasets.load(args.data).split(0.1, 0)
        done = {(r["candidate"], r["seed"]) for r in runs}
        for seed in range(args.seeds):
            for name in NAMES:
                if (name, seed) in done:
                    continue
                began = time.perf_counter()
                if name == WINNER:
                    model: TrainedModel = search.trained(WINNER, seed, train_set, validation_set)
                else:
                    fills, encoder = name == FILLS_NAME, name != DECODER_NAME
                    model = phrase_trained(name, seed, train_set, validation_set, fills, encoder)
                result = measured(model, name, seed, time.perf_counter() - began, validation_set)
                runs.append(result)
                with args.runs.open("a") as file:
                    file.write(json.dumps(result) + "\n")
                shown = ", ".join(f"{k} {result[k]:.3f}" for k in search.METRICS)
                print(f"{name} seed {seed}: {shown}", flush=True)
    print(search.table(runs, NAMES))
    for prefix, what in (("end_", "phrase-end bars (bar % 4 == 3)"), ("fill_", "fill files' bars")):
        print(f"\n{what} of the validation split:")
        subset = [{**r, **{k[len(prefix) :]: v for k, v in r.items() if k.startswith(prefix)}} for r in runs]
        print(search.table(subset, NAMES, search.METRICS[:5]))
    for name in NAMES:
        mine = [r for r in runs if r["candidate"] == name]
        for key in ("step_accuracy_05", "note_f1"):
            values = [r[key] for r in mine]
            if len(values) > 1:
                print(f"{name}: {key} sd {statistics.stdev(values):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
