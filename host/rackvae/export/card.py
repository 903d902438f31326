"""The model card ``NAME.yml``: what a set of exported files is, as the original trainer's ``NAME.yml``
(name, training runs, dataset, model, metadata), plus the decoded channels (where each sits in the
output and what its value means, docs/groove_format.md) and what the export wrote and measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rackvae.atomic import atomic_write_text
from rackvae.export.metadata import XenMetadata
from rackvae.train import TrainedModel

# Per-sequence statistics in model.json's data record: too long for a card.
_DATA_KEYS_LEFT_OUT = ("constant_roll",)
# What a channel's output (the sigmoid, 0..1) means (rackvae.model.split_outputs computes it).
_CHANNEL_VALUES = {
    "hits": "probability of a hit (output)",
    "velocity": "velocity 0..127 (127 * output)",
    "offset": "timing offset in steps, -0.5..0.5 (output - 0.5)",
}


def model_card(model: TrainedModel, metadata: XenMetadata, export: dict[str, Any]) -> dict[str, Any]:
    """The card as plain data; ``export`` holds the calibration and one entry per written file."""
    layout = model.layout.to_dict()
    return {
        "name": model.name,
        "model": {**model.config.to_dict(), "decoder_sizes": list(model.config.decoder_sizes())},
        "dataset": {
            "settings": model.dataset_settings,
            "layout": {key: layout[key] for key in ("kind", "rows", "base_note", "group_sizes", "row_names")},
            **{key: value for key, value in model.data.items() if key not in _DATA_KEYS_LEFT_OUT},
        },
        # One run per model directory: --resume continues it, so settings and summary describe it all.
        "training": [{**model.training, **model.summary}] if model.training or model.summary else [],
        "metrics": model.metrics,
        "metadata": metadata.to_dict(),
        "channels": channel_layout(metadata),
        "export": export,
    }


def channel_layout(metadata: XenMetadata) -> list[dict[str, Any]]:
    """Per channel, in output order: its name, its block of outputs ``[first, last]`` (each block
    tick-major: index = first + tick * rows + row) and what its value means."""
    cells = metadata.ticks * metadata.rows
    return [
        {"name": name, "outputs": [index * cells, (index + 1) * cells - 1], "value": _CHANNEL_VALUES[name]}
        for index, name in enumerate(metadata.channel_names)
    ]


def write_model_card(path: str | Path, card: dict[str, Any]) -> None:
    # Flow style for leaf lists keeps group sizes and metadata bytes on one line each.
    text = yaml.safe_dump(_plain(card), sort_keys=False, allow_unicode=True, default_flow_style=None)
    atomic_write_text(path, text)


def _plain(value: Any) -> Any:
    """YAML-safe copy: tuples to lists, numpy scalars to Python numbers."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    return value
