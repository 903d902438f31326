"""Sub-commands of the ``rackvae`` CLI (see ``rackvae.cli``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Command = Callable[[argparse.Namespace], int]


def run_model_command(name: str, command: Command, args: argparse.Namespace) -> int:
    """Run a command that reads a model folder and datasets: a bad file or setting ends it with one
    line naming the command and the reason, not a traceback."""
    from rackvae.dataset import DatasetError
    from rackvae.train import ModelError

    try:
        return command(args)
    except (ModelError, DatasetError, ValueError) as error:
        raise SystemExit(f"{name}: {error}") from error
