/* The x86-64 fast path's dispatch. The kernels of rv_dense_x86_kernels.h are compiled once per
 * instruction-set level (rv_dense_x86_<level>.c, each with its own target pragma) and the level this
 * CPU runs is chosen at run time, so a core compiled for baseline x86-64 (a wheel) runs on any x86-64
 * and still takes the fastest path the CPU has. Every level computes the same bits. Elsewhere this
 * file holds nothing; rv_internal.h then makes the hooks return 0.
 */
#include "rv_internal.h"

#if defined(RV_TARGET_X86)
#include <cpuid.h>

/* The highest level this CPU and its operating system run: cpuid's feature bits, and xgetbv's for the
   register state the OS saves on a context switch (AVX: xmm, ymm; AVX-512: also the mask and zmm). */
static int detect(void) {
    unsigned a, b, c, d, xcr0, high;
    int avx2, avx512;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) {
        return RV_ISA_GENERIC;
    }
    __asm__("xgetbv" : "=a"(xcr0), "=d"(high) : "c"(0));
    avx2 = (c & bit_AVX) && (c & bit_FMA) && (c & bit_F16C) && (xcr0 & 0x6u) == 0x6u;
    if (!avx2 || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX2)) {
        return RV_ISA_GENERIC;
    }
    avx512 = (b & bit_AVX512F) && (b & bit_AVX512BW) && (b & bit_AVX512VL) && (b & bit_AVX512DQ) &&
             (xcr0 & 0xe6u) == 0xe6u;
    if (!avx512) {
        return RV_ISA_AVX2;
    }
    if (!(c & bit_AVX512VNNI)) {
        return RV_ISA_AVX512;
    }
    return (c & bit_AVX512VBMI) ? RV_ISA_VBMI : RV_ISA_VNNI;
}

/* The level in use; -1 until the first decode or cap chooses it. The core's one piece of mutable global
   state (the usual exception to its rule: a table chosen once): it describes the machine, not a model
   or a decode. Read and written atomically (GCC/Clang builtins; C99 has none); threads racing to the
   first choice choose the same level, a cap wins over a first choice made concurrently, and since
   every level computes the same bits a decode running across a change still gives the same results. */
static int level = -1;

int rv_cpu_cap(int cap) {
    const int best = detect();
    const int chosen = RV_MAX(RV_MIN(cap, best), RV_ISA_GENERIC);
    __atomic_store_n(&level, chosen, __ATOMIC_RELAXED);
    return chosen;
}

int rv_cpu_isa(void) {
    int current = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (current < 0) {
        int unset = -1;
        current = detect();
        if (!__atomic_compare_exchange_n(&level, &unset, current, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            current = unset; /* a cap came first */
        }
    }
    return current;
}

/* The kernels of the level in use (NULL: the portable kernels do everything). */
static const rv_x86_kernels *kernels(void) {
    static const rv_x86_kernels *const tables[] = {NULL, &rv_x86_avx2, &rv_x86_avx512, &rv_x86_vnni, &rv_x86_vbmi};
    return tables[rv_cpu_isa()];
}

size_t rv_dense_f32_fast(const rv_layer *layer, const float *x, size_t b, float *y) {
    const rv_x86_kernels *k = kernels();
    return k != NULL ? k->dense_f32(layer, x, b, y) : 0;
}

size_t rv_dense_f16_fast(const rv_layer *layer, const float *x, size_t b, float *y) {
    const rv_x86_kernels *k = kernels();
    return k != NULL ? k->dense_f16(layer, x, b, y) : 0;
}

size_t rv_dense_s8_fast(const rv_layer *layer, const int16_t *x16, size_t b, int8_t *y) {
    const rv_x86_kernels *k = kernels();
    return k != NULL ? k->dense_s8(layer, x16, b, y) : 0;
}

size_t rv_logistic_dequantize_fast(const rv_model *model, const int8_t *q, size_t n, float *out) {
    const rv_x86_kernels *k = kernels();
    return k != NULL && k->logistic_dequantize != NULL ? k->logistic_dequantize(model, q, n, out) : 0;
}

size_t rv_sigmoid_f32_fast(float *values, size_t n) {
    const rv_x86_kernels *k = kernels();
    return k != NULL ? k->sigmoid_f32(values, n) : 0;
}
#endif
