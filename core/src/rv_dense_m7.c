/* Cortex-M7 fast path of the float dense layers (ARMv7E-M with a single-precision FPU, GCC/Clang),
 * used by rv_dense_f32 / rv_dense_f16 for the IN_OUT layout. The same numbers as the portable
 * kernels: each output starts at +0 and takes one vfma.f32 (exactly rounded, as fmaf) per input in
 * input order, then the bias and the activation (rv_finish). What C cannot get from the compiler is
 * the load pattern: one vldm brings the eight weights of a row segment into registers (GCC emits
 * eight vldr), so a multiply-add costs ~1.2 instructions instead of ~2.5, and the bias and ReLU of
 * eight outputs are applied in registers before one vstm. The int8 kernels are in rv_dense_s8_m7.c.
 * Elsewhere this file holds nothing; rv_internal.h then makes the hooks return 0.
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

/* float16 biases of outputs j..j+8 widened to floats. Not inlined: GCC finds no registers for
   dense_m7's asm operands around it. */
__attribute__((noinline)) static const float *widen_bias(const rv_layer *layer, size_t j, float widened[8]) {
    size_t k;
    for (k = 0; k < 8; k++) {
        widened[k] = rv_half_load((const uint16_t *)layer->bias + j + k);
    }
    return widened;
}

static size_t dense_m7(const rv_layer *layer, int half, const float *x, size_t nb, float *y) {
    const size_t in = layer->in, out = layer->out;
    const size_t width = half ? sizeof(uint16_t) : sizeof(float);
    const size_t stride = out * width;
    /* float32 takes eight inputs per pass (one vldm of x), float16 four (its ROW needs s4-s7) */
    const size_t per_pass = half ? 4u : 8u;
    /* bit 0: float16 weights, bit 1: ReLU (one register for the asm) */
    const uint32_t flags = (half ? 1u : 0u) | (layer->activation == RV_ACT_RELU ? 2u : 0u);
    size_t j, b;
    float widened[8];
    /* vldm needs word-aligned rows: float16 rows of an odd width are left to the portable kernel */
    if (layer->layout != RV_LAYOUT_IN_OUT || ((uintptr_t)layer->weights % 4) != 0 || stride % 4 != 0 || out < 8) {
        return 0;
    }
    for (b = 0; b < nb; b++, x += in, y += out) {
        for (j = 0; j < out; j += 8) {
            /* A width that is not a multiple of 8 ends with the tile of the last eight outputs, which
               recomputes a few of the previous tile's outputs (the same bits) instead of leaving
               them to the portable kernel's one-output loop. */
            if (j + 8 > out) {
                j = out - 8;
            }
            const float *xs = x;
            const uint8_t *w = (const uint8_t *)layer->weights + j * width;
            size_t passes = in / per_pass, rest = in % per_pass;
            /* zeros without a bias: sum + 0.0f is what rv_finish adds then */
            const float *bias = layer->bias == NULL        ? zeros
                                : layer->bias_dtype == RV_F32 ? (const float *)layer->bias + j
                                                              : widen_bias(layer, j, widened);
            /* Outputs j..j+8 in s16-s23, in one asm statement so nothing reorders the sums: the passes,
               the remaining inputs one at a time, then + bias, ReLU as vmaxnm with +0 (+0 for -0 and
               NaN, as rv_finish), one vstm. */
            __asm__ volatile("vldmia %[zeros], {s16-s23}\n\t"
                             "tst %[flags], #1\n\t"
                             "bne 5f\n\t"
                             "cmp %[passes], #0\n\t"
                             "beq 2f\n"
                             "1:\n\t"
                             "vldmia %[x]!, {s0-s7}\n\t" RV_ROW_F32("s0") RV_ROW_F32("s1") RV_ROW_F32("s2")
                             RV_ROW_F32("s3") RV_ROW_F32("s4") RV_ROW_F32("s5") RV_ROW_F32("s6")
                             RV_ROW_F32("s7")
                             "subs %[passes], %[passes], #1\n\t"
                             "bne 1b\n"
                             "2:\n\t"
                             "cmp %[rest], #0\n\t"
                             "beq 9f\n"
                             "3:\n\t"
                             "vldmia %[x]!, {s0}\n\t" RV_ROW_F32("s0")
                             "subs %[rest], %[rest], #1\n\t"
                             "bne 3b\n\t"
                             "b 9f\n"
                             "5:\n\t"
                             "cmp %[passes], #0\n\t"
                             "beq 7f\n"
                             "6:\n\t"
                             "vldmia %[x]!, {s0-s3}\n\t" RV_ROW_F16("s0") RV_ROW_F16("s1") RV_ROW_F16("s2")
                             RV_ROW_F16("s3")
                             "subs %[passes], %[passes], #1\n\t"
                             "bne 6b\n"
                             "7:\n\t"
                             "cmp %[rest], #0\n\t"
                             "beq 9f\n"
                             "8:\n\t"
                             "vldmia %[x]!, {s0}\n\t" RV_ROW_F16("s0")
                             "subs %[rest], %[rest], #1\n\t"
                             "bne 8b\n"
                             "9:\n\t"
                             "vldmia %[bias], {s8-s15}\n\t"
                             "vadd.f32 s16, s16, s8\n\tvadd.f32 s17, s17, s9\n\tvadd.f32 s18, s18, s10\n\t"
                             "vadd.f32 s19, s19, s11\n\tvadd.f32 s20, s20, s12\n\tvadd.f32 s21, s21, s13\n\t"
                             "vadd.f32 s22, s22, s14\n\tvadd.f32 s23, s23, s15\n\t"
                             "tst %[flags], #2\n\t"
                             "beq 10f\n\t"
                             "vldr s0, [%[zeros]]\n\t"
                             "vmaxnm.f32 s16, s16, s0\n\tvmaxnm.f32 s17, s17, s0\n\tvmaxnm.f32 s18, s18, s0\n\t"
                             "vmaxnm.f32 s19, s19, s0\n\tvmaxnm.f32 s20, s20, s0\n\tvmaxnm.f32 s21, s21, s0\n\t"
                             "vmaxnm.f32 s22, s22, s0\n\tvmaxnm.f32 s23, s23, s0\n"
                             "10:\n\t"
                             "vstmia %[y], {s16-s23}\n\t"
                             : [x] "+r"(xs), [w] "+r"(w), [passes] "+r"(passes), [rest] "+r"(rest)
                             : [stride] "r"(stride), [zeros] "r"(zeros), [flags] "r"(flags),
                               [bias] "r"(bias), [y] "r"(y + j)
                             : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12",
                               "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23",
                               "cc", "memory");
        }
    }
    return out;
}

size_t rv_dense_f32_fast(const rv_layer *layer, const float *x, size_t nb, float *y) {
    return dense_m7(layer, 0, x, nb, y);
}

size_t rv_dense_f16_fast(const rv_layer *layer, const float *x, size_t nb, float *y) {
    return dense_m7(layer, 1, x, nb, y);
}

#endif
