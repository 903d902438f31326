"""The ``rackvae`` command: one sub-command per module in ``rackvae.commands``.

Each command module defines ``register(subparsers)`` (adds its parser and sets ``func``); modules are
imported lazily inside their ``run`` so ``rackvae --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order shown in --help follows the data flow.
COMMANDS = ("ingest", "train", "eval", "export", "simulate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rackvae",
        description="Train sequence VAEs on MIDI and play them from a Eurorack module.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rackvae.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
