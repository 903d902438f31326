/* Cortex-M7 fast path of the float dense layers (ARMv7E-M with a single-precision FPU, GCC/Clang),
 * used by rv_dense_f32 / rv_dense_f16 for the IN_OUT layout. The same numbers as the portable
 * kernels: each output starts at +0 and takes one vfma.f32 (exactly rounded, as fmaf) per input in
 * input order, then the bias and the activation (rv_store_outputs). What C cannot get from the
 * compiler is the load pattern: one vldm brings the eight weights of a row segment into registers
 * (GCC emits eight vldr), so a multiply-add costs ~1.3 instructions instead of ~2.5. int8 layers
 * repacked into RV_LAYOUT_S8_ROWS4 take ldm + smlad only (~0.75 instructions per multiply-add).
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

/* ---- int8 (DSP extension). TFLite's OUT_IN rows are left to the portable kernel: the module runs
   int8 layers repacked (rv_model_repack), and a second DSP kernel for the unpacked fallback would cost
   more flash than it saves time where memory is too short to repack. ---- */

size_t rv_dense_s8_fast(const rv_layer *layer, const int16_t *x16, size_t nb, int8_t *y) {
    (void)layer, (void)x16, (void)nb, (void)y;
    return 0;
}

#if defined(__ARM_FEATURE_DSP)
/* ---- int8 in RV_LAYOUT_S8_ROWS4: weights pre-widened to int16 words, so four inputs of four rows
   take three ldm (two input pairs, two rows-by-pair blocks) and eight smlad ---- */

#define RV_QUAD_SMLAD(xr)                                                                                  \
    "ldm %[w]!, {r8-r11}\n\t"                                                                             \
    "smlad %[a0], r8, " xr ", %[a0]\n\tsmlad %[a1], r9, " xr ", %[a1]\n\t"                                \
    "smlad %[a2], r10, " xr ", %[a2]\n\tsmlad %[a3], r11, " xr ", %[a3]\n\t"
#define RV_QUAD "ldm %[x]!, {r12, lr}\n\t" RV_QUAD_SMLAD("r12") RV_QUAD_SMLAD("lr")

/* Sums of the four rows of one group (weights w, inputs x word-aligned), from the biases (0 without)
   and wrapping modulo 2^32 (smlad does), as rv_requantize's sum does. */
static inline void s8_group4(const int16_t *w, const int16_t *x, size_t in, const int32_t *bias, int32_t *sums) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t n = in / 4, i;
    if (bias != NULL) {
        a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    }
    if (n > 0) { /* two quads per loop pass; an odd count enters at the second */
        const int16_t *xq = x;
        __asm__ volatile("lsrs %[n], %[n], #1\n\t"
                         "bcc 1f\n\t"
                         "adds %[n], %[n], #1\n\t"
                         "b 2f\n"
                         "1:\n\t" RV_QUAD "2:\n\t" RV_QUAD "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(xq), [w] "+r"(w),
                           [n] "+r"(n)
                         :
                         : "r8", "r9", "r10", "r11", "r12", "lr", "cc", "memory");
    }
    for (i = in & ~(size_t)3; i < in; i++) { /* the last 1..3 inputs */
        const int16_t *t = w + (i / 2 % 2) * 8 + i % 2;
        const uint32_t xi = (uint32_t)(int32_t)x[i];
        a0 = (int32_t)((uint32_t)a0 + (uint32_t)(int32_t)t[0] * xi);
        a1 = (int32_t)((uint32_t)a1 + (uint32_t)(int32_t)t[2] * xi);
        a2 = (int32_t)((uint32_t)a2 + (uint32_t)(int32_t)t[4] * xi);
        a3 = (int32_t)((uint32_t)a3 + (uint32_t)(int32_t)t[6] * xi);
    }
    sums[0] = a0, sums[1] = a1, sums[2] = a2, sums[3] = a3;
}

static inline int32_t saturate8(int32_t v) {
    __asm__("ssat %0, #8, %1" : "=r"(v) : "r"(v));
    return v;
}

/* Shifts scale_right2 does not take. */
static __attribute__((noinline)) int8_t requantize_other(const rv_layer *layer, size_t j, int32_t sum) {
    return rv_requantize_sum(layer, j, sum);
}

/* Outputs j..j+n from their sums: rv_requantize_sum, with the layer's constants in registers and, where
   the activation range is all of int8 (no ReLU, or ReLU with zero point -128), the clamp as one ssat. */
