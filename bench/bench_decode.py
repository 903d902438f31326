"""Decoder latency and throughput: the C core (via cffi) against LiteRT, TFLite-Micro, jitted JAX and
numpy, for float32, float16 and int8 files of the original demo model (3->12->48->192), of a 48-pitch
note model (3->19->120->768) and of make demo's two models today (the searched 3->64->192->320->192
and the groove 3->64->256->160->576, three channels), all measured the same way from Python (set the
input, invoke, get the output).

    .venv/bin/python bench/bench_decode.py [--quick]

Single: one latent per call (what a module does), best of several timed loops. Batch: 4096 latents per
call where the engine can take a batch (C core, LiteRT resized, JAX, numpy), one at a time otherwise.
Beside the times: weight bytes streamed per second (single) and multiply-accumulates per second, so the
table shows how far each is from the machine's limits. numpy runs its BLAS single-threaded.

The C core twice: the extension as installed (portable: baseline x86-64, its x86 kernels chosen at run
time) and a second build of the same sources with -march=native, compiled here into a temporary
directory and measured in the same process, alternating with the first; 'native/portable' is the
ratio of their times (the goal: the portable build within 10% of native on every row).

The machine's limits, measured in the same run by a small C library compiled here (not the core): the
Python floor of a single decode (set the input, one C call that does nothing, return the output) and
how fast a plain C loop reads a buffer of the model's weight bytes over and over (from L1 or L2, as
the decoder reads its weights). Their sum, the "floor" row, bounds any engine called from Python.
"""

from __future__ import annotations

import os

# single-threaded BLAS and XLA, set before numpy and JAX load
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from cffi import FFI
from tflite_micro import runtime

import rackvae.core
from rackvae import isa
from rackvae.export.metadata import XenMetadata
from rackvae.export.tflite import VARIANTS, quantize, tflite_bytes
from rackvae.model import DecoderLayers, random_decoder_layers

MODELS = {
    "demo 3-12-48-192": ((3, 12, 48, 192), XenMetadata("perc", 12, 16, 3, (1, 1, 6, 2, 2))),
    "note 3-19-120-768": ((3, 19, 120, 768), XenMetadata("note", 48, 16, 3, base_note=36)),
    # make demo's models today: the searched hits-only decoder and the groove-feel one (3 channels)
    "searched 3-64-192-320-192": ((3, 64, 192, 320, 192), XenMetadata("perc", 12, 16, 3, (1, 1, 6, 2, 2))),
    "groove 3-64-256-160-576": (
        (3, 64, 256, 160, 576),
        XenMetadata("perc", 12, 16, 3, (1, 1, 6, 2, 2), channel_ids=(0, 1, 2)),
    ),
}
BATCH = 4096
ROOT = Path(__file__).resolve().parent.parent
NATIVE_GOAL = 1.10  # the portable build's time over the native build's, at most
READ_SIZES = (16 << 10, 512 << 10)  # buffers that stay in L1 and in L2 on current x86
WEIGHT_BYTES = {"float32": 4, "float16": 2, "int8": 1}


@dataclass
class Result:
    engine: str
    single_s: float | None  # seconds per call, one latent
    batch_s: float | None  # seconds per latent in a batch


def best_times(calls: list[Callable[[], object]], loops: int, repeats: int) -> list[float]:
    """Seconds per call of each: the best of `repeats` timed loops (the least disturbed by other load),
    the calls' loops taking turns (so that other load weighs on all alike)."""
    for call in calls:
        call()
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for k, call in enumerate(calls):
            start = time.perf_counter()
            for _ in range(loops):
                call()
            best[k] = min(best[k], (time.perf_counter() - start) / loops)
    return best


def best_time(call: Callable[[], object], loops: int, repeats: int) -> float:
    return best_times([call], loops, repeats)[0]


