# The cffi extension rackvae._core is compiled from core/src by bindings/build_core.py.
from setuptools import setup

setup(cffi_modules=["bindings/build_core.py:ffibuilder"])
