"""``rackvae export``: a model directory written by ``rackvae train`` → .tflite files and a model card."""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rackvae.cli import main
from rackvae.commands.export import training_means
from rackvae.core import Decoder
from rackvae.dataset import Dataset, load
from rackvae.export import carray, quantfit, tflite
from rackvae.export.metadata import XenMetadata, locate_xen_metadata, read_xen_metadata
from rackvae.export.tflite import int8_error_budget, run_litert
from rackvae.model import OUTPUTS
from rackvae.train import load_model
from test_carray import CORE_SOURCES, STRICT

TFLITE_NAMES = ("tiny_dec.tflite", "tiny_dec_f16.tflite", "tiny_dec_int8.tflite")
# The General MIDI note each row of the extended map plays: kick, snare, six toms (low floor .. high),
# closed and open hi-hat, ride, crash.
EXTENDED_NOTES = (36, 38, 41, 43, 45, 47, 48, 50, 42, 46, 51, 49)
# Prints what the core reads from the exporter's C arrays: version, thresholds x 255, row notes.
THRESHOLD_PROGRAM = r"""
#include <stdio.h>
#include "tiny_dec.h"
int main(void) {
    const rv_metadata *meta = &tiny_dec_model.metadata;
    const rv_post_config config = rv_post_config_for_model(meta);
    unsigned i;
    printf("%u %.3f", (unsigned)meta->extension_version, config.threshold * 255.0f);
    for (i = 0; i < meta->n_groups; i++) {
        printf(" %.3f", (config.threshold + config.group_offsets[i]) * 255.0f);
    }
    for (i = 0; i < meta->rows; i++) {
        printf(" %u/%u", (unsigned)meta->row_notes[i], (unsigned)TINY_DEC_ROW_NOTES[i]);
    }
    printf("\n");
    return 0;
}
"""
# One session of one Groove drummer: about 2,000 real bars, ingested in under a second.
SESSION = Path("groove") / "drummer1" / "session1"
REPO = Path(__file__).resolve().parent.parent
# int8 vs float32 note flips on the 17³ knob grid: 0.079% measured on this model (the converter's own
# rounding: 0.095%; on the demo model 0.121% against 0.203%)
FLIP_BOUND = 0.0012


