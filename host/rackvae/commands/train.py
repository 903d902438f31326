"""``rackvae train DATA.npz --name NAME -o models/``: train a VAE on an ingested dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rackvae.commands import run_model_command

# Training options and their types; their defaults are TrainSettings' (or, with --resume, the stored run's).
TRAINING_OPTIONS: dict[str, type] = {
    "batch_size": int,
    "epochs": int,
    "learning_rate": float,
    "patience": int,
    "factor": float,
    "min_learning_rate": float,
    "stop_patience": int,
    "min_delta": float,
    "beta": float,
    "seed": int,
    "checkpoint_every": int,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a VAE on a dataset (.npz from rackvae ingest)",
        description="Train a VAE into OUTPUT/NAME/ (model.json, params.msgpack, history.json, checkpoints/).",
    )
    parser.add_argument("data", type=Path, help="dataset written by rackvae ingest")
    parser.add_argument("--name", required=True, help="model name (the folder under OUTPUT)")
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("models"), help="models folder (default models/)"
    )
    model = parser.add_argument_group("model (ignored with --resume)")
    model.add_argument("--latent-dim", type=int, default=3)
    model.add_argument("--hidden-layers", type=int, default=2)
    model.add_argument("--latent-scale", type=float, default=3.0)
    model.add_argument("--layer-spacing", choices=("geometric", "linear"), default="geometric")
    model.add_argument("--hidden-sizes", help="explicit encoder widths, widest first, e.g. 48,12")
    data = parser.add_argument_group("data split (ignored with --resume)")
    data.add_argument(
        "--validation-fraction", type=float, default=0.1, help="share of files held out (default 0.1)"
    )
    data.add_argument("--split-seed", type=int, default=0)
    training = parser.add_argument_group("training (defaults: the original trainer's, or the resumed run's)")
    for name, kind in TRAINING_OPTIONS.items():
        training.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/NAME's latest checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model of that name")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-epoch lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_model_command("train", train_command, args)


def train_command(args: argparse.Namespace) -> int:
    from rackvae import dataset as datasets
    from rackvae.model import ModelConfig
    from rackvae.train import TrainSettings, data_record, load_model, new_model, train

    directory = args.output / args.name
    exists = (directory / "model.json").exists()
    if exists and not (args.resume or args.overwrite):
        raise SystemExit(f"train: {directory} already holds a model (use --resume or --overwrite)")
    if args.resume and not exists:
        raise SystemExit(f"train: {directory}/model.json missing, nothing to resume")
    given: dict[str, Any] = {
        name: getattr(args, name) for name in TRAINING_OPTIONS if getattr(args, name) is not None
    }

    if args.resume:
        model = load_model(directory)
        split = {key: model.data[key] for key in ("validation_fraction", "split_seed")}
        settings = TrainSettings.from_dict({**model.training, **given})
    else:
        hidden = tuple(int(s) for s in args.hidden_sizes.split(",")) if args.hidden_sizes else None
        split = {"validation_fraction": args.validation_fraction, "split_seed": args.split_seed}
        settings = TrainSettings.from_dict(given)
    data = datasets.load(args.data)
    train_set, validation_set = data.split(split["validation_fraction"], split["split_seed"])
    if not args.resume:
        config = ModelConfig(
            ticks=data.ticks,
            rows=data.rows,
            latent_dim=args.latent_dim,
            hidden_layers=args.hidden_layers,
            latent_scale=args.latent_scale,
            layer_spacing=args.layer_spacing,
            hidden_sizes=hidden,
        )
        model = new_model(args.name, config, data, seed=settings.seed)
        model.data = data_record(args.data, train_set, validation_set, **split)
    print(
        f"{args.name}: {len(train_set)} training and {len(validation_set)} validation sequences of"
        f" {data.ticks}x{data.rows}; decoder {'-'.join(map(str, model.config.decoder_sizes()))}"
    )
    train(
        model,
        train_set,
        validation_set,
        settings,
        directory,
        resume=args.resume,
        log=None if args.quiet else print,
    )
    print(f"saved {directory}")
    return 0
