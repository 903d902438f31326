"""Sub-commands of the ``rackvae`` CLI (see ``rackvae.cli``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

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


def output_problem(path: Path, *, folder: bool) -> str:
    """Why ``path`` cannot be written as an output ``folder`` (else a file), found before any work is
    done: the other kind is there, or a file stands where a folder on its way must be; "" when none."""
    if path.exists() and path.is_dir() != folder:
        return "is a file, not a folder" if folder else "is a folder; name the file to write"
    # The nearest existing ancestor: "." for a bare name, at the worst "/"
    nearest = next(parent for parent in path.absolute().parents if parent.exists())
    if not nearest.is_dir():
        return f"{nearest} is a file, not a folder"
    return ""
