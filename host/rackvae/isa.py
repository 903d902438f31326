"""The x86 instruction-set level of the C core's kernels. The core runs the highest level the CPU has
(chosen at run time: one build runs on any x86-64); ``RACKVAE_ISA`` caps it, e.g. to compare paths or
to rule one out. Every level computes the same bits. The variable is read here, not in the core, which
also runs on microcontrollers without an environment. Other CPUs have one level, ``generic``.
"""

from __future__ import annotations

import os

from rackvae._core import lib

ENV = "RACKVAE_ISA"
# Each level includes the ones before it; the index is the core's RV_ISA_* value.
LEVELS = ("generic", "avx2", "avx512", "vnni", "vbmi")


def active() -> str:
    """The level the core's kernels run at."""
    return LEVELS[lib.rv_cpu_isa()]


def cap(level: str, source: str = "ISA level") -> str:
    """Run the kernels at ``level`` at most; returns the level now in use (lower on a CPU without it)."""
    if level not in LEVELS:
        raise ValueError(f"{source} {level!r}: not one of {', '.join(LEVELS)}")
    return LEVELS[lib.rv_cpu_cap(LEVELS.index(level))]


def cap_from_environment() -> None:
    """Apply ``RACKVAE_ISA`` when it is set (rackvae.core does, on import)."""
    level = os.environ.get(ENV, "")
    if level:
        cap(level.strip().lower(), source=ENV)