static inline void requantize_each(const rv_layer *layer, size_t j, const int32_t *sums, size_t n, int8_t *y,
                                   int full_range) {
    const size_t step = layer->n_multipliers > 1;
    const int32_t *multipliers = layer->multipliers + step * j, *shifts = layer->shifts + step * j;
    const int32_t zero_point = layer->output_quant.zero_point;
    const int32_t low = layer->activation_min, high = layer->activation_max;
    size_t k;
    for (k = 0; k < n; k++) {
        const int32_t shift = shifts[k * step];
        int32_t v;
        if (__builtin_expect(shift > -2, 0)) {
            y[j + k] = requantize_other(layer, j + k, sums[k]);
            continue;
        }
        v = rv_scale_sum_right2(sums[k], multipliers[k * step], shift) + zero_point;
        y[j + k] = (int8_t)(full_range ? saturate8(v) : RV_MIN(RV_MAX(v, low), high));
    }
}

/* requantize_each for per-channel constants and the full int8 range from outputs k of n on, until the
   end or the first shift rv_scale_sum_right2 does not take; returns where it stopped. One index for
   every array (GCC keeps a pointer per array and steps each). */
static size_t requantize_channels(const int32_t *sums, const int32_t *multipliers, const int32_t *shifts,
                                  int32_t zero_point, size_t k, size_t n, int8_t *y) {
    int32_t shift, sum, multiplier, low, high;
    __asm__ volatile("1:\n\t"
                     "ldr %[shift], [%[shifts], %[k], lsl #2]\n\t"
                     "cmn %[shift], #1\n\t"
                     "bge 2f\n\t"
                     "ldr %[sum], [%[sums], %[k], lsl #2]\n\t"
                     "ldr %[multiplier], [%[multipliers], %[k], lsl #2]\n\t"
                     "and %[low], %[sum], #0x80000000\n\t"
                     "orr %[low], %[low], #0x40000000\n\t"
                     "asr %[high], %[sum], #31\n\t"
                     "smlal %[low], %[high], %[sum], %[multiplier]\n\t"
                     "mvn %[shift], %[shift]\n\t"
                     "sub %[shift], %[shift], #1\n\t"
                     "asr %[high], %[high], %[shift]\n\t"
                     "add %[high], %[high], #1\n\t"
                     "add %[high], %[zero_point], %[high], asr #1\n\t"
                     "ssat %[high], #8, %[high]\n\t"
                     "strb %[high], [%[y], %[k]]\n\t"
                     "add %[k], %[k], #1\n\t"
                     "cmp %[k], %[n]\n\t"
                     "blo 1b\n"
                     "2:\n\t"
                     : [k] "+r"(k), [shift] "=&r"(shift), [sum] "=&r"(sum), [multiplier] "=&r"(multiplier),
                       [low] "=&r"(low), [high] "=&r"(high)
                     : [sums] "r"(sums), [multipliers] "r"(multipliers), [shifts] "r"(shifts),
                       [zero_point] "r"(zero_point), [n] "r"(n), [y] "r"(y)
                     : "cc", "memory");
    return k;
}

static void requantize_run(const rv_layer *layer, size_t j, const int32_t *sums, size_t n, int8_t *y) {
    if (layer->n_multipliers > 1 && layer->activation_min == -128 && layer->activation_max == 127) {
        size_t k = 0;
        while (k < n) { /* k < n on entry: the asm loop tests at its end */
            k = requantize_channels(sums, layer->multipliers + j, layer->shifts + j, layer->output_quant.zero_point,
                                    k, n, y + j);
            if (k < n) {
                y[j + k] = requantize_other(layer, j + k, sums[k]);
                k++;
            }
        }
    } else if (layer->activation_min == -128 && layer->activation_max == 127) {
        requantize_each(layer, j, sums, n, y, 1);
    } else {
        requantize_each(layer, j, sums, n, y, 0);
    }
}

#define RV_S8_RUN 64 /* outputs summed before they are requantised together */

size_t rv_dense_s8_rows4_fast(const rv_layer *layer, const int16_t *x16, size_t nb, int8_t *y) {
    const size_t in = layer->in, out = layer->out;
    const size_t handled = out & ~(size_t)3, group_size = rv_s8_rows4_in(layer) * 4;
    const int32_t *bias = (const int32_t *)layer->bias;
    int32_t sums[RV_S8_RUN];
    size_t j, g, b;
    for (b = 0; b < nb; b++, x16 += in, y += out) {
        const int16_t *w = (const int16_t *)layer->weights;
        if ((uintptr_t)x16 % 4 != 0) { /* ldm needs words: an odd width in a block of latents */
            return 0;
        }
        for (j = 0; j < handled; j += RV_S8_RUN) {
            const size_t n = RV_MIN((size_t)RV_S8_RUN, handled - j);
            for (g = 0; g < n; g += 4, w += group_size) {
                s8_group4(w, x16, in, bias != NULL ? bias + j + g : NULL, sums + g);
            }
            requantize_run(layer, j, sums, n, y);
        }
    }
    return handled;
}
#endif

#endif
