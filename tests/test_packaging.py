"""A release made the usual way installs and runs as its users run it.

``python -m build`` makes the sdist and then the wheel from that sdist; the wheel goes into a fresh venv
(offline: ``--no-deps``, the project venv's packages reached through a .pth file), and from a folder
outside the checkout the installed ``rackvae`` ingests, trains, evaluates, exports, samples and plays
the model on the virtual module, built from the sources the wheel carries into $XDG_CACHE_HOME. All but
export, and ``rackvae.core``, run with TensorFlow, LiteRT and TFLite-Micro blocked from import: the base
install needs none of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import rackvae

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SESSION = Path("groove") / "drummer1" / "session1"
# What the export extra brings: the base install must run without importing any of them.
EXTRA_MODULES = ("tensorflow", "ai_edge_litert", "tflite_micro", "tf_keras", "tflite_runtime")
BLOCKER = f"""
import importlib.abc, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRA_MODULES!r}:
            raise ImportError(f"{{name}} is blocked: not part of the base install")
        return None

sys.meta_path.insert(0, Blocked())
"""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel) built by ``python -m build`` the default way: the wheel from the sdist. No build
    isolation, so the build takes setuptools and cffi from this venv instead of downloading them."""
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)]
    run(command, out, dict(os.environ))
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_the_sdist_carries_what_the_wheel_build_and_simulate_read(dist: tuple[Path, Path]) -> None:
    sdist, _ = dist
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    headers = {p.relative_to(REPO).as_posix() for p in (REPO / "core" / "include").glob("*.h")}
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "core" / "src").glob("*.[ch]")}
    firmware = {"firmware/CMakeLists.txt", "firmware/app/app.c", "firmware/sim/main_host.c"}
    assert {"bindings/build_core.py", "setup.py", "pyproject.toml", *headers, *sources, *firmware} <= names
    assert not any(name.endswith(".so") or name.startswith("data/") for name in names)


def test_the_wheel_tag_is_true_to_its_limited_api_module(dist: tuple[Path, Path]) -> None:
    _, wheel = dist
    assert wheel.name == f"rackvae-{rackvae.__version__}-cp311-abi3-linux_x86_64.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert [name for name in names if name.endswith(".so")] == ["rackvae/_core.abi3.so"]
    assert "rackvae/_src/firmware/sim/main_host.c" in names
    assert "rackvae/_src/core/include/rackvae.h" in names
    # auditwheel (from PyPI) reads the symbols the module needs and names the policy they meet.
    report = run([sys.executable, "-m", "auditwheel", "show", str(wheel)], wheel.parent, dict(os.environ))
    assert 'is consistent with the\nfollowing platform tag: "manylinux_2_' in report.stdout


@pytest.fixture(scope="module")
def installed(
    dist: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """A fresh venv holding the wheel (no dependencies installed: they come from this venv through a
    .pth line, which adds the folder without running its own .pth files, so this checkout's editable
    install stays out); the environment to run it in."""
    _, wheel = dist
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(venv)], venv, dict(os.environ))
    python = venv / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], venv, {})
    (Path(site.stdout.strip()) / "project_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], venv, {})
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", str(venv))}
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    return venv, env


def test_the_installed_package_runs_from_outside_the_checkout(
    installed: tuple[Path, dict[str, str]], corpora: Path, tmp_path: Path
) -> None:
    venv, env = installed
    python = str(venv / "bin" / "python")
    blocked = tmp_path / "blocked_rackvae.py"  # the rackvae command with the extras' modules blocked
    blocked.write_text(BLOCKER + "from rackvae.cli import main\nsys.exit(main())\n")
    work = tmp_path / "work"
    work.mkdir()

    version = run([str(venv / "bin" / "rackvae"), "--version"], work, env)
    assert version.stdout == f"rackvae {rackvae.__version__}\n"
    where = run([python, "-c", "import rackvae; print(rackvae.__file__)"], work, env).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    package = Path(where).parent
    files_before = sorted(package.rglob("*"))

    files = [str(p) for p in sorted((corpora / SESSION).glob("*.mid"))[:6]]
    rackvae_blocked = [python, str(blocked)]
    run(
        [*rackvae_blocked, "ingest", *files, "--percussion-map", "extended", "--quiet", "-o", "g.npz"],
        work,
        env,
    )
    run([*rackvae_blocked, "train", "g.npz", "--name", "g", "-o", "models", "--epochs", "2", "-q"], work, env)
    metrics = json.loads(run([*rackvae_blocked, "eval", "models/g", "--json"], work, env).stdout)
    assert metrics["splits"]["train"]["sequences"] > 0
    run([str(venv / "bin" / "rackvae"), "export", "models/g", "--formats", "f32"], work, env)
    run([*rackvae_blocked, "sample", "models/g", "-n", "2", "-o", "samples"], work, env)  # the C core plays
    assert sorted(p.name for p in (work / "samples").iterdir()) == [
        "sample.png",
        "sample_01.mid",
        "sample_02.mid",
    ]
    played = run([*rackvae_blocked, "simulate", "models/g", "--sweep", "1", "--log", "module.log"], work, env)
    assert "g_dec.tflite on host: 16 steps" in played.stderr
    builds = list((Path(env["XDG_CACHE_HOME"]) / "rackvae").glob("firmware-*/firmware-host/rackvae-sim"))
    assert len(builds) == 1
    # Outputs only where they were asked for: nothing in the package, nothing else in the folder.
    assert sorted(package.rglob("*")) == files_before
    assert sorted(p.name for p in work.iterdir()) == ["g.npz", "models", "module.log", "samples"]

    # rackvae.core decodes the exported file like the JAX decoder, none of the extras imported.
    check = BLOCKER + (
        "import numpy as np\n"
        "from rackvae.core import Decoder\n"
        "from rackvae.train import load_model\n"
        "latents = np.random.default_rng(0).uniform(-3, 3, (64, 3)).astype(np.float32)\n"
        "path = 'models/g/g_dec.tflite'\n"
        "decoders = [Decoder.from_file(path), Decoder.from_bytes(open(path, 'rb').read())]\n"
        "expected = load_model('models/g').decode(latents).reshape(64, -1)\n"
        "error = max(np.abs(d.decode(latents).reshape(64, -1) - expected).max() for d in decoders)\n"
        f"print(error, sorted(m for m in sys.modules if m.split('.')[0] in {EXTRA_MODULES!r}))\n"
    )
    error, imported = run([python, "-c", check], work, env).stdout.split(" ", 1)
    assert float(error) <= 1e-5
    assert imported.strip() == "[]"