@pytest.fixture(scope="module")
def trained(corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16 x 12 Extended-map model trained for two epochs by ``rackvae ingest`` + ``rackvae train``."""
    root = tmp_path_factory.mktemp("export_cli")
    data = str(root / "data.npz")
    assert main(["ingest", str(corpora / SESSION), "--percussion-map", "extended", "-o", data]) == 0
    assert main(["train", data, "--name", "tiny", "-o", str(root / "models"), "--epochs", "2", "-q"]) == 0
    return root / "models" / "tiny"


@pytest.fixture(scope="module")
def exported(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export_out")
    assert main(["export", str(trained), "-o", str(out)]) == 0  # all formats
    return out


def test_writes_every_format_and_the_card_and_nothing_else(exported: Path) -> None:
    expected = [*TFLITE_NAMES, "tiny_dec.h", "tiny_dec.c", "tiny_dec_selftest.c", "tiny.yml"]
    assert sorted(p.name for p in exported.iterdir()) == sorted(expected)


def test_c_arrays_hold_the_checked_tflite_of_their_variant(
    exported: Path, trained: Path, tmp_path: Path
) -> None:
    float32 = carray.c_files_from_tflite((exported / "tiny_dec.tflite").read_bytes(), "tiny")
    assert {name: (exported / name).read_bytes() for name in float32} == float32
    assert (
        main(["export", str(trained), "--formats", "int8,c", "--c-variant", "int8", "-o", str(tmp_path)]) == 0
    )
    int8 = carray.c_files_from_tflite((tmp_path / "tiny_dec_int8.tflite").read_bytes(), "tiny")
    assert {name: (tmp_path / name).read_bytes() for name in int8} == int8
    assert b"RV_S8" in int8["tiny_dec.c"] and int8 != float32
    card = yaml.safe_load((tmp_path / "tiny.yml").read_text())
    assert card["export"]["files"]["tiny_dec.c"]["variant"] == "int8"


def test_files_carry_the_layout_metadata_and_compute_the_model(trained: Path, exported: Path) -> None:
    model = load_model(trained)
    assert model.thresholds is not None
    expected = XenMetadata(
        "perc",
        rows=12,
        ticks=16,
        latent_scale=3,
        group_sizes=(1, 1, 6, 2, 2),
        latent_dim=3,
        threshold=model.thresholds.threshold,
        group_thresholds=model.thresholds.group_thresholds,
        row_notes=EXTENDED_NOTES,
    )
    latents = np.random.default_rng(5).uniform(-3, 3, (200, 3)).astype(np.float32)
    probabilities = model.decode(latents).reshape(len(latents), -1)
    for name, tolerance in zip(TFLITE_NAMES, (1e-5, 2e-3, None), strict=True):
        tflite = (exported / name).read_bytes()
        if tolerance is None:
            tolerance = int8_error_budget(tflite, model.decoder_layers(), latents)
        assert read_xen_metadata(tflite) == expected
        assert np.all(np.abs(run_litert(tflite, latents) - probabilities) <= tolerance)


def test_model_card_describes_model_data_training_metadata_and_files(trained: Path, exported: Path) -> None:
    card = yaml.safe_load((exported / "tiny.yml").read_text())
    assert card["name"] == "tiny"
    assert card["model"]["decoder_sizes"] == [3, 12, 48, 192]
    assert card["dataset"]["settings"] == load_model(trained).dataset_settings
    assert card["dataset"]["settings"]["percussion_map"] == "extended"
    assert card["dataset"]["layout"]["group_sizes"] == [1, 1, 6, 2, 2]
    assert card["dataset"]["path"] == str((trained.parent.parent / "data.npz").resolve())
    (run,) = card["training"]
    assert run["epochs"] == 2 and run["epochs_run"] == 2 and run["batch_size"] == 32
    assert card["metadata"]["type"] == "perdec"
    thresholds = load_model(trained).thresholds
    assert thresholds is not None and card["export"]["thresholds"] == "model.json"
    threshold_bytes = [round(t * 255) for t in (thresholds.threshold, *thresholds.group_thresholds)]
    assert bytes(card["metadata"]["bytes"]) == (
        b"xen:perdec" + bytes([12, 16, 3, 5, 1, 1, 6, 2, 2]) + b"rv\x02\x00\x03"
    ) + bytes(threshold_bytes + list(EXTENDED_NOTES))
    assert card["metadata"]["threshold"] == threshold_bytes[0] / 255
    for name in TFLITE_NAMES:
        entry = card["export"]["files"][name]
        data = (exported / name).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert 0 < entry["max_abs_error_vs_jax"] < 0.1 and entry["mean_abs_error_vs_jax"] < 0.01
    # Each file was also decoded by the C core: floats like LiteRT, int8 bit-exact like TFLite-Micro.
    files = card["export"]["files"]
    for name in ("tiny_dec.tflite", "tiny_dec_f16.tflite"):
        assert files[name]["c_core_reference"] == "LiteRT"
        assert files[name]["c_core_max_abs_error"] <= 1e-5
    assert files["tiny_dec_int8.tflite"]["c_core_reference"] == "TFLite-Micro"
    assert files["tiny_dec_int8.tflite"]["c_core_max_abs_error"] == 0.0
    train_sequences = load_model(trained).data["train_sequences"]
    assert card["export"]["calibration"]["encoder_means"] == train_sequences
    assert card["export"]["calibration"]["latents"] == 1000 + train_sequences


def test_a_hits_only_model_stays_version_2_byte_for_byte(trained: Path, exported: Path) -> None:
    """Version 3 (groove channels) is written only for more than one channel: every file of this
    trained hits-only model holds the version 2 bytes, and the description ends right after them
    (zero padding, no channel fields); the card lists one channel, the hits block."""
    thresholds = load_model(trained).thresholds
    assert thresholds is not None
    stored = [math.floor(t * 255 + 0.5) for t in (thresholds.threshold, *thresholds.group_thresholds)]
    version_2 = (
        b"xen:perdec"
        + bytes([12, 16, 3, 5, 1, 1, 6, 2, 2])
        + b"rv"
        + bytes([2, 0, 3, *stored, *EXTENDED_NOTES])
    )
    for name in TFLITE_NAMES:
        data = (exported / name).read_bytes()
        location = locate_xen_metadata(data)
        end = location.magic_offset + len(version_2)
        assert data[location.magic_offset : end] == version_2, name
        assert data[end] == 0, name  # the string's terminator, where a version 3 file has its channel count
    card = yaml.safe_load((exported / "tiny.yml").read_text())
    assert card["metadata"]["channels"] == ["hits"]
    assert card["channels"] == [
        {"name": "hits", "outputs": [0, 191], "value": "probability of a hit (output)"}
    ]


def test_a_groove_model_exports_every_file_with_its_three_channels(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rackvae export`` of a model trained with ``--outputs hits,velocity,offset`` on the same session:
    every file carries version 3 metadata and all 3 x 192 outputs (docs/groove_format.md), the C
    arrays decode like their file, the card lists the channels and the int8 velocity and offset
    errors on the knob grid. (Numeric parity per channel: tests/test_groove_parity.py.)"""
    data = trained.parent.parent / "data.npz"
    models, out = tmp_path / "models", tmp_path / "out"
    groove = ["--outputs", "hits,velocity,offset", "--epochs", "2", "-q"]
    assert main(["train", str(data), "--name", "feel", "-o", str(models), *groove]) == 0
    capsys.readouterr()
    assert main(["export", str(models / "feel"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"int8: velocity vs float32 on the knob grid's notes: max [0-9.]+, mean", printed)
    assert re.search(r"int8: offset vs float32 on the knob grid's notes: max [0-9.]+ step", printed)
    names = ("feel_dec.tflite", "feel_dec_f16.tflite", "feel_dec_int8.tflite")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*names, "feel_dec.h", "feel_dec.c", "feel_dec_selftest.c", "feel.yml"]
    )
    latents = np.random.default_rng(2).uniform(-3, 3, (20, 3)).astype(np.float32)
    for name in names:
        meta = read_xen_metadata((out / name).read_bytes())
        assert (meta.extension_version, meta.channel_names, meta.output_size) == (3, OUTPUTS, 3 * 192)
        assert Decoder.from_bytes((out / name).read_bytes()).decode(latents).shape == (20, 3 * 16, 12)
    c_files = carray.c_files_from_tflite((out / "feel_dec.tflite").read_bytes(), "feel")
    assert {name: (out / name).read_bytes() for name in c_files} == c_files
    assert b".channels = 3, .channel_ids = {0, 1, 2}}" in c_files["feel_dec.c"]
    card = yaml.safe_load((out / "feel.yml").read_text())
    assert card["model"]["outputs"] == list(OUTPUTS) and card["metadata"]["channels"] == list(OUTPUTS)
    assert [(c["name"], c["outputs"]) for c in card["channels"]] == [
        ("hits", [0, 191]), ("velocity", [192, 383]), ("offset", [384, 575])
    ]  # fmt: skip
    int8 = card["export"]["files"]["feel_dec_int8.tflite"]
    assert 0 < int8["velocity_mean_abs_error_on_notes"] <= int8["velocity_max_abs_error_on_notes"] < 10
    assert 0 < int8["offset_mean_abs_error_on_notes"] <= int8["offset_max_abs_error_on_notes"] < 0.1
    assert int8["c_core_max_abs_error"] == 0.0 and int8["note_flips_vs_float32"] < 0.01


def test_default_output_is_the_model_folder_and_formats_select_files(trained: Path) -> None:
    assert main(["export", str(trained), "--formats", "int8"]) == 0
    written = {p.name for p in trained.iterdir() if p.is_file()}
    assert {"tiny_dec_int8.tflite", "tiny.yml"} <= written
    assert not written & {"tiny_dec.tflite", "tiny_dec_f16.tflite"}


def test_without_its_dataset_int8_calibrates_on_the_cube(trained: Path, tmp_path: Path) -> None:
    moved = tmp_path / "model"
    moved.mkdir()
    for name in ("model.json", "params.msgpack"):
        (moved / name).write_bytes((trained / name).read_bytes())
    text = (moved / "model.json").read_text().replace("data.npz", "gone.npz")
    (moved / "model.json").write_text(text)
    assert main(["export", str(moved), "--formats", "int8", "-o", str(tmp_path / "out")]) == 0
    card = yaml.safe_load((tmp_path / "out" / "tiny.yml").read_text())
    assert card["export"]["calibration"]["encoder_means"] == 0
    assert card["export"]["calibration"]["latents"] == 1000


def test_a_file_out_of_tolerance_stops_the_export_before_writing(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tflite, "FLOAT_TOLERANCE", 1e-12)
    with pytest.raises(SystemExit, match="float32: the file does not compute the decoder"):
        main(["export", str(trained), "--formats", "f32,f16", "-o", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_model_and_bad_formats_are_reported(tmp_path: Path, trained: Path) -> None:
    with pytest.raises(SystemExit, match=str(tmp_path / "nothing")):
        main(["export", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit, match="unknown formats"):
        main(["export", str(trained), "--formats", "f32,f64"])


def test_dataset_of_another_shape_is_refused(trained: Path, tmp_path: Path) -> None:
    data = load(trained.parent.parent / "data.npz")
    two_bars = np.concatenate([data.rolls[:8], data.rolls[8:16]], axis=1)  # 32 ticks
    Dataset(
        two_bars, two_bars, data.layout, data.settings, data.files[:1], *(np.zeros((3, 8), np.int32))
    ).save(tmp_path / "other.npz")
    with pytest.raises(SystemExit, match="the model expects 16x12"):
        main(
            [
                "export",
                str(trained),
                "--formats",
                "int8",
                "--dataset",
                str(tmp_path / "other.npz"),
                "-o",
                str(tmp_path),
            ]
        )


def test_tflite_c_holds_the_c_variant_file(trained: Path, tmp_path: Path) -> None:
    command = [
        "export",
        str(trained),
        "--formats",
        "int8,tflite-c",
        "--c-variant",
        "int8",
        "-o",
        str(tmp_path),
    ]
    assert main(command) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["tiny.yml", "tiny_dec_int8.tflite", "tiny_dec_tflite.cc", "tiny_dec_tflite.h"]
    source = (tmp_path / "tiny_dec_tflite.cc").read_text()
    array = bytes(int(word, 16) for word in re.findall(r"0x([0-9a-f]{2})", source))
    assert array == (tmp_path / "tiny_dec_int8.tflite").read_bytes()


def test_every_file_carries_the_models_thresholds_and_the_core_plays_at_them(
    trained: Path, exported: Path, tmp_path: Path
) -> None:
    """The threshold round trip: model.json -> every .tflite and the C arrays -> the C core's default."""
    thresholds = load_model(trained).thresholds
    assert thresholds is not None
    stored = [round(t * 255) for t in (thresholds.threshold, *thresholds.group_thresholds)]
    assert len(set(stored)) > 1, "calibration should give the groups thresholds of their own"
    latents = np.random.default_rng(7).uniform(-3, 3, (20, 3)).astype(np.float32)
    played = 0
    for name in TFLITE_NAMES:
        decoder = Decoder.from_file(exported / name)
        meta = decoder.metadata
        assert meta.extension_version == 2 and meta.row_notes == EXTENDED_NOTES
        assert [round(t * 255) for t in (meta.threshold, *meta.group_thresholds)] == stored
        # by default the core plays each row at its group's threshold and sends its General MIDI note
        limits = np.repeat(np.float32(stored[1:]) / np.float32(255), (1, 1, 6, 2, 2))
        for probabilities in decoder.decode(latents):
            for tick, notes in zip(probabilities, decoder.notes(probabilities), strict=True):
                above = np.flatnonzero(tick >= limits)
                strongest = sorted(sorted(above, key=lambda row: -tick[row])[:4])
                assert [note.row for note in notes] == strongest
                assert [note.midi_note for note in notes] == [EXTENDED_NOTES[row] for row in strongest]
                played += len(notes)
    assert played > 0
    (tmp_path / "main.c").write_text(THRESHOLD_PROGRAM)
    for file in ("tiny_dec.h", "tiny_dec.c"):
        (tmp_path / file).write_bytes((exported / file).read_bytes())
    program = tmp_path / "thresholds"
    includes = [f"-I{REPO / 'core' / 'include'}", f"-I{tmp_path}"]
    sources = [str(tmp_path / "main.c"), str(tmp_path / "tiny_dec.c"), *CORE_SOURCES]
    subprocess.run(["gcc", *STRICT, *includes, *sources, "-lm", "-o", str(program)], check=True)
    printed = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.split()
    assert printed[0] == "2"
    assert [round(float(value)) for value in printed[1:7]] == stored
    assert [float(value) for value in printed[1:7]] == pytest.approx(stored, abs=1e-3)
    assert printed[7:] == [f"{note}/{note}" for note in EXTENDED_NOTES]


# A line of TensorFlow's, absl's or CUDA's native logging (e.g. "E0000 00:00:17.0 ... cuInit") or of
# LiteRT's ("INFO: Created TensorFlow Lite XNNPACK delegate").
NATIVE_LOG_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages|INFO: )|tensorflow|cuInit", re.M)
# Runs the CLI in a process where the export extra's modules cannot be imported.
BLOCKED_EXTRA = """
import sys
for name in ("tensorflow", "ai_edge_litert", "tflite_micro"):
    sys.modules[name] = None  # import raises ModuleNotFoundError
"""


def run_cli(args: list[str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = prelude + "from rackvae.cli import main\nraise SystemExit(main(sys.argv[1:]))\n"
    if "import sys" not in prelude:
        code = "import sys\n" + code
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)


def test_export_prints_no_native_log_lines_unless_verbose(trained: Path, tmp_path: Path) -> None:
    quiet = run_cli(["export", str(trained), "--formats", "f32,int8", "-o", str(tmp_path / "quiet")])
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert "int8: max abs error vs JAX" in quiet.stdout  # the command's own report stays
    verbose = run_cli(["export", str(trained), "--formats", "f32", "-o", str(tmp_path / "loud"), "--verbose"])
    assert verbose.returncode == 0, verbose.stderr
    assert NATIVE_LOG_LINE.search(verbose.stderr), verbose.stderr  # what the quiet run kept back


def test_export_without_the_export_extra_says_so_in_one_line(trained: Path, tmp_path: Path) -> None:
    result = run_cli(["export", str(trained), "-o", str(tmp_path)], BLOCKED_EXTRA)
    assert result.returncode == 1
    assert result.stderr == "rackvae export: needs the export extra: pip install 'rackvae[export]'\n"
    assert not any(tmp_path.iterdir())


def test_core_and_metadata_read_exported_files_without_the_export_extra(exported: Path) -> None:
    """The base install: rackvae.core decodes and plays an exported file, its metadata reads, and
    neither imports TensorFlow, LiteRT or TFLite-Micro (blocked in that process)."""
    code = (
        BLOCKED_EXTRA
        + f"""
import numpy as np
from rackvae.core import Decoder
from rackvae.export.metadata import read_xen_metadata
path = {str(exported / "tiny_dec_int8.tflite")!r}
decoder = Decoder.from_file(path)
probabilities = decoder.decode(np.zeros((1, 3), np.float32))[0]
meta = read_xen_metadata(open(path, "rb").read())
assert meta == decoder.metadata and meta.extension_version == 2
print(probabilities.shape, decoder.threshold == np.float32(meta.threshold), len(decoder.notes(probabilities)))
heavy = ("tensorflow", "ai_edge_litert", "tflite_micro", "jax")
print(sorted(name for name, module in sys.modules.items() if module and name.split(".")[0] in heavy))
"""
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["(16, 12) True 16", "[]"]


def test_int8_plays_the_float32_notes_on_the_knob_grid(trained: Path, exported: Path) -> None:
    """Issue 14's measure: cells of the 17³ knob grid (knobs mapped as the module maps them) that the
    int8 file plays differently from the float32 file at the model's thresholds, both decoded by the
    C core. The exporter's fitted int8 weights flip fewer than the converter's own rounding."""
    model = load_model(trained)
    float32 = (exported / "tiny_dec.tflite").read_bytes()
    meta = read_xen_metadata(float32)
    grid = quantfit.knob_grid(meta.latent_scale, meta.latent_dim)
    assert len(grid) == 17**3 and grid.min() == -3.0 and grid.max() == 3.0
    reference = Decoder.from_bytes(float32).decode(grid)
    thresholds = np.array(meta.row_thresholds())
    fitted = quantfit.note_flips(
        reference, (exported / "tiny_dec_int8.tflite").read_bytes(), grid, thresholds
    )
    means, _ = training_means(model, None)
    representative = tflite.representative_latents(meta.latent_dim, meta.latent_scale, means)
    plain = tflite.tflite_bytes(model.decoder_layers(), meta, "int8", representative)
    rounded = quantfit.note_flips(reference, plain, grid, thresholds)
    print(f"note flips: converter {rounded:.4%}, fitted {fitted:.4%}")
    card = yaml.safe_load((exported / "tiny.yml").read_text())
    assert card["export"]["files"]["tiny_dec_int8.tflite"]["note_flips_vs_float32"] == pytest.approx(
        fitted, abs=1e-4
    )
    assert fitted <= FLIP_BOUND
    assert fitted < rounded


def test_an_output_that_cannot_be_a_folder_is_refused_before_converting(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_bytes(b"a file, not a folder")
    for output, message in (
        (taken, f"export: -o {taken}: is a file, not a folder"),
        (taken / "sub", f"export: -o {taken / 'sub'}: {taken} is a file, not a folder"),
    ):
        with pytest.raises(SystemExit, match=f"^{re.escape(message)}$"):
            main(["export", str(trained), "--formats", "f32", "-o", str(output)])
        assert "float32" not in capsys.readouterr().out  # nothing converted or checked
    assert taken.read_bytes() == b"a file, not a folder"


@pytest.mark.skipif(
    not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no folder can be made"
)
def test_a_failed_write_is_one_line(trained: Path) -> None:
    with pytest.raises(
        SystemExit, match=r"^export: \[Errno 2\] No such file or directory: '/proc/rackvae-export'$"
    ):
        main(["export", str(trained), "--formats", "f32", "-o", "/proc/rackvae-export"])
