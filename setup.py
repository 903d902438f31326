# The cffi extension rackvae._core is compiled from core/src by bindings/build_core.py. The wheel also
# carries the C sources of the core and the module firmware as package data (rackvae/_src), so that
# `rackvae simulate` can build the virtual module from an installed package (rackvae.simulate).
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What CMake reads to build the firmware (firmware/CMakeLists.txt finds the core at ../core).
FIRMWARE_SOURCES = ("firmware", "core/CMakeLists.txt", "core/include", "core/src", "cmake")


class BuildPyWithSources(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install finds the sources in its checkout
            return
        target = Path(self.build_lib) / "rackvae" / "_src"
        for name in FIRMWARE_SOURCES:
            source, destination = ROOT / name, target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, destination, dirs_exist_ok=True)
            else:
                shutil.copyfile(source, destination)


setup(
    cffi_modules=["bindings/build_core.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithSources},
    # cffi compiles the module against the limited API (its name ends in .abi3.so): tag the wheel so.
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
