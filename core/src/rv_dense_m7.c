/* Cortex-M7 fast path of the float dense layers (ARMv7E-M with a single-precision FPU, GCC/Clang),
 * used by rv_dense_f32 / rv_dense_f16 for the IN_OUT layout. The same numbers as the portable
 * kernels: each output starts at +0 and takes one vfma.f32 (exactly rounded, as fmaf) per input in
 * input order, then the bias and the activation (rv_store_outputs). What C cannot get from the
 * compiler is the load pattern: one vldm brings the eight weights of a row segment into registers
 * (GCC emits eight vldr), so a multiply-add costs ~1.3 instructions instead of ~2.5. The int8 kernels
 * are in rv_dense_s8_m7.c. Elsewhere this file holds nothing; rv_internal.h then makes the hooks return 0.
 */
#include "rv_internal.h"

#if defined(RV_TARGET_M7)

static const float zeros[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};

/* One input (register x) times the row segment at w: eight weights, then w += stride. f32: one vldm;
   f16: four words of halves, widened exactly by vcvtb/vcvtt (IEEE halves, FPSCR.AHP = 0). */
#define RV_FMA8(x, a, b, c, d, e, f, g, h)                                                                 \
    "vfma.f32 s16, " x ", " a "\n\tvfma.f32 s17, " x ", " b "\n\tvfma.f32 s18, " x ", " c "\n\t"           \
    "vfma.f32 s19, " x ", " d "\n\tvfma.f32 s20, " x ", " e "\n\tvfma.f32 s21, " x ", " f "\n\t"           \
    "vfma.f32 s22, " x ", " g "\n\tvfma.f32 s23, " x ", " h "\n\t"
#define RV_ROW_F32(x)                                                                                      \
    "vldmia %[w], {s8-s15}\n\tadd %[w], %[w], %[stride]\n\t" RV_FMA8(x, "s8", "s9", "s10", "s11", "s12",     \
                                                                     "s13", "s14", "s15")
#define RV_ROW_F16(x)                                                                                      \
    "vldmia %[w], {s8-s11}\n\tadd %[w], %[w], %[stride]\n\t"                                               \
    "vcvtb.f32.f16 s4, s8\n\tvcvtt.f32.f16 s5, s8\n\tvcvtb.f32.f16 s6, s9\n\tvcvtt.f32.f16 s7, s9\n\t"     \
    "vcvtb.f32.f16 s12, s10\n\tvcvtt.f32.f16 s13, s10\n\tvcvtb.f32.f16 s14, s11\n\tvcvtt.f32.f16 s15, s11\n\t" \
    RV_FMA8(x, "s4", "s5", "s6", "s7", "s12", "s13", "s14", "s15")

/* Sums of outputs j..j+8 of one latent: inputs four at a time (one vldm of x), then one at a time.
   Accumulators s16-s23; the asm is one statement, so the compiler cannot reorder the sums. */
#define RV_TILE8_ASM(ROW)                                                                                  \
    __asm__ volatile("vldmia %[zeros], {s16-s23}\n\t"                                                      \
                     "cmp %[quads], #0\n\t"                                                                \
                     "beq 2f\n"                                                                            \
                     "1:\n\t"                                                                              \
                     "vldmia %[x]!, {s0-s3}\n\t" ROW("s0") ROW("s1") ROW("s2") ROW("s3")                  \
                     "subs %[quads], %[quads], #1\n\t"                                                     \
                     "bne 1b\n"                                                                            \
                     "2:\n\t"                                                                              \
                     "cmp %[rest], #0\n\t"                                                                 \
                     "beq 4f\n"                                                                            \
                     "3:\n\t"                                                                              \
                     "vldmia %[x]!, {s0}\n\t" ROW("s0")                                                    \
                     "subs %[rest], %[rest], #1\n\t"                                                       \
                     "bne 3b\n"                                                                            \
                     "4:\n\t"                                                                              \
                     "vstmia %[sums], {s16-s23}\n\t"                                                       \
                     : [x] "+r"(x), [w] "+r"(w), [quads] "+r"(quads), [rest] "+r"(rest)                    \
                     : [stride] "r"(stride), [zeros] "r"(zeros), [sums] "r"(sums)                          \
                     : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12",    \
                       "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "cc",  \
                       "memory")

static void tile8_f32(const float *x, const float *w, size_t in, size_t stride, float sums[8]) {
    size_t quads = in / 4, rest = in % 4;
    RV_TILE8_ASM(RV_ROW_F32);
}

static void tile8_f16(const float *x, const uint16_t *w, size_t in, size_t stride, float sums[8]) {
    size_t quads = in / 4, rest = in % 4;
    RV_TILE8_ASM(RV_ROW_F16);
}

static size_t dense_m7(const rv_layer *layer, int half, const float *x, size_t nb, float *y) {
    const size_t in = layer->in, out = layer->out;
    const size_t handled = out & ~(size_t)7;
    const size_t width = half ? sizeof(uint16_t) : sizeof(float);
    size_t j, b;
    float sums[8];
    /* vldm needs word-aligned rows: float16 rows of an odd width are left to the portable kernel */
    if (layer->layout != RV_LAYOUT_IN_OUT || ((uintptr_t)layer->weights % 4) != 0 || (out * width) % 4 != 0) {
        return 0;
    }
    for (b = 0; b < nb; b++, x += in, y += out) {
        for (j = 0; j < handled; j += 8) {
            if (half) {
                tile8_f16(x, (const uint16_t *)layer->weights + j, in, out * width, sums);
            } else {
                tile8_f32(x, (const float *)layer->weights + j, in, out * width, sums);
            }
            rv_store_outputs(layer, j, sums, 8, y);
        }
    }
    return handled;
}

size_t rv_dense_f32_fast(const rv_layer *layer, const float *x, size_t nb, float *y) {
    return dense_m7(layer, 0, x, nb, y);
}

size_t rv_dense_f16_fast(const rv_layer *layer, const float *x, size_t nb, float *y) {
    return dense_m7(layer, 1, x, nb, y);
}

#endif
