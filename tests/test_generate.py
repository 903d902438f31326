"""Music from tiny real models: sample, interpolate, encode, decode and map from Python and the CLI play
what the module plays, and their MIDI files ingest back into the same rolls."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from rackvae import core
from rackvae.cli import main
from rackvae.codec import encode_song
from rackvae.export.metadata import XenMetadata, locate_xen_metadata, read_xen_metadata
from rackvae.export.tflite import tflite_bytes
from rackvae.generate import GenerateError, Model, StaleExportWarning, interpolation, load
from rackvae.midi import read
from rackvae.model import random_decoder_layers

SESSION = Path("groove") / "drummer1" / "session1"
AFROBEAT = Path("groove") / "drummer1" / "session3" / "11_afrobeat_94_beat_4-4.mid"
JAZZ = Path("groove") / "drummer1" / "session1" / "47_jazz_102_beat_4-4.mid"
LATENTS = 1000


def rolls_of_notes(sequence: list[list[core.Note]], rows: int) -> np.ndarray:
    roll = np.zeros((len(sequence), rows), np.uint8)
    for tick, notes in enumerate(sequence):
        roll[tick, [note.row for note in notes]] = 1
    return roll


@pytest.fixture(scope="module")
def drums(corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16 x 12 Extended-map model of one Groove session (about 2,000 bars), 3 epochs, exported f32."""
    root = tmp_path_factory.mktemp("generate_drums")
    data = str(root / "drums.npz")
    assert main(["ingest", str(corpora / SESSION), "--percussion-map", "extended", "-o", data]) == 0
    assert main(["train", data, "--name", "drums", "-o", str(root), "--epochs", "3", "-q"]) == 0
    assert main(["export", str(root / "drums"), "--formats", "f32"]) == 0
    return root / "drums"


