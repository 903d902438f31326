"""Shared test fixtures: where the real MIDI corpora are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def midi_root() -> Path:
    """The shipped corpora: $RACKVAE_MIDI, default data/midi in the repository."""
    return Path(os.environ.get("RACKVAE_MIDI", REPO_ROOT / "data" / "midi")).resolve()


@pytest.fixture(scope="session")
def corpora() -> Path:
    root = midi_root()
    if not (root / "groove").is_dir():
        # The corpora are part of the test environment: their absence is a failure, not a skip.
        pytest.fail(f"MIDI corpora not found at {root} (set RACKVAE_MIDI)")
    return root
