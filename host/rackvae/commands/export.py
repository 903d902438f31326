"""``rackvae export models/NAME``: the decoder as the files a module loads, and a model card.

Writes (atomically, into the model folder or ``-o DIR``) ``NAME_dec.tflite`` (float32),
``NAME_dec_f16.tflite`` (float16 weights), ``NAME_dec_int8.tflite`` (int8 in and out), ``NAME_dec.h``
/ ``NAME_dec.c`` (C arrays of the ``--c-variant`` file), ``NAME_dec_selftest.c`` (their self-test on the
target, rackvae.export.selftest) and ``NAME.yml``; with ``--formats tflite-c`` also ``NAME_dec_tflite.h/.cc``
(the ``--c-variant`` .tflite as a C++ array for TFLite-Micro). int8 is calibrated on the
encoder means of the model's training split plus a grid over the ±scale cube. Every .tflite file
is run in LiteRT on random latents before anything is written; one that does not compute the
decoder stops the export (``rackvae.export.tflite.check_against_decoder``).

A groove model (``rackvae train --outputs hits,velocity,offset``) exports the same way: every file
holds all its channels (docs/groove_format.md: one LOGISTIC over the channel-major vector, metadata
version 3); for int8 the card also gives velocity and offset against float32 on the knob grid.

TensorFlow, absl and CUDA write their log lines to file descriptor 2 from native code; without
``--verbose`` those go to a temporary file, shown only when the export fails unexpectedly. Without the
export extra (the converter and the reference interpreters) the command says so in one line.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from rackvae.commands import output_problem

# --formats name -> (tflite variant, file suffix)
TFLITE_FORMATS = {
    "f32": ("float32", "_dec.tflite"),
    "f16": ("float16", "_dec_f16.tflite"),
    "int8": ("int8", "_dec_int8.tflite"),
}
FORMATS = (*TFLITE_FORMATS, "c", "tflite-c")
DEFAULT_FORMATS = (*TFLITE_FORMATS, "c")  # tflite-c (the .tflite as a C++ array) only when asked
CHECK_LATENTS = 1000
# The export extra's modules (pyproject.toml [export]): the converter and the reference interpreters.
EXPORT_EXTRA_MODULES = frozenset({"tensorflow", "ai_edge_litert", "tflite_micro"})
MISSING_EXTRA = "rackvae export: needs the export extra: pip install 'rackvae[export]'"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the decoder as .tflite (f32, f16, int8) and C arrays, with a model card",
        description=__doc__,
    )
    parser.add_argument("model", type=Path, help="model folder written by rackvae train")
    parser.add_argument(
        "--formats",
        default=",".join(DEFAULT_FORMATS),
        help=f"comma-separated subset of {','.join(FORMATS)} (default {','.join(DEFAULT_FORMATS)})",
    )
    parser.add_argument("-o", "--output", type=Path, help="output folder (default: the model folder)")
    parser.add_argument(
        "--dataset",
        type=Path,
        help="calibrate int8 on this .npz (default: the dataset the model was trained on)",
    )
    parser.add_argument(
        "--c-variant",
        choices=tuple(TFLITE_FORMATS),
        default="f32",
        help="which .tflite variant the C arrays (and tflite-c) hold (default f32)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="let TensorFlow's, absl's and CUDA's log lines through to the terminal (default: hidden)",
    )
    parser.set_defaults(func=run)


def parse_formats(text: str) -> list[str]:
    formats = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise SystemExit(f"export: unknown formats {unknown or text!r}; choose from {','.join(FORMATS)}")
    return formats


def training_means(model: Any, dataset_path: Path | None) -> tuple[np.ndarray | None, str]:
    """Encoder means of the training split (the model's own split of ``dataset_path``)."""
    from rackvae import dataset as datasets

    if dataset_path is None:
        source = model.data.get("path")
        if not source or not Path(source).exists():
            return None, f"no dataset ({source!r} not found): cube only"
        dataset_path = Path(source)
    data = datasets.load(dataset_path)
    if (data.ticks, data.rows) != (model.config.ticks, model.config.rows):
        raise SystemExit(
            f"export: {dataset_path} rolls are {data.ticks}x{data.rows}, the model expects"
            f" {model.config.ticks}x{model.config.rows}"
        )
    train_set, _ = data.split(model.data.get("validation_fraction", 0.0), model.data.get("split_seed", 0))
    return model.encode(model.inputs(train_set))[0], str(dataset_path)


def export_model(
    model: Any,
    output: Path,
    formats: list[str],
    dataset_path: Path | None = None,
    c_variant: str = "f32",
) -> list[Path]:
    """Convert, check and write the requested files and the card; returns the paths written.

    The C arrays are made from the checked .tflite bytes of ``c_variant`` (converted even when that
    .tflite file itself is not requested), so both decode to the same bits in the C core.
    """
    from rackvae.atomic import atomic_write_bytes
    from rackvae.export import quantfit, tflite
    from rackvae.export.card import model_card, write_model_card
    from rackvae.export.metadata import XenMetadata
    from rackvae.model import decode_layers

    config = model.config
    metadata = XenMetadata.from_layout(
        model.layout, config.ticks, config.latent_scale, config.latent_dim, model.thresholds, config.outputs
    )
    layers = model.decoder_layers()
    scale = metadata.latent_scale
    latents = np.random.default_rng(0).uniform(-scale, scale, (CHECK_LATENTS, config.latent_dim))
    latents = latents.astype(np.float32)
    export: dict[str, Any] = {
        "files": {},
        # the files' thresholds (metadata): the model's, or the default for a model.json without them
        "thresholds": "model.json" if model.thresholds is not None else f"default {metadata.threshold}",
    }
    contents: dict[Path, bytes] = {}
    as_c = "c" in formats or "tflite-c" in formats
    needed = [name for name in TFLITE_FORMATS if name in formats or (as_c and name == c_variant)]
    converted: dict[str, bytes] = {}
    for name in needed:
        variant, suffix = TFLITE_FORMATS[name]
        representative = None
        weights = layers
        if variant == "int8":
            means, source = training_means(model, dataset_path)
            representative = tflite.representative_latents(config.latent_dim, scale, means)
            export["calibration"] = {
                "latents": len(representative),
                "encoder_means": 0 if means is None else min(len(means), tflite.CALIBRATION_MAX_MEANS),
                "source": source,
            }
            weights = int8_weights(layers, representative, metadata)
        data = converted[name] = tflite.tflite_bytes(weights, metadata, variant, representative, model.name)
        errors = tflite.check_against_decoder(data, variant, layers, latents)
        if variant == "int8":
            grid = quantfit.knob_grid(scale, config.latent_dim)
            grid_errors = quantfit.grid_errors(
                decode_layers(layers, grid), data, grid, np.array(metadata.row_thresholds())
            )
            errors.update(grid_errors)
            flips = grid_errors["note_flips_vs_float32"]
            print(f"int8: {flips:.3%} of the {len(grid)}-point knob grid's cells play unlike float32")
            for channel, unit in (("velocity", ""), ("offset", " step")):
                if channel in metadata.channel_names:
                    print(
                        f"int8: {channel} vs float32 on the knob grid's notes: max"
                        f" {grid_errors[f'{channel}_max_abs_error_on_notes']:.3g}{unit}, mean"
                        f" {grid_errors[f'{channel}_mean_abs_error_on_notes']:.3g}{unit}"
                    )
        errors.update(tflite.check_c_core(data, variant, latents, f"{model.name}{suffix}"))
        print(
            f"{variant}: max abs error vs JAX {errors['max_abs_error_vs_jax']:.2e} in LiteRT;"
            f" C core vs {errors['c_core_reference']} {errors['c_core_max_abs_error']:.2e}"
            f" on {CHECK_LATENTS} latents"
        )
        if name not in formats:
            continue
        path = output / f"{model.name}{suffix}"
        contents[path] = data
        export["files"][path.name] = {
            "variant": variant,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "ops": tflite.operator_names(data),
            "check_latents": CHECK_LATENTS,
            **errors,
        }
    c_files: dict[str, bytes] = {}
    variant = TFLITE_FORMATS[c_variant][0]
    if "c" in formats:
        from rackvae.export import carray, selftest

        c_files.update(carray.c_files_from_tflite(converted[c_variant], model.name))
        c_files.update(selftest.selftest_files(converted[c_variant], variant, model.name))
    if "tflite-c" in formats:
        from rackvae.export import tflite_c

        c_files.update(tflite_c.tflite_c_files(converted[c_variant], model.name))
    for file_name, data in c_files.items():
        contents[output / file_name] = data
        export["files"][file_name] = {
            "variant": variant,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    for path, data in contents.items():
        atomic_write_bytes(path, data)
        print(f"wrote {path} ({len(data)} bytes)")
    card_path = output / f"{model.name}.yml"
    write_model_card(card_path, model_card(model, metadata, export))
    print(f"wrote {card_path} (model card)")
    return [*contents, card_path]


def int8_weights(layers: Any, representative: np.ndarray, metadata: Any) -> Any:
    """The decoder's weights fitted for int8 (rackvae.export.quantfit) on the calibration latents and
    FIT_RANDOM_LATENTS random ones over the knob cube, at the thresholds the file carries."""
    from rackvae.export import quantfit, tflite

    scale, dim = metadata.latent_scale, metadata.latent_dim
    cube = np.random.default_rng(1).uniform(-scale, scale, (quantfit.FIT_RANDOM_LATENTS, dim))
    fit = np.concatenate([representative, cube.astype(np.float32)])
    thresholds = np.array(metadata.row_thresholds())
    return quantfit.fitted_int8_layers(
        layers,
        lambda weights: tflite.convert_decoder(weights, "int8", representative),
        fit,
        thresholds,
        metadata.channels,
    )


def run(args: argparse.Namespace) -> int:
    from rackvae.dataset import DatasetError
    from rackvae.export.metadata import MetadataError
    from rackvae.train import ModelError, load_model

    formats = parse_formats(args.formats)
    problem = output_problem(args.output, folder=True) if args.output is not None else ""
    if problem:  # before the conversions and checks, not after them
        raise SystemExit(f"export: -o {args.output}: {problem}")
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported
    with native_log_hidden(not args.verbose):
        try:
            from rackvae.export.tflite import ExportError

            model = load_model(args.model)
            export_model(model, args.output or args.model, formats, args.dataset, args.c_variant)
        except ModuleNotFoundError as error:
            missing_extra(error)
        except (ModelError, DatasetError, MetadataError, ExportError, OSError) as error:
            raise SystemExit(f"export: {error}") from error
    return 0


def missing_extra(error: ModuleNotFoundError) -> NoReturn:
    """One line naming the extra when ``error`` is a module of the export extra; else ``error``."""
    if (error.name or "").split(".")[0] in EXPORT_EXTRA_MODULES:
        raise SystemExit(MISSING_EXTRA) from error
    raise error


@contextmanager
def native_log_hidden(hide: bool) -> Iterator[None]:
    """File descriptor 2 (where native libraries log) into a temporary file while the block runs;
    written to the terminal after all if the block fails with anything but a one-line exit."""
    if not hide:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except SystemExit:
            raise
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
