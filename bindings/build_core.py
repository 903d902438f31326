"""cffi builder: compiles the C decoder core (core/src) into the extension ``rackvae._core``."""

from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CORE_INCLUDE = ROOT / "core" / "include"
CORE_SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "core" / "src").glob("*.c"))

CDEF = """
int rv_version(void);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "rackvae._core",
    '#include "rackvae.h"',
    sources=CORE_SOURCES,
    include_dirs=[str(CORE_INCLUDE.relative_to(ROOT))],
    extra_compile_args=["-std=c99", "-O2"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
