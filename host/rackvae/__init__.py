"""rackvae: sequence VAEs trained on MIDI in JAX, decoded by a portable C core on a Eurorack module."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rackvae.generate import EngineName, Model

__version__ = "0.1.0"


def load(path: str | Path, engine: EngineName | None = None) -> Model:
    """A trained model folder or an exported .tflite, ready to play (``rackvae.generate.load``)."""
    from rackvae.generate import load as load_model  # imported on use: ``import rackvae`` stays light

    return load_model(path, engine)
