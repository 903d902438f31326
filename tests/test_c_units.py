"""The C side of the core's tests, from pytest: configure and build the top-level CMake project (core,
C unit tests and fuzz target under AddressSanitizer + UndefinedBehaviorSanitizer), hand it a corpus of
real exported files, and run ctest: the unit tests, the fuzz regression inputs, and a bounded fuzz run
(libFuzzer with Clang, else the standalone mutation driver) seeded with the corpus."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from test_core_models import core_models

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "core-tests"
FUZZ_SECONDS = 40


def test_c_unit_tests_and_fuzzing_pass_under_sanitizers(tmp_path: Path) -> None:
    # the unit tests take every file; the fuzzer every variant at the demo size and the original-style
    # file (the 380 KB float32 note model would slow each fuzz run tenfold)
    corpus, seeds = tmp_path / "corpus", tmp_path / "seeds"
    corpus.mkdir()
    seeds.mkdir()
    for key, model in core_models().items():
        (corpus / f"{key}.tflite").write_bytes(model.tflite)
        if not key.startswith("note_"):
            (seeds / f"{key}.tflite").write_bytes(model.tflite)
    compiler = "clang" if shutil.which("clang") else "gcc"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(REPO),
            "-B",
            str(BUILD),
            f"-DCMAKE_C_COMPILER={compiler}",
            "-DRV_BUILD_FIRMWARE=OFF",
            "-DRV_SANITIZE=ON",
            f"-DRV_TEST_CORPUS={corpus}",
            f"-DRV_FUZZ_CORPUS={seeds}",
            f"-DRV_FUZZ_SECONDS={FUZZ_SECONDS}",
        ],
        check=True,
        capture_output=True,
    )
    build = subprocess.run(["cmake", "--build", str(BUILD), "-j2"], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    work = BUILD / "tests" / "c" / "fuzz_work"
    for old in work.glob("*-*"):  # artifacts of an earlier run
        old.unlink()
    ctest = subprocess.run(
        ["ctest", "--test-dir", str(BUILD), "-V"], capture_output=True, text=True, timeout=900
    )
    log = ctest.stdout + ctest.stderr
    assert ctest.returncode == 0, log[-6000:]
    assert "100% tests passed" in log
    assert re.search(r"\d+ checks, 0 failed", log)
    # every corpus file was loaded, damaged and refused cleanly by the unit tests
    assert len(re.findall(r"\.tflite: ok", log)) == len(core_models())
    assert re.search(r"Test\s+#\d+: fuzz_regressions \.+\s+Passed", log)
    assert re.search(r"Test\s+#\d+: fuzz_tflite \.+\s+Passed", log)
    runs = re.search(r"Done (\d+) runs|(\d+) mutated runs", log)
    assert runs and int(runs.group(1) or runs.group(2)) > 1000
    crashes = [p.name for p in work.glob("*") if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    assert crashes == []