# The machine's limits: a C call that does nothing, and a read loop (four independent 64-byte XOR
# chains, so the loads and not the XORs set the pace), built like the core (-O3 -march=native).
LIMITS_C = r"""
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int noop(const void *p) {
    (void)p;
    return 0;
}

typedef uint64_t lanes __attribute__((vector_size(64)));

uint64_t read_bytes(const char *p, size_t n, size_t passes) {
    lanes a = {0}, b = {0}, c = {0}, d = {0}, v;
    size_t pass, i;
    for (pass = 0; pass < passes; pass++) {
        for (i = 0; i + 256 <= n; i += 256) {
            memcpy(&v, p + i, 64), a ^= v;
            memcpy(&v, p + i + 64, 64), b ^= v;
            memcpy(&v, p + i + 128, 64), c ^= v;
            memcpy(&v, p + i + 192, 64), d ^= v;
        }
    }
    a ^= b ^ c ^ d;
    return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}
"""


def limits_library() -> Any:
    """LIMITS_C compiled into a temporary directory and loaded (its ffi and lib)."""
    ffi = FFI()
    ffi.cdef("int noop(const void *p); uint64_t read_bytes(const char *p, size_t n, size_t passes);")
    ffi.set_source("_bench_limits", LIMITS_C, extra_compile_args=["-O3", "-march=native"])
    path = ffi.compile(tmpdir=tempfile.mkdtemp(prefix="bench_limits_"))
    spec = importlib.util.spec_from_file_location("_bench_limits", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Limits:
    python_floor_s: float  # set a 3-float input, a no-op C call with one pointer, return the output
    read_s: Callable[[int], float]  # seconds to read that many bytes once, read over and over

    def floor(self, weight_bytes: int) -> float:
        return self.python_floor_s + self.read_s(weight_bytes)


def measure_limits(loops: int) -> Limits:
    module = limits_library()
    ffi, lib = module.ffi, module.lib
    source, output, one = np.zeros(3, np.float32), np.zeros((16, 12), np.float32), np.ones(3, np.float32)
    handle = ffi.new("char[64]")
    noop = lib.noop

    def floor() -> np.ndarray:  # c_core's single() with a C call that does nothing
        source[:] = one
        noop(handle)
        return output

    def read_s(size: int) -> float:
        whole = -(-size // 256) * 256  # what the loop reads
        memory = ffi.new("char[]", whole + 64)
        start = memory + (-int(ffi.cast("uintptr_t", memory)) % 64)  # cache-line aligned, as the weights
        passes = max(1, (64 << 20) // whole)
        return best_time(lambda: lib.read_bytes(start, whole, passes), 1, 5) / passes

    return Limits(best_time(floor, loops, 7), read_s)


def load_module(name: str, path: str | Path, register: bool = False) -> ModuleType:
    """The module at path, as `name`; `register` puts it in sys.modules (dataclasses look it up)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def native_core() -> ModuleType:
    """rackvae.core over a second build of the core with -march=native (bindings/build_core.py's
    make_builder, compiled into a temporary directory), at the portable build's ISA level."""
    builder = load_module("build_core", ROOT / "bindings" / "build_core.py").make_builder(native=True)
    extension = load_module("rackvae._core", builder.compile(tmpdir=tempfile.mkdtemp(prefix="bench_native_")))
    extension.lib.rv_cpu_cap(isa.LEVELS.index(isa.active()))
    portable = sys.modules["rackvae._core"]
    sys.modules["rackvae._core"] = extension  # what the second rackvae.core imports
    try:
        return load_module("rackvae_core_native", rackvae.core.__file__, register=True)
    finally:
        sys.modules["rackvae._core"] = portable


def c_cores(native: ModuleType, data: bytes, latents: np.ndarray, loops: int) -> tuple[Result, Result]:
    """The installed (portable) build and the native one, their timed loops taking turns."""
    decoders = [core.Decoder.from_bytes(data) for core in (rackvae.core, native)]

    def single(decoder: Any) -> Callable[[], np.ndarray]:
        one, source = latents[0], decoder.input

        def call() -> np.ndarray:  # the interpreter way: set the input tensor, invoke, get the output
            source[:] = one
            return decoder.invoke()

        return call

    # ten times as many loops a tenth as long as the other engines': the best of them is more likely
    # to have run undisturbed on a busy machine, which the ratio of the two builds needs
    singles = best_times([single(d) for d in decoders], max(1, loops // 10), 70)
    batches = best_times([lambda d=d: d.decode(latents) for d in decoders], 1, 40)
    portable, native_build = (
        Result(name, single_s, batch_s / len(latents))
        for name, single_s, batch_s in zip(
            ("C core (cffi)", "C core -march=native"), singles, batches, strict=True
        )
    )
    return portable, native_build


def litert(data: bytes, latents: np.ndarray, loops: int) -> Result:
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    one = quantize(latents[:1], source["dtype"], source["quantization"])

    def single() -> np.ndarray:
        interpreter.set_tensor(source["index"], one)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    single_s = best_time(single, loops, 7)
    batched = Interpreter(model_content=data)
    batched.resize_tensor_input(source["index"], [len(latents), latents.shape[1]])
    batched.allocate_tensors()
    many = quantize(latents, source["dtype"], source["quantization"])

    def batch() -> np.ndarray:
        batched.set_tensor(source["index"], many)
        batched.invoke()
        return batched.get_tensor(target["index"])

    return Result("LiteRT", single_s, best_time(batch, 3, 5) / len(latents))


def tflite_micro(data: bytes, latents: np.ndarray, loops: int) -> Result:
    try:
        interpreter = runtime.Interpreter.from_bytes(data)
    except Exception:  # TFLite-Micro cannot run float16 (DEQUANTIZE of constant weights)
        return Result("TFLite-Micro", None, None)
    decoder = rackvae.core.Decoder.from_bytes(data)
    quant = decoder.c_model.input_quant
    one = (
        quantize(latents[:1], np.int8, (quant.scale, quant.zero_point))
        if decoder.dtype == "int8"
        else latents[:1]
    )

    def single() -> np.ndarray:
        interpreter.set_input(one, 0)
        interpreter.invoke()
        return interpreter.get_output(0)

    seconds = best_time(single, max(1, loops // 10), 5)
    return Result("TFLite-Micro", seconds, seconds)  # no batching: one latent at a time


def jax_decoder(layers: DecoderLayers, latents: np.ndarray, loops: int) -> Result:
    weights = [(jnp.asarray(k), jnp.asarray(b)) for k, b in layers]

    @jax.jit
    def decode(z: jax.Array) -> jax.Array:
        h = z
        for kernel, bias in weights[:-1]:
            h = jax.nn.relu(h @ kernel + bias)
        return jax.nn.sigmoid(h @ weights[-1][0] + weights[-1][1])

    one = latents[:1]
    return Result(
        "JAX (jit)",
        best_time(lambda: np.asarray(decode(one)), loops, 7),
        best_time(lambda: np.asarray(decode(latents)), 3, 5) / len(latents),
    )


def numpy_decoder(layers: DecoderLayers, latents: np.ndarray, loops: int) -> Result:
    def decode(z: np.ndarray) -> np.ndarray:
        h = z
        for kernel, bias in layers[:-1]:
            h = np.maximum(h @ kernel + bias, 0.0)
        return 1.0 / (1.0 + np.exp(-(h @ layers[-1][0] + layers[-1][1])))

    one = latents[:1]
    return Result(
        "numpy (BLAS, 1 thread)",
        best_time(lambda: decode(one), loops, 7),
        best_time(lambda: decode(latents), 3, 5) / len(latents),
    )


def weight_bytes(layers: DecoderLayers, variant: str) -> int:
    bias_bytes = 4 if variant != "float16" else 2
    return sum(k.size * WEIGHT_BYTES[variant] + b.size * bias_bytes for k, b in layers)


def rate(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def fmt_us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:9.2f}"


def ratio(c_time: float | None, other: float | None) -> str:
    return "-" if c_time is None or other is None else f"{other / c_time:7.1f}x"


def portable_row(model_name: str, variant: str, portable: Result, native: Result) -> str:
    """One row of the portable/native table: times, the ratios portable/native, and the goal."""
    assert portable.single_s and portable.batch_s and native.single_s and native.batch_s
    single, batch = portable.single_s / native.single_s, portable.batch_s / native.batch_s
    return (
        f"{model_name:19} {variant:8} {portable.single_s * 1e6:9.3f} {native.single_s * 1e6:7.3f} "
        f"{single:6.3f}  {portable.batch_s * 1e6:12.4f} {native.batch_s * 1e6:7.4f} {batch:6.3f}  "
        + ("met" if max(single, batch) <= NATIVE_GOAL else "NOT met")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer loops (a rough table)")
    args = parser.parse_args()
    loops = 300 if args.quick else 3000
    rng = np.random.default_rng(0)
    limits = measure_limits(loops * 10)
    native = native_core()
    print(f"C core: x86 kernels at ISA level {isa.active()} ({isa.ENV} caps it), portable and -march=native")
    print(
        f"machine limits: Python floor {limits.python_floor_s * 1e6:.2f} us (set the input, a no-op C call, "
        "return the output); C read loop "
        + ", ".join(f"{rate(size / limits.read_s(size), 'B/s')} over {size >> 10} KB" for size in READ_SIZES)
    )
    print(f"batch {BATCH} latents; times in microseconds; 'x C' = how many times the C core's time")
    header = (
        f"{'model':19} {'variant':8} {'engine':23} {'single us':>10} {'x C':>8} {'weights/s':>12} "
        f"{'MAC/s':>12} {'batch us/lat':>13} {'x C':>8} {'batch MAC/s':>12}"
    )
    print(header)
    print("-" * len(header))
    goals: list[str] = []
    portability: list[str] = []
    for model_name, (sizes, meta) in MODELS.items():
        layers = random_decoder_layers(sizes, seed=0)
        macs = sum(k.size for k, _ in layers)
        latents = rng.uniform(-meta.latent_scale, meta.latent_scale, (BATCH, sizes[0])).astype(np.float32)
        for variant in VARIANTS:
            data = tflite_bytes(layers, meta, variant)
            results = [
                *c_cores(native, data, latents, loops),
                litert(data, latents, loops),
                tflite_micro(data, latents, loops),
            ]
            if variant == "float32":  # the float references
                results += [jax_decoder(layers, latents, loops), numpy_decoder(layers, latents, loops)]
            c = results[0]
            streamed = weight_bytes(layers, variant)
            floor_s = limits.floor(streamed)
            results.append(Result("floor (Python + read)", floor_s, None))
            for result in results:
                print(
                    f"{model_name:19} {variant:8} {result.engine:23} {fmt_us(result.single_s):>10} "
                    f"{ratio(c.single_s, result.single_s):>8} "
                    f"{rate(streamed / result.single_s if result.single_s else None, 'B/s'):>12} "
                    f"{rate(macs / result.single_s if result.single_s else None, 'MAC/s'):>12} "
                    f"{fmt_us(result.batch_s):>13} {ratio(c.batch_s, result.batch_s):>8} "
                    f"{rate(macs / result.batch_s if result.batch_s else None, 'MAC/s'):>12}"
                )
            by_engine = {r.engine: r for r in results}
            portability.append(portable_row(model_name, variant, c, by_engine["C core -march=native"]))
            lite, micro = by_engine["LiteRT"], by_engine["TFLite-Micro"]
            goals.append(
                f"{model_name} {variant}: single vs LiteRT {lite.single_s / c.single_s:.2f}x "
                f"({'met' if c.single_s < lite.single_s else 'NOT met'})"
                + (
                    f", vs TFLite-Micro {micro.single_s / c.single_s:.0f}x "
                    f"({'met' if micro.single_s >= 20 * c.single_s else 'NOT met'}: 20x needs "
                    f"<= {micro.single_s / 20 * 1e6:.2f} us, floor {floor_s * 1e6:.2f} us)"
                    if micro.single_s
                    else ", TFLite-Micro cannot run it"
                )
            )
            if variant == "float32":
                numpy_batch = by_engine["numpy (BLAS, 1 thread)"].batch_s
                goals.append(
                    f"{model_name} batch: C {c.batch_s * 1e6:.3f} us/latent vs numpy {numpy_batch * 1e6:.3f} "
                    f"({'within 2x' if c.batch_s <= 2 * numpy_batch else 'NOT within 2x'})"
                )
        print()
    print("goals (single decode faster than LiteRT, >= 20x faster than TFLite-Micro, batch within 2x numpy):")
    for line in goals:
        print("  " + line)
    print()
    print(f"portable vs native build (goal: portable time <= {NATIVE_GOAL:.2f}x native on every row):")
    print(
        f"  {'model':19} {'variant':8} {'single us':>9} {'native':>7} {'ratio':>6}  "
        f"{'batch us/lat':>12} {'native':>7} {'ratio':>6}  goal"
    )
    for line in portability:
        print("  " + line)


if __name__ == "__main__":
    main()
