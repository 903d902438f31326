"""A project that vendors the core (``add_subdirectory(core)``) keeps its compiler's warnings as
warnings: with an extra warning flag the core trips, its build still succeeds. Warnings stay errors
where rackvae builds itself: core/ as the top-level project, or a vendored build that asks for them
(``-DRV_CORE_WERROR=ON``, as the repository's CMakeLists.txt sets it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# A warning GCC and Clang know that the core trips in every file (its structs have padding), so a build
# with it as an error stops at the first file.
EXTRA_WARNING = "-Wpadded"

VENDOR_PROJECT = """cmake_minimum_required(VERSION 3.16)
project(vendor C)
add_subdirectory("{core}" rackvae_core)
add_executable(app main.c)
target_link_libraries(app PRIVATE rackvae_core)
"""
MAIN = """#include "rackvae.h"
int main(void) { return rv_version() == ((RV_VERSION_MAJOR << 8) | RV_VERSION_MINOR) ? 0 : 1; }
"""


def cmake_build(source: Path, build: Path, *options: str) -> subprocess.CompletedProcess:
    """Configure and build; returns the build step (configure must succeed)."""
    configure = ["cmake", "-S", str(source), "-B", str(build), f"-DCMAKE_C_FLAGS={EXTRA_WARNING}", *options]
    subprocess.run(configure, capture_output=True, text=True, check=True)
    return subprocess.run(
        ["cmake", "--build", str(build), "-j2"], capture_output=True, text=True, check=False, timeout=600
    )


@pytest.fixture()
def vendor_project(tmp_path: Path) -> Path:
    project = tmp_path / "vendor"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(VENDOR_PROJECT.format(core=(REPO / "core").as_posix()))
    (project / "main.c").write_text(MAIN)
    return project


def test_vendored_core_builds_despite_a_new_warning(vendor_project: Path, tmp_path: Path) -> None:
    result = cmake_build(vendor_project, tmp_path / "build")
    assert result.returncode == 0, result.stdout[-4000:]
    assert f"[{EXTRA_WARNING}]" in result.stdout + result.stderr  # the flag did fire in the core
    assert subprocess.run([str(tmp_path / "build" / "app")], check=False).returncode == 0


def test_vendored_core_can_ask_for_warnings_as_errors(vendor_project: Path, tmp_path: Path) -> None:
    result = cmake_build(vendor_project, tmp_path / "build", "-DRV_CORE_WERROR=ON")
    assert result.returncode != 0
    assert f"[-Werror={EXTRA_WARNING.removeprefix('-W')}]" in result.stdout + result.stderr


def test_core_as_top_level_project_keeps_warnings_as_errors(tmp_path: Path) -> None:
    result = cmake_build(REPO / "core", tmp_path / "build")
    assert result.returncode != 0
    assert f"[-Werror={EXTRA_WARNING.removeprefix('-W')}]" in result.stdout + result.stderr
