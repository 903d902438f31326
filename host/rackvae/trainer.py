"""The original ``SequenceVAETrainer`` workflow in Python naming, for notebooks::

    trainer = Trainer("perc_model_16", model_path="models")
    trainer.load_dataset("groove.npz")            # or MIDI files/folders with EncodingSettings
    trainer.create_model(latent_dim=3, hidden_layers=2)
    trainer.train(batch_size=32, epochs=500, learning_rate=0.005)
    trainer.save()
    trainer.recall()
    trainer.plot_latent_space()

Training writes checkpoints into ``model_path/name/`` as it goes (the same folder ``rackvae train``
writes), so ``load()`` and ``rackvae export`` find the model there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rackvae import dataset as datasets
from rackvae import plots
from rackvae.dataset import Dataset
from rackvae.evaluate import THRESHOLD, reconstruction_metrics
from rackvae.model import LayerSpacing, ModelConfig
from rackvae.train import TrainedModel, TrainSettings, data_record, load_model, new_model, train


class Trainer:
    """Load data, create a model, train, save, load, and check it, as the original trainer did."""

    def __init__(self, name: str, model_path: str | Path = "models") -> None:
        self.name = name
        self.model_path = Path(model_path)
        self.dataset: Dataset | None = None
        self.train_set: Dataset | None = None
        self.validation_set: Dataset | None = None
        self.model: TrainedModel | None = None
        self._data_record: dict[str, Any] = {}

    @property
    def directory(self) -> Path:
        return self.model_path / self.name

    def load_dataset(
        self,
        source: str | Path | Sequence[str | Path] | Dataset,
        *,
        settings: Any = None,
        validation_fraction: float = 0.1,
        split_seed: int = 0,
    ) -> Dataset:
        """A dataset ``.npz``, a ``Dataset``, or MIDI files/folders ingested with ``settings``
        (a ``rackvae.codec.EncodingSettings``); split by file into training and validation sequences."""
        path = None
        if isinstance(source, Dataset):
            data = source
        elif isinstance(source, str | Path) and Path(source).suffix == ".npz":
            data, path = datasets.load(source), source
        else:
            from rackvae.codec import EncodingSettings

            paths = [source] if isinstance(source, str | Path) else list(source)
            data = datasets.ingest(paths, settings=settings or EncodingSettings()).dataset
        self.dataset = data
        self.train_set, self.validation_set = data.split(validation_fraction, split_seed)
        self._data_record = data_record(
            path, self.train_set, self.validation_set, validation_fraction, split_seed
        )
        return data

    def create_model(
        self,
        latent_dim: int = 3,
        hidden_layers: int = 2,
        latent_scale: float = 3.0,
        *,
        layer_spacing: LayerSpacing = "geometric",
        hidden_sizes: tuple[int, ...] | None = None,
        log_var_bound: float | None = None,
        seed: int = 0,
    ) -> TrainedModel:
        data = self._require_data()
        config = ModelConfig(
            data.ticks,
            data.rows,
            latent_dim,
            hidden_layers,
            latent_scale,
            layer_spacing,
            hidden_sizes,
            log_var_bound,
        )
        self.model = new_model(self.name, config, data, seed=seed)
        self.model.data = dict(self._data_record)
        print(f"layer sizes: decoder {'-'.join(map(str, config.decoder_sizes()))}")
        return self.model

    def train(
        self,
        batch_size: int = 32,
        epochs: int = 500,
        learning_rate: float = 0.005,
        patience: int = 100,
        factor: float = 0.5,
        min_learning_rate: float = 1e-6,
        **options: Any,
    ) -> dict[str, list[Any]]:
        """Train (further options: ``TrainSettings`` fields such as ``beta``, ``stop_patience``); returns
        the history. Calling it again continues from the current (best) parameters."""
        model = self._require_model()
        self._require_data()
        settings = TrainSettings(
            batch_size=batch_size,
            epochs=epochs,
            learning_rate=learning_rate,
            patience=patience,
            factor=factor,
            min_learning_rate=min_learning_rate,
            **options,
        )
        train(model, self.train_set, self.validation_set, settings, self.directory)
        return model.history

    def save(self) -> Path:
        self._require_model().save(self.directory)
        return self.directory

    def load(self) -> TrainedModel:
        """The model saved under ``model_path/name`` (and its dataset, when none is loaded and it exists)."""
        self.model = load_model(self.directory)
        path = self.model.data.get("path")
        if self.dataset is None and path and Path(path).exists():
            self.load_dataset(
                path,
                validation_fraction=self.model.data["validation_fraction"],
                split_seed=self.model.data["split_seed"],
            )
        return self.model

    def recall(self, threshold: float = THRESHOLD) -> dict[str, dict[str, float]]:
        """Reconstruction metrics on the training (and validation) sequences; prints the headline."""
        model = self._require_model()
        result = {}
        for name, split in (("train", self.train_set), ("validation", self.validation_set)):
            if split is not None and len(split):
                result[name] = reconstruction_metrics(split.rolls, model.reconstruct(split.rolls), threshold)
                metrics = result[name]
                print(
                    f"{name}: {metrics['exact_recall']:.1%} exact recall,"
                    f" {metrics['step_accuracy']:.1%} steps, {metrics['element_accuracy']:.1%} elements right"
                )
        return result

    def plot_latent_space(self) -> Figure:
        means, _ = self._require_model().encode(self._training_rolls())
        return plots.latent_pairs(means, self._require_model().config.latent_scale)

    def plot_output_distribution(self) -> Figure:
        return plots.output_histogram(self._require_model().reconstruct(self._training_rolls()))

    def plot_input_output(self, index: int, threshold: float = THRESHOLD) -> Figure:
        model = self._require_model()
        rolls = self._training_rolls()[index : index + 1]
        return plots.input_output(
            rolls, model.reconstruct(rolls), plots.row_labels(model.layout), threshold, [index]
        )

    def _training_rolls(self) -> Any:
        self._require_data()
        return self.train_set.rolls

    def _require_data(self) -> Dataset:
        if self.dataset is None:
            raise RuntimeError("no dataset: call load_dataset() first")
        return self.dataset

    def _require_model(self) -> TrainedModel:
        if self.model is None:
            raise RuntimeError("no model: call create_model() or load() first")
        return self.model
