"""``rackvae train DATA.npz --name NAME -o models/``: train a VAE on an ingested dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rackvae.commands import output_problem, run_model_command

# Training options, their types and help; their defaults are TrainSettings' (or, with --resume, the stored
# run's).
TRAINING_OPTIONS: dict[str, tuple[type, str]] = {
    "batch_size": (int, "sequences per optimiser step"),
    "epochs": (int, "most epochs to run"),
    "learning_rate": (float, "Adam's starting learning rate"),
    "patience": (int, "epochs without a better monitored loss before the rate is multiplied by --factor"),
    "factor": (float, "learning-rate factor on a plateau"),
    "min_learning_rate": (float, "stop once the rate would fall below this"),
    "stop_patience": (int, "stop after this many epochs without a better monitored loss"),
    "min_delta": (float, "an improvement must lower the monitored loss by more than this"),
    "beta": (float, "weight of the KL term"),
    "free_bits": (float, "nats of KL per latent dimension (batch mean) that are not penalised"),
    "kl_warmup": (int, "epochs over which the KL weight rises linearly to --beta (0: none)"),
    "weight_decay": (float, "decoupled weight decay (AdamW), per unit of learning rate"),
    "seed": (int, "seed of the initial parameters, batches and sampling noise"),
    "checkpoint_every": (int, "epochs between checkpoints (also written at the end and on Ctrl-C)"),
}
# Below these a validation split cannot tell a model from the constant roll (train warns).
MIN_VALIDATION_FILES = 3
MIN_VALIDATION_BARS = 200
DEFAULT_MAX_DECODER_MACS = 150_000  # about 0.25 ms of int8 decoding on the module's Cortex-M7 at 600 MHz


class SettingsDefault:
    """TrainSettings' default of one field, looked up only when help is printed: rackvae.train imports
    JAX, which would cost every command two seconds at start-up. argparse expands %(name)s in help from
    the action's attributes."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        from rackvae.train import TrainSettings

        return str(getattr(TrainSettings(), self.name))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a VAE on a dataset (.npz from rackvae ingest)",
        description="Train a VAE into OUTPUT/NAME/ (model.json, params.msgpack, history.json, checkpoints/).",
    )
    parser.add_argument("data", type=Path, help="dataset written by rackvae ingest")
    parser.add_argument("--name", required=True, help="model name (the folder under OUTPUT)")
    parser.add_argument("-o", "--output", type=Path, default=Path("models"), help="models folder")
    model = parser.add_argument_group("model (ignored with --resume)")
    model.add_argument("--latent-dim", type=int, default=3, help="dimensions of the latent space")
    model.add_argument(
        "--hidden-layers", type=int, default=2, help="hidden layers of the encoder and decoder"
    )
    model.add_argument(
        "--latent-scale", type=float, default=3.0, help="latent range the module's knobs span (±scale)"
    )
    model.add_argument(
        "--layer-spacing",
        choices=("geometric", "linear"),
        default="geometric",
        help="how hidden widths fall from the input to the latent",
    )
    model.add_argument(
        "--hidden-sizes",
        help="explicit hidden widths in encoder order, widest first, e.g. 320,192,64; the decoder runs them"
        " in reverse (latent-64-192-320-output) (default: by --layer-spacing)",
    )
    model.add_argument(
        "--log-var-bound",
        type=float,
        default=None,
        help="squash the encoder's log-variance into ±this (default: unbounded)",
    )
    model.add_argument(
        "--outputs",
        default="hits",
        help="channels the decoder gives per cell, comma-separated: hits, then velocity and/or offset"
        " (hits,velocity,offset: a groove model, which learns each hit's velocity and timing)",
    )
    model.add_argument(
        "--velocity-weight", type=float, default=1.0, help="groove: weight of the velocity error"
    )
    model.add_argument("--offset-weight", type=float, default=1.0, help="groove: weight of the offset error")
    for channel in ("velocity", "offset"):
        model.add_argument(
            f"--{channel}-error",
            choices=("squared", "absolute"),
            default="squared",
            help=f"groove: the {channel} error in the loss, on the cells whose target hits"
            " (squared: GrooVAE's; absolute: the MAE eval reports) (default: %(default)s)",
        )
    model.add_argument(
        "--max-decoder-macs",
        type=int,
        default=DEFAULT_MAX_DECODER_MACS,
        help="refuse a decoder with more multiply-accumulates per decode",
    )
    data = parser.add_argument_group("data split (ignored with --resume)")
    data.add_argument("--validation-fraction", type=float, default=0.1, help="share of files held out")
    data.add_argument("--split-seed", type=int, default=0, help="seed of the split by file")
    training = parser.add_argument_group("training (defaults: the original trainer's, or the resumed run's)")
    for name, (kind, text) in TRAINING_OPTIONS.items():
        option = training.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=None,
            help=text + " (default: %(settings_default)s)",
        )
        option.settings_default = SettingsDefault(name)  # type: ignore[attr-defined]
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
    problem = output_problem(directory, folder=True)
    if problem:  # before the data is loaded and an epoch trained, not at the first checkpoint
        raise SystemExit(f"train: {directory}: {problem}")
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
    problem = datasets.core_limit_problem(data.ticks, data.rows, len(data.layout.group_sizes))
    if problem:
        raise SystemExit(f"train: {args.data}: {problem}")
    train_set, validation_set = data.split(split["validation_fraction"], split["split_seed"])
    files = len(np.unique(validation_set.file_index))
    bars = len(validation_set) * int(data.settings.get("bars_per_sequence", 1))
    if files < MIN_VALIDATION_FILES or bars < MIN_VALIDATION_BARS:
        print(
            f"train: warning: the validation split ({files} files, {bars} bars) is too small to judge the"
            f" model (under {MIN_VALIDATION_FILES} files or {MIN_VALIDATION_BARS} bars): add data or"
            " raise --validation-fraction",
            file=sys.stderr,
        )
    if not args.resume:
        outputs = tuple(name.strip() for name in args.outputs.split(","))
        if "offset" in outputs and data.offsets is None:
            raise SystemExit(
                f"train: {args.data} holds no offsets (ingested before ingest kept them): ingest again"
            )
        try:
            config = ModelConfig(
                ticks=data.ticks,
                rows=data.rows,
                latent_dim=args.latent_dim,
                hidden_layers=args.hidden_layers,
                latent_scale=args.latent_scale,
                layer_spacing=args.layer_spacing,
                hidden_sizes=hidden,
                log_var_bound=args.log_var_bound,
                outputs=outputs,
                velocity_weight=args.velocity_weight,
                offset_weight=args.offset_weight,
                velocity_error=args.velocity_error,
                offset_error=args.offset_error,
            )
        except ValueError as error:
            raise SystemExit(f"train: --outputs/--velocity-weight/--offset-weight: {error}") from error
        fitted = config.within_macs(args.max_decoder_macs)
        if fitted is not config:
            print(
                f"train: the default hidden sizes {','.join(map(str, config.encoder_sizes()))} need"
                f" {config.decoder_macs():,} decoder MACs, more than --max-decoder-macs"
                f" {args.max_decoder_macs:,}: narrowed to {','.join(map(str, fitted.encoder_sizes()))}"
            )
            config = fitted
        if config.decoder_macs() > args.max_decoder_macs:
            # The way out: the output layer alone costs the widest hidden width x the outputs.
            widest = args.max_decoder_macs // config.output_size
            raise SystemExit(
                f"train: decoder {'-'.join(map(str, config.decoder_sizes()))} needs {config.decoder_macs():,}"
                f" MACs per decode, more than --max-decoder-macs {args.max_decoder_macs:,}: narrow it with"
                f" --hidden-sizes (the output layer alone costs {config.output_size:,} MACs per unit of the"
                f" first width: {widest:,} units take the whole budget) or raise --max-decoder-macs"
            )
        model = new_model(args.name, config, data, seed=settings.seed)
        model.data = data_record(args.data, train_set, validation_set, **split)
    print(
        f"{args.name}: {len(train_set)} training and {len(validation_set)} validation sequences of"
        f" {data.ticks}x{data.rows}; decoder {'-'.join(map(str, model.config.decoder_sizes()))}"
        f" ({model.config.decoder_macs():,} MACs per decode)"
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
    held_out, name = (validation_set, "validation") if len(validation_set) else (train_set, "training")
    print(calibration_line(model, held_out.rolls, model.inputs(held_out), name))
    if len(validation_set):
        warn_if_constant_roll_wins(model, validation_set.rolls, model.inputs(validation_set))
    return 0


def calibration_line(model: Any, rolls: np.ndarray, inputs: np.ndarray, split: str) -> str:
    """The model's thresholds (chosen on ``rolls``, the held-out split) and its F1 and step accuracy
    there beside 0.5's. ``inputs``: what the model encodes."""
    from rackvae.evaluate import reconstruction_metrics

    probs = model.reconstruct(inputs)
    at_model = reconstruction_metrics(rolls, probs, model.cell_thresholds())
    at_half = reconstruction_metrics(rolls, probs)
    groups = model.thresholds.group_thresholds
    return (
        f"threshold {model.thresholds.threshold:.3f}"
        + (f" (per group {' '.join(f'{t:.3f}' for t in groups)})" if groups else "")
        + f": {split} notes per bar as the data's, F1 {at_model['note_f1']:.3f}, step accuracy"
        f" {at_model['step_accuracy']:.3f} (at 0.5: {at_half['note_f1']:.3f}, {at_half['step_accuracy']:.3f})"
    )


def warn_if_constant_roll_wins(model: Any, rolls: np.ndarray, inputs: np.ndarray) -> None:
    """Warn when the best model gets no more cells right on validation than the constant roll (the
    best guess that ignores its input): it has learned nothing. ``inputs``: what the model encodes."""
    from rackvae.evaluate import reconstruction_metrics

    baseline = np.broadcast_to(np.asarray(model.data["constant_roll"], np.float32), rolls.shape)
    learned = reconstruction_metrics(rolls, model.reconstruct(inputs))["element_accuracy"]
    constant = reconstruction_metrics(rolls, baseline)["element_accuracy"]
    if learned <= constant:
        print(
            f"train: warning: the best model does not beat the constant roll on validation (element"
            f" accuracy {learned:.3f} vs {constant:.3f}): train longer or on more data",
            file=sys.stderr,
        )
