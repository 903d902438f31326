"""The ``rackvae`` command: one sub-command per module in ``rackvae.commands``.

Each command module defines ``register(subparsers)`` (adds its parser and sets ``func``); modules are
imported lazily inside their ``run`` so ``rackvae --help`` stays fast. Every parser, the sub-commands'
included, is a ``Parser``: its help shows each option's default and no RST markup.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from rackvae import __version__

# Order shown in --help follows the data flow, then what a trained model makes.
COMMANDS = (
    *("ingest", "train", "eval", "export", "simulate"),
    *("sample", "interpolate", "encode", "decode", "map"),
)


class HelpFormatter(argparse.HelpFormatter):
    """Plain help: an option's default is appended as ``(default: X)`` unless its help already says
    what the default is or it has none (a flag, or an option whose absence the help explains); the
    docstrings' ````literal```` markup is dropped."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        default = action.default
        shown = (
            default is not None
            and default is not False
            and default != []
            and default is not argparse.SUPPRESS
            and "default" not in help_text
            and (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))
        )
        return help_text + " (default: %(default)s)" if shown else action.help

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("``", ""))

    def _expand_help(self, action: argparse.Action) -> str:
        return super()._expand_help(action).replace("``", "")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser with ``HelpFormatter``; sub-parsers are made of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rackvae",
        description="Train sequence VAEs on MIDI and play them from a Eurorack module.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
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