@pytest.fixture(scope="module")
def guitar(corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pitched model of the Mutopia guitar pieces' 4/4 bars (octave-normalised, trimmed), 3 epochs."""
    root = tmp_path_factory.mktemp("generate_guitar")
    data = str(root / "guitar.npz")
    assert main(["ingest", str(corpora / "mutopia-guitar"), "-o", data]) == 0
    assert main(["train", data, "--name", "guitar", "-o", str(root), "--epochs", "3", "-q"]) == 0
    return root / "guitar"


def test_default_engine_is_the_exported_file_else_jax(drums: Path, guitar: Path) -> None:
    assert load(drums).engine == "c" and load(drums).decoder.source.endswith("drums_dec.tflite")
    assert load(guitar).engine == "jax"
    exported = load(drums / "drums_dec.tflite")
    assert exported.engine == "c" and exported.trained is None
    # The .tflite's v2 metadata carries the map's General MIDI notes and the model's threshold.
    assert (
        exported.layout.row_notes
        == load(drums).layout.row_notes
        == (36, 38, 41, 43, 45, 47, 48, 50, 42, 46, 51, 49)
    )
    assert exported.threshold == load(drums).threshold == load(drums, "jax").threshold
    thresholds = json.loads((drums / "model.json").read_text())["thresholds"]
    assert abs(exported.threshold - thresholds["threshold"]) <= 0.5 / 255


def test_sample_density_is_the_models_own_generation_statistics(drums: Path) -> None:
    """Notes per step per row of prior samples as ``rackvae eval`` reports them (at the model's own
    thresholds, per percussion group), against ``sample`` at its default threshold (the model's, as
    the exported byte) with room for every note (8 per step)."""
    assert main(["eval", str(drums), "--prior-samples", "4000", "--seed", "7"]) == 0
    reported = json.loads((drums / "model.json").read_text())["metrics"]["generation"]
    model = load(drums, "jax")
    rolls = model.sample(4000, seed=3, max_notes=8).rolls
    per_bar = rolls.mean(axis=(1, 2))
    standard_error = per_bar.std() / np.sqrt(len(per_bar)) * np.sqrt(2)  # two independent estimates
    assert 0.01 < reported["prior_density"] < 0.5
    assert abs(per_bar.mean() - reported["prior_density"]) < 4 * standard_error, (
        per_bar.mean(),
        reported["prior_density"],
        standard_error,
    )
    rows = np.array(reported["row_density"]["prior"])
    assert np.abs(rolls.mean(axis=(0, 1)) - rows).max() < 0.02


def test_sample_keeps_latents_inside_the_knobs_and_the_temperature_spreads_them(drums: Path) -> None:
    model = load(drums)
    wide = model.sample(400, temperature=3.0).latents
    assert np.abs(wide).max() == model.latent_scale  # clipped at the knobs' end
    tame = model.sample(400, temperature=0.3).latents
    assert 0.25 < tame.std() < 0.35 and 2.0 < wide.std() < model.latent_scale


def test_interpolation_endpoints_are_the_encoder_mean_decodes(
    drums: Path, corpora: Path, tmp_path: Path
) -> None:
    model = load(drums)
    afrobeat, jazz = model.read_midi(corpora / AFROBEAT), model.read_midi(corpora / JAZZ)
    start, end = (
        afrobeat.roll_at(int(afrobeat.bars[2]), "--bar-a"),
        jazz.roll_at(int(jazz.bars[2]), "--bar-b"),
    )
    means = model.encode(np.stack([start, end])).mean
    expected = model.decode(means).rolls
    assert not np.array_equal(expected[0], expected[1])
    for slerp in (False, True):
        morph = model.interpolate(start, end, 6, slerp=slerp)
        assert np.array_equal(morph.latents[[0, -1]], means)
        assert np.array_equal(morph.rolls[[0, -1]], expected)
    # The command writes the same morph as one MIDI file of consecutive bars.
    args = ["interpolate", str(drums), str(corpora / AFROBEAT), str(corpora / JAZZ), "--steps", "6"]
    bars = ["--bar-a", str(afrobeat.bars[2]), "--bar-b", str(jazz.bars[2])]
    assert main([*args, *bars, "-o", str(tmp_path)]) == 0
    written = model.read_midi(tmp_path / "interpolate.mid")
    played = model.interpolate(start, end, 6).rolls
    keep = played.sum(axis=(1, 2)) >= 2  # ingest keeps bars of at least two notes
    assert np.array_equal(written.rolls, played[keep])
    assert (tmp_path / "interpolate.png").read_bytes()[:4] == b"\x89PNG"


def test_straight_and_spherical_interpolation() -> None:
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    straight = interpolation(a, b, 3)
    assert np.allclose(straight[1], [0.5, 1.0, 0.0])
    arc = interpolation(a, b, 3, slerp=True)
    assert np.allclose(arc[1], [np.sqrt(0.5), np.sqrt(2.0), 0.0])  # halfway along the great circle


def test_encoded_knob_volts_play_the_same_notes_on_the_module_engine(drums: Path, corpora: Path) -> None:
    """encode -> knob volts -> the C engine at those controls (rv_latent_from_controls, CV 0 V) -> the notes
    ``decode`` gives at the encoded latent."""
    model = load(drums)
    found = model.read_midi(corpora / JAZZ)
    encoding = model.encode(found.rolls)
    knobs = model.knobs_for(encoding.mean)
    assert np.all(np.abs(knobs) <= 5.0)
    decoded = model.decode(encoding.mean).rolls
    for index, volts in enumerate(knobs):
        latent = [core.latent_from_controls(float(v), 0.0, model.latent_scale) for v in volts]
        assert np.allclose(latent, encoding.mean[index], atol=2e-6)
        engine = model.decoder.engine()  # the module's sequencer, at the model's threshold
        engine.run_inference(np.array(latent, np.float32))
        played = [engine.clock() for _ in range(model.ticks)]  # one bar of clock edges
        assert [step[0] for step in played if step is not None] == list(range(model.ticks))
        notes = [step[1] for step in played if step is not None]
        assert np.array_equal(rolls_of_notes(notes, model.rows), decoded[index])
    assert decoded.sum() > 0
    # The command reports the same bars, latents and volts.
    result = encode_json(drums, corpora / JAZZ)
    assert [r["bar"] for r in result] == found.bars.tolist()
    assert np.allclose([r["knob_volts"] for r in result], knobs, atol=1e-5)
    assert np.allclose([r["sigma"] for r in result], encoding.sigma, atol=1e-5)
    assert all(r["in_knob_range"] for r in result)


def encode_json(model: Path, *files: Path) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["encode", str(model), *map(str, files), "--json"]) == 0
    return json.loads(out.getvalue())


