"""The ``rackvae`` command as its users meet it: --version, help that explains every option and its
default, unreadable files named with their reason, limits of the C core refused at ingest and train,
and train's warnings about a split too small to judge and a model that learned nothing."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import rackvae
from rackvae import dataset as datasets
from rackvae.cli import COMMANDS, build_parser, main

SESSION = Path("groove") / "drummer1" / "session1"


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"rackvae {importlib.metadata.version('rackvae')}\n"
    assert importlib.metadata.version("rackvae") == rackvae.__version__


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_says_what_it_does_and_its_default(command: str) -> None:
    parser = subparsers()[command]
    formatter = parser._get_formatter()
    # One of a required group must be given: such an option has no "without it" to explain.
    chosen = {
        id(a) for group in parser._mutually_exclusive_groups if group.required for a in group._group_actions
    }
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{command} {name}: no help text"
        text = formatter._expand_help(action)
        flag = action.nargs == 0  # store_true and the like: on or off, nothing to show
        if action.default not in (None, False, []) and not flag:
            assert "default" in text, f"{command} {name}: {text!r}"
        elif action.option_strings and not flag and not action.required and id(action) not in chosen:
            # No value by default: the help says what happens without the option.
            assert "default" in text or "omit" in text, f"{command} {name}: {text!r}"
    help_text = parser.format_help()
    assert "`" not in help_text, f"{command} --help shows markup"


def test_training_defaults_are_shown_without_importing_jax_for_other_commands() -> None:
    text = subparsers()["train"].format_help()
    assert "sequences per optimiser step (default: 32)" in text
    assert "Adam's starting learning rate (default: 0.005)" in text
    # The formatter appends a default the help does not mention.
    ingest = " ".join(subparsers()["ingest"].format_help().split())
    assert "grid steps per quarter note: 4 → 16ths, 12 → 16th triplets (default: 4)" in ingest


def test_eight_bars_are_refused_at_ingest_naming_the_limit(
    corpora: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sorted((corpora / SESSION).glob("*.mid"))[0]
    out = tmp_path / "eight.npz"
    argv = ["ingest", str(first), "--percussion-map", "extended", "--bars-per-sequence", "8", "-o", str(out)]
    assert main(argv) == 2
    assert "128 steps per sequence exceed the C core's limit RV_MAX_TICKS = 64" in capsys.readouterr().err
    assert not out.exists()


def test_a_dataset_beyond_the_limits_is_refused_at_train(tmp_path: Path) -> None:
    # 8 bars of 16ths, as an older rackvae or the Python API could write them.
    rolls = np.zeros((4, 128, 12), np.uint8)
    rolls[:, ::4, 0] = 1
    layout = datasets.RollLayout(kind="perc", rows=12, group_sizes=(1, 1, 6, 2, 2))
    data = datasets.Dataset(
        rolls=rolls,
        velocities=rolls * 100,
        layout=layout,
        files=["a.mid"],
        file_index=np.zeros(4, np.int32),
        track=np.zeros(4, np.int32),
        bar=np.arange(4, dtype=np.int32) * 8,
    )
    data.save(tmp_path / "long.npz")
    with pytest.raises(SystemExit) as exited:
        main(["train", str(tmp_path / "long.npz"), "--name", "x", "-o", str(tmp_path / "models")])
    assert str(exited.value).endswith(
        "128 steps per sequence exceed the C core's limit RV_MAX_TICKS = 64 (core/include/rv_limits.h)"
    )
    assert not (tmp_path / "models" / "x").exists()


@pytest.fixture(scope="module")
def untrained(corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """An untrained model (0 epochs) on eight groove files, half of them held out: (dataset, model
    folder, what train wrote to stderr)."""
    folder = tmp_path_factory.mktemp("cli")
    files = [str(p) for p in sorted((corpora / SESSION).glob("*.mid"))[:8]]
    ingest = ["ingest", *files, "--percussion-map", "extended", "--quiet", "--jobs", "1"]
    assert main([*ingest, "-o", str(folder / "g.npz")]) == 0
    train = ["train", str(folder / "g.npz"), "--name", "g", "-o", str(folder / "models"), "-q"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main([*train, "--epochs", "0", "--validation-fraction", "0.5"]) == 0
    return folder / "g.npz", folder / "models" / "g", err.getvalue()


def test_train_warns_of_a_small_validation_split_and_of_a_model_that_learned_nothing(
    untrained: tuple[Path, Path, str],
) -> None:
    data_path, _, err = untrained
    _, validation = datasets.load(data_path).split(0.5, 0)
    files, bars = len(np.unique(validation.file_index)), len(validation)
    assert 0 < bars < 200
    assert f"train: warning: the validation split ({files} files, {bars} bars) is too small to judge" in err
    warning = re.search(
        r"does not beat the constant roll on validation \(element accuracy ([\d.]+) vs ([\d.]+)\)", err
    )
    assert warning, err
    # Untrained outputs sit near 0.5: about half the cells wrong, where the constant roll (sparse
    # drums: mostly off) gets about 9 in 10 right.
    assert float(warning[1]) < 0.7 < float(warning[2])


def test_eval_lists_each_unreadable_midi_file_with_its_reason(
    untrained: tuple[Path, Path, str], corpora: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, model, _ = untrained
    good = sorted((corpora / SESSION).glob("*.mid"))[8]
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00")
    missing = tmp_path / "missing.mid"
    assert main(["eval", str(model), str(good), str(broken), str(missing), "--json"]) == 0
    captured = capsys.readouterr()
    assert f"eval: skipped {broken}: truncated header (5 bytes)" in captured.err
    assert f"eval: skipped {missing}: no such file or folder" in captured.err
    # The readable file was measured.
    assert json.loads(captured.out)["splits"]["data"]["sequences"] > 0
    with pytest.raises(SystemExit, match=r"^eval: no sequences to evaluate in DATA$"):
        main(["eval", str(model), str(broken)])


def test_eval_encodes_midi_of_a_pitched_model_onto_the_models_rows(corpora: Path, tmp_path: Path) -> None:
    """MIDI given to eval becomes exactly the rolls ingest made of it for training: pitched rows cut to
    the model's range, not trimmed again to the pitches of the files given."""
    from rackvae.commands.eval import load_rolls

    files = sorted((corpora / "mutopia-guitar").glob("*.mid"))[:3]
    assert main(["ingest", *map(str, files), "--quiet", "--jobs", "1", "-o", str(tmp_path / "p.npz")]) == 0
    data = datasets.load(tmp_path / "p.npz")
    counts = np.bincount(data.file_index, minlength=len(data.files))
    assert counts.max() > 0 and counts.min() == 0  # files with and without 4/4 bars
    for index, name in enumerate(data.files):
        if counts[index] == 0:
            with pytest.raises(SystemExit, match="no sequences to evaluate"):
                load_rolls([Path(name)], data.settings, data.layout)
            continue
        rolls = load_rolls([Path(name)], data.settings, data.layout)
        assert rolls.shape[1:] == (data.ticks, data.rows)
        assert np.array_equal(rolls, data.rolls[data.file_index == index]), name


def test_simulate_builds_in_the_users_cache_and_names_a_missing_cmake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rackvae import simulate

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = simulate.default_build_root()
    assert root.parent == tmp_path / "cache" / "rackvae"
    assert root.name.startswith(f"firmware-{rackvae.__version__}-")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored, as the XDG spec says
    assert simulate.default_build_root().parent == Path.home() / ".cache" / "rackvae"
    monkeypatch.setenv("PATH", str(tmp_path))  # no cmake here
    with pytest.raises(simulate.SimulateError, match="needs cmake and a C compiler: cmake is not on PATH"):
        simulate.build_firmware("host", tmp_path / "build")
    assert not (tmp_path / "build").exists()
