"""``rackvae ingest``: MIDI files and folders → an encoded dataset (.npz). Filled in by issue 3."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ingest", help="encode MIDI files into a dataset (.npz)")
    parser.add_argument("paths", nargs="+")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise SystemExit("ingest: not implemented yet")