def test_encode_flags_bars_outside_the_knob_range(drums: Path, corpora: Path) -> None:
    model = load(drums)
    scale = model.latent_scale
    assert np.allclose(model.knobs_for(np.array([[scale, -scale / 2, 0.0]])), [[5.0, -2.5, 0.0]])
    # A latent beyond the knobs (as an encoder of a wider scale gives) maps beyond 5 V and cannot be set.
    assert model.knobs_for(np.array([scale * 1.2, 0, 0]))[0, 0] == pytest.approx(6.0)
    with pytest.raises(GenerateError, match=r"knobs: 6 V is outside"):
        model.latents_for_knobs(np.array([6.0, 0.0, 0.0]))


def test_encode_table_flags_bars_outside_the_knob_range() -> None:
    from rackvae.commands.encode import format_records

    inside = {"file": "a.mid", "bar": 3, "track": 0, "mean": [0.1], "sigma": [0.2], "knob_volts": [0.17]}
    outside = {**inside, "bar": 4, "mean": [3.3], "knob_volts": [5.5], "in_knob_range": False}
    table = format_records([{**inside, "in_knob_range": True}, outside], "table").splitlines()
    assert "OUTSIDE" not in table[2] and table[3].endswith("+5.50  OUTSIDE the knobs' range")
    assert table[-1] == "2 bars, 1 outside the knobs' range"


def ingest_back(model: Model, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The file ingested as ``rackvae ingest`` does with the model's settings: (rolls in the model's
    rows, first bar of each)."""
    assert model.encoding is not None
    encoded = encode_song(read(path), model.encoding)
    rolls = encoded.rolls
    if model.layout.kind == "note":
        low = model.layout.base_note
        assert not rolls[:, :, :low].any() and not rolls[:, :, low + model.rows :].any()
        rolls = rolls[:, :, low : low + model.rows]
    return rolls, encoded.bar


def test_percussion_midi_round_trip(drums: Path, tmp_path: Path) -> None:
    model = load(drums)
    rolls = model.sample(64, seed=5, threshold=0.2).rolls
    path = model.to_midi(rolls, tmp_path / "drums.mid", bpm=97)
    song = read(path)
    notes = song.notes
    assert set(np.unique(notes["channel"])) == {9}  # channel 10
    assert set(np.unique(notes["pitch"])) <= set(model.layout.row_notes)
    assert (notes["pitch"] == 36).any() and (notes["pitch"] == 42).any()  # kick, closed hi-hat: GM notes
    assert song.tempos[0, 1] == round(60_000_000 / 97)
    assert tuple(song.time_signatures[0, 1:]) == (4, 4)
    back, bars = ingest_back(model, path)
    kept = np.flatnonzero(rolls.sum(axis=(1, 2)) >= 2)  # ingest drops bars with fewer than two notes
    assert len(kept) > 50
    assert bars.tolist() == kept.tolist() and np.array_equal(back, rolls[kept])


def test_pitched_midi_round_trip(guitar: Path, tmp_path: Path) -> None:
    """Pitched rows play base_note + row on channel 1. The model's encoding moves each bar's lowest note
    into octave 0 (as it was trained): bars already there come back unchanged, the others transposed
    down by whole octaves."""
    model = load(guitar)
    assert model.layout.kind == "note" and model.rows > 12
    rolls = model.sample(64, seed=2, max_notes=3, threshold=0.15).rolls
    path = model.to_midi(rolls, tmp_path / "guitar.mid")
    song = read(path)
    assert set(np.unique(song.notes["channel"])) == {0}
    first = np.argmax(rolls.reshape(64, -1).any(axis=1))
    lowest = np.flatnonzero(rolls[first].any(axis=0))[0]
    assert song.notes["pitch"].min() <= model.layout.base_note + lowest
    back, bars = ingest_back(model, path)
    kept = np.flatnonzero(rolls.sum(axis=(1, 2)) >= 2)
    assert len(kept) > 30 and bars.tolist() == kept.tolist()
    unchanged = 0
    for roll, again in zip(rolls[kept], back, strict=True):
        low_note = model.layout.base_note + np.flatnonzero(roll.any(axis=0))[0]
        shift = low_note // 12 * 12
        assert np.array_equal(again, np.roll(roll, -shift, axis=1))
        unchanged += shift == 0
    assert unchanged > 0


def test_c_core_and_jax_agree_at_the_model_threshold(drums: Path) -> None:
    c, jax = load(drums, "c"), load(drums, "jax")
    latents = np.random.default_rng(11).uniform(-c.latent_scale, c.latent_scale, (LATENTS, c.latent_dim))
    p_c, p_jax = c.probabilities(latents), jax.probabilities(latents)
    assert np.abs(p_c - p_jax).max() < 1e-5
    meta = c.decoder.metadata
    thresholds = np.array([meta.threshold, *meta.group_thresholds], np.float32)
    near = (np.abs(p_c[..., None] - thresholds) < 1e-5).any(axis=(1, 2, 3))
    assert near.sum() <= 10  # a cell this close to a threshold may fall either way
    rolls_c = c.decode(latents, max_notes=8).rolls
    rolls_jax = jax.decode(latents, max_notes=8).rolls
    assert np.array_equal(rolls_c[~near], rolls_jax[~near])
    assert 0.02 < rolls_c.mean() < 0.5


def test_commands_write_midi_and_pictures(drums: Path, tmp_path: Path) -> None:
    assert main(["sample", str(drums), "-n", "3", "--seed", "4", "-o", str(tmp_path / "s")]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "sample.png",
        "sample_01.mid",
        "sample_02.mid",
        "sample_03.mid",
    ]
    assert (
        main(["map", str(drums), "--points", "3", "--axes", "2,0", "--join", "-o", str(tmp_path / "m")]) == 0
    )
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["map.mid", "map.png"]
    model = load(drums)
    grid = model.map((2, 0), 3)
    assert np.array_equal(
        model.read_midi(tmp_path / "m" / "map.mid").rolls,
        grid.bars.rolls[grid.bars.rolls.sum(axis=(1, 2)) >= 2],
    )
    assert grid.bars.latents[1].tolist() == [0.0, 0.0, -model.latent_scale]  # cell (0, 1): z2 low, z0 middle
    assert main(["decode", str(drums), "--knobs", "5,-2.5,0", "--bars", "2", "-o", str(tmp_path / "d")]) == 0
    decoded = model.read_midi(tmp_path / "d" / "decode.mid").rolls
    expected = model.decode(np.array([[model.latent_scale, -model.latent_scale / 2, 0.0]])).rolls
    assert (
        len(decoded) == 2
        and np.array_equal(decoded[0], expected[0])
        and np.array_equal(decoded[1], expected[0])
    )
    for name in ("s/sample.png", "m/map.png", "d/decode.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG" and (tmp_path / name).stat().st_size > 5000


def test_bernoulli_draws_notes_with_their_probabilities(drums: Path) -> None:
    model = load(drums)
    latent = np.zeros((4000, model.latent_dim), np.float32)
    probs = model.probabilities(latent[:1])[0]
    rolls = model.decode(latent, bernoulli=True, max_notes=8, seed=1).rolls
    assert np.abs(rolls.mean(axis=0) - probs).max() < 0.03
    assert not np.array_equal(rolls[0], rolls[1]) or not np.array_equal(rolls[1], rolls[2])


def one_line_error(argv: list[str], naming: str) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    message = str(raised.value.code)
    assert naming in message and "\n" not in message and "Traceback" not in message, message


def test_bad_input_is_one_line_naming_the_argument(
    drums: Path, corpora: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_midi = tmp_path / "notes.mid"
    not_midi.write_text("these are not notes\n")
    one_line_error(["interpolate", str(drums), str(not_midi), str(corpora / JAZZ)], str(not_midi))
    one_line_error(
        ["interpolate", str(drums), str(corpora / AFROBEAT), str(corpora / JAZZ), "--bar-b", "9999"],
        "--bar-b 9999",
    )
    one_line_error(["decode", str(drums), "--latent", "0.1,0.2"], "--latent: 2 values")
    one_line_error(["decode", str(drums), "--latent", "0.1,0.2,9"], "--latent: 9 is outside")
    one_line_error(["decode", str(drums), "--knobs", "0,6.5,0"], "--knobs: 6.5 V is outside")
    one_line_error(["decode", str(drums), "--knobs", "0,x,0"], "--knobs")
    one_line_error(["sample", str(drums), "--max-notes", "0"], "--max-notes")
    one_line_error(["sample", str(drums), "--seed", "-1"], "--seed must be 0 or more, got -1")
    one_line_error(["decode", str(drums), "--latent", "0,0,0", "--bernoulli", "--seed", "-2"], "--seed")
    for axes in ("inf,0", "nan,1", "0.5,1"):  # inf and nan once ended in int()'s traceback
        one_line_error(
            ["map", str(drums), "--axes", axes], f"--axes: two dimension numbers like 0,1, got {axes!r}"
        )
    # MIDI holds tempos of 1..0xFFFFFF µs per quarter: 3 BPM would not fit, infinity would be 0 µs
    for bpm in ("3", "inf", "nan"):
        one_line_error(["sample", str(drums), "--bpm", bpm, "-o", str(tmp_path / "bpm")], "--bpm must be")
    assert not (tmp_path / "bpm").exists() or not any((tmp_path / "bpm").iterdir())
    # A command writes at most 1,024 bars (files and their picture): refused before the model loads
    for command, message in (
        (["map", str(drums), "--points", "33"], "--points 33 writes 1,089 bars, at most 1,024 per command"),
        (["sample", str(drums), "-n", "1025"], "-n 1025 writes 1,025 bars"),
        (["decode", str(drums), "--latent", "0,0,0", "--bars", "5000"], "--bars 5000 writes 5,000 bars"),
        (["interpolate", str(drums), str(not_midi), str(not_midi), "--steps", "2000"], "--steps 2000 writes"),
    ):
        one_line_error([*command, "-o", str(tmp_path / "many")], message)
    assert not (tmp_path / "many").exists()
    one_line_error(["sample", str(drums / "drums_dec.tflite"), "--engine", "jax"], "--engine jax")
    one_line_error(
        ["encode", str(drums / "drums_dec.tflite"), str(corpora / JAZZ)], "encoding needs the model folder"
    )
    one_line_error(["sample", str(tmp_path / "nowhere")], "nowhere")
    # A row note of 200 (neither a MIDI note nor the accent row's 255): the C core loads the file, the
    # music commands refuse it naming the file, whether given alone or as a folder's export
    data = bytearray((drums / "drums_dec.tflite").read_bytes())
    metadata = read_xen_metadata(bytes(data))
    row_notes_end = locate_xen_metadata(bytes(data)).magic_offset + len(metadata.to_bytes())
    data[row_notes_end - metadata.rows] = 200  # the first row's note, the last field of version 2
    bad = tmp_path / "bad" / "drums_dec.tflite"
    bad.parent.mkdir()
    bad.write_bytes(data)
    assert core.Decoder.from_file(bad).rows == metadata.rows
    one_line_error(["sample", str(bad)], f"{bad}: row_notes must be 12 MIDI notes")
    folder = tmp_path / "bad_folder"
    shutil.copytree(drums, folder)
    shutil.copy(bad, folder / "drums_dec.tflite")
    one_line_error(["sample", str(folder)], f"{folder / 'drums_dec.tflite'}: row_notes must be")
    # A model ingested with a map file that has moved since: one line naming the model and the map
    moved = tmp_path / "moved_map"
    shutil.copytree(drums, moved)
    record = json.loads((moved / "model.json").read_text())
    record["dataset_settings"]["percussion_map"] = str(tmp_path / "kit.yml")
    (moved / "model.json").write_text(json.dumps(record))
    one_line_error(
        ["sample", str(moved)],
        f"{moved}: the model's encoding settings: percussion map '{tmp_path / 'kit.yml'}': neither",
    )
    # encode goes on past a file it cannot read, names it, and fails at the end
    capsys.readouterr()
    assert main(["encode", str(drums), str(not_midi), str(corpora / JAZZ), "--csv"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and str(not_midi) in captured.err
    lines = captured.out.splitlines()
    assert lines[0].startswith("file,bar,track,mean_0") and len(lines) > 5


def test_the_demo_interpolates_between_two_files_held_back_from_training() -> None:
    """make demo trains with the default split (10 % of files, seed 0) and morphs between two of them."""
    from rackvae.dataset import Dataset, RollLayout

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    recipe = makefile[makefile.index("rackvae interpolate") :].split("\n\t$(BIN)")[0]
    files = re.findall(r"\$\(RACKVAE_MIDI\)/(\S+\.mid)", recipe)
    assert len(files) == 2
    empty = np.zeros((2, 16, 1), np.uint8)
    data = Dataset(
        empty,
        empty,
        RollLayout("perc", 1),
        files=files,
        file_index=np.arange(2),
        track=np.zeros(2),
        bar=np.zeros(2),
    )
    _, validation = data.split(0.1, 0)
    assert len(validation) == 2


@pytest.mark.parametrize("ticks", [10, 2])
def test_a_tflite_of_odd_steps_writes_bars_of_its_own_length(ticks: int, tmp_path: Path) -> None:
    """A .tflite says its steps but not its meter: 10 steps (5/8 of 16ths) are written as 10/16 bars,
    not 2/4 bars of 8 steps that cut every sequence after the first; 2 steps once raised '0/4'."""
    metadata = XenMetadata("perc", 12, ticks, 3, group_sizes=(1, 1, 6, 2, 2))
    layers = random_decoder_layers((3, 16, ticks * 12), seed=1)
    (tmp_path / "odd.tflite").write_bytes(tflite_bytes(layers, metadata, "float32"))
    model = load(tmp_path / "odd.tflite")
    bars = model.sample(3, seed=2, threshold=0.3)
    assert bars.rolls.sum() > 3
    song = read(model.to_midi(bars, tmp_path / "odd.mid"))
    assert tuple(song.time_signatures[0, 1:]) == (ticks, 16)
    step = song.ticks_per_beat // 4  # hits-only notes sit on their 16th steps
    played = {divmod(int(onset) // step, ticks) for onset in song.notes["onset"]}
    assert played == {(int(bar), int(tick)) for bar, tick, _ in np.argwhere(bars.rolls)}


def test_a_model_trained_again_after_its_export_does_not_play_the_old_file(
    drums: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(drums, tmp_path / "drums")
    again = ["train", str(drums.parent / "drums.npz"), "--name", "drums", "-o", str(tmp_path)]
    assert main([*again, "--epochs", "1", "--seed", "7", "--overwrite", "-q"]) == 0
    assert (tmp_path / "drums" / "drums_dec.tflite").read_bytes() == (drums / "drums_dec.tflite").read_bytes()
    # the old file decodes unlike the new parameters: not played as the model. By default the
    # parameters play, as before an export, with a one-line warning; asked for, the file is refused
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "drums"), "-n", "2", "-o", str(tmp_path / "out")]) == 0
    warning = capsys.readouterr().err
    assert warning.startswith(f"sample: warning: {tmp_path / 'drums' / 'drums_dec.tflite'} is not the export")
    assert warning.count("\n") == 1 and "run rackvae export again" in warning
    with pytest.warns(StaleExportWarning, match="the parameters play"):
        assert load(tmp_path / "drums").engine == "jax"
    one_line_error(["sample", str(tmp_path / "drums"), "--engine", "c"], "--engine c: ")
    assert main(["export", str(tmp_path / "drums"), "--formats", "f32"]) == 0
    assert load(tmp_path / "drums").engine == "c"
